//! Writes to tables, each in two steps: reserve, then commit.
//!
//! A write first finds out what it will allocate (a slot or a large record
//! for the new record, a MARK record and room in an undo layer for an open
//! snapshot, room in the live index, a copy of an index a checkpoint's frozen
//! view shares) and reserves all of it with fallible calls, charged to the
//! operation's [`Room`]. Only then does it change the table, and that step
//! allocates nothing. A write that cannot get its memory returns [`Full`]
//! having changed nothing; what it did reserve stays as spare room (pooled
//! pages, index capacity, an empty layer), except large records, which go.
//!
//! The common write, an overwrite of a value of the same slot class with no
//! snapshot open, needs nothing and reserves nothing.

use crate::arena::{self, Arena, Ref};
use crate::error::{Error, Full};
use crate::index::{AnyIndex, Entry, Index, NARROW, WIDE};
use crate::mem::{entry_hash_of, head_nested, rec_hash, record_hash, Change, Layer, Mem, TableId, RUN_MIN_ENTRIES};
use crate::record::{self, EntryRecords, INLINE};
use crate::room::{self, Room};

/// Capacity of the scratch buffer kept between writes (a list grown past it
/// gives its copy back).
const TMP_KEEP: usize = 64 * 1024;

/// What a write to an entry must save first for open snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Save {
    /// Nothing: no open snapshot needs the entry's current state, or it is saved.
    No,
    /// Into the newest open snapshot's layer of the table.
    Into,
    /// Into a layer for the newest open snapshot, which the table lacks yet.
    NewLayer,
}

/// What a write does to the live index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Live {
    /// Adds an entry of this hash: room for one more, and the chunks from
    /// its home slot to the next empty one its own (see `Index::try_own_run`).
    Insert(u32),
    /// Replaces the entry in this slot (an overwrite): that slot's chunk
    /// its own. Nothing else moves, so the run to the next empty slot (a
    /// walk of ~5 slots and their chunks' counts at our loads) is not read.
    Set(usize),
    /// Removes the entry in this slot: the chunks from it to the next empty
    /// slot its own (the backward shift runs there). `None`: its slot may
    /// move before the change (other changes come first): every chunk its
    /// own.
    Change(Option<usize>),
}

/// The puts a batch brings to one table, as `Mem::width_change` costs
/// entries: how many, the slot bytes of their records, and those of the
/// records that would stay records in a wide index.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Incoming {
    entries: u64,
    all: u64,
    stay: u64,
}

impl Incoming {
    pub(crate) const NONE: Incoming = Incoming { entries: 0, all: 0, stay: 0 };

    /// Counts a put of `value` under `key` in namespace `ns`.
    pub(crate) fn add(&mut self, key: &[u8], ns: &[u8], value: &[u8]) {
        let size = arena::slot_size_for(record::encoded_len(key.len(), ns.len(), value.len(), false, false)) as u64;
        self.entries += 1;
        self.all += size;
        if !fits_inline(key, ns, value) {
            self.stay += size;
        }
    }
}

/// True when a put of `value` under `key` in namespace `ns` goes inline in
/// a wide index (as `Mem::put` decides).
pub(crate) fn fits_inline(key: &[u8], ns: &[u8], value: &[u8]) -> bool {
    // `record::inline_parts`'s test, without building the entry.
    ns.is_empty() && key.len() + value.len() < INLINE
}

/// Everything one write allocates.
#[derive(Debug)]
struct Want {
    save: Save,
    /// Length of the record a save allocates: a MARK for an entry that did
    /// not exist, a copy of an entry inline in the index (one with a record
    /// moves into the layer instead).
    saved: Option<usize>,
    /// Length and slot class of the new record.
    record: Option<(usize, Option<u8>)>,
    live: Live,
}

impl Mem {
    /// What a write to (key, ns) of table `tid`, its live entry in `slot`,
    /// must save first (see `crate::mem`). An entry inline in the slot needs
    /// no save while only checkpoints' snapshots are open: those are read
    /// through their frozen index, whose chunk keeps the entry's bytes (a
    /// writer copies the chunk before it changes the slot), never through
    /// layers. A record must still move into a layer, to stay alive for
    /// the frozen index's ref; a MARK still marks an absent entry.
    #[inline]
    pub(crate) fn plan_save(&self, tid: TableId, h: u32, key: &[u8], ns: &[u8], slot: Option<usize>) -> Save {
        let Some(&n) = self.open.last() else { return Save::No };
        let t = self.table(tid);
        if t.born > n {
            return Save::No;
        }
        if !self.layers_read() && slot.is_some_and(|s| t.live.get(s).record().is_none()) {
            return Save::No;
        }
        match t.layers.last() {
            Some(l) if l.epoch == n => {
                if l.index.find_ref(h, |r| record::matches(self.arena.bytes(r), key, ns)).is_some() {
                    Save::No
                } else {
                    Save::Into
                }
            }
            _ => Save::NewLayer,
        }
    }

