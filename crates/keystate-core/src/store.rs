//! The store: registered states, key groups, the keyed context, and the
//! operations of every state kind, over the tables of [`crate::mem`].
//!
//! Each state keeps one table per owned key group (created on first write),
//! as Flink's heap backend does, so a checkpoint section is one key group and
//! a subset of key groups restores without touching the rest.

use std::collections::HashMap;

use crate::delta;
use crate::error::{Error, Result};
use crate::hash::{entry_hash, key_group_of_hash, murmur3_32};
use crate::mem::{Change, Mem, TableId, NO_TABLE};
use crate::record::Rec;
use crate::room::{self, Room};
use crate::state::{StateDescriptor, StateKind};

pub use crate::keygroup::{KeyGroupRange, DEFAULT_MAX_PARALLELISM, MAX_PARALLELISM_LIMIT};
pub use crate::state::{MAX_KEY_LEN, MAX_STATES, MAX_STATE_SLOTS, MAX_VALUE_LEN};

/// How a store is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub max_parallelism: u32,
    pub key_groups: KeyGroupRange,
    /// Identity of the checkpoint lineage: pieces of one chain carry it, and
    /// restore refuses a piece with another.
    pub store_id: [u8; 16],
}

impl StoreConfig {
    pub fn new(max_parallelism: u32, key_groups: Option<KeyGroupRange>, store_id: [u8; 16]) -> Result<Self> {
        if max_parallelism == 0 || max_parallelism > MAX_PARALLELISM_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "maxParallelism must be 1..={MAX_PARALLELISM_LIMIT}, got {max_parallelism}"
            )));
        }
        let kgs = key_groups.unwrap_or(KeyGroupRange::new(0, max_parallelism - 1));
        if kgs.start > kgs.end || kgs.end >= max_parallelism {
            return Err(Error::InvalidArgument(format!(
                "key-group range {}..={} is not within 0..={}",
                kgs.start,
                kgs.end,
                max_parallelism - 1
            )));
        }
        Ok(StoreConfig { max_parallelism, key_groups: kgs, store_id })
    }
}

/// Which key an operation addresses.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// The key set by [`Store::set_current_key`] (Flink's keyed context).
    Current,
    /// An explicit key (its encoded bytes).
    Bytes(&'a [u8]),
}

#[derive(Debug)]
pub(crate) struct CurrentKey {
    bytes: Vec<u8>,
    hash: u32,
    kg: u32,
}

#[derive(Debug)]
pub(crate) struct StateEntry {
    pub desc: StateDescriptor,
    /// Table per owned key group (index `kg - start`), `NO_TABLE` until written.
    pub parts: Vec<TableId>,
    /// Live entries: one per (key, namespace), or per user key for maps.
    pub entries: u64,
    /// Declared by the user (not only registered from a checkpoint's header).
    pub declared: bool,
}

/// Memory of one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMemory {
    pub name: String,
    pub entries: u64,
    pub live_bytes: u64,
    /// Of `live_bytes`, the timestamps of a state with TTL (one per value,
    /// map entry or list element).
    pub ttl_bytes: u64,
}

/// Where the store's memory goes. All figures are bytes the core holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryReport {
    /// Records of live entries plus the indexes over them.
    pub live_bytes: u64,
    /// Held only for open snapshots (copy-on-write copies, absence markers,
    /// maps removed while a snapshot needed them) and for running exports
    /// (index copies writers made while one ran).
    pub pinned_bytes: u64,
    /// Delta tracking for incremental checkpoints.
    pub delta_log_bytes: u64,
    /// Reserved by the arena but free for reuse (including copies a released
    /// snapshot pinned, which later writes reclaim a few at a time).
    pub free_bytes: u64,
    /// Everything the record arena holds from the allocator.
    pub arena_bytes: u64,
    /// What the memory budget counts: the arena, every index (live, undo
    /// layers, copies frozen for checkpoints), the delta log and the table
    /// list.
    pub total_bytes: u64,
    pub entries: u64,
    pub open_snapshots: u64,
    /// Of `live_bytes`, the timestamps of states with TTL.
    pub ttl_bytes: u64,
    pub states: Vec<StateMemory>,
}

