//! Robin Hood hash index of record refs: five bytes a slot (a byte of probe
//! distance and a 32-bit ref, side by side so a probe touches one cache
//! line), any capacity (home slot by multiply-shift of the 32-bit hash), at
//! most 90% full.
//!
//! The index stores no hashes and no keys: equality is decided by the caller
//! (which reads the record), and only growing needs the hash of a resident,
//! which the caller recomputes from its record. The probe distance byte lets a
//! lookup skip residents with another home without reading them and stop early
//! on a miss. Distances saturate at 254: residents that far from home (only
//! with adversarial hash collisions) are all compared, so the index degrades to
//! a scan instead of failing or growing without end.
//!
//! The slot array is shared copy-on-write ([`Slots`], a fallible `Arc`):
//! cloning an index is O(1), and the first change to a shared one copies it.
//! A checkpoint clones the live index of every table at its moment (its
//! frozen view; see `crate::export`), so writers pay a copy only for tables
//! they change while the export runs, and the export reads an index nobody
//! changes.
//!
//! Growing and copying can fail: a writer calls [`Index::try_reserve`]
//! before it changes anything (see `crate::room`), and the changes after it
//! need no memory. (`insert` still grows an index that has no room, as the
//! last resort of a caller that did not reserve.)

use crate::arena::Ref;
use crate::error::Full;
use crate::room::{oom, Room};
use crate::slots::{Slot, Slots};

const EMPTY: u8 = 0;
/// Meta byte of a resident at distance 254 or more.
const SATURATED: u8 = 255;
/// Bytes per slot.
const SLOT: usize = std::mem::size_of::<Slot>();

/// A Robin Hood index. A slot's meta byte is 0 when empty, else distance + 1.
/// (An empty index allocates nothing.)
#[derive(Debug, Clone, Default)]
pub struct Index {
    /// `[meta, ref as 4 little-endian bytes]`, shared copy-on-write.
    slots: Slots,
    len: usize,
}

#[inline]
fn slot_ref(s: &[u8; 5]) -> Ref {
    u32::from_le_bytes([s[1], s[2], s[3], s[4]])
}

#[inline]
fn pack(meta: u8, r: Ref) -> [u8; 5] {
    let b = r.to_le_bytes();
    [meta, b[0], b[1], b[2], b[3]]
}

impl Index {
    pub fn new() -> Self {
        Index::default()
    }

    /// An index sized to hold `n` entries without growing, or `None` when
    /// the allocator refuses.
    pub fn try_with_capacity(n: usize) -> Option<Self> {
        let mut ix = Index::new();
        if n > 0 {
            ix.slots = Slots::zeroed(capacity_for(n))?;
        }
        Some(ix)
    }

    /// The slots, for a change: copied first if another index shares them
    /// (which a writer's reservation has done already; see `try_reserve`).
    #[inline]
    fn slots_mut(&mut self) -> &mut [Slot] {
        self.slots.make_mut(unshare)
    }

    /// True when `n` more entries fit without growing and the slots are
    /// this index's own: `try_reserve(n)` would do nothing.
    #[inline]
    pub fn has_room(&self, n: usize) -> bool {
        (self.len + n) * 10 <= self.slots.len() * 9 && self.slots.is_unique()
    }

    /// Makes room for `n` more entries without growing, and makes the slots
    /// this index's own (copying them from a frozen view that shares them),
    /// charging what it allocates to `room`. Returns the bytes of an old
    /// array that frozen copies still hold (0 when nothing was shared).
    /// On an error the index is unchanged.
    pub fn try_reserve(&mut self, n: usize, room: &mut Room, rehash: impl Fn(Ref) -> u32) -> Result<u64, Full> {
        let cap = self.slots.len();
        let grow = (self.len + n) * 10 > cap * 9;
        let shared = !self.slots.is_unique();
        if !grow && !shared {
            return Ok(0);
        }
        let new_cap = if grow { capacity_for(self.len + n).max(cap * 5 / 4) } else { cap };
        // What the store holds more afterwards: the new array, less the old
        // one unless frozen copies keep it.
        let more = if shared { new_cap * SLOT } else { new_cap.saturating_sub(cap) * SLOT };
        room.take(more as u64)?;
        if grow {
            self.try_resize(new_cap, &rehash)?;
        } else {
            self.slots = self.slots.copy().ok_or_else(|| oom(cap * SLOT))?;
        }
        Ok(if shared { (cap * SLOT) as u64 } else { 0 })
    }