    /// True when writes to table `tid` save what they change for open snapshots.
    pub(crate) fn saves(&self, tid: TableId) -> bool {
        self.open.last().is_some_and(|&n| self.table(tid).born <= n)
    }

    /// Reserves what `w` needs; on an error, frees large records it reserved.
    fn reserve_write(&mut self, room: &mut Room, tid: TableId, w: &Want) -> Result<(), Full> {
        let r = self.try_reserve_write(room, tid, w);
        if r.is_err() {
            self.arena.drop_spares();
        }
        r
    }

    fn try_reserve_write(&mut self, room: &mut Room, tid: TableId, w: &Want) -> Result<(), Full> {
        // The live index first: a resize may change its width, and going
        // narrow allocates records, which must not take the slots reserved
        // below.
        self.reserve_live(tid, w.live, room)?;
        // Records, in the order the commit allocates them: the saved one, then the new one.
        let mut small = [(0u8, 0usize); 2];
        let mut k = 0;
        for (len, class) in [w.saved.map(|l| (l, None)), w.record].into_iter().flatten() {
            match arena::class_for(len, class) {
                Some(c) if k > 0 && small[0].0 == c => small[0].1 += 1,
                Some(c) => {
                    small[k] = (c, 1);
                    k += 1;
                }
                None => self.reserve_large(len, room)?,
            }
        }
        // Most writes take one slot of a class that has room.
        let one_with_room = k == 1 && small[0].1 == 1 && self.arena.has_room(small[0].0);
        if k > 0 && !one_with_room {
            self.arena.reserve_slots(&small[..k], room)?;
        }
        if w.save != Save::No {
            if w.save == Save::NewLayer {
                self.new_layer(tid, room)?;
            }
            self.reserve_layer(tid, 1, room)?;
        }
        Ok(())
    }

    /// A large record of `len` bytes for the next allocation of that length
    /// (one a batch reserved already serves).
    pub(crate) fn reserve_large(&mut self, len: usize, room: &mut Room) -> Result<(), Full> {
        if self.arena.has_spare(len) {
            return Ok(());
        }
        self.arena.reserve_large(len, room)
    }

    /// What the live index of `tid` needs for change `live`: room for a new
    /// entry, and the chunks the change touches its own (copied from a
    /// checkpoint's frozen view that shares them).
    #[inline]
    fn reserve_live(&mut self, tid: TableId, live: Live, room: &mut Room) -> Result<(), Full> {
        let ix = &self.table(tid).live;
        let from = match live {
            Live::Insert(_) if !ix.fits(1) => return self.grow_live(tid, 1, Incoming::NONE, room),
            Live::Insert(h) => ix.home_of(h),
            Live::Set(slot) if ix.owns_slot(slot) => return Ok(()),
            Live::Set(slot) => return self.own_live(tid, slot, false, room),
            Live::Change(Some(slot)) => slot,
            Live::Change(None) if ix.has_room(0) => return Ok(()),
            Live::Change(None) => return self.grow_live(tid, 0, Incoming::NONE, room),
        };
        if ix.owns_run(from) {
            return Ok(());
        }
        self.own_live(tid, from, true, room)
    }

    /// Room for `n` more entries in the live index of `tid`, and every chunk
    /// of it its own. `incoming` describes them when a batch knows them.
    #[inline(never)]
    fn grow_live(&mut self, tid: TableId, n: usize, incoming: Incoming, room: &mut Room) -> Result<(), Full> {
        if !self.table(tid).live.fits(n) {
            debug_assert!(!self.keep_capacity, "a batch grew table {tid} as it applied: its reservation missed a put");
            if let Some(wide) = self.width_change(tid, n, incoming) {
                return self.convert_live(tid, n, wide, room);
            }
        }
        let Mem { arena, tables, acct, .. } = self;
        let ix = &mut tables[tid as usize].as_mut().expect("dangling table id").live;
        let before = ix.bytes();
        let frozen = ix.try_reserve(n, room, |c| entry_hash_of(arena, c))?;
        acct.resized(before, ix.bytes());
        acct.frozen_copies += frozen;
        Ok(())
    }

