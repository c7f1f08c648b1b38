//! Record arena: size-classed slabs in fixed 16 KiB pages, plus one heap
//! allocation per large record. Records are addressed by a 32-bit `Ref`.
//!
//! WebAssembly memory never shrinks, so the arena's job is reuse. It is a slab
//! allocator: a page holds slots of one size class and keeps its own free
//! list; a class allocates from its pages that have room (most recently freed
//! first); a page whose last slot is freed goes back to a pool that any class
//! takes pages from. So freed space is reused by records of the same size
//! at once, and by records of any size once whole pages empty.
//! Small classes are exact to the byte up to 64 bytes (most records are keys of
//! a few bytes plus small values), so a live record wastes almost nothing.
//!
//! Pages and large records are allocations the arena owns through raw
//! pointers, never moved and never freed while the arena lives (pages) or
//! while their record is (large records), so that an export on another thread
//! can read records through copies of those pointers (see `crate::export`)
//! while the owner writes other records. The owner only ever borrows one
//! slot mutably ([`Arena::bytes_mut`]), never a whole page.
//!
//! A write reserves what its records need before it changes anything
//! (`crate::room`): [`Arena::reserve_slots`] adds empty pages to the pool for
//! slots the pages with room cannot give, [`Arena::reserve_large`] allocates a
//! large record for the next `alloc` of its length to take. `alloc` itself
//! then needs no memory. Address space is part of it: a page or large record
//! beyond what a `Ref` can address is refused at reservation.

use std::alloc::Layout;
use std::collections::VecDeque;
use std::ptr::NonNull;

use crate::error::Full;
use crate::room::{self, fallibly, oom, Room};

mod runs;
pub use runs::{Run, Runs, RUN_SLOTS};

/// Address of a record: `page << PAGE_BITS | offset` for small records, or
/// `LARGE_BIT | index` for records with their own allocation.
pub type Ref = u32;

/// The ref of slot `slot` (of `size` bytes) of page `p`.
fn slot_ref(p: u32, slot: u16, size: usize) -> Ref {
    (p << PAGE_BITS) | (u32::from(slot) * size as u32)
}

/// The ref a record would have that starts right after the `len` bytes of
/// small record `r`, in the same page; `None` for a large record, or where
/// those bytes reach the end of the page. (Consecutive slots of a page hold
/// records that lie side by side: an export copies them as one.)
#[inline]
pub fn follows(r: Ref, len: usize) -> Option<Ref> {
    let next = r.checked_add(u32::try_from(len).ok()?)?;
    (r & LARGE_BIT == 0 && next >> PAGE_BITS == r >> PAGE_BITS).then_some(next)
}

const PAGE_BITS: u32 = 14;
/// Bytes per slab page.
pub const PAGE_SIZE: usize = 1 << PAGE_BITS;
const OFFSET_MASK: u32 = (PAGE_SIZE as u32) - 1;
const LARGE_BIT: u32 = 1 << 31;
const MAX_PAGES: usize = 1 << (31 - PAGE_BITS);
/// Large records a `Ref` can address.
const MAX_LARGE: usize = 1 << 31;
/// Largest record kept in a slab; larger ones get their own allocation.
pub const MAX_SMALL: usize = 2048;
/// Smallest slot (a free slot holds the next free slot's index).
const MIN_SLOT: usize = 4;
const NONE: Ref = u32::MAX;

const NCLASS: usize = 101;

const fn build_classes() -> [u16; NCLASS] {
    let mut c = [0u16; NCLASS];
    let mut i = 0;
    let mut s = 4;
    while s <= 64 {
        c[i] = s;
        i += 1;
        s += 1;
    }
    s = 72;
    while s <= 256 {
        c[i] = s;
        i += 1;
        s += 8;
    }
    let tail = [288u16, 320, 352, 384, 448, 512, 576, 640, 768, 896, 1024, 1152, 1280, 1536, 1792, 2048];
    let mut t = 0;
    while t < tail.len() {
        c[i] = tail[t];
        i += 1;
        t += 1;
    }
    c
}

/// Slot size of each class, ascending.
pub const CLASSES: [u16; NCLASS] = build_classes();

const fn build_class_of() -> [u8; MAX_SMALL + 1] {
    let mut t = [0u8; MAX_SMALL + 1];
    let mut len = 0;
    let mut c = 0;
    while len <= MAX_SMALL {
        while (CLASSES[c] as usize) < len {
            c += 1;
        }
        t[len] = c as u8;
        len += 1;
    }
    t
}

static CLASS_OF: [u8; MAX_SMALL + 1] = build_class_of();

/// The smallest class that holds `len` bytes (`len <= MAX_SMALL`).
#[inline]
pub fn class_of(len: usize) -> u8 {
    CLASS_OF[len]
}

/// Slot size of the smallest class that holds `len` bytes, or `len` itself
/// for large records.
/// The class of the slot `Arena::alloc(len, class)` takes, or `None` for a
/// large record.
#[inline]
pub fn class_for(len: usize, class: Option<u8>) -> Option<u8> {
    let len = len.max(MIN_SLOT);
    if len > MAX_SMALL {
        return None;
    }
    Some(class.map_or_else(|| class_of(len), |c| c.max(class_of(len))))
}

#[inline]
pub fn slot_size_for(len: usize) -> usize {
    if len <= MAX_SMALL {
        CLASSES[CLASS_OF[len] as usize] as usize
    } else {
        len
    }
}

