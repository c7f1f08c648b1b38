//! Tables of records and copy-on-write snapshots.
//!
//! A table is a hash index of records (one per entry) plus undo layers. A
//! snapshot is an epoch number: taking one bumps the store's epoch and copies
//! nothing. The first write to an entry while snapshots are open moves the
//! entry's record, untouched, into the table's layer of the newest open
//! snapshot (or, for an entry that did not exist, a MARK record saying so), and
//! writes the new value to a new record. A snapshot `s` reads an entry from the
//! first layer with epoch >= `s` that holds it, else from the live index.
//!
//! Why this is right: the first write after `s` happens while some snapshot
//! `n >= s` is the newest open one, and saves the value of the moment `s` was
//! taken into layer `n`; no layer between `s` and `n` can hold the entry, since
//! that would need an earlier write after `s`. Releasing `s` merges its layers
//! into those of the next older open snapshot (keeping the older value where
//! both hold one) or, with none, frees them. So writers never wait, the memory
//! a snapshot pins is the entries written while it is open, and releasing it
//! returns that memory.
//!
//! Map state keeps one nested table per (key, namespace): the top-level record
//! (a "head") holds the nested table's id. A head is only written when the map
//! is created or removed, so a nested table is owned either by a live head or
//! by exactly one head saved in a layer (then it is "detached" and frozen).
//!
//! Writes (`crate::write`) reserve all the memory they need before they
//! change anything; what runs after a reservation, and everything that frees
//! (removing a table, releasing a snapshot, reclaiming), allocates nothing,
//! so it cannot fail when memory is exhausted.

use crate::arena::{Arena, Ref, Run, Runs};
use crate::error::Full;
use crate::hash::{entry_hash, murmur3_32};
use crate::index::{AnyIndex, Entry, Index};
use crate::record::{self, EntryRecords, Rec};
use crate::room::{self, Room};

pub type TableId = u32;
pub const NO_TABLE: TableId = u32::MAX;

/// Bytes of a table's own structure (its slot in the table list, the index's
/// and layer list's headers), counted with the memory it holds.
pub const TABLE_OVERHEAD: u64 = std::mem::size_of::<Option<Table>>() as u64;
/// Bytes of a layer's structure.
pub const LAYER_OVERHEAD: u64 = std::mem::size_of::<Layer>() as u64;

/// Saved records of one table for one snapshot epoch.
#[derive(Debug)]
pub struct Layer {
    pub epoch: u64,
    pub index: Index,
    /// Slot bytes of its records.
    pub bytes: u64,
}

/// Released layers whose records are freed a few per write, so that
/// releasing a snapshot that pinned much costs the writer little at once.
#[derive(Debug, Default)]
pub(crate) struct Reclaim {
    /// Oldest first; the first is freed from slot `at` on.
    pub layers: std::collections::VecDeque<Index>,
    at: usize,
    /// Slot bytes of their records not freed yet.
    bytes: u64,
}

/// Index bytes the store holds, kept in step with every change (the memory
/// budget reads them on every write that needs memory).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Acct {
    /// Index arrays of tables (live and layers) and of released layers.
    pub index_bytes: u64,
    /// Index arrays that only frozen views of pending checkpoints hold
    /// (writers copied them since); recounted when a frozen view goes.
    pub frozen_copies: u64,
}

impl Acct {
    /// An index went from `before` to `after` bytes.
    #[inline]
    pub fn resized(&mut self, before: usize, after: usize) {
        self.index_bytes = self.index_bytes + after as u64 - before as u64;
    }
}

/// The epoch of a `touched` entry whose layer is gone.
const GONE: u64 = u64::MAX;

/// Records of released layers freed per write (see [`Reclaim`]): enough to
/// keep up with any writer (each write pins at most one record).
const RECLAIM_PER_WRITE: usize = 8;

/// One hash table of records.
#[derive(Debug)]
pub struct Table {
    pub live: AnyIndex,
    /// Undo layers, ascending by epoch.
    pub layers: Vec<Layer>,
    /// Epoch in which the table was created: snapshots older than that see
    /// nothing in it, and writes need not preserve anything for them.
    pub born: u64,
    /// Records are map heads whose values are nested table ids.
    pub heads: bool,
    /// Its live index may go wide (entries inline in the slots; see
    /// docs/LAYOUT.md): a value-like state without TTL. (A state's TTL is
    /// there or not for good: TTL paths, which read records in place, never
    /// meet a wide table.)
    pub wide_ok: bool,
    /// A nested table whose head was saved in a layer: frozen, pinned.
    pub detached: bool,
    /// Slot bytes of live records.
    pub live_bytes: u64,
    /// Slot bytes of records in layers.
    pub layer_bytes: u64,
    /// Where its next records go, once it holds `RUN_MIN_ENTRIES` (see
    /// `crate::arena::Runs`).
    pub runs: Runs,
}