    /// The chunks of the live index of `tid` a change from slot `from`
    /// touches (with `run`; else the chunk of slot `from`), its own.
    #[inline(never)]
    fn own_live(&mut self, tid: TableId, from: usize, run: bool, room: &mut Room) -> Result<(), Full> {
        let Mem { tables, acct, .. } = self;
        let ix = &mut tables[tid as usize].as_mut().expect("dangling table id").live;
        acct.frozen_copies += if run { ix.try_own_run(from, room)? } else { ix.try_own_slot(from, room)? };
        Ok(())
    }

    /// At a resize of table `tid`'s live index for `n` more entries: the
    /// width it changes to (true: wide), if it changes. A table goes wide
    /// when wide slots (entries that fit inline, records for the rest) take
    /// no more bytes than narrow ones and records, and back when they take
    /// an eighth more (so a table near the line does not flip at every
    /// resize); see docs/LAYOUT.md, "Memory decides the width". Both are
    /// costed at the index's mean load between two resizes (81%: 72% after
    /// growing by a quarter, 90% before the next), per entry: narrow
    /// `5 / 0.81 + R`, wide `16 / 0.81 + (1 - f) R`. Never while a snapshot
    /// (or a checkpoint's frozen view, which holds one) may read the table:
    /// going wide frees records. An empty table has no entries to cost, so
    /// the `incoming` entries of a batch stand in for them (without them a
    /// table first filled by one large batch stayed narrow for good).
    fn width_change(&self, tid: TableId, n: usize, incoming: Incoming) -> Option<bool> {
        let t = self.table(tid);
        let wide = t.live.is_wide();
        let own = t.live.len();
        if !t.wide_ok || self.saves(tid) || (!wide && own + n < self.wide_min) {
            return None;
        }
        // Record bytes of every entry, and of those that do not fit inline.
        let (len, mut all, mut stay) = if own == 0 { (incoming.entries, incoming.all, incoming.stay) } else { (own as u64, 0, 0) };
        if len == 0 {
            return None;
        }
        for e in t.live.entries() {
            let rec = self.arena.entry(e);
            let size = match e {
                Entry::Ref(r) => record::slot_size(&self.arena, r, &rec),
                Entry::Inline(_) => arena::slot_size_for(rec.len),
            } as u64;
            all += size;
            if record::inline_of(&rec).is_none() {
                stay += size;
            }
        }
        // The costs above times 0.81 * len, in hundredths.
        let narrow_cost = 100 * NARROW as u64 * len + 81 * all;
        let wide_cost = 100 * WIDE as u64 * len + 81 * stay;
        match wide {
            false if wide_cost <= narrow_cost => Some(true),
            true if wide_cost * 8 > narrow_cost * 9 => Some(false),
            _ => None,
        }
    }

    /// Moves the live index of `tid` into a new one of width `wide` with
    /// room for `n` more entries: going wide, entries that fit move inline
    /// and their records are freed; going narrow, inline entries get
    /// records (reserved first). All or nothing.
    #[inline(never)]
    fn convert_live(&mut self, tid: TableId, n: usize, wide: bool, room: &mut Room) -> Result<(), Full> {
        let t = self.table(tid);
        let want = t.live.len() + n;
        let cap = t.live.grown_capacity(n);
        if !wide {
            let mut classes = [0usize; arena::CLASSES.len()];
            for b in t.live.entries().filter_map(|e| match e {
                Entry::Inline(b) => Some(b),
                Entry::Ref(_) => None,
            }) {
                let len = record::parse_inline(b).len;
                classes[arena::class_for(len, None).expect("an inline entry's record is small") as usize] += 1;
            }
            self.arena.reserve_class_counts(&classes, room)?;
        }
        let bytes = AnyIndex::bytes_for_slots(cap, wide);
        room.take(bytes as u64)?;
        let new = AnyIndex::try_with_slots(cap, wide).ok_or_else(|| room::oom(bytes))?;
        debug_assert!(new.fits(want));
        let Mem { arena, tables, acct, .. } = self;
        let t = tables[tid as usize].as_mut().expect("dangling table id");
        let old = std::mem::replace(&mut t.live, new);
        acct.resized(old.bytes(), t.live.bytes());
        acct.frozen_copies += old.shared_bytes() as u64;
        for e in old.entries() {
            let rec = arena.entry(e);
            let h = rec_hash(&rec);
            match (e, wide) {
                (Entry::Ref(r), true) => match record::inline_of(&rec) {
                    Some(b) => {
                        let size = record::slot_size(arena, r, &rec);
                        t.live.insert(h, Entry::Inline(&b), |c| entry_hash_of(arena, c));
                        t.live_bytes -= size as u64;
                        arena.free(r, size);
                    }
                    None => t.live.insert(h, e, |c| entry_hash_of(arena, c)),
                },
                (Entry::Inline(b), false) => {
                    let mut copy = [0u8; INLINE];
                    copy.copy_from_slice(b);
                    let rec = record::parse_inline(&copy);
                    let (r, size) = record::alloc(arena, rec.key, &[], &[rec.value], false, false);
                    t.live.insert(h, Entry::Ref(r), |c| entry_hash_of(arena, c));
                    t.live_bytes += size as u64;
                }
                _ => t.live.insert(h, e, |c| entry_hash_of(arena, c)),
            }
        }
        Ok(())
    }