/// Bookkeeping of one page.
#[derive(Clone, Copy, Debug)]
struct Page {
    /// Size class, or `FREE_PAGE` while in the pool.
    class: u8,
    /// Slots handed out and not freed.
    used: u16,
    /// Slots ever bumped from the page's start (free ones are on `free`).
    bumped: u16,
    /// Slot index + 1 of the first free slot; 0 for none. A free slot holds
    /// the next one as a u16.
    free: u16,
    /// Being evacuated (see `crate::compact`): out of its class's room
    /// list, so that no new record lands in it, until it empties or the
    /// round ends.
    evac: bool,
    /// Neighbours in its class's list of pages with room.
    prev: u32,
    next: u32,
}

const FREE_PAGE: u8 = u8::MAX;
/// Class of a page index whose memory went back to the allocator.
const HOLE: u8 = u8::MAX - 1;
const EMPTY_PAGE: Page = Page { class: FREE_PAGE, used: 0, bumped: 0, free: 0, evac: false, prev: NONE, next: NONE };

/// Slots in use above which a page is not worth evacuating (7/8 full).
fn hi_limit(per_page: u16) -> u16 {
    per_page - per_page / 8
}

/// A page index without memory (its page went back to the allocator).
fn hole() -> NonNull<[u8]> {
    NonNull::slice_from_raw_parts(NonNull::dangling(), 0)
}

/// The record arena.
#[derive(Debug)]
pub struct Arena {
    /// Each from `Box::into_raw` of a `PAGE_SIZE` box; freed on drop.
    pages: Vec<NonNull<[u8]>>,
    meta: Vec<Page>,
    /// Per class: head of the list of its pages that have a free slot.
    room: [u32; NCLASS],
    /// Empty pages, for any class. Its capacity holds every page, so that
    /// freeing never allocates.
    pool: Vec<u32>,
    /// Page indexes whose memory went back to the allocator, for new pages
    /// to take; its capacity holds every page.
    holes: Vec<u32>,
    /// Pages with a class (neither pooled nor holes).
    class_pages: usize,
    /// Pages being evacuated.
    evac_pages: usize,
    /// Bytes of small slots in use, the unused slots of runs included.
    small_used: u64,
    /// Bytes of the slots runs hold and have not handed out (see `runs`).
    stashed: u64,
    /// Runs claimed so far.
    runs_claimed: u64,
    /// Small slots freed so far (compaction plans again after enough).
    frees: u64,
    /// Each from `boxed`; freed by `free` or on drop.
    large: Vec<Option<NonNull<[u8]>>>,
    /// Free indexes of `large`; its capacity holds all of them.
    large_free: Vec<u32>,
    /// Large records a reservation allocated, for `alloc` to take.
    spare: VecDeque<NonNull<[u8]>>,
    used: u64,
    /// Bytes of large records, spare ones included.
    large_bytes: u64,
    max_pages: usize,
    /// While a batch applies (debug builds): the slots of each class it
    /// reserved and has not taken, less those it gave back to a page that
    /// stays in use. Taking one more than that is a reservation that missed
    /// a record, which the rounding to pages would otherwise hide.
    #[cfg(debug_assertions)]
    pub promised: Option<[i64; NCLASS]>,
}

// Safety: the arena owns its pages and large records exclusively (nothing else
// holds their pointers except exports, which follow the rules of
// `crate::export`), so moving it to another thread moves that ownership.
unsafe impl Send for Arena {}

fn boxed(len: usize) -> NonNull<[u8]> {
    NonNull::from(Box::leak(vec![0u8; len].into_boxed_slice()))
}

/// As [`boxed`], but `None` when the allocator refuses (`len > 0`).
fn try_boxed(len: usize) -> Option<NonNull<[u8]>> {
    // The layout of a `Box<[u8]>` of `len` bytes, so `unboxed` frees it.
    let layout = Layout::array::<u8>(len).ok()?;
    // Safety: `len > 0` (pages and large records), so the layout is not empty.
    let p = NonNull::new(fallibly(|| unsafe { std::alloc::alloc_zeroed(layout) }))?;
    Some(NonNull::slice_from_raw_parts(p, len))
}

/// Frees an allocation made by [`boxed`].
///
/// Safety: `p` came from `boxed`, is freed once, and no reference into it
/// outlives this call.
unsafe fn unboxed(p: NonNull<[u8]>) {
    // Safety: see the function's contract.
    drop(unsafe { Box::from_raw(p.as_ptr()) });
}