/// A keyed state store.
#[derive(Debug)]
pub struct Store {
    pub(crate) cfg: StoreConfig,
    pub(crate) states: Vec<StateEntry>,
    by_name: HashMap<String, u32>,
    pub(crate) current: Option<CurrentKey>,
    pub(crate) mem: Mem,
    pub(crate) cps: crate::checkpoint::Checkpoints,
    /// Clock, snapshot times and cleanup cursors of states with TTL.
    pub(crate) ttl: crate::ttl::Runtime,
    /// The memory budget in bytes (`maxMemoryBytes`); 0 for none.
    limit: u64,
}

/// A resolved key: bytes, murmur hash, key group, owning-range offset.
pub(crate) struct Loc<'a> {
    pub key: &'a [u8],
    pub hash: u32,
    pub part: usize,
}

impl Store {
    pub fn new(cfg: StoreConfig) -> Store {
        Store {
            cfg,
            states: Vec::new(),
            by_name: HashMap::new(),
            current: None,
            mem: Mem::new(),
            cps: crate::checkpoint::Checkpoints::default(),
            ttl: crate::ttl::Runtime::default(),
            limit: 0,
        }
    }

    /// Sets the memory budget: a write that would take the store past
    /// `bytes` (as [`Store::used_bytes`] counts) is refused with
    /// `STORE_FULL`. Removals are not held to it (they need memory only for
    /// open snapshots and the delta log, and free more). `None`: no budget.
    pub fn set_memory_limit(&mut self, bytes: Option<u64>) -> Result<()> {
        match bytes {
            Some(0) => Err(Error::InvalidArgument("maxMemoryBytes must be at least 1".into())),
            b => {
                self.limit = b.unwrap_or(0);
                Ok(())
            }
        }
    }

    pub fn memory_limit(&self) -> Option<u64> {
        (self.limit != 0).then_some(self.limit)
    }

    /// The bytes the memory budget counts (`memory().total_bytes`), in O(1).
    pub fn used_bytes(&self) -> u64 {
        self.mem.used_bytes() + self.cps.delta_bytes()
    }

    /// What a write may take: the rest of the budget.
    #[inline]
    pub(crate) fn room(&self) -> Room {
        if self.limit == 0 {
            Room::UNLIMITED
        } else {
            Room::new(self.used_bytes(), self.limit)
        }
    }