    /// Gives table `tid` the width its entries call for (after a restore
    /// filled a table it sized up front, see `reserve`).
    pub fn settle_width(&mut self, room: &mut Room, tid: TableId) -> Result<(), Full> {
        match self.width_change(tid, 0, Incoming::NONE) {
            Some(wide) => self.convert_live(tid, 0, wide, room),
            None => Ok(()),
        }
    }

    /// Room for `n` more entries in the newest layer of `tid`.
    fn reserve_layer(&mut self, tid: TableId, n: usize, room: &mut Room) -> Result<(), Full> {
        let Mem { arena, tables, acct, .. } = self;
        let layer = tables[tid as usize].as_mut().expect("dangling table id").layers.last_mut().expect("a layer to save into");
        let before = layer.index.bytes();
        layer.index.reserve_refs(n, room, |c| record_hash(arena, c))?;
        acct.resized(before, layer.index.bytes());
        Ok(())
    }

    /// An empty layer of `tid` for the newest open snapshot.
    fn new_layer(&mut self, tid: TableId, room: &mut Room) -> Result<(), Full> {
        let n = *self.open.last().expect("a snapshot is open");
        let Mem { tables, touched, acct, .. } = self;
        let t = tables[tid as usize].as_mut().expect("dangling table id");
        // Sized for a sixteenth of the table rewritten: a layer that grows
        // from empty rehashes (reading every saved record) over and over,
        // and those stalls land on writers (p99 write latency during an
        // export: 8.8 -> 2.0 us natively).
        let want = t.live.len() / 16;
        let bytes = Index::bytes_for(want);
        room.take(bytes as u64)?;
        room::reserve(&mut t.layers, 1)?;
        room::reserve(touched, 1)?;
        let index = Index::try_with_capacity(want).ok_or_else(|| room::oom(bytes))?;
        t.layers.push(Layer { epoch: n, index, bytes: 0 });
        acct.index_bytes += bytes as u64;
        // `n` is the newest open epoch: pushing keeps `touched` sorted.
        touched.push((n, tid));
        Ok(())
    }

    /// Saves (key, ns) for the newest open snapshot, as reserved for
    /// `Save::Into` or `Save::NewLayer`. Returns true when the live record
    /// moved into the layer: the caller then writes the new value to a new
    /// record and must not touch the old one.
    pub(crate) fn commit_save(&mut self, tid: TableId, h: u32, key: &[u8], ns: &[u8], live_slot: Option<usize>) -> bool {
        let mut copy = [0u8; INLINE];
        let live = live_slot.map(|slot| match self.table(tid).live.get(slot) {
            Entry::Ref(r) => Some(r),
            Entry::Inline(b) => {
                copy.copy_from_slice(b);
                None
            }
        });
        let (saved, moved) = match live {
            Some(Some(r)) => (r, true),
            // An inline entry stays in its slot (the caller rewrites it): the
            // layer gets a record of it, reserved as `Want::saved`.
            Some(None) => (record::alloc(&mut self.arena, key, ns, &[record::parse_inline(&copy).value], false, false).0, false),
            None => (record::alloc(&mut self.arena, key, ns, &[], true, false).0, false),
        };
        let arena = &self.arena;
        let t = self.tables[tid as usize].as_mut().expect("dangling table id");
        let layer = t.layers.last_mut().expect("a reserved layer");
        layer.index.insert_ref(h, saved, |r| record_hash(arena, r));
        let rec = record::parse(arena.bytes(saved));
        let size = record::slot_size(arena, saved, &rec);
        t.layer_bytes += size as u64;
        layer.bytes += size as u64;
        if moved {
            t.live_bytes -= size as u64;
            if let Some(nested) = if t.heads { head_nested(&rec) } else { None } {
                self.table_mut(nested).detached = true;
            }
        }
        moved
    }