/// Entries a table holds before it may go wide (see `Mem::wide_min`).
pub const WIDE_MIN_ENTRIES: usize = 512;

/// Entries a table holds before its records are allocated in runs: its runs'
/// unused slots (at most 31 for each of two classes) are then at most an
/// eighth of its records, and far less in the large tables runs are for.
pub const RUN_MIN_ENTRIES: usize = 512;

impl Table {
    fn new(born: u64, heads: bool, wide_ok: bool) -> Self {
        Table {
            live: AnyIndex::default(),
            layers: Vec::new(),
            born,
            heads,
            wide_ok,
            detached: false,
            live_bytes: 0,
            layer_bytes: 0,
            runs: [Run::EMPTY; 2],
        }
    }

    /// Layers a snapshot at epoch `s` reads through. (Epochs ascend, and two
    /// layers may have one epoch: a release that could not merge keeps both,
    /// and the first that holds an entry has the value to read.)
    #[inline]
    fn layers_from(&self, s: u64) -> &[Layer] {
        let first = self.layers.iter().position(|l| l.epoch >= s).unwrap_or(self.layers.len());
        &self.layers[first..]
    }
}

/// The entry of (key, ns) in layer index `ix`.
#[inline]
fn find_entry<'a>(arena: &Arena, ix: &'a Index, h: u32, key: &[u8], ns: &[u8]) -> Option<Entry<'a>> {
    ix.find(h, |e| arena.entry_matches(e, key, ns)).map(|slot| ix.get(slot))
}

/// Hash of the record at `r`, as its table indexes it.
#[inline]
pub fn record_hash(arena: &Arena, r: Ref) -> u32 {
    rec_hash(&record::parse(arena.bytes(r)))
}

/// Hash of an entry, as its table indexes it.
#[inline]
pub fn entry_hash_of(arena: &Arena, e: Entry<'_>) -> u32 {
    rec_hash(&arena.entry(e))
}

/// Hash of a parsed record, as its table indexes it.
#[inline]
pub fn rec_hash(rec: &Rec<'_>) -> u32 {
    entry_hash(murmur3_32(rec.key, 0), rec.ns)
}

/// The nested table of a map head record, if the map is not inline.
#[inline]
pub fn head_nested(rec: &Rec<'_>) -> Option<TableId> {
    match crate::maphead::view(rec.value) {
        crate::maphead::MapRef::Nested(t) => Some(t),
        crate::maphead::MapRef::Inline(_) => None,
    }
}

/// Outcome of a write, for entry counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
}

/// Arena, tables and snapshot epochs.
#[derive(Debug)]
pub struct Mem {
    pub arena: Arena,
    pub(crate) tables: Vec<Option<Table>>,
    /// Ids of freed tables; its capacity holds every table, so that freeing
    /// never allocates.
    pub(crate) free_tables: Vec<TableId>,
    /// Current write epoch; a snapshot takes this value, then it is bumped.
    pub epoch: u64,
    pub(crate) reclaim: Reclaim,
    /// Open snapshot epochs, ascending.
    pub(crate) open: Vec<u64>,
    /// How many of `open` are read only through a frozen index taken with
    /// them (checkpoints' snapshots: `snapshot_frozen`), never through layers.
    pub(crate) frozen_open: usize,
    /// `(epoch, table)` for each layer of each table (entries of freed tables
    /// may linger until their epoch is released), ascending by epoch.
    pub(crate) touched: Vec<(u64, TableId)>,
    pub(crate) tmp: Vec<u8>,
    pub(crate) acct: Acct,
    /// While set, removals do not shrink indexes (a batch reserved room).
    pub(crate) keep_capacity: bool,
    /// Entries a table holds before it may go wide (see `Table::wide_ok`):
    /// small tables gain least from wide slots. Lowered by tests.
    pub(crate) wide_min: usize,
    pub(crate) compaction: crate::compact::Compaction,
}