    /// True when a frozen copy shares the slot array.
    pub fn is_shared(&self) -> bool {
        !self.slots.is_unique()
    }

    /// Bytes of an index sized for `n` entries (`try_with_capacity(n)`).
    pub fn bytes_for(n: usize) -> usize {
        if n == 0 {
            0
        } else {
            capacity_for(n) * SLOT
        }
    }

    /// True when both share one slot array (one is a frozen copy of the
    /// other, unchanged since).
    pub fn shares(&self, other: &Index) -> bool {
        self.slots.ptr_eq(&other.slots)
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the index arrays.
    pub fn bytes(&self) -> usize {
        self.slots.len() * SLOT
    }

    #[inline]
    fn home(&self, h: u32) -> usize {
        ((u64::from(h) * self.slots.len() as u64) >> 32) as usize
    }

    /// Finds the slot of the entry with hash `h` for which `eq` holds.
    #[inline]
    pub fn find(&self, h: u32, mut eq: impl FnMut(Ref) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let cap = self.slots.len();
        let mut i = self.home(h);
        let mut d = 1u8;
        loop {
            let s = &self.slots[i];
            let m = s[0];
            // Empty, or a resident nearer its home than we would be: absent.
            if m < d {
                return None;
            }
            if m == d && eq(slot_ref(s)) {
                return Some(i);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
            d = d.saturating_add(1);
        }
    }

    /// Calls `f` with the ref of every resident that could be the entry with
    /// hash `h` (the candidates `find` would compare), without comparing.
    /// For warming caches ahead of a batch of lookups.
    #[inline]
    pub fn candidates(&self, h: u32, mut f: impl FnMut(Ref)) {
        if self.len == 0 {
            return;
        }
        let cap = self.slots.len();
        let mut i = self.home(h);
        let mut d = 1u8;
        loop {
            let s = &self.slots[i];
            if s[0] < d {
                return;
            }
            if s[0] == d {
                f(slot_ref(s));
            }
            i += 1;
            if i == cap {
                i = 0;
            }
            d = d.saturating_add(1);
        }
    }

    /// Loads the home slot of hash `h` (a cache-warming read; see `Mem::warm`).
    #[inline]
    pub fn home_byte(&self, h: u32) -> u8 {
        if self.slots.is_empty() { 0 } else { self.slots[self.home(h)][0] }
    }

    /// The ref in an occupied slot.
    #[inline]
    pub fn get(&self, slot: usize) -> Ref {
        debug_assert!(self.slots[slot][0] != EMPTY);
        slot_ref(&self.slots[slot])
    }

    /// Replaces the ref in an occupied slot (the entry's key is unchanged).
    #[inline]
    pub fn set(&mut self, slot: usize, r: Ref) {
        debug_assert!(self.slots[slot][0] != EMPTY);
        self.slots_mut()[slot][1..].copy_from_slice(&r.to_le_bytes());
    }

    /// Inserts an entry the caller knows is absent. `rehash` gives the hash
    /// of a resident from its ref; it is called only when the index grows
    /// (which it does only when the caller did not reserve room).
    pub fn insert(&mut self, h: u32, r: Ref, rehash: impl Fn(Ref) -> u32) {
        if (self.len + 1) * 10 > self.slots.len() * 9 {
            // Grow by a quarter: the load stays between 72% and 90% (memory
            // per entry matters more here than the extra rehashing).
            let cap = capacity_for(self.len + 1).max(self.slots.len() * 5 / 4);
            if self.try_resize(cap, &rehash).is_err() {
                alloc_failed(cap);
            }
        }
        self.place(h, r);
    }

    /// Robin Hood placement. The index has at least one empty slot.
    fn place(&mut self, h: u32, r: Ref) {
        let mut i = self.home(h);
        self.len += 1;
        let slots = self.slots_mut();
        let cap = slots.len();
        let mut cur = pack(1, r);
        loop {
            #[cfg(test)]
            tests::PLACE_STEPS.with(|c| c.set(c.get() + 1));
            let m = slots[i][0];
            if m == EMPTY {
                slots[i] = cur;
                return;
            }
            if m < cur[0] {
                // The resident is nearer its home: it moves on instead.
                std::mem::swap(&mut slots[i], &mut cur);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
            cur[0] = cur[0].saturating_add(1);
        }
    }

    /// Removes the entry in `slot`, shifting its followers back; with
    /// `shrink`, an index left mostly empty moves to a smaller array.
    pub fn remove_at(&mut self, slot: usize, shrink: bool, rehash: impl Fn(Ref) -> u32) {
        let cap = self.slots.len();
        let home = |h: u32| ((u64::from(h) * cap as u64) >> 32) as usize;
        let slots = self.slots_mut();
        let mut i = slot;
        loop {
            let j = if i + 1 == cap { 0 } else { i + 1 };
            let m = slots[j][0];
            if m <= 1 {
                slots[i] = [EMPTY, 0, 0, 0, 0];
                break;
            }
            let r = slot_ref(&slots[j]);
            let meta = if m == SATURATED {
                // The true distance is unknown: recompute it from the hash.
                let home = home(rehash(r));
                let d = if i >= home { i - home } else { i + cap - home };
                if d >= 254 {
                    SATURATED
                } else {
                    d as u8 + 1
                }
            } else {
                m - 1
            };
            slots[i] = pack(meta, r);
            i = j;
        }
        self.len -= 1;
        // Give memory back to the allocator when mostly empty (if a smaller
        // array cannot be had, the larger one stays).
        if shrink && cap > 64 && self.len * 5 < cap {
            let _ = self.try_resize(capacity_for(self.len), &rehash);
        }
    }

    /// Moves the entries into a new array of `cap` slots; on an error the
    /// index is unchanged.
    fn try_resize(&mut self, cap: usize, rehash: &impl Fn(Ref) -> u32) -> Result<(), Full> {
        let cap = cap.max(8);
        let fresh = Slots::zeroed(cap).ok_or_else(|| oom(cap * SLOT))?;
        let old = std::mem::replace(&mut self.slots, fresh);
        self.len = 0;
        for s in old.iter().filter(|s| s[0] != EMPTY) {
            let r = slot_ref(s);
            self.place(rehash(r), r);
        }
        Ok(())
    }

    /// Slots, occupied or not.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The ref in slot `i`, if it is occupied.
    #[inline]
    pub fn slot_at(&self, i: usize) -> Option<Ref> {
        self.slots.get(i).filter(|s| s[0] != EMPTY).map(slot_ref)
    }

    /// Occupied slots and their refs, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, Ref)> + '_ {
        self.slots.iter().enumerate().filter(|(_, s)| s[0] != EMPTY).map(|(i, s)| (i, slot_ref(s)))
    }

    /// The refs, in slot order (for internal walks: freeing, merging).
    pub fn refs(&self) -> impl Iterator<Item = Ref> + '_ {
        self.iter().map(|(_, r)| r)
    }

    /// The refs in a fixed order that is not the order of their hashes: slots
    /// visited with a stride of about 0.618 of the capacity, coprime to it.
    ///
    /// Why: slot order is hash order, and inserting keys in hash order into
    /// a growing table packs them into the front of it (each insert lands in
    /// an ever longer cluster: quadratic). Everything that hands entries out
    /// (checkpoints, listings) uses this order, so a store restored from a
    /// checkpoint, or filled from another store's listing, fills evenly.
    pub fn refs_spread(&self) -> impl Iterator<Item = Ref> + '_ {
        let cap = self.slots.len();
        let step = spread_step(cap);
        let mut i = 0usize;
        (0..cap).filter_map(move |_| {
            let slot = i;
            i += step;
            if i >= cap {
                i -= cap;
            }
            let s = &self.slots[slot];
            (s[0] != EMPTY).then(|| slot_ref(s))
        })
    }
}