    #[inline]
    fn find_live(&self, tid: TableId, h: u32, key: &[u8], ns: &[u8]) -> Option<usize> {
        self.table(tid).live.find(h, |e| self.arena.entry_matches(e, key, ns))
    }

    /// What a save of (key, ns) for `save` allocates (see `Want::saved`),
    /// its live entry in `slot`.
    fn saved_len(&self, tid: TableId, save: Save, slot: Option<usize>, key: &[u8], ns: &[u8]) -> Option<usize> {
        if save == Save::No {
            return None;
        }
        match slot.map(|s| self.table(tid).live.get(s)) {
            None => Some(record::encoded_len(key.len(), ns.len(), 0, true, false)),
            Some(Entry::Inline(b)) => Some(record::parse_inline(b).len),
            Some(Entry::Ref(_)) => None,
        }
    }

    /// Sets the value of (key, ns) to the concatenation of `value`.
    pub fn put(&mut self, room: &mut Room, tid: TableId, h: u32, key: &[u8], ns: &[u8], value: &[&[u8]]) -> Result<Change, Full> {
        self.put_in(room, tid, h, key, ns, value, false)
    }

    /// As [`Mem::put`], for a write that allocates nothing after it that it
    /// did not reserve (a single put, or one of a batch, which reserves the
    /// run claims too): a new entry's record may claim a run.
    pub fn put_last(&mut self, room: &mut Room, tid: TableId, h: u32, key: &[u8], ns: &[u8], value: &[&[u8]]) -> Result<Change, Full> {
        self.put_in(room, tid, h, key, ns, value, true)
    }