impl Drop for Arena {
    fn drop(&mut self) {
        let pages = self.pages.drain(..).filter(|p| !p.is_empty());
        for p in pages.chain(self.large.drain(..).flatten()).chain(self.spare.drain(..)) {
            // Safety: each pointer came from `boxed`, is held once, and `&mut
            // self` means no borrow of the arena's bytes is alive.
            unsafe { unboxed(p) };
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    pub fn new() -> Self {
        Arena {
            pages: Vec::new(),
            meta: Vec::new(),
            room: [NONE; NCLASS],
            pool: Vec::new(),
            holes: Vec::new(),
            class_pages: 0,
            evac_pages: 0,
            small_used: 0,
            stashed: 0,
            runs_claimed: 0,
            #[cfg(debug_assertions)]
            promised: None,
            frees: 0,
            large: Vec::new(),
            large_free: Vec::new(),
            spare: VecDeque::new(),
            used: 0,
            large_bytes: 0,
            max_pages: MAX_PAGES,
        }
    }

    /// Caps the pages the arena takes (tests: an arena that runs out of
    /// addresses without 2 GiB of records).
    #[cfg(test)]
    pub fn set_max_pages(&mut self, n: usize) {
        self.max_pages = n.min(MAX_PAGES);
    }

    /// Free slots of class `c` in its pages with room, counted up to `n`.
    fn free_slots(&self, c: usize, n: usize) -> usize {
        let per_page = PAGE_SIZE / CLASSES[c] as usize;
        let (mut free, mut p) = (0, self.room[c]);
        while p != NONE && free < n {
            let m = &self.meta[p as usize];
            free += per_page - m.used as usize;
            p = m.next;
        }
        free
    }

    /// True when one slot of class `c` can be had without allocating.
    #[inline]
    pub fn has_room(&self, c: u8) -> bool {
        self.room[c as usize] != NONE || !self.pool.is_empty()
    }

    /// Makes sure that `n` more slots of each class `c` of `want` (classes
    /// listed once each) can be allocated without allocating: adds the
    /// pages the pages with room cannot give to the pool.
    /// `reserve_slots` for `counts[c]` slots of each class `c`.
    pub fn reserve_class_counts(&mut self, counts: &[usize; NCLASS], room: &mut Room) -> Result<(), Full> {
        let mut want = [(0u8, 0usize); NCLASS];
        let mut k = 0;
        for (c, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            want[k] = (c as u8, n);
            k += 1;
        }
        self.reserve_slots(&want[..k], room)
    }

    pub fn reserve_slots(&mut self, want: &[(u8, usize)], room: &mut Room) -> Result<(), Full> {
        let mut pages = 0;
        for &(c, n) in want {
            let c = c as usize;
            let free = self.free_slots(c, n);
            if free < n {
                pages += (n - free).div_ceil(PAGE_SIZE / CLASSES[c] as usize);
            }
        }
        while self.pool.len() < pages {
            self.add_page(room)?;
        }
        Ok(())
    }

    /// A new page, into the pool.
    fn add_page(&mut self, room: &mut Room) -> Result<(), Full> {
        if self.holes.is_empty() && self.pages.len() >= self.max_pages {
            return Err(Full::Arena);
        }
        room.take(PAGE_SIZE as u64)?;
        if let Some(&p) = self.holes.last() {
            let page = try_boxed(PAGE_SIZE).ok_or_else(|| oom(PAGE_SIZE))?;
            self.holes.pop();
            self.pages[p as usize] = page;
            self.meta[p as usize] = EMPTY_PAGE;
            self.pool.push(p);
            return Ok(());
        }
        room::reserve(&mut self.pages, 1)?;
        room::reserve(&mut self.meta, 1)?;
        room::reserve_capacity(&mut self.pool, self.pages.len() + 1)?;
        room::reserve_capacity(&mut self.holes, self.pages.len() + 1)?;
        let page = try_boxed(PAGE_SIZE).ok_or_else(|| oom(PAGE_SIZE))?;
        self.pages.push(page);
        self.meta.push(EMPTY_PAGE);
        self.pool.push((self.pages.len() - 1) as u32);
        Ok(())
    }

    /// Gives pooled pages beyond `keep` back to the allocator (wasm memory
    /// does not shrink, but the allocator reuses them for anything: index
    /// arrays, large records). Only between writes: a write or batch that
    /// reserved pool pages must find them there.
    pub fn trim_pool(&mut self, keep: usize) {
        while self.pool.len() > keep {
            let p = self.pool.pop().expect("the pool holds more than `keep`");
            let page = std::mem::replace(&mut self.pages[p as usize], hole());
            // Safety: from `try_boxed`/`boxed`; a pooled page holds no record,
            // so no ref and no export reads it, and it is freed once (its
            // index now holds a hole).
            unsafe { unboxed(page) };
            self.meta[p as usize] = Page { class: HOLE, ..EMPTY_PAGE };
            self.holes.push(p);
        }
    }

    // ---- evacuation (driven by `crate::compact`) -------------------------

    /// Bytes of free slots in pages that have a class: space only records of
    /// that class can use until the page empties.
    pub fn stranded_bytes(&self) -> u64 {
        // Runs' slots not handed out are free too: compaction releases them.
        self.class_pages as u64 * PAGE_SIZE as u64 - self.small_used + self.stashed
    }

    /// Bytes of pages that have a class.
    pub fn class_bytes(&self) -> u64 {
        self.class_pages as u64 * PAGE_SIZE as u64
    }

    /// Small slots freed so far.
    pub fn frees(&self) -> u64 {
        self.frees
    }

    /// Pooled pages.
    pub fn pooled(&self) -> usize {
        self.pool.len()
    }

    /// Pages being evacuated.
    pub fn evacuating_pages(&self) -> usize {
        self.evac_pages
    }

    /// True when record `r` sits in a page being evacuated.
    #[inline]
    pub fn is_evacuating(&self, r: Ref) -> bool {
        r & LARGE_BIT == 0 && self.meta[(r >> PAGE_BITS) as usize].evac
    }

    /// Size class of the page of small record `r`.
    #[inline]
    pub fn class_at(&self, r: Ref) -> u8 {
        self.meta[(r >> PAGE_BITS) as usize].class
    }

    /// True when a slot of class `c` can be had from a page that is not
    /// being evacuated, without taking a pooled page.
    #[inline]
    pub fn has_free_slot(&self, c: u8) -> bool {
        self.room[c as usize] != NONE
    }

    /// For class `c`: the slots in use of its listed pages with at most
    /// `t` in use, and the free slots of the others.
    fn split_at(&self, c: usize, t: u16) -> (usize, usize) {
        let per_page = PAGE_SIZE / CLASSES[c] as usize;
        let (mut moved, mut room, mut p) = (0, 0, self.room[c]);
        while p != NONE {
            let m = &self.meta[p as usize];
            if m.used <= t {
                moved += m.used as usize;
            } else {
                room += per_page - m.used as usize;
            }
            p = m.next;
        }
        (moved, room)
    }

    /// Marks pages to evacuate: per class, its emptiest pages with room,
    /// as many as the free slots of its other pages can take in. Marked
    /// pages leave their room list, so no new record lands in them; each
    /// goes to the pool when its last record moves out or is freed.
    /// Returns the pages marked. Allocates nothing.
    pub fn plan_evacuation(&mut self) -> usize {
        let mut marked = 0;
        for (c, &size) in CLASSES.iter().enumerate() {
            if self.room[c] == NONE {
                continue;
            }
            let per_page = (PAGE_SIZE / size as usize) as u16;
            // The largest threshold whose pages fit in the others' room
            // (what moves grows with it, the room shrinks: a binary search).
            // Pages more than 7/8 full are not worth moving.
            let (mut lo, mut hi) = (0u16, hi_limit(per_page));
            let mut best = None;
            while lo <= hi {
                let t = lo + (hi - lo) / 2;
                let (moved, room) = self.split_at(c, t);
                if moved <= room {
                    best = Some(t);
                    lo = t + 1;
                } else if t == 0 {
                    break;
                } else {
                    hi = t - 1;
                }
            }
            let Some(t) = best else { continue };
            let (mut moved, mut room) = self.split_at(c, t);
            marked += self.mark_pages(c, |used| used <= t);
            // Pages with equal counts just above the threshold did not fit
            // all together: take them, emptiest first, while they fit.
            for _ in 0..16 {
                let mut level = None;
                let mut p = self.room[c];
                while p != NONE {
                    let used = self.meta[p as usize].used;
                    if used <= hi_limit(per_page) && level.is_none_or(|l| used < l) {
                        level = Some(used);
                    }
                    p = self.meta[p as usize].next;
                }
                let Some(level) = level else { break };
                // A page of this level fits while the others keep room for
                // its records after losing its free slots: moved + level <=
                // room - (per_page - level), that is moved + per_page <= room.
                let fit = room.saturating_sub(moved) / per_page as usize;
                if fit == 0 {
                    break;
                }
                let mut left = fit;
                let n = self.mark_pages(c, |used| {
                    let take = used == level && left > 0;
                    left -= usize::from(take);
                    take
                });
                marked += n;
                moved += n * level as usize;
                room -= n * (per_page - level) as usize;
            }
        }
        marked
    }

    /// Marks the pages of class `c`'s room list whose slots in use `pick`
    /// accepts; returns how many.
    fn mark_pages(&mut self, c: usize, mut pick: impl FnMut(u16) -> bool) -> usize {
        let (mut n, mut p) = (0, self.room[c]);
        while p != NONE {
            let next = self.meta[p as usize].next;
            if pick(self.meta[p as usize].used) {
                self.unlink(p, c);
                self.meta[p as usize].evac = true;
                self.evac_pages += 1;
                n += 1;
            }
            p = next;
        }
        n
    }

    /// Ends an evacuation: pages still marked (records that could not move:
    /// pinned by snapshots, or no room was left) return to their room lists.
    pub fn end_evacuation(&mut self) {
        if self.evac_pages == 0 {
            return;
        }
        for p in 0..self.meta.len() {
            let m = self.meta[p];
            if !m.evac {
                continue;
            }
            self.meta[p].evac = false;
            let per_page = (PAGE_SIZE / CLASSES[m.class as usize] as usize) as u16;
            if m.free != 0 || m.bumped < per_page {
                self.link(p as u32, m.class as usize);
            }
        }
        self.evac_pages = 0;
    }

    /// Allocates a large record of `len` bytes (`> MAX_SMALL`) for the next
    /// `alloc` of that length to take; each reservation serves one `alloc`.
    pub fn reserve_large(&mut self, len: usize, room: &mut Room) -> Result<(), Full> {
        let pending = self.spare.len() + 1;
        if self.large.len() + pending > MAX_LARGE + self.large_free.len() {
            return Err(Full::Arena);
        }
        room.take(len as u64)?;
        // Room to register them, and to take their indexes back when freed.
        room::reserve(&mut self.large, pending)?;
        room::reserve_capacity(&mut self.large_free, self.large.len() + pending)?;
        room::reserve_deque(&mut self.spare, 1)?;
        let buf = try_boxed(len).ok_or_else(|| oom(len))?;
        self.large_bytes += len as u64;
        self.spare.push_back(buf);
        Ok(())
    }

    /// Frees the large records reserved and not taken (a write that failed
    /// after it reserved them, or took fewer than reserved).
    pub fn drop_spares(&mut self) {
        while let Some(buf) = self.spare.pop_front() {
            self.large_bytes -= buf.len() as u64;
            // Safety: from `try_boxed`, held only in `spare` (taken out above),
            // never borrowed.
            unsafe { unboxed(buf) };
        }
    }

    /// True when a reserved large record of `len` bytes waits for `alloc`.
    #[inline]
    pub fn has_spare(&self, len: usize) -> bool {
        self.spare.iter().any(|b| b.len() == len)
    }

    #[inline]
    pub fn is_large(r: Ref) -> bool {
        r & LARGE_BIT != 0
    }

    /// Allocates a slot of at least `len` bytes. With `class`, the slot is of
    /// that (larger) class: used for records that keep room to grow in place.
    /// Returns the ref and the slot size.
    ///
    /// Needs no memory when the write reserved it (see the module docs).
    pub fn alloc(&mut self, len: usize, class: Option<u8>) -> (Ref, usize) {
        let Some(c) = class_for(len, class) else { return self.alloc_large(len) };
        let p = self.page_with_room(c);
        self.take_slot(p)
    }

    /// The first page of class `c`'s room list, or a pooled one.
    fn page_with_room(&mut self, c: u8) -> u32 {
        match self.room[c as usize] {
            NONE => self.new_page(c),
            p => p,
        }
    }

    /// Hands out a slot of page `p`, which has room: a freed one first.
    fn take_slot(&mut self, p: u32) -> (Ref, usize) {
        let m = self.meta[p as usize];
        let size = CLASSES[m.class as usize] as usize;
        let slot = if m.free != 0 {
            let slot = m.free - 1;
            let b = self.slot_mut(p, slot as usize * size, 2);
            let next = u16::from_le_bytes([b[0], b[1]]);
            self.meta[p as usize].free = next;
            self.mark_used(p, 1);
            slot
        } else {
            self.bump(p, 1)
        };
        self.used += size as u64;
        (slot_ref(p, slot, size), size)
    }

    /// Marks the next `n` never-used slots of page `p` used and returns the
    /// first; the page must have them.
    fn bump(&mut self, p: u32, n: u16) -> u16 {
        let m = &mut self.meta[p as usize];
        let first = m.bumped;
        m.bumped += n;
        self.mark_used(p, n);
        first
    }

    /// Counts `n` more slots of page `p` in use (taken from its free list or
    /// bumped); the page leaves its room list when it has no room left.
    fn mark_used(&mut self, p: u32, n: u16) {
        let m = &mut self.meta[p as usize];
        let c = m.class as usize;
        let size = CLASSES[c] as usize;
        m.used += n;
        #[cfg(debug_assertions)]
        if let Some(left) = &mut self.promised {
            left[c] -= i64::from(n);
            assert!(left[c] >= 0, "a batch took a slot of class {c} it did not reserve");
        }
        if m.free == 0 && m.bumped == (PAGE_SIZE / size) as u16 {
            self.unlink(p, c);
        }
        self.small_used += u64::from(n) * size as u64;
    }

    /// A page for class `c` (from the pool, or new), at the head of its room list.
    fn new_page(&mut self, c: u8) -> u32 {
        let p = match self.pool.pop() {
            Some(p) => p,
            None => {
                // Only a caller that did not reserve gets here.
                debug_assert!(false, "a page taken without a reservation");
                assert!(self.pages.len() < self.max_pages, "record arena exhausted (2 GiB of small records)");
                self.pages.push(boxed(PAGE_SIZE));
                self.meta.push(EMPTY_PAGE);
                (self.pages.len() - 1) as u32
            }
        };
        self.meta[p as usize] = Page { class: c, ..EMPTY_PAGE };
        self.class_pages += 1;
        self.link(p, c as usize);
        p
    }

    fn link(&mut self, p: u32, c: usize) {
        let head = self.room[c];
        self.meta[p as usize].prev = NONE;
        self.meta[p as usize].next = head;
        if head != NONE {
            self.meta[head as usize].prev = p;
        }
        self.room[c] = p;
    }

    fn unlink(&mut self, p: u32, c: usize) {
        let Page { prev, next, .. } = self.meta[p as usize];
        if prev == NONE {
            self.room[c] = next;
        } else {
            self.meta[prev as usize].next = next;
        }
        if next != NONE {
            self.meta[next as usize].prev = prev;
        }
        self.meta[p as usize].prev = NONE;
        self.meta[p as usize].next = NONE;
    }

    fn alloc_large(&mut self, len: usize) -> (Ref, usize) {
        let buf = match self.spare.iter().position(|b| b.len() == len) {
            Some(i) => self.spare.remove(i).expect("a spare at the position found"),
            None => {
                // Only a caller that did not reserve gets here.
                debug_assert!(false, "a large record taken without a reservation");
                self.large_bytes += len as u64;
                boxed(len)
            }
        };
        self.used += len as u64;
        let idx = match self.large_free.pop() {
            Some(i) => {
                self.large[i as usize] = Some(buf);
                i
            }
            None => {
                self.large.push(Some(buf));
                (self.large.len() - 1) as u32
            }
        };
        (LARGE_BIT | idx, len)
    }

    /// Returns a slot to the arena. `slot_size` must be what `alloc` returned.
    pub fn free(&mut self, r: Ref, slot_size: usize) {
        if Self::is_large(r) {
            let idx = (r & !LARGE_BIT) as usize;
            let buf = self.large[idx].take().expect("double free of a large record");
            self.large_bytes -= buf.len() as u64;
            self.used -= buf.len() as u64;
            self.large_free.push(idx as u32);
            // Safety: taken out of `large` above, so held nowhere else; `&mut
            // self` means no borrow of it is alive.
            unsafe { unboxed(buf) };
            return;
        }
        let p = r >> PAGE_BITS;
        let c = self.meta[p as usize].class as usize;
        assert_eq!(CLASSES[c] as usize, slot_size, "free with a size that is not the page's slot size");
        self.used -= slot_size as u64;
        self.frees += 1;
        self.release_slot(p, (r & OFFSET_MASK) as usize, slot_size);
    }

    /// Puts the slot at byte `at` of page `p` (of slot size `slot_size`)
    /// back on its page's free list; the page goes to the pool when it was
    /// its last slot in use.
    fn release_slot(&mut self, p: u32, at: usize, slot_size: usize) {
        let c = self.meta[p as usize].class as usize;
        self.small_used -= slot_size as u64;
        let per_page = (PAGE_SIZE / slot_size) as u16;
        let slot = (at / slot_size) as u16;
        let m = self.meta[p as usize];
        // In its class's room list: it has room and is not being evacuated.
        let listed = !m.evac && (m.free != 0 || m.bumped < per_page);
        if m.used == 1 {
            // Last slot: the page goes back to the pool, for any class.
            if listed {
                self.unlink(p, c);
            }
            if m.evac {
                self.evac_pages -= 1;
            }
            self.class_pages -= 1;
            self.meta[p as usize] = EMPTY_PAGE;
            self.pool.push(p);
            return;
        }
        self.slot_mut(p, at, 2).copy_from_slice(&m.free.to_le_bytes());
        #[cfg(debug_assertions)]
        if let Some(left) = self.promised.as_mut().filter(|_| !m.evac) {
            left[c] += 1;
        }
        let m = &mut self.meta[p as usize];
        m.free = slot + 1;
        m.used -= 1;
        if !listed && !m.evac {
            self.link(p, c);
        }
    }

    /// The bytes from `r` to the end of its page (small) or allocation (large).
    #[inline]
    pub fn bytes(&self, r: Ref) -> &[u8] {
        let (p, off) = if r & LARGE_BIT != 0 {
            (self.large[(r & !LARGE_BIT) as usize].expect("dangling large ref"), 0)
        } else {
            (self.pages[(r >> PAGE_BITS) as usize], (r & OFFSET_MASK) as usize)
        };
        // Safety: the allocation is live while the arena holds it, and `&self`
        // means no slot of it is borrowed mutably (only `&mut self` does that).
        unsafe { &p.as_ref()[off..] }
    }

    /// The slot of record `r`, mutably: exactly its slot, never the page
    /// around it, which an export on another thread may be reading.
    #[inline]
    pub fn bytes_mut(&mut self, r: Ref) -> &mut [u8] {
        if r & LARGE_BIT != 0 {
            let mut p = self.large[(r & !LARGE_BIT) as usize].expect("dangling large ref");
            // Safety: the allocation is live while the arena holds it, `&mut
            // self` excludes every other borrow made through the arena, and a
            // large record is written only while no export reads it.
            unsafe { p.as_mut() }
        } else {
            let p = r >> PAGE_BITS;
            let size = CLASSES[self.meta[p as usize].class as usize] as usize;
            self.slot_mut(p, (r & OFFSET_MASK) as usize, size)
        }
    }

    /// `len` bytes at `at` of page `p`, mutably.
    #[inline]
    fn slot_mut(&mut self, p: u32, at: usize, len: usize) -> &mut [u8] {
        let page = self.pages[p as usize];
        assert!(at + len <= PAGE_SIZE, "slot past the end of its page");
        // Safety: in bounds (checked above) of a page the arena holds; `&mut
        // self` excludes every other borrow made through the arena, and the
        // bytes are one slot, which no export reads while it is being reused
        // or rewritten (exports read only records their snapshot pins).
        unsafe { std::slice::from_raw_parts_mut(page.as_ptr().cast::<u8>().add(at), len) }
    }

    /// Copies of the pointers to every page and large record, for an export
    /// that reads records from another thread (see `crate::export`).
    pub(crate) fn pointers(&self) -> Pointers {
        Pointers { pages: self.pages.clone(), classes: self.meta.iter().map(|m| m.class).collect(), large: self.large.clone() }
    }

    /// Size of the slot behind a large ref.
    pub fn large_len(&self, r: Ref) -> usize {
        self.large[(r & !LARGE_BIT) as usize].expect("dangling large ref").len()
    }

    /// Bytes held in slots that records occupy.
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    /// Bytes of the pages the arena holds.
    pub fn page_bytes(&self) -> u64 {
        (self.pages.len() - self.holes.len()) as u64 * PAGE_SIZE as u64
    }

    /// Bytes the arena holds from the allocator (pages plus large records).
    pub fn reserved_bytes(&self) -> u64 {
        self.page_bytes() + self.large_bytes
    }

    /// Checks the page lists and counters; for tests. Panics with a
    /// description.
    #[doc(hidden)]
    pub fn check(&self) {
        let mut listed = vec![false; self.meta.len()];
        for c in 0..NCLASS {
            let (mut p, mut prev) = (self.room[c], NONE);
            while p != NONE {
                let m = &self.meta[p as usize];
                assert_eq!(m.class as usize, c, "page {p} listed under class {c}");
                assert!(!m.evac, "page {p} is being evacuated yet listed");
                assert_eq!(m.prev, prev, "page {p}: broken room list");
                assert!(!listed[p as usize], "page {p} listed twice");
                listed[p as usize] = true;
                prev = p;
                p = m.next;
            }
        }
        let (mut class_pages, mut evac, mut small_used) = (0, 0, 0u64);
        for (p, m) in self.meta.iter().enumerate() {
            match m.class {
                FREE_PAGE => assert!(self.pool.contains(&(p as u32)), "empty page {p} not pooled"),
                HOLE => assert!(self.pages[p].is_empty() && self.holes.contains(&(p as u32)), "hole {p}"),
                c => {
                    class_pages += 1;
                    let per_page = (PAGE_SIZE / CLASSES[c as usize] as usize) as u16;
                    let room = m.free != 0 || m.bumped < per_page;
                    assert_eq!(listed[p], room && !m.evac, "page {p}: listed {} with room {room}, evacuating {}", listed[p], m.evac);
                    assert!(m.used > 0, "page {p} of class {c} holds nothing but is not pooled");
                    evac += usize::from(m.evac);
                    small_used += u64::from(m.used) * u64::from(CLASSES[c as usize]);
                }
            }
        }
        assert_eq!(class_pages, self.class_pages, "pages with a class");
        assert_eq!(evac, self.evac_pages, "pages being evacuated");
        assert_eq!(small_used, self.small_used, "bytes of small slots in use");
    }
}

/// Record bytes read through copies of an arena's pointers, by an export
/// running on another thread while the arena's owner goes on writing.
///
/// It is sound to read a record through them exactly while that record is
/// pinned: its bytes are then never written, and its page or large
/// allocation is never freed (pages live as long as the arena; a pinned large
/// record is not freed). `crate::export` holds that: an export reads only the
/// records of its checkpoint's snapshot, and the store cancels a running
/// export and waits for it before it releases that snapshot or drops the arena.
#[derive(Debug)]
pub(crate) struct Pointers {
    pages: Vec<NonNull<[u8]>>,
    /// Size class of each page when copied: a page that holds a pinned
    /// record keeps its class (the record's slot stays in use).
    classes: Vec<u8>,
    large: Vec<Option<NonNull<[u8]>>>,
}

// Safety: the pointers are only dereferenced under the rules above, which do
// not depend on the thread: the bytes read are not written by anyone while
// they are read, and the allocations outlive the reads.
unsafe impl Send for Pointers {}
// Safety: as for Send; reading through `&Pointers` from several threads reads
// bytes nobody writes.
unsafe impl Sync for Pointers {}

impl Pointers {
    /// The slot of record `r`. `r` must be a record pinned by the snapshot
    /// of the export that holds these pointers.
    #[inline]
    pub(crate) fn bytes(&self, r: Ref) -> &[u8] {
        if r & LARGE_BIT != 0 {
            let p = self.large[(r & !LARGE_BIT) as usize].expect("a pinned large record is live");
            // Safety: `r` is pinned (the caller's contract): its allocation is
            // live and not written while this borrow lasts.
            return unsafe { p.as_ref() };
        }
        let p = (r >> PAGE_BITS) as usize;
        let (off, size) = ((r & OFFSET_MASK) as usize, CLASSES[self.classes[p] as usize] as usize);
        assert!(off + size <= PAGE_SIZE, "slot past the end of its page");
        // Safety: in bounds (checked above) of a page that lives as long as the
        // arena; `r` is pinned (the caller's contract), so exactly these bytes,
        // its slot, are not written while this borrow lasts.
        unsafe { std::slice::from_raw_parts(self.pages[p].as_ptr().cast::<u8>().add(off), size) }
    }

    /// The `len` bytes from small record `r` on. They must be the slots of
    /// records pinned by the snapshot of the export that holds these
    /// pointers, side by side in `r`'s page (see [`follows`]).
    #[inline]
    pub(crate) fn span(&self, r: Ref, len: usize) -> &[u8] {
        assert!(r & LARGE_BIT == 0, "a span starts at a small record");
        let (p, off) = ((r >> PAGE_BITS) as usize, (r & OFFSET_MASK) as usize);
        assert!(off + len <= PAGE_SIZE, "a span past the end of its page");
        // Safety: in bounds (checked above) of a page that lives as long as the
        // arena; every slot of the span is a pinned record's (the caller's
        // contract), so none of these bytes is written while this borrow lasts.
        unsafe { std::slice::from_raw_parts(self.pages[p].as_ptr().cast::<u8>().add(off), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reserves, then allocates, as writers do.
    fn take(a: &mut Arena, len: usize, class: Option<u8>) -> (Ref, usize) {
        let mut room = Room::UNLIMITED;
        match class_for(len, class) {
            Some(c) => a.reserve_slots(&[(c, 1)], &mut room).unwrap(),
            None => a.reserve_large(len, &mut room).unwrap(),
        }
        a.alloc(len, class)
    }

    #[test]
    fn classes_are_ascending_and_cover_every_length() {
        for w in CLASSES.windows(2) {
            assert!(w[0] < w[1]);
        }
        assert_eq!(*CLASSES.last().unwrap() as usize, MAX_SMALL);
        for len in 0..=MAX_SMALL {
            let c = CLASSES[class_of(len) as usize] as usize;
            assert!(c >= len.max(MIN_SLOT));
            if class_of(len) > 0 {
                assert!((CLASSES[class_of(len) as usize - 1] as usize) < len);
            }
        }
        // Exact to the byte for small records.
        for len in 4..=64 {
            assert_eq!(slot_size_for(len), len);
        }
    }

    #[test]
    fn freed_slots_are_reused_before_new_pages() {
        let mut a = Arena::new();
        let mut refs = Vec::new();
        for i in 0..10_000 {
            let (r, s) = take(&mut a, 20, None);
            assert_eq!(s, 20);
            a.bytes_mut(r)[..4].copy_from_slice(&(i as u32).to_le_bytes());
            refs.push(r);
        }
        let reserved = a.reserved_bytes();
        for (i, r) in refs.iter().enumerate() {
            assert_eq!(&a.bytes(*r)[..4], &(i as u32).to_le_bytes());
        }
        for r in refs.drain(..) {
            a.free(r, 20);
        }
        assert_eq!(a.used_bytes(), 0);
        for _ in 0..10_000 {
            refs.push(take(&mut a, 20, None).0);
        }
        assert_eq!(a.reserved_bytes(), reserved, "reuse must not grow the arena");
        let (big, s) = take(&mut a, 10_000, None);
        assert_eq!(s, 10_000);
        assert!(Arena::is_large(big));
        a.free(big, s);
        let (big2, _) = take(&mut a, 5_000, None);
        assert_eq!(big, big2, "large slots are reused too");
    }

    #[test]
    fn emptied_pages_are_reused_by_other_sizes() {
        // Values that grow from round to round: each round frees every slot of
        // one size and allocates another. The arena must stay about one
        // round's size, not grow by one round's worth each time.
        let mut a = Arena::new();
        let mut refs: Vec<(Ref, usize)> = (0..5000).map(|_| take(&mut a, 100, None)).collect();
        let one_round = a.reserved_bytes();
        for round in 1..30usize {
            for (r, s) in refs.drain(..) {
                a.free(r, s);
            }
            assert_eq!(a.used_bytes(), 0);
            refs = (0..5000).map(|_| take(&mut a, 100 + round * 8, None)).collect();
        }
        assert!(a.reserved_bytes() < one_round * 4, "{} bytes after 30 rounds, one round {}", a.reserved_bytes(), one_round);
        // A page of mixed live and free slots keeps its class; the rest is pooled.
        for (r, s) in refs.drain(..).skip(1) {
            a.free(r, s);
        }
        assert!(a.pooled() > 0);
    }

    #[test]
    fn evacuation_marks_sparse_pages_and_empties_them_into_the_pool() {
        let mut a = Arena::new();
        // Four pages of 32-byte slots (512 a page), then every other slot of
        // the first two freed: those two are half empty.
        let refs: Vec<Ref> = (0..2048).map(|_| take(&mut a, 32, None).0).collect();
        let page = |r: Ref| r >> PAGE_BITS;
        let first_two: Vec<Ref> = refs.iter().copied().filter(|&r| page(r) <= page(refs[600])).collect();
        for (i, &r) in first_two.iter().enumerate() {
            if i % 2 == 0 {
                a.free(r, 32);
            }
        }
        // Some room in the other pages, for the moves.
        for &r in refs.iter().rev().take(600) {
            a.free(r, 32);
        }
        a.check();
        let stranded = a.stranded_bytes();
        assert!(stranded > 0);
        let marked = a.plan_evacuation();
        assert!(marked >= 1, "a half-empty page is marked");
        a.check();
        // New records never land in a marked page.
        let kept: Vec<Ref> = first_two.iter().copied().skip(1).step_by(2).collect();
        let fresh: Vec<Ref> = (0..300).map(|_| take(&mut a, 32, None).0).collect();
        assert!(fresh.iter().all(|&r| !a.is_evacuating(r)));
        // Its last record gone, a marked page goes to the pool.
        let pooled = a.pooled();
        let last: Vec<Ref> = kept.iter().copied().filter(|&r| a.is_evacuating(r)).collect();
        for r in last {
            a.free(r, 32);
        }
        assert_eq!(a.evacuating_pages(), 0);
        assert_eq!(a.pooled(), pooled + marked);
        a.check();
        // Pooled pages go back to the allocator; a new page reuses the hole.
        let before = a.reserved_bytes();
        a.trim_pool(0);
        assert_eq!(a.pooled(), 0);
        assert_eq!(a.reserved_bytes(), before - (pooled + marked) as u64 * PAGE_SIZE as u64);
        a.check();
        let pages = a.pages.len();
        let big: Vec<(Ref, usize)> = (0..2000).map(|_| take(&mut a, 700, None)).collect();
        assert!(a.pages.len() > pages, "more pages than holes were needed");
        assert!(a.holes.is_empty(), "holes are taken first");
        for (i, &(r, _)) in big.iter().enumerate() {
            a.bytes_mut(r)[..4].copy_from_slice(&(i as u32).to_le_bytes());
        }
        for (i, &(r, _)) in big.iter().enumerate() {
            assert_eq!(&a.bytes(r)[..4], &(i as u32).to_le_bytes());
        }
        a.check();
        // A round that ends with records left unmarks their pages.
        for &(r, size) in big.iter().step_by(2) {
            a.free(r, size);
        }
        a.plan_evacuation();
        a.end_evacuation();
        assert_eq!(a.evacuating_pages(), 0);
        a.check();
    }

    #[test]
    fn a_class_that_fills_its_page_exactly_starts_a_new_page() {
        // 2048 divides the page size: the ninth slot must not run into the
        // next page, which may belong to another class.
        let mut a = Arena::new();
        let mut refs = Vec::new();
        for i in 0..20u8 {
            let (r, _) = take(&mut a, 2048, None);
            let (q, _) = take(&mut a, 8, None);
            a.bytes_mut(r)[..2048].fill(i);
            a.bytes_mut(q)[..8].fill(100 + i);
            refs.push((r, q, i));
        }
        for (r, q, i) in refs {
            assert!(a.bytes(r)[..2048].iter().all(|b| *b == i));
            assert!(a.bytes(q)[..8].iter().all(|b| *b == 100 + i));
        }
    }
}