    /// One step of compaction (`crate::compact`), which may copy an index
    /// chunk a frozen view shares: within the budget less a sixteenth, so
    /// that it never takes the last bytes a write could use.
    pub(crate) fn compact_step(&mut self) {
        let mut room = if self.limit == 0 { Room::UNLIMITED } else { Room::new(self.used_bytes(), self.limit - self.limit / 16) };
        self.mem.compact_step(&mut room);
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    // ---- states -------------------------------------------------------

    /// Declares a state, or returns the id of the compatible state of that
    /// name. A state of that name with another kind or codec, or with TTL
    /// where it has none (or the reverse), is an error. A state restored
    /// from a checkpoint takes the TTL parameters of its first declaration
    /// (as Flink, a job may change a state's time to live); once declared,
    /// another TTL configuration is an error.
    pub fn register_state(&mut self, desc: StateDescriptor) -> Result<u32> {
        self.register(desc, true)
    }

    /// Registers a state of a checkpoint's header (restore).
    pub(crate) fn register_restored(&mut self, desc: StateDescriptor) -> Result<u32> {
        self.register(desc, false)
    }

    fn register(&mut self, desc: StateDescriptor, declared: bool) -> Result<u32> {
        if let Some(&id) = self.by_name.get(&desc.name) {
            let have = &self.states[id as usize];
            if let Some(reason) = have.desc.incompatibility(&desc) {
                return Err(Error::IncompatibleState { name: desc.name, reason });
            }
            if have.desc.ttl != desc.ttl {
                if have.declared {
                    let reason = "it is declared with another TTL configuration".to_string();
                    return Err(Error::IncompatibleState { name: desc.name, reason });
                }
                self.set_ttl(id, desc.ttl)?;
            }
            self.states[id as usize].declared |= declared;
            return Ok(id);
        }
        let n = self.states.len() + 1;
        if n > MAX_STATES || n * self.cfg.key_groups.len() > MAX_STATE_SLOTS {
            return Err(Error::TooLarge(format!(
                "state '{}': a store of {} key groups holds at most {} states",
                desc.name,
                self.cfg.key_groups.len(),
                MAX_STATES.min(MAX_STATE_SLOTS / self.cfg.key_groups.len())
            )));
        }
        let id = self.states.len() as u32;
        let mut parts = Vec::new();
        room::reserve(&mut parts, self.cfg.key_groups.len())?;
        parts.resize(self.cfg.key_groups.len(), NO_TABLE);
        room::reserve(&mut self.states, 1)?;
        room::fallibly(|| self.by_name.try_reserve(1)).map_err(|_| room::oom(64))?;
        self.ttl.registered(id)?;
        room::reserve(&mut self.ttl.every_record, 1)?;
        // Nothing below fails.
        self.by_name.insert(desc.name.clone(), id);
        let ttl = desc.ttl;
        self.states.push(StateEntry { desc, parts, entries: 0, declared });
        self.set_ttl(id, ttl)?;
        Ok(id)
    }

    pub fn state_id(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub fn descriptor(&self, state: u32) -> Result<&StateDescriptor> {
        Ok(&self.entry(state)?.desc)
    }

    pub fn states(&self) -> impl Iterator<Item = &StateDescriptor> {
        self.states.iter().map(|s| &s.desc)
    }

    /// Live entries of a state.
    pub fn entries(&self, state: u32) -> Result<u64> {
        Ok(self.entry(state)?.entries)
    }

    #[inline]
    pub(crate) fn entry(&self, state: u32) -> Result<&StateEntry> {
        // Not `ok_or(Error::..)`: on every read and write that built the
        // error and dropped it again (29 instructions of a get's 449).
        match self.states.get(state as usize) {
            Some(e) => Ok(e),
            None => Err(Error::UnknownState(state)),
        }
    }

    #[inline]
    pub(crate) fn entry_of_kind(&self, state: u32, ok: fn(StateKind) -> bool, expected: &'static str) -> Result<&StateEntry> {
        let e = self.entry(state)?;
        if !ok(e.desc.kind) {
            return Err(Error::WrongStateKind { name: e.desc.name.clone(), expected });
        }
        Ok(e)
    }

    // ---- keys ---------------------------------------------------------

    /// The key group of an encoded key.
    pub fn key_group(&self, key: &[u8]) -> u32 {
        key_group_of_hash(murmur3_32(key, 0), self.cfg.max_parallelism)
    }

    /// Sets the key that keyed-context operations use.
    pub fn set_current_key(&mut self, key: &[u8]) -> Result<()> {
        check_len("key", key.len(), MAX_KEY_LEN)?;
        let hash = murmur3_32(key, 0);
        let kg = key_group_of_hash(hash, self.cfg.max_parallelism);
        self.check_range(kg)?;
        let cur = self.current.get_or_insert_with(|| CurrentKey { bytes: Vec::new(), hash: 0, kg: 0 });
        cur.bytes.clear();
        room::reserve_bytes(&mut cur.bytes, key.len())?;
        cur.bytes.extend_from_slice(key);
        cur.hash = hash;
        cur.kg = kg;
        if !self.ttl.every_record.is_empty() {
            self.clean_every_record();
        }
        Ok(())
    }

    /// The current key's bytes, if one is set.
    pub fn current_key(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|c| &c.bytes[..])
    }

    #[inline]
    fn check_range(&self, kg: u32) -> Result<()> {
        let r = self.cfg.key_groups;
        if !r.contains(kg) {
            return Err(Error::KeyGroupOutOfRange { key_group: kg, start: r.start, end: r.end });
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn locate<'a>(cfg: &StoreConfig, current: &'a Option<CurrentKey>, key: Key<'a>) -> Result<Loc<'a>> {
        match key {
            Key::Current => {
                let Some(c) = current.as_ref() else { return Err(Error::NoCurrentKey) };
                Ok(Loc { key: &c.bytes, hash: c.hash, part: (c.kg - cfg.key_groups.start) as usize })
            }
            Key::Bytes(key) => {
                check_len("key", key.len(), MAX_KEY_LEN)?;
                let hash = murmur3_32(key, 0);
                let kg = key_group_of_hash(hash, cfg.max_parallelism);
                let r = cfg.key_groups;
                if !r.contains(kg) {
                    return Err(Error::KeyGroupOutOfRange { key_group: kg, start: r.start, end: r.end });
                }
                Ok(Loc { key, hash, part: (kg - r.start) as usize })
            }
        }
    }

    /// The table of (state, key group) for writing, created if missing.
    #[inline]
    pub(crate) fn part_for_write(mem: &mut Mem, entry: &mut StateEntry, part: usize, room: &mut Room) -> Result<TableId> {
        let t = entry.parts[part];
        if t != NO_TABLE {
            return Ok(t);
        }
        // Tables of value-like states without TTL may go wide (entries inline
        // in the index; docs/LAYOUT.md).
        let wide_ok = entry.desc.kind.is_value_like() && entry.desc.ttl.is_none();
        let t = mem.new_table(entry.desc.kind == StateKind::Map, wide_ok, room)?;
        entry.parts[part] = t;
        Ok(t)
    }

    pub(crate) fn check_snapshot(&self, at: Option<u64>) -> Result<()> {
        match at {
            // A checkpoint's snapshot is its export's alone (`Mem::snapshot_frozen`).
            Some(s) if !self.mem.is_open(s) || self.cps.holds_snapshot(s) => Err(Error::UnknownSnapshot(s)),
            _ => Ok(()),
        }
    }

    /// Sizes the table of (state, key group) for `n` more entries when it is
    /// still empty (value-like and list states; restore knows the counts).
    /// True when the table was made wide (see `Mem::reserve`).
    pub(crate) fn reserve(&mut self, state: u32, kg: u32, n: usize) -> Result<bool> {
        let mut room = self.room();
        let Some(e) = self.states.get_mut(state as usize) else { return Ok(false) };
        if e.desc.kind == StateKind::Map || !self.cfg.key_groups.contains(kg) {
            return Ok(false);
        }
        let tid = Self::part_for_write(&mut self.mem, e, (kg - self.cfg.key_groups.start) as usize, &mut room)?;
        Ok(self.mem.reserve(&mut room, tid, n)?)
    }

    /// Gives the table of (state, key group) the width its entries call for
    /// (restore, once a section filled the table `reserve` sized).
    pub(crate) fn settle_width(&mut self, state: u32, kg: u32) -> Result<()> {
        let mut room = self.room();
        let Some(e) = self.states.get(state as usize) else { return Ok(()) };
        let Some(&tid) = kg.checked_sub(self.cfg.key_groups.start).and_then(|p| e.parts.get(p as usize)) else { return Ok(()) };
        if tid == NO_TABLE {
            return Ok(());
        }
        Ok(self.mem.settle_width(&mut room, tid)?)
    }

    // ---- value, reducing, aggregating and list state ------------------

    /// The value of (key, ns), live (`at: None`) or as snapshot `at` sees it.
    /// For list state this is the list's bytes (element frames, see the TS
    /// list codec). For a state with TTL, a live read applies its rules
    /// (cleanup of an expired value, renewal), a read at a snapshot changes
    /// nothing; see `crate::ttl`.
    pub fn get(&mut self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>) -> Result<Option<&[u8]>> {
        if self.ttl_of(state).is_some() {
            return self.ttl_get(state, key, ns, at, false);
        }
        self.get_raw(state, key, ns, at)
    }

    /// The stored bytes of (key, ns), timestamps included.
    pub(crate) fn get_raw(&self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>) -> Result<Option<&[u8]>> {
        let e = self.entry_of_kind(state, |k| k != StateKind::Map, "value or list")?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        self.check_snapshot(at)?;
        let tid = e.parts[loc.part];
        if tid == NO_TABLE {
            return Ok(None);
        }
        let h = entry_hash(loc.hash, ns);
        let r = match at {
            None => self.mem.get(tid, h, loc.key, ns),
            Some(s) => self.mem.get_at(tid, h, loc.key, ns, s),
        };
        Ok(r.map(|e| self.mem.entry(e).value))
    }

    /// Sets the value of (key, ns) (for list state: replaces the list bytes).
    pub fn put(&mut self, state: u32, key: Key<'_>, ns: &[u8], value: &[u8]) -> Result<()> {
        self.compact_step();
        if self.ttl_of(state).is_some() {
            return self.ttl_put(state, key, ns, value);
        }
        self.put_raw(state, key, ns, value)
    }

    /// Sets the stored bytes of (key, ns).
    pub(crate) fn put_raw(&mut self, state: u32, key: Key<'_>, ns: &[u8], value: &[u8]) -> Result<()> {
        check_len("value", value.len(), MAX_VALUE_LEN)?;
        check_len("namespace", ns.len(), MAX_KEY_LEN)?;
        self.entry_of_kind(state, |k| k != StateKind::Map, "value or list")?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        let mut room = self.room();
        let e = &mut self.states[state as usize];
        let tid = Self::part_for_write(&mut self.mem, e, loc.part, &mut room)?;
        let h = entry_hash(loc.hash, ns);
        let parts = e.parts.len();
        // The delta log keeps the value when it is stored as given (no TTL stamp).
        let plain = e.desc.ttl.is_none();
        let noted = self.cps.mark(&mut room, state, loc.part, parts, h, loc.key, ns, delta::Change::Entry, &[], plain.then_some(value.len()))?;
        let put = self.mem.put_last(&mut room, tid, h, loc.key, ns, &[value]);
        if plain {
            self.cps.note(noted, if put.is_ok() { delta::Last::Put(value) } else { delta::Last::Unknown });
        }
        if put? == Change::Created {
            e.entries += 1;
        }
        Ok(())
    }

    /// Appends bytes to the value of (key, ns), creating it: list state's add.
    pub fn append(&mut self, state: u32, key: Key<'_>, ns: &[u8], tail: &[u8]) -> Result<()> {
        self.compact_step();
        if self.ttl_of(state).is_some() {
            return self.ttl_append(state, key, ns, tail);
        }
        self.append_raw(state, key, ns, tail)
    }

    /// Appends to the stored bytes of (key, ns).
    pub(crate) fn append_raw(&mut self, state: u32, key: Key<'_>, ns: &[u8], tail: &[u8]) -> Result<()> {
        check_len("value", tail.len(), MAX_VALUE_LEN)?;
        check_len("namespace", ns.len(), MAX_KEY_LEN)?;
        self.entry_of_kind(state, |k| k == StateKind::List, "list")?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        let mut room = self.room();
        let e = &mut self.states[state as usize];
        let tid = Self::part_for_write(&mut self.mem, e, loc.part, &mut room)?;
        let h = entry_hash(loc.hash, ns);
        let parts = e.parts.len();
        self.cps.mark(&mut room, state, loc.part, parts, h, loc.key, ns, delta::Change::Entry, &[], None)?;
        if self.mem.append(&mut room, tid, h, loc.key, ns, tail, MAX_VALUE_LEN)? == Change::Created {
            e.entries += 1;
        }
        Ok(())
    }

    /// Removes (key, ns) of a state of any kind (a map: all its entries).
    /// Returns whether anything was there. Not held to the memory budget.
    pub fn remove(&mut self, state: u32, key: Key<'_>, ns: &[u8]) -> Result<bool> {
        self.compact_step();
        if self.ttl_of(state).is_some() {
            return self.ttl_remove(state, key, ns);
        }
        self.remove_raw(state, key, ns)
    }

    pub(crate) fn remove_raw(&mut self, state: u32, key: Key<'_>, ns: &[u8]) -> Result<bool> {
        self.entry(state)?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        let e = &mut self.states[state as usize];
        let tid = e.parts[loc.part];
        if tid == NO_TABLE {
            return Ok(false);
        }
        let h = entry_hash(loc.hash, ns);
        let is_map = e.desc.kind == StateKind::Map;
        // A map's entries leave with it; for other kinds, one lookup (the
        // removal's own) unless the delta log must hear of it first.
        let head = if is_map || self.cps.tracking {
            match self.mem.get(tid, h, loc.key, ns) {
                Some(head) => Some(head),
                None => return Ok(false),
            }
        } else {
            None
        };
        let mut room = Room::UNLIMITED;
        let change = if is_map { delta::Change::WholeMap } else { delta::Change::Entry };
        let parts = e.parts.len();
        let plain = !is_map && e.desc.ttl.is_none();
        let noted = self.cps.mark(&mut room, state, loc.part, parts, h, loc.key, ns, change, &[], plain.then_some(0))?;
        let n = match head {
            Some(head) if is_map => crate::mapval::len(&self.mem, self.mem.entry(head).value, None) as u64,
            _ => 1,
        };
        let removed = self.mem.remove(&mut room, tid, h, loc.key, ns);
        if plain {
            self.cps.note(noted, if removed.is_ok() { delta::Last::Removed } else { delta::Last::Unknown });
        }
        let removed = removed?;
        if removed {
            e.entries -= n;
        }
        Ok(removed)
    }

    /// Calls `f` for every entry of a state, live or at a snapshot: value-like
    /// and list states give `(key, ns, None, value)`, maps `(key, ns, Some(uk), value)`.
    pub fn for_each_entry(
        &self,
        state: u32,
        at: Option<u64>,
        mut f: impl FnMut(&[u8], &[u8], Option<&[u8]>, &[u8]),
    ) -> Result<()> {
        let e = self.entry(state)?;
        self.check_snapshot(at)?;
        if let Some(cfg) = e.desc.ttl {
            return self.ttl_for_each_entry(state, cfg, at, f);
        }
        for &tid in e.parts.iter().filter(|t| **t != NO_TABLE) {
            self.for_each_in_table(tid, e.desc.kind == StateKind::Map, at, &mut f);
        }
        Ok(())
    }

    pub(crate) fn for_each_in_table(
        &self,
        tid: TableId,
        is_map: bool,
        at: Option<u64>,
        f: &mut impl FnMut(&[u8], &[u8], Option<&[u8]>, &[u8]),
    ) {
        self.mem.for_each_visible(tid, at, |rec: &Rec<'_>| {
            if is_map {
                crate::mapval::for_each(&self.mem, rec.value, at, |uk, v| f(rec.key, rec.ns, Some(uk), v));
            } else {
                f(rec.key, rec.ns, None, rec.value);
            }
        });
    }

    // ---- snapshots ----------------------------------------------------

    /// Takes a point-in-time snapshot in O(1). Writers never wait for it; it
    /// pins only what is written while it is open.
    pub fn snapshot(&mut self) -> Result<u64> {
        self.ttl.reserve_snapshot()?;
        let s = self.mem.snapshot()?;
        self.ttl.snapshot_taken(s);
        Ok(s)
    }

    /// Releases a snapshot and the memory only it pinned.
    pub fn release(&mut self, snapshot: u64) -> Result<()> {
        if self.cps.holds_snapshot(snapshot) {
            return Err(Error::InvalidArgument(format!(
                "snapshot {snapshot} belongs to a checkpoint; confirm or abort the checkpoint instead"
            )));
        }
        if self.mem.release(snapshot) {
            self.ttl.snapshot_released(snapshot);
            Ok(())
        } else {
            Err(Error::UnknownSnapshot(snapshot))
        }
    }

    pub(crate) fn release_internal(&mut self, snapshot: u64) {
        let released = self.mem.release_frozen(snapshot);
        debug_assert!(released, "checkpoint snapshot released twice");
        self.ttl.snapshot_released(snapshot);
    }

    /// Records compaction moved, and its rounds finished, so far.
    pub fn compacted(&self) -> (u64, u64) {
        let c = self.mem.compaction();
        (c.moved, c.rounds)
    }

    /// Runs of slots tables claimed so far (`crate::arena::Runs`), for tests.
    #[doc(hidden)]
    pub fn runs_claimed(&self) -> u64 {
        self.mem.arena.runs_claimed()
    }

    /// Tables whose live index is wide (entries inline; docs/LAYOUT.md),
    /// and the entries inline in them, for tests.
    #[doc(hidden)]
    pub fn wide_tables(&self) -> (usize, usize) {
        let wide = self.mem.tables().filter(|t| t.live.is_wide());
        wide.fold((0, 0), |(n, e), t| (n + 1, e + t.live.entries().filter(|e| e.record().is_none()).count()))
    }

    /// Sets the entries a table holds before it may go wide (512), so that
    /// tests reach wide tables with few entries.
    #[doc(hidden)]
    pub fn set_wide_min(&mut self, entries: usize) {
        self.mem.wide_min = entries;
    }

    /// Checks internal invariants (tests only).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        self.mem.check_invariants();
        self.check_ttl_invariants();
    }

    // ---- memory -------------------------------------------------------

    /// What the store holds, where.
    pub fn memory(&self) -> MemoryReport {
        let mut live = self.ttl.bytes();
        let mut entries = 0;
        let mut ttl = 0;
        let states = self
            .states
            .iter()
            .enumerate()
            .map(|(id, e)| {
                let bytes: u64 = e.parts.iter().filter(|t| **t != NO_TABLE).map(|t| self.mem.table_live_bytes(*t)).sum();
                let ttl_bytes = self.stamps(id as u32) * crate::ttl::STAMP_LEN as u64;
                live += bytes;
                entries += e.entries;
                ttl += ttl_bytes;
                StateMemory { name: e.desc.name.clone(), entries: e.entries, live_bytes: bytes, ttl_bytes }
            })
            .collect();
        let arena = &self.mem.arena;
        MemoryReport {
            live_bytes: live,
            pinned_bytes: self.mem.pinned_bytes() + self.cps.frozen_bytes(&self.mem),
            delta_log_bytes: self.cps.delta_bytes(),
            free_bytes: arena.reserved_bytes() - arena.used_bytes() + self.mem.reclaim_bytes(),
            arena_bytes: arena.reserved_bytes(),
            total_bytes: self.used_bytes(),
            entries,
            open_snapshots: self.mem.open_snapshots() as u64,
            ttl_bytes: ttl,
            states,
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // An export running on another thread reads this store's records:
        // stop it, and wait for a chunk in progress, before they go.
        self.cps.cancel_all();
    }
}

#[inline]
pub(crate) fn check_len(what: &str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::TooLarge(format!("{what} of {len} bytes (limit {max})")));
    }
    Ok(())
}