    /// Allocates and writes a record of table `tid`. With `run` (a new
    /// entry, and nothing is allocated after it in this write) and a table
    /// of `RUN_MIN_ENTRIES`, in one of the table's runs, so that its records
    /// lie together. Rewrites take any free slot instead: runs for them cost
    /// the arena-reuse workload (values that change class) a tenth more
    /// arena (1.25-1.33x its needs against 1.15-1.20x at 100k keys), and the
    /// slot a rewrite frees is usually the one it reuses.
    fn alloc_record(&mut self, tid: TableId, key: &[u8], ns: &[u8], value: &[&[u8]], grow: bool, run: bool) -> (Ref, usize) {
        let Mem { tables, arena, .. } = self;
        match tables[tid as usize].as_mut() {
            Some(t) if run && !t.detached && t.live.len() >= RUN_MIN_ENTRIES => record::alloc_in(arena, key, ns, value, grow, &mut t.runs),
            _ => record::alloc(arena, key, ns, value, false, grow),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn put_in(&mut self, room: &mut Room, tid: TableId, h: u32, key: &[u8], ns: &[u8], value: &[&[u8]], last: bool) -> Result<Change, Full> {
        if !self.reclaim.layers.is_empty() {
            self.reclaim_some();
        }
        let slot = self.find_live(tid, h, key, ns);
        let save = self.plan_save(tid, h, key, ns, slot);
        let vlen: usize = value.iter().map(|v| v.len()).sum();
        let new_len = record::encoded_len(key.len(), ns.len(), vlen, false, false);
        // The old entry's record; `Some(None)` when it is inline.
        let old = slot.map(|s| self.table(tid).live.get(s).record());
        if let (Some(Some(old)), Save::No) = (old, save) {
            if !Arena::is_large(old) {
                let b = self.arena.bytes_mut(old);
                let (len, old_vlen, cap, size) = {
                    let r = record::parse(b);
                    (r.len, r.value.len(), r.cap, record::small_slot_size(&r))
                };
                if cap.is_none() && old_vlen == vlen {
                    // Same key (the lookup compared it), same value length:
                    // only the value's bytes change, at the record's end.
                    // (Rewriting the whole record cost 190 instructions
                    // more, callgrind of `per_key`.)
                    let mut p = len - vlen;
                    for part in value {
                        b[p..p + part.len()].copy_from_slice(part);
                        p += part.len();
                    }
                    return Ok(Change::Updated);
                }
                if arena::slot_size_for(new_len) == size {
                    // Same slot class: overwrite in place.
                    record::write(b, key, ns, value, false, None);
                    return Ok(Change::Updated);
                }
            }
        }
        let live = slot.map_or(Live::Insert(h), Live::Set);
        if slot.is_none() && !self.table(tid).live.fits(1) {
            // The resize first: it may change the table's width.
            self.reserve_live(tid, live, room)?;
        }
        // In a wide table an entry that fits goes inline, without a record.
        let inline = if self.table(tid).live.is_wide() && ns.is_empty() { record::inline_parts(key, value, vlen) } else { None };
        if let (Some(slot), Some(None), Save::No, Some(b)) = (slot, old, save, inline) {
            if self.table(tid).live.owns_slot(slot) {
                // Inline to inline: the slot alone changes.
                self.table_mut(tid).live.set(slot, Entry::Inline(&b));
                return Ok(Change::Updated);
            }
        }
        let saved = self.saved_len(tid, save, slot, key, ns);
        let record = inline.is_none().then_some((new_len, None));
        self.reserve_write(room, tid, &Want { save, saved, record, live })?;
        let moved = save != Save::No && self.commit_save(tid, h, key, ns, slot);
        let (e, added) = match &inline {
            Some(b) => (Entry::Inline(b), 0),
            None => {
                let (r, size) = self.alloc_record(tid, key, ns, value, false, last && slot.is_none());
                (Entry::Ref(r), size as u64)
            }
        };
        let Some(slot) = slot else {
            let arena = &self.arena;
            let t = self.tables[tid as usize].as_mut().expect("dangling table id");
            t.live.insert(h, e, |c| entry_hash_of(arena, c));
            t.live_bytes += added;
            return Ok(Change::Created);
        };
        let t = self.table_mut(tid);
        t.live.set(slot, e);
        t.live_bytes += added;
        if let (Some(Some(old)), false) = (old, moved) {
            let old_size = self.slot_size(old);
            self.table_mut(tid).live_bytes -= old_size as u64;
            self.arena.free(old, old_size);
        }
        Ok(Change::Updated)
    }

    /// Appends `tail` to the value of (key, ns), creating it if absent. The
    /// record keeps room to grow so that appends are amortized O(len(tail)).
    /// A value that would grow past `max_len` bytes is refused. A write of
    /// its own (allocating nothing after it), so a new entry's record may
    /// claim a run.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &mut self,
        room: &mut Room,
        tid: TableId,
        h: u32,
        key: &[u8],
        ns: &[u8],
        tail: &[u8],
        max_len: usize,
    ) -> Result<Change, Error> {
        if !self.reclaim.layers.is_empty() {
            self.reclaim_some();
        }
        let slot = self.find_live(tid, h, key, ns);
        let save = self.plan_save(tid, h, key, ns, slot);
        let Some(slot) = slot else {
            let saved = self.saved_len(tid, save, None, key, ns);
            let record = Some(record::alloc_size(key.len(), ns.len(), tail.len(), false, true));
            self.reserve_write(room, tid, &Want { save, saved, record, live: Live::Insert(h) })?;
            if save != Save::No {
                self.commit_save(tid, h, key, ns, None);
            }
            let (r, size) = self.alloc_record(tid, key, ns, &[tail], true, true);
            let arena = &self.arena;
            let t = self.tables[tid as usize].as_mut().expect("dangling table id");
            t.live.insert(h, Entry::Ref(r), |c| entry_hash_of(arena, c));
            t.live_bytes += size as u64;
            return Ok(Change::Created);
        };
        // (A list's table is never wide, so `old` is a record; an inline
        // entry would take the path that grows into a new record.)
        let old_entry = self.table(tid).live.get(slot);
        let old = old_entry.record();
        let (old_vlen, old_size, has_cap) = {
            let rec = self.arena.entry(old_entry);
            (rec.value.len(), old.map_or(0, |r| record::slot_size(&self.arena, r, &rec)), rec.cap.is_some())
        };
        let new_vlen = old_vlen + tail.len();
        crate::store::check_len("value", new_vlen, max_len)?;
        if let (Save::No, Some(old)) = (save, old.filter(|&r| has_cap || Arena::is_large(r))) {
            let new_len = record::encoded_len(key.len(), ns.len(), new_vlen, false, has_cap);
            if new_len <= old_size {
                let same_header = crate::varint::len(new_vlen as u64) == crate::varint::len(old_vlen as u64);
                if !same_header {
                    self.tmp.clear();
                    room::reserve_bytes(&mut self.tmp, old_vlen)?;
                }
                let rec = self.rec(old);
                let cap = rec.cap;
                let end = rec.len;
                let bytes = self.arena.bytes_mut(old);
                if same_header {
                    // Rewrite the length in place and add the tail at the end.
                    let mut p = 0;
                    crate::varint::get_trusted(bytes, &mut p);
                    if !ns.is_empty() {
                        crate::varint::get_trusted(bytes, &mut p);
                    }
                    crate::varint::write(&mut bytes[p..], new_vlen as u64);
                    bytes[end..end + tail.len()].copy_from_slice(tail);
                } else {
                    self.tmp.extend_from_slice(&bytes[end - old_vlen..end]);
                    record::write(bytes, key, ns, &[&self.tmp, tail], false, cap);
                }
                self.trim_tmp();
                return Ok(Change::Updated);
            }
        }
        // Grow into a new record.
        self.tmp.clear();
        let r = room::reserve_bytes(&mut self.tmp, old_vlen).and_then(|()| {
            let record = Some(record::alloc_size(key.len(), ns.len(), new_vlen, false, true));
            let saved = self.saved_len(tid, save, Some(slot), key, ns);
            self.reserve_write(room, tid, &Want { save, saved, record, live: Live::Set(slot) })
        });
        if let Err(e) = r {
            self.trim_tmp();
            return Err(e.into());
        }
        let moved = save != Save::No && self.commit_save(tid, h, key, ns, Some(slot));
        let mut tmp = std::mem::take(&mut self.tmp);
        // The slot still holds the old entry (a save copies or moves it).
        tmp.extend_from_slice(self.arena.entry(self.table(tid).live.get(slot)).value);
        let (r, size) = self.alloc_record(tid, key, ns, &[&tmp, tail], true, false);
        self.tmp = tmp;
        self.trim_tmp();
        let t = self.table_mut(tid);
        t.live.set(slot, Entry::Ref(r));
        t.live_bytes += size as u64;
        if let (Some(old), false) = (old, moved) {
            t.live_bytes -= old_size as u64;
            self.arena.free(old, old_size);
        }
        Ok(Change::Updated)
    }

    /// Gives back the scratch buffer's space after a large value passed through it.
    fn trim_tmp(&mut self) {
        if self.tmp.capacity() > TMP_KEEP {
            self.tmp = Vec::new();
        }
    }

    /// Removes (key, ns). Returns whether it existed. A removed map head's
    /// nested table is freed, unless a snapshot still needs it. Needs memory
    /// only to save the entry for an open snapshot, or to copy an index a
    /// checkpoint's frozen view shares.
    pub fn remove(&mut self, room: &mut Room, tid: TableId, h: u32, key: &[u8], ns: &[u8]) -> Result<bool, Full> {
        if !self.reclaim.layers.is_empty() {
            self.reclaim_some();
        }
        let Some(slot) = self.find_live(tid, h, key, ns) else { return Ok(false) };
        let save = self.plan_save(tid, h, key, ns, Some(slot));
        let saved = self.saved_len(tid, save, Some(slot), key, ns);
        self.reserve_write(room, tid, &Want { save, saved, record: None, live: Live::Change(Some(slot)) })?;
        let moved = save != Save::No && self.commit_save(tid, h, key, ns, Some(slot));
        let shrink = !self.keep_capacity;
        let Mem { arena, tables, acct, .. } = self;
        let t = tables[tid as usize].as_mut().expect("dangling table id");
        let old = t.live.get(slot).record();
        let heads = t.heads;
        let before = t.live.bytes();
        t.live.remove_at(slot, shrink, |c| entry_hash_of(arena, c));
        acct.resized(before, t.live.bytes());
        if let (Some(old), false) = (old, moved) {
            let size = self.slot_size(old);
            self.table_mut(tid).live_bytes -= size as u64;
            self.free_record(old, heads);
        }
        Ok(true)
    }

    /// Reserves what removing (key, ns) needs, so that a `remove` of it
    /// after other changes cannot fail.
    pub fn reserve_remove(&mut self, room: &mut Room, tid: TableId, h: u32, key: &[u8], ns: &[u8]) -> Result<(), Full> {
        let Some(slot) = self.find_live(tid, h, key, ns) else { return Ok(()) };
        let save = self.plan_save(tid, h, key, ns, Some(slot));
        let saved = self.saved_len(tid, save, Some(slot), key, ns);
        // Other changes come before the removal: its slot may move by then.
        self.reserve_write(room, tid, &Want { save, saved, record: None, live: Live::Change(None) })
    }

    /// Reserves, for a batch, what up to `inserts` new entries and `writes`
    /// writes of table `tid` need in its indexes: room in the live index and,
    /// for open snapshots, a layer with room for all of them. (The batch
    /// reserves records itself.)
    /// `incoming` describes the batch's puts, for the width of an empty table.
    pub(crate) fn reserve_table(&mut self, room: &mut Room, tid: TableId, inserts: usize, writes: usize, incoming: Incoming) -> Result<(), Full> {
        // A batch's changes go anywhere in the index: all of it its own.
        if !self.table(tid).live.has_room(inserts) {
            self.grow_live(tid, inserts, incoming, room)?;
        }
        if self.saves(tid) {
            let n = *self.open.last().expect("saves() saw an open snapshot");
            if self.table(tid).layers.last().is_none_or(|l| l.epoch != n) {
                self.new_layer(tid, room)?;
            }
            self.reserve_layer(tid, writes, room)?;
        }
        Ok(())
    }

    /// Presizes a table's live index for `n` entries when it is empty
    /// (restore knows the counts up front): wide when it may be and is
    /// large enough. True when it made it wide: `settle_width` checks that
    /// choice once the table is filled.
    pub fn reserve(&mut self, room: &mut Room, tid: TableId, n: usize) -> Result<bool, Full> {
        let wide_min = self.wide_min;
        let Mem { tables, acct, .. } = self;
        let t = tables[tid as usize].as_mut().expect("dangling table id");
        let wide = t.wide_ok && n >= wide_min;
        let cap = if n == 0 { 0 } else { crate::index::capacity_for(n) };
        let (have, want) = (t.live.bytes(), AnyIndex::bytes_for_slots(cap, wide));
        if !t.live.is_empty() || want <= have {
            return Ok(false);
        }
        room.take((want - have) as u64)?;
        let ix = AnyIndex::try_with_slots(cap, wide).ok_or_else(|| room::oom(want))?;
        acct.frozen_copies += t.live.shared_bytes() as u64;
        acct.resized(have, want);
        t.live = ix;
        Ok(wide)
    }
}

#[cfg(test)]
mod tests {
    use crate::error::{Error, Full};
    use crate::{Key, StateDescriptor, StateKind, Store, StoreConfig};