impl Default for Mem {
    fn default() -> Self {
        Self::new()
    }
}

impl Mem {
    pub fn new() -> Self {
        Mem {
            arena: Arena::new(),
            tables: Vec::new(),
            free_tables: Vec::new(),
            epoch: 1,
            reclaim: Reclaim::default(),
            open: Vec::new(),
            frozen_open: 0,
            touched: Vec::new(),
            tmp: Vec::new(),
            acct: Acct::default(),
            keep_capacity: false,
            wide_min: WIDE_MIN_ENTRIES,
            compaction: Default::default(),
        }
    }

    // ---- tables -------------------------------------------------------

    /// A new empty table (no index allocated yet). The table list grows
    /// within `room` (`memory()` counts it by capacity).
    /// A new table: of map heads with `heads`; one that may go wide with
    /// `wide_ok` (see [`Table::wide_ok`]).
    pub fn new_table(&mut self, heads: bool, wide_ok: bool, room: &mut Room) -> Result<TableId, Full> {
        let t = Table::new(self.epoch, heads, wide_ok);
        if let Some(id) = self.free_tables.pop() {
            self.tables[id as usize] = Some(t);
            return Ok(id);
        }
        if self.tables.len() >= NO_TABLE as usize {
            return Err(Full::Arena);
        }
        room::reserve_counted(&mut self.tables, 1, room)?;
        room::reserve_capacity(&mut self.free_tables, self.tables.len() + 1)?;
        self.tables.push(Some(t));
        Ok((self.tables.len() - 1) as TableId)
    }

    #[inline]
    pub fn table(&self, id: TableId) -> &Table {
        self.tables[id as usize].as_ref().expect("dangling table id")
    }

    #[inline]
    pub(crate) fn table_mut(&mut self, id: TableId) -> &mut Table {
        self.tables[id as usize].as_mut().expect("dangling table id")
    }

    /// The live index of every table (O(1) each: the slots are shared
    /// copy-on-write), by table id: a checkpoint's frozen view.
    pub fn freeze(&mut self) -> Result<Vec<Option<AnyIndex>>, Full> {
        let mut v = Vec::new();
        room::reserve(&mut v, self.tables.len())?;
        for t in &mut self.tables {
            let ix = match t {
                Some(t) => Some(t.live.try_clone()?),
                None => None,
            };
            v.push(ix);
        }
        Ok(v)
    }