/// A stride near 0.618 of `cap` that is coprime to it, so that stepping by
/// it visits every slot once.
fn spread_step(cap: usize) -> usize {
    if cap <= 2 {
        return 1;
    }
    let mut step = ((cap as u64 * 0x9e37_79b9) >> 32) as usize | 1;
    while gcd(step, cap) != 1 {
        step += 2;
    }
    step % cap
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A copy of slots a frozen view shares, for a change nobody reserved.
#[cold]
fn unshare(s: &Slots) -> Slots {
    debug_assert!(false, "an index shared with a frozen copy changed without a reservation");
    s.copy().unwrap_or_else(|| alloc_failed(s.len()))
}

/// The allocation of `slots` slots failed where the caller cannot take an
/// error: abort, as an infallible allocation does.
#[cold]
fn alloc_failed(slots: usize) -> ! {
    std::alloc::handle_alloc_error(std::alloc::Layout::array::<Slot>(slots).unwrap_or(std::alloc::Layout::new::<Slot>()))
}

/// Capacity that holds `n` entries at about 80% load.
fn capacity_for(n: usize) -> usize {
    (n + n / 4 + 1).max(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::murmur3_32;
    use std::cell::Cell;
    use std::collections::HashSet;

    thread_local! {
        /// Slots visited by `place`, to test insertion work without timing.
        pub static PLACE_STEPS: Cell<usize> = const { Cell::new(0) };
    }

    fn h(r: Ref) -> u32 {
        murmur3_32(&r.to_le_bytes(), 7)
    }

    #[test]
    fn insert_find_remove_against_a_set() {
        let mut ix = Index::new();
        let mut model = HashSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = (x % 5000) as Ref;
            let slot = ix.find(h(r), |c| c == r);
            assert_eq!(slot.is_some(), model.contains(&r), "step {step}");
            if x % 3 == 0 {
                if let Some(s) = slot {
                    ix.remove_at(s, true, h);
                    model.remove(&r);
                }
            } else if slot.is_none() {
                ix.insert(h(r), r, h);
                model.insert(r);
            }
            assert_eq!(ix.len(), model.len());
        }
        let mut seen: Vec<Ref> = ix.refs().collect();
        seen.sort();
        let mut want: Vec<Ref> = model.into_iter().collect();
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn spread_order_visits_every_entry_once() {
        for n in [0u32, 1, 2, 3, 7, 8, 100, 1000, 4097] {
            let mut ix = Index::new();
            for r in 0..n {
                ix.insert(h(r), r, h);
            }
            let mut a: Vec<Ref> = ix.refs_spread().collect();
            a.sort();
            assert_eq!(a, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn inserting_in_another_tables_order_stays_linear() {
        // Fill a big table, then copy it into a fresh one in its hand-out
        // order: the probe work per insert must stay flat.
        let mut big = Index::new();
        for r in 0..50_000u32 {
            big.insert(h(r), r, h);
        }
        let steps = |order: Vec<Ref>| {
            PLACE_STEPS.with(|c| c.set(0));
            let mut copy = Index::new();
            for r in order {
                copy.insert(h(r), r, h);
            }
            PLACE_STEPS.with(Cell::get)
        };
        let spread = steps(big.refs_spread().collect());
        let sorted = steps(big.refs().collect());
        // Growth re-places every entry about three times, a few steps each.
        assert!(spread < 50_000 * 25, "spread order: {spread} steps");
        // The positive control: hash order into a growing table is far worse.
        assert!(sorted > spread * 10, "hash order: {sorted} steps vs {spread}");
    }

    #[test]
    fn all_equal_hashes_still_work() {
        // Worst case: every entry has the same hash; distances saturate and
        // lookups, inserts and removes stay correct.
        let mut ix = Index::new();
        for r in 0..600u32 {
            ix.insert(42, r, |_| 42);
        }
        for r in 0..600u32 {
            assert!(ix.find(42, |c| c == r).is_some());
        }
        assert!(ix.find(42, |c| c == 9999).is_none());
        for r in (0..600u32).step_by(2) {
            let s = ix.find(42, |c| c == r).unwrap();
            ix.remove_at(s, true, |_| 42);
        }
        for r in 0..600u32 {
            assert_eq!(ix.find(42, |c| c == r).is_some(), r % 2 == 1, "ref {r}");
        }
    }
}