    #[test]
    fn an_arena_out_of_addresses_refuses_writes_and_recovers() {
        let mut s = Store::new(StoreConfig::new(4, None, [1; 16]).unwrap());
        let v = s.register_state(StateDescriptor::new("v", StateKind::Value, "bytes", "").unwrap()).unwrap();
        s.mem.arena.set_max_pages(8);
        let mut n = 0;
        let err = loop {
            match s.put(v, Key::Bytes(format!("k{n}").as_bytes()), &[], &[7; 1000]) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, Error::StoreFull(Full::Arena));
        assert_eq!(err.code(), "STORE_FULL");
        assert!(n >= 8 * 16, "{n} records of ~1 KiB in 8 pages");
        assert_eq!(s.entries(v).unwrap(), n as u64);
        // Large records have their own allocations: they still fit.
        s.put(v, Key::Bytes(b"large"), &[], &[1; 5000]).unwrap();
        // Freeing slots makes room again, without new pages.
        for i in 0..20 {
            assert!(s.remove(v, Key::Bytes(format!("k{i}").as_bytes()), &[]).unwrap());
        }
        s.put(v, Key::Bytes(b"again"), &[], &[2; 1000]).unwrap();
        s.check_invariants();
        assert_eq!(s.get(v, Key::Bytes(b"k30"), &[], None).unwrap(), Some(&[7u8; 1000][..]));
    }
}