    /// The live index of table `tid`, if it exists.
    pub fn live_index(&self, tid: TableId) -> Option<&AnyIndex> {
        self.tables.get(tid as usize).and_then(Option::as_ref).map(|t| &t.live)
    }

    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().flatten()
    }

    /// Frees a table, its records, its layers and (for heads) the nested
    /// tables its records own.
    pub fn free_table(&mut self, id: TableId) {
        let mut t = self.tables[id as usize].take().expect("double free of a table");
        for r in &mut t.runs {
            self.arena.release_run(r);
        }
        let heads = t.heads;
        for e in t.live.entries() {
            self.free_entry(e, heads);
        }
        for l in &t.layers {
            for r in l.index.refs() {
                self.free_record(r, heads);
            }
            self.acct.resized(l.index.bytes(), 0);
        }
        self.acct.resized(t.live.bytes(), 0);
        // A frozen view keeps the chunks of the live index it shares.
        self.acct.frozen_copies += t.live.shared_bytes() as u64;
        self.free_tables.push(id);
    }

    /// Frees what a live entry holds: its record, and (for a map head) the
    /// nested table it owns.
    fn free_entry(&mut self, e: Entry<'_>, heads: bool) {
        match e {
            Entry::Ref(r) => self.free_record(r, heads),
            Entry::Inline(b) => {
                let rec = record::parse_inline(b);
                if let Some(n) = heads.then(|| head_nested(&rec)).flatten().filter(|_| !rec.mark) {
                    self.free_table(n);
                }
            }
        }
    }

    pub(crate) fn free_record(&mut self, r: Ref, heads: bool) {
        let rec = record::parse(self.arena.bytes(r));
        let size = record::slot_size(&self.arena, r, &rec);
        let nested = if heads && !rec.mark { head_nested(&rec) } else { None };
        self.arena.free(r, size);
        if let Some(n) = nested {
            self.free_table(n);
        }
    }

    #[inline]
    pub(crate) fn slot_size(&self, r: Ref) -> usize {
        let rec = record::parse(self.arena.bytes(r));
        record::slot_size(&self.arena, r, &rec)
    }

    // ---- reads --------------------------------------------------------

    /// The live entry of (key, ns) (its record: [`Mem::entry`]).
    #[inline]
    pub fn get(&self, tid: TableId, h: u32, key: &[u8], ns: &[u8]) -> Option<Entry<'_>> {
        let ix = &self.table(tid).live;
        ix.find(h, |e| self.arena.entry_matches(e, key, ns)).map(|slot| ix.get(slot))
    }

    /// The entry of (key, ns) as snapshot `s` sees it.
    pub fn get_at(&self, tid: TableId, h: u32, key: &[u8], ns: &[u8], s: u64) -> Option<Entry<'_>> {
        let t = self.table(tid);
        if t.born > s {
            return None;
        }
        for l in t.layers_from(s) {
            if let Some(e) = find_entry(&self.arena, &l.index, h, key, ns) {
                return (!self.entry(e).mark).then_some(e);
            }
        }
        self.get(tid, h, key, ns)
    }

    /// Warms the caches for live lookups of (table, entry hash): loads
    /// their index slots, then the records they point at, each round as
    /// independent loads, so that a batch's cache misses overlap instead of
    /// following one another (wasm has no prefetch instruction). Changes
    /// nothing; lookups after it only run faster.
    pub fn warm(&self, lookups: &[(TableId, u32)]) {
        let mut touch = 0u8;
        for &(tid, h) in lookups {
            touch ^= self.table(tid).live.home_byte(h);
        }
        std::hint::black_box(touch);
        for &(tid, h) in lookups {
            self.table(tid).live.candidates(h, |r| touch ^= self.arena.bytes(r)[0]);
        }
        std::hint::black_box(touch);
    }

    /// Reads a record's bytes.
    #[inline]
    pub fn rec(&self, r: Ref) -> Rec<'_> {
        record::parse(self.arena.bytes(r))
    }

    /// Reads an entry's record (from the arena, or inline from its slot).
    #[inline]
    pub fn entry<'a>(&'a self, e: Entry<'a>) -> Rec<'a> {
        self.arena.entry(e)
    }

    /// Calls `f` with every record of table `tid` as snapshot `s` sees it
    /// (`None`: the live state).
    pub fn for_each_visible(&self, tid: TableId, s: Option<u64>, mut f: impl FnMut(&Rec<'_>)) {
        let t = self.table(tid);
        let layers = match s {
            None => &[][..],
            Some(s) if t.born > s => return,
            Some(s) => t.layers_from(s),
        };
        let find = |ix: &Index, h: u32, rec: &Rec<'_>| find_entry(&self.arena, ix, h, rec.key, rec.ns).is_some();
        if layers.is_empty() {
            // Records are scattered over the arena: touch a batch of them with
            // independent loads first, so that their cache misses overlap
            // (wasm has no prefetch instruction), then read them.
            let mut batch = [Entry::Ref(0); 32];
            let mut n = 0;
            let mut flush = |batch: &[Entry<'_>]| {
                let mut touch = 0u8;
                for r in batch.iter().filter_map(|e| e.record()) {
                    touch ^= self.arena.bytes(r)[0];
                }
                std::hint::black_box(touch);
                for &e in batch {
                    f(&self.entry(e));
                }
            };
            for e in t.live.spread() {
                batch[n] = e;
                n += 1;
                if n == batch.len() {
                    flush(&batch);
                    n = 0;
                }
            }
            flush(&batch[..n]);
            return;
        }
        for e in t.live.spread() {
            let rec = self.entry(e);
            let h = entry_hash(murmur3_32(rec.key, 0), rec.ns);
            match layers.iter().find_map(|l| find_entry(&self.arena, &l.index, h, rec.key, rec.ns)) {
                Some(saved) => {
                    let srec = self.entry(saved);
                    if !srec.mark {
                        f(&srec);
                    }
                }
                None => f(&rec),
            }
        }
        // Entries removed from the live index since `s`.
        for (i, l) in layers.iter().enumerate() {
            for e in l.index.spread() {
                let rec = self.entry(e);
                if rec.mark {
                    continue;
                }
                let h = entry_hash(murmur3_32(rec.key, 0), rec.ns);
                if self.get(tid, h, rec.key, rec.ns).is_some() || layers[..i].iter().any(|e| find(&e.index, h, &rec)) {
                    continue;
                }
                f(&rec);
            }
        }
    }

    /// Number of entries of table `tid` as snapshot `s` sees it.
    pub fn count_visible(&self, tid: TableId, s: Option<u64>) -> usize {
        match s {
            None => self.table(tid).live.len(),
            Some(_) => {
                let mut n = 0;
                self.for_each_visible(tid, s, |_| n += 1);
                n
            }
        }
    }

    // ---- snapshots ----------------------------------------------------

    /// Takes a snapshot: O(1), copies nothing.
    pub fn snapshot(&mut self) -> Result<u64, Full> {
        room::reserve(&mut self.open, 1)?;
        let s = self.epoch;
        self.epoch += 1;
        self.open.push(s);
        Ok(s)
    }

    /// Takes a snapshot that is read only through a frozen index taken at
    /// the same moment (`freeze`; a checkpoint's): entries inline in an
    /// index are not saved for it (see `plan_save`), so it must not be read
    /// through layers. Released with `release_frozen`.
    pub fn snapshot_frozen(&mut self) -> Result<u64, Full> {
        let s = self.snapshot()?;
        self.frozen_open += 1;
        Ok(s)
    }

    /// Releases snapshot `s` of `snapshot_frozen`, as `release`.
    pub fn release_frozen(&mut self, s: u64) -> bool {
        let released = self.release(s);
        if released {
            self.frozen_open -= 1;
        }
        released
    }

    pub fn is_open(&self, s: u64) -> bool {
        self.open.binary_search(&s).is_ok()
    }

    /// True when an open snapshot is read through layers.
    #[inline]
    pub(crate) fn layers_read(&self) -> bool {
        self.open.len() > self.frozen_open
    }

    pub fn open_snapshots(&self) -> usize {
        self.open.len()
    }

    /// Releases snapshot `s`, returning the memory only it pinned. Needs no
    /// memory: where merging a layer into the older one's would need the
    /// older one to grow and it cannot, both stay (see `layers_from`).
    pub fn release(&mut self, s: u64) -> bool {
        let Ok(pos) = self.open.binary_search(&s) else { return false };
        self.open.remove(pos);
        let older = pos.checked_sub(1).map(|i| self.open[i]);
        // Relabelling entries of `s` to `p` keeps `touched` sorted: no epoch
        // between them is open, so no entry has one.
        let lo = self.touched.partition_point(|&(e, _)| e < s);
        let hi = self.touched.partition_point(|&(e, _)| e <= s);
        for i in lo..hi {
            let tid = self.touched[i].1;
            self.touched[i].0 = self.release_layer(tid, s, older).unwrap_or(GONE);
        }
        if lo < hi {
            self.touched.retain(|&(e, _)| e != GONE);
        }
        true
    }

    /// Releases table `tid`'s layer for `s` (one of them): merged into the
    /// older layer, relabelled for the next older open snapshot (returns its
    /// epoch), or, with none, freed.
    fn release_layer(&mut self, tid: TableId, s: u64, older: Option<u64>) -> Option<u64> {
        let t = self.tables.get_mut(tid as usize).and_then(Option::as_mut)?;
        let li = t.layers.iter().position(|l| l.epoch == s)?;
        match older {
            Some(p) if li > 0 && t.layers[li - 1].epoch == p => {
                let n = t.layers[li].index.len();
                let arena = &self.arena;
                let target = &mut t.layers[li - 1].index;
                let before = target.bytes();
                match target.reserve_refs(n, &mut { Room::UNLIMITED }, |c| record_hash(arena, c)) {
                    Ok(_) => {
                        self.acct.resized(before, target.bytes());
                        let layer = t.layers.remove(li);
                        self.merge_layer(tid, li - 1, layer);
                        None
                    }
                    Err(_) => {
                        // Readers of `p` look in the older layer first, so
                        // keeping both reads the same as merging them.
                        t.layers[li].epoch = p;
                        Some(p)
                    }
                }
            }
            Some(p) => {
                // No writes to this table while `p` was newest: the layer
                // holds exactly what `p` needs. Relabel it.
                t.layers[li].epoch = p;
                Some(p)
            }
            None => {
                let layer = t.layers.remove(li);
                t.layer_bytes -= layer.bytes;
                if !t.heads && room::reserve_deque(&mut self.reclaim.layers, 1).is_ok() {
                    self.reclaim.bytes += layer.bytes;
                    self.reclaim.layers.push_back(layer.index);
                } else {
                    // Map heads own the nested tables of maps removed
                    // meanwhile, counted as pinned: those go at once (as do
                    // records when the reclaim queue cannot grow).
                    let heads = t.heads;
                    for r in layer.index.refs() {
                        self.free_record(r, heads);
                    }
                    self.acct.resized(layer.index.bytes(), 0);
                }
                None
            }
        }
    }

    /// Frees up to `RECLAIM_PER_WRITE` records of released layers.
    pub(crate) fn reclaim_some(&mut self) {
        let mut budget = RECLAIM_PER_WRITE;
        while budget > 0 {
            let Some(ix) = self.reclaim.layers.front() else { return };
            let cap = ix.capacity();
            let mut at = self.reclaim.at;
            let mut freed = [0 as Ref; RECLAIM_PER_WRITE];
            let mut n = 0;
            while at < cap && n < budget {
                if let Some(r) = ix.ref_in(at) {
                    freed[n] = r;
                    n += 1;
                }
                at += 1;
            }
            budget -= n;
            for &r in &freed[..n] {
                self.reclaim.bytes -= self.slot_size(r) as u64;
                self.free_record(r, false);
            }
            if at >= cap {
                if let Some(done) = self.reclaim.layers.pop_front() {
                    self.acct.resized(done.bytes(), 0);
                }
                self.reclaim.at = 0;
            } else {
                self.reclaim.at = at;
            }
        }
    }

    /// Slot bytes of released records not reclaimed yet (free, soon).
    pub fn reclaim_bytes(&self) -> u64 {
        self.reclaim.bytes
    }

    /// Merges `layer` into the table's layer at `into` (which has room for
    /// its entries): entries the older layer already holds keep the older
    /// value; the newer copy is freed.
    fn merge_layer(&mut self, tid: TableId, into: usize, layer: Layer) {
        let heads = self.table(tid).heads;
        for r in layer.index.refs() {
            let h = record_hash(&self.arena, r);
            let arena = &self.arena;
            let t = self.tables[tid as usize].as_mut().expect("dangling table id");
            let target = &mut t.layers[into];
            let rec = record::parse(arena.bytes(r));
            let size = record::slot_size(arena, r, &rec) as u64;
            if target.index.find_ref(h, |c| record::matches(arena.bytes(c), rec.key, rec.ns)).is_some() {
                t.layer_bytes -= size;
                self.free_record(r, heads);
            } else {
                target.index.insert_ref(h, r, |c| record_hash(arena, c));
                target.bytes += size;
            }
        }
        self.acct.resized(layer.index.bytes(), 0);
    }

    // ---- accounting ---------------------------------------------------

    /// Bytes of live records and live indexes of table `tid` (and, for heads,
    /// of the nested tables they own).
    pub fn table_live_bytes(&self, tid: TableId) -> u64 {
        let t = self.table(tid);
        let mut n = t.live_bytes + t.live.bytes() as u64;
        if t.heads {
            for e in t.live.entries() {
                if let Some(nt) = head_nested(&self.entry(e)) {
                    let nt = self.table(nt);
                    n += TABLE_OVERHEAD + nt.live_bytes + nt.live.bytes() as u64;
                }
            }
        }
        n
    }

    /// Bytes pinned by open snapshots: layer records and indexes, and whole
    /// detached nested tables.
    pub fn pinned_bytes(&self) -> u64 {
        let tables: u64 = self
            .tables()
            .map(|t| {
                let layers: u64 = t.layers.iter().map(|l| LAYER_OVERHEAD + l.index.bytes() as u64).sum::<u64>() + t.layer_bytes;
                if t.detached {
                    layers + TABLE_OVERHEAD + t.live_bytes + t.live.bytes() as u64
                } else {
                    layers
                }
            })
            .sum();
        let touched = (self.touched.len() * std::mem::size_of::<(u64, TableId)>()) as u64;
        tables + touched
    }

    /// Bytes the budget counts for this part of the store: the arena, every
    /// index array (live, layers, released, and copies only frozen views
    /// hold), and the table list. O(1).
    #[inline]
    pub fn used_bytes(&self) -> u64 {
        self.arena.reserved_bytes()
            + self.acct.index_bytes
            + self.acct.frozen_copies
            + (self.tables.capacity() * std::mem::size_of::<Option<Table>>()) as u64
    }

    /// Frees the index chunks writers replaced while frozen copies lived,
    /// in each table whose copies are all gone: O(tables).
    pub fn settle_indexes(&mut self) {
        for t in self.tables.iter_mut().flatten() {
            t.live.settle();
        }
    }

    /// Sets the bytes of index arrays only frozen views hold (recounted by
    /// the store when a frozen view goes).
    pub fn set_frozen_copies(&mut self, bytes: u64) {
        self.acct.frozen_copies = bytes;
    }

    /// Checks structural invariants; for tests. Panics with a description.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        self.arena.check();
        self.arena.check_runs(self.tables().flat_map(|t| &t.runs));
        let mut seen = std::collections::HashSet::new();
        let mut used = 0u64;
        let mut reclaiming = 0u64;
        for (i, ix) in self.reclaim.layers.iter().enumerate() {
            let from = if i == 0 { self.reclaim.at } else { 0 };
            for r in (from..ix.capacity()).filter_map(|at| ix.ref_in(at)) {
                assert!(seen.insert(r), "ref {r:#x} held twice (released layer)");
                reclaiming += self.slot_size(r) as u64;
            }
        }
        assert_eq!(reclaiming, self.reclaim.bytes, "bytes of released records not reclaimed yet");
        used += reclaiming;
        let mut index_bytes: u64 = self.reclaim.layers.iter().map(|ix| ix.bytes() as u64).sum();
        for (tid, t) in self.tables.iter().enumerate() {
            let Some(t) = t else { continue };
            // An index's entries, and its lookup of (hash, key, ns).
            type Find<'f> = &'f dyn Fn(u32, &[u8], &[u8]) -> Option<usize>;
            let mut check = |entries: &mut dyn Iterator<Item = (usize, Entry<'_>)>, find: Find<'_>, what: &str| {
                for (slot, e) in entries {
                    if let Entry::Ref(r) = e {
                        assert!(seen.insert(r), "ref {r:#x} held twice (table {tid} {what})");
                        used += self.slot_size(r) as u64;
                    }
                    let rec = self.entry(e);
                    let h = entry_hash(murmur3_32(rec.key, 0), rec.ns);
                    let found = find(h, rec.key, rec.ns);
                    assert_eq!(found, Some(slot), "table {tid} {what}: entry {:?} not found at its slot", rec.key);
                    if let Entry::Inline(b) = e {
                        assert!(t.wide_ok && record::inline(rec.key, (!rec.mark).then_some(rec.value)).is_some_and(|i| i[..] == b[..]), "table {tid}: an inline entry as written");
                    }
                }
            };
            let live = &t.live;
            check(&mut live.iter(), &|h, key, ns| live.find(h, |c| self.arena.entry_matches(c, key, ns)), "live");
            assert!(t.wide_ok || !live.is_wide(), "table {tid} is wide but may not be");
            index_bytes += t.live.bytes() as u64;
            for (i, l) in t.layers.iter().enumerate() {
                assert!(self.is_open(l.epoch), "table {tid} has a layer for closed epoch {}", l.epoch);
                assert!(i == 0 || t.layers[i - 1].epoch <= l.epoch, "table {tid}: layers out of epoch order");
                let listed = self.touched.iter().filter(|&&(e, id)| e == l.epoch && id as usize == tid).count();
                let layers = t.layers.iter().filter(|o| o.epoch == l.epoch).count();
                assert!(listed >= layers, "table {tid}: {layers} layers for epoch {}, {listed} listed", l.epoch);
                let ix = &l.index;
                check(&mut ix.iter(), &|h, key, ns| ix.find(h, |c| self.arena.entry_matches(c, key, ns)), "layer");
                index_bytes += l.index.bytes() as u64;
            }
        }
        assert!(self.touched.windows(2).all(|w| w[0].0 <= w[1].0), "touched out of epoch order");
        assert_eq!(index_bytes, self.acct.index_bytes, "index bytes counted vs held");
        assert_eq!(used, self.arena.used_bytes(), "arena bytes in use vs records referenced");
    }

    pub fn tmp(&mut self) -> &mut Vec<u8> {
        &mut self.tmp
    }
}
