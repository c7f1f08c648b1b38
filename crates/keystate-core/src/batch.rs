//! Batches: many writes or reads of one value-like state in one call, so a
//! binding crosses its boundary once per batch instead of once per entry.
//!
//! A write batch is all or nothing, for what can be refused (unknown state,
//! wrong kind, sizes, key groups outside the store's range: every operation
//! is checked before the first one is applied) and for memory: the delta log
//! hears of every operation first (harmless if the batch then stops), then
//! the memory of all the batch's writes is reserved at once, and only then is
//! anything changed.

use crate::arena::{self, CLASSES, RUN_SLOTS};
use crate::delta;
use crate::error::Result;
use crate::hash::entry_hash;
use crate::index::Entry;
use crate::mem::{NO_TABLE, RUN_MIN_ENTRIES};
use crate::record;
use crate::room::{self, Room};
use crate::write::{fits_inline, Incoming};
use crate::state::StateKind;
use crate::store::{check_len, Key, Store, MAX_KEY_LEN, MAX_VALUE_LEN};

/// One write of a batch: a key (encoded bytes) and its new value; `None` deletes.
pub type Write<'a> = (&'a [u8], Option<&'a [u8]>);

impl Store {
    /// Applies `ops` in order to (key, `ns`) of value-like state `state`.
    /// Nothing is applied if any operation would be refused, or if the
    /// memory for all of them cannot be had. A state with TTL stamps each
    /// value, as `put` does (`crate::ttl`).
    pub fn write_many<'a, I>(&mut self, state: u32, ns: &[u8], ops: I) -> Result<usize>
    where
        I: Iterator<Item = Write<'a>> + Clone,
    {
        if self.ttl_of(state).is_some() {
            return self.ttl_write_many(state, ns, ops);
        }
        self.write_many_raw(state, ns, ops)
    }

    /// `write_many` of the bytes as they are given.
    pub(crate) fn write_many_raw<'a, I>(&mut self, state: u32, ns: &[u8], ops: I) -> Result<usize>
    where
        I: Iterator<Item = Write<'a>> + Clone,
    {
        self.entry_of_kind(state, is_value_like, "value, reducing or aggregating")?;
        check_len("namespace", ns.len(), MAX_KEY_LEN)?;
        // Each key located once: its owned key group and hash, for every pass.
        let mut locs: Vec<Located> = Vec::new();
        let mut puts = false;
        for (key, value) in ops.clone() {
            if let Some(v) = value {
                check_len("value", v.len(), MAX_VALUE_LEN)?;
                puts = true;
            }
            let loc = Self::locate(&self.cfg, &self.current, Key::Bytes(key))?;
            room::reserve(&mut locs, 1)?;
            locs.push(Located { part: loc.part as u32, hash: loc.hash });
        }
        // Compaction's share of the batch, before anything is reserved (it
        // must not take the free slots and pages reserved for the batch).
        for _ in 0..locs.len().div_ceil(8) {
            self.compact_step();
        }
        // A batch of deletes only is not held to the budget, as a delete is not.
        let mut room = if puts { self.room() } else { Room::UNLIMITED };
        self.mark_many(&mut room, state, ns, ops.clone(), &locs)?;
        let r = self.reserve_many(&mut room, state, ns, ops.clone(), &locs);
        if r.is_err() {
            self.mem.arena.drop_spares();
        }
        let _slots = r?;
        // Everything is reserved: removals keep the index room the puts after them need.
        self.mem.keep_capacity = true;
        let pages = self.mem.arena.page_bytes();
        #[cfg(debug_assertions)]
        {
            self.mem.arena.promised = Some(_slots.map(|n| n as i64));
        }
        let r = self.apply_many(&mut room, state, ns, ops, &locs);
        #[cfg(debug_assertions)]
        {
            self.mem.arena.promised = None;
        }
        debug_assert!(self.mem.arena.page_bytes() <= pages, "a batch took pages as it applied: its reservation missed a record");
        self.mem.keep_capacity = false;
        // Reserved for saves that turned out not to be needed.
        self.mem.arena.drop_spares();
        r
    }

    /// Tells the delta log of every operation, as single writes would: each
    /// put, and each removal of an entry there now (one removed later in
    /// the batch was put earlier in it, and that put told it already).
    fn mark_many<'a>(&mut self, room: &mut Room, state: u32, ns: &[u8], ops: impl Iterator<Item = Write<'a>>, locs: &[Located]) -> Result<()> {
        if !self.cps.tracking {
            return Ok(());
        }
        let parts = self.states[state as usize].parts.len();
        for ((key, value), loc) in ops.zip(locs) {
            let (part, h) = (loc.part as usize, entry_hash(loc.hash, ns));
            if value.is_none() {
                let tid = self.states[state as usize].parts[part];
                if tid == NO_TABLE || self.mem.get(tid, h, key, ns).is_none() {
                    continue;
                }
            }
            self.cps.mark(room, state, part, parts, h, key, ns, delta::Change::Entry, &[], None)?;
        }
        Ok(())
    }

    /// Reserves the memory of every write of a batch (see the module docs):
    /// index room for its inserts (`count_inserts`, else each put counted as
    /// new), a record for each put that does not go inline (and a saved
    /// MARK for open snapshots), and the slots runs may claim: more than it
    /// may need, never less. Returns the slots of each class it reserved.
    fn reserve_many<'a, I>(&mut self, room: &mut Room, state: u32, ns: &[u8], ops: I, locs: &[Located]) -> Result<[usize; CLASSES.len()]>
    where
        I: Iterator<Item = Write<'a>> + Clone,
    {
        let parts = self.states[state as usize].parts.len();
        let mut per_part: Vec<PartPlan> = Vec::new();
        room::reserve(&mut per_part, parts)?;
        per_part.resize(parts, PartPlan::default());
        let e = &self.states[state as usize];
        for (p, &tid) in per_part.iter_mut().zip(&e.parts) {
            p.empty = tid == NO_TABLE || self.mem.table(tid).live.is_empty();
        }
        for ((key, value), loc) in ops.clone().zip(locs) {
            let p = &mut per_part[loc.part as usize];
            p.writes += 1;
            if let Some(v) = value {
                p.puts += 1;
                if p.empty {
                    p.incoming.add(key, ns, v);
                }
            }
        }
        self.count_inserts(state, ns, ops.clone(), locs, &mut per_part);
        // The indexes first: a resize may change a table's width, which
        // decides which puts need records, and going narrow allocates
        // records, which must not take the slots reserved for the batch.
        for (part, p) in per_part.iter().enumerate().filter(|(_, p)| p.writes > 0) {
            let e = &mut self.states[state as usize];
            let tid = match e.parts[part] {
                NO_TABLE if p.puts == 0 => continue,
                _ => Self::part_for_write(&mut self.mem, e, part, room)?,
            };
            self.mem.reserve_table(room, tid, p.inserts.unwrap_or(p.puts), p.writes, p.incoming)?;
        }
        // Tables that may take their new records from runs as the batch
        // applies (as single puts do: `Mem::put_last`).
        let e = &self.states[state as usize];
        for (p, &tid) in per_part.iter_mut().zip(&e.parts) {
            p.runs = p.puts > 0 && tid != NO_TABLE && {
                let t = self.mem.table(tid);
                !t.detached && t.live.len() + p.inserts.unwrap_or(p.puts) >= RUN_MIN_ENTRIES
            };
        }
        let mut slots = [0usize; CLASSES.len()];
        for ((key, value), loc) in ops.zip(locs) {
            let tid = self.states[state as usize].parts[loc.part as usize];
            // What a save allocates (`Mem::plan_save`): for an entry inline
            // in a wide index, a copy (for a removal too) when snapshots
            // read the layers; else for a put a MARK (more than an entry
            // with a record needs: it moves into the layer). When only a
            // checkpoint's frozen view is open, an inline entry is not
            // saved, but a put of it still may save a MARK: a removal
            // earlier in the batch leaves the key absent at the put.
            let saved = if tid != NO_TABLE && self.mem.saves(tid) {
                match self.mem.get(tid, entry_hash(loc.hash, ns), key, ns) {
                    Some(e @ Entry::Inline(_)) if self.mem.layers_read() => Some(self.mem.entry(e).len),
                    _ if value.is_some() => Some(record::encoded_len(key.len(), ns.len(), 0, true, false)),
                    _ => None,
                }
            } else {
                None
            };
            // A put that goes inline in a wide index has no record.
            let put = value
                .filter(|&v| tid == NO_TABLE || !self.mem.table(tid).live.is_wide() || !fits_inline(key, ns, v))
                .map(|v| record::encoded_len(key.len(), ns.len(), v.len(), false, false));
            // In the order each write allocates them: the saved record, then the new one.
            for len in [saved, put].into_iter().flatten() {
                match arena::class_for(len, None) {
                    Some(c) => slots[c as usize] += 1,
                    None => self.mem.arena.reserve_large(len, room)?,
                }
            }
            let p = &mut per_part[loc.part as usize];
            if let Some(c) = put.and_then(|len| arena::class_for(len, None)).filter(|_| p.runs) {
                p.classes[c as usize / 64] |= 1 << (c % 64);
            }
        }
        // A run claims `RUN_SLOTS` slots for one record and hands the rest to
        // the table's next records of its class: at most `RUN_SLOTS - 1` more
        // than the records, for each table and class it is claimed for.
        for p in per_part.iter().filter(|p| p.runs) {
            for (c, n) in slots.iter_mut().enumerate() {
                if p.classes[c / 64] & (1 << (c % 64)) != 0 {
                    *n += usize::from(RUN_SLOTS - 1);
                }
            }
        }
        self.mem.arena.reserve_class_counts(&slots, room)?;
        Ok(slots)
    }

    /// For each table that lacks room for all its puts as new entries,
    /// counts the puts of keys it does not hold (`PartPlan::inserts`), so a
    /// batch that rewrites a table's keys does not grow its index (counting
    /// every put as new doubled it). An upper bound of what the batch adds:
    /// a key the batch removes and puts again was there, and the removal
    /// keeps its room (`Mem::keep_capacity`).
    fn count_inserts<'a>(&self, state: u32, ns: &[u8], ops: impl Iterator<Item = Write<'a>>, locs: &[Located], per_part: &mut [PartPlan]) {
        let e = &self.states[state as usize];
        let mut any = false;
        for (part, p) in per_part.iter_mut().enumerate() {
            let tid = e.parts[part];
            // (An empty table has no key to find: every put is new.)
            if p.puts > 0 && !p.empty && !self.mem.table(tid).live.has_room(p.puts) {
                p.inserts = Some(0);
                any = true;
            }
        }
        if !any {
            return;
        }
        let mut ops = ops.zip(locs);
        let mut chunk: [(Write<'a>, Located); WARM_BATCH] = [((&[], None), Located { part: 0, hash: 0 }); WARM_BATCH];
        loop {
            let mut len = 0;
            for (op, loc) in ops.by_ref() {
                if op.1.is_some() && per_part[loc.part as usize].inserts.is_some() {
                    chunk[len] = (op, *loc);
                    len += 1;
                    if len == WARM_BATCH {
                        break;
                    }
                }
            }
            if len == 0 {
                break;
            }
            self.warm_located(state, ns, &chunk[..len]);
            for &((key, _), loc) in &chunk[..len] {
                let tid = e.parts[loc.part as usize];
                if self.mem.get(tid, entry_hash(loc.hash, ns), key, ns).is_none() {
                    if let Some(n) = &mut per_part[loc.part as usize].inserts {
                        *n += 1;
                    }
                }
            }
        }
    }

    /// Applies a reserved batch (no step allocates, so none fails).
    fn apply_many<'a>(&mut self, room: &mut Room, state: u32, ns: &[u8], ops: impl Iterator<Item = Write<'a>>, locs: &[Located]) -> Result<usize> {
        let mut n = 0;
        let mut ops = ops.zip(locs).peekable();
        let mut chunk: [(Write<'a>, Located); WARM_BATCH] = [((&[], None), Located { part: 0, hash: 0 }); WARM_BATCH];
        while ops.peek().is_some() {
            let mut len = 0;
            for (op, loc) in ops.by_ref().take(WARM_BATCH) {
                chunk[len] = (op, *loc);
                len += 1;
            }
            self.warm_located(state, ns, &chunk[..len]);
            for &((key, value), loc) in &chunk[..len] {
                let h = entry_hash(loc.hash, ns);
                let e = &mut self.states[state as usize];
                let tid = e.parts[loc.part as usize];
                let applied = match value {
                    // Every allocation of the batch is reserved, run claims
                    // included: each put may take its record from a run.
                    Some(v) => self.mem.put_last(room, tid, h, key, ns, &[v]).map(|c| {
                        if c == crate::mem::Change::Created {
                            e.entries += 1;
                        }
                    }),
                    None if tid == NO_TABLE => Ok(()),
                    None => self.mem.remove(room, tid, h, key, ns).map(|removed| e.entries -= u64::from(removed)),
                };
                // Reserved above: only a reservation that missed something fails here.
                debug_assert!(applied.is_ok(), "a reserved batch write failed: {applied:?}");
                applied?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Calls `found` with the value of each of `keys` in (key, `ns`) of
    /// value-like state `state`, live or at snapshot `at` (`None`: absent).
    pub fn read_many<'a>(
        &mut self,
        state: u32,
        ns: &[u8],
        keys: impl Iterator<Item = &'a [u8]>,
        at: Option<u64>,
        mut found: impl FnMut(Option<&[u8]>),
    ) -> Result<usize> {
        self.entry_of_kind(state, is_value_like, "value, reducing or aggregating")?;
        self.check_snapshot(at)?;
        let mut n = 0;
        let mut keys = keys.peekable();
        let mut chunk: [&[u8]; WARM_BATCH] = [&[]; WARM_BATCH];
        while keys.peek().is_some() {
            let mut len = 0;
            for k in keys.by_ref().take(WARM_BATCH) {
                chunk[len] = k;
                len += 1;
            }
            self.warm_keys(state, ns, chunk[..len].iter().copied());
            for &key in &chunk[..len] {
                found(self.get(state, Key::Bytes(key), ns, at)?);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Warms the caches for the live entries of `keys` (see `Mem::warm`);
    /// keys that cannot be located are left to the lookup to refuse.
    fn warm_keys<'a>(&self, state: u32, ns: &[u8], keys: impl Iterator<Item = &'a [u8]>) {
        let Ok(e) = self.entry(state) else { return };
        let mut lookups = [(NO_TABLE, 0u32); WARM_BATCH];
        let mut len = 0;
        for key in keys.take(WARM_BATCH) {
            let Ok(loc) = Self::locate(&self.cfg, &self.current, Key::Bytes(key)) else { continue };
            let tid = e.parts[loc.part];
            if tid != NO_TABLE {
                lookups[len] = (tid, entry_hash(loc.hash, ns));
                len += 1;
            }
        }
        self.mem.warm(&lookups[..len]);
    }
}

/// Where a key of a batch goes: its owned key group's offset and its hash.
#[derive(Debug, Clone, Copy)]
struct Located {
    part: u32,
    hash: u32,
}

impl Store {
    /// Warms the caches for the live entries of a chunk of located writes (see `Mem::warm`).
    fn warm_located(&self, state: u32, ns: &[u8], chunk: &[(Write<'_>, Located)]) {
        let Ok(e) = self.entry(state) else { return };
        let mut lookups = [(NO_TABLE, 0u32); WARM_BATCH];
        let mut len = 0;
        for (_, loc) in chunk.iter().take(WARM_BATCH) {
            let tid = e.parts[loc.part as usize];
            if tid != NO_TABLE {
                lookups[len] = (tid, entry_hash(loc.hash, ns));
                len += 1;
            }
        }
        self.mem.warm(&lookups[..len]);
    }
}

// `PartPlan::classes` has a bit for each size class.
const _: () = assert!(CLASSES.len() <= 128);

/// What a batch does to one owned key group's table.
#[derive(Debug, Clone, Copy, Default)]
struct PartPlan {
    puts: usize,
    writes: usize,
    /// Puts of keys the table lacks, when counted (see `Store::count_inserts`).
    inserts: Option<usize>,
    /// True when the table has no entry yet (or no table exists).
    empty: bool,
    /// True when the table may take new records from runs in this batch.
    runs: bool,
    /// The size classes of its puts' records, one bit each (with `runs`).
    classes: [u64; 2],
    /// The puts, for the width of an empty table (counted only for one).
    incoming: Incoming,
}

/// Lookups warmed together: enough to overlap their cache misses, few enough
/// that the warmed lines are still cached when they are used.
const WARM_BATCH: usize = 16;

pub(crate) fn is_value_like(k: StateKind) -> bool {
    matches!(k, StateKind::Value | StateKind::Reducing | StateKind::Aggregating)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{KeyGroupRange, StoreConfig};
    use crate::{Error, StateDescriptor};

    fn store(range: Option<KeyGroupRange>) -> (Store, u32) {
        let mut s = Store::new(StoreConfig::new(128, range, [7; 16]).unwrap());
        let id = s.register_state(StateDescriptor::new("v", StateKind::Value, "bytes", "").unwrap()).unwrap();
        (s, id)
    }

    fn read(s: &mut Store, id: u32, keys: &[&[u8]], at: Option<u64>) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::new();
        s.read_many(id, b"", keys.iter().copied(), at, |v| out.push(v.map(<[u8]>::to_vec))).unwrap();
        out
    }

    #[test]
    fn writes_in_order_and_reads_back() {
        let (mut s, id) = store(None);
        let ops: Vec<Write<'_>> = vec![(b"a", Some(b"1")), (b"b", Some(b"2")), (b"a", None), (b"c", Some(b"3")), (b"c", Some(b"4"))];
        assert_eq!(s.write_many(id, b"", ops.iter().copied()).unwrap(), 5);
        assert_eq!(read(&mut s, id, &[b"a", b"b", b"c", b"z"], None), vec![None, Some(b"2".to_vec()), Some(b"4".to_vec()), None]);
        assert_eq!(s.get(id, Key::Bytes(b"b"), b"", None).unwrap(), Some(&b"2"[..]));
    }

    #[test]
    fn reads_at_a_snapshot() {
        let (mut s, id) = store(None);
        s.write_many(id, b"", [(&b"k"[..], Some(&b"old"[..]))].into_iter()).unwrap();
        let snap = s.snapshot().unwrap();
        s.write_many(id, b"", [(&b"k"[..], Some(&b"new"[..]))].into_iter()).unwrap();
        assert_eq!(read(&mut s, id, &[b"k"], Some(snap)), vec![Some(b"old".to_vec())]);
        assert_eq!(read(&mut s, id, &[b"k"], None), vec![Some(b"new".to_vec())]);
    }

    #[test]
    fn refused_batch_changes_nothing() {
        // A store owning half the key groups: find one key inside and one outside.
        let (mut s, id) = store(Some(KeyGroupRange::new(0, 63)));
        let keys: Vec<Vec<u8>> = (0..1000u32).map(|i| format!("key-{i}").into_bytes()).collect();
        let inside = keys.iter().find(|k| s.key_group(k) <= 63).unwrap();
        let outside = keys.iter().find(|k| s.key_group(k) > 63).unwrap();
        s.put(id, Key::Bytes(inside), b"", b"before").unwrap();
        let ops: Vec<Write<'_>> = vec![(inside, Some(b"after")), (inside, None), (outside, Some(b"x"))];
        let err = s.write_many(id, b"", ops.iter().copied()).unwrap_err();
        assert!(matches!(err, Error::KeyGroupOutOfRange { .. }), "{err:?}");
        assert_eq!(s.get(id, Key::Bytes(inside), b"", None).unwrap(), Some(&b"before"[..]));

        let big = vec![0u8; MAX_KEY_LEN + 1];
        let ops: Vec<Write<'_>> = vec![(inside, None), (&big, Some(b"x"))];
        assert!(matches!(s.write_many(id, b"", ops.iter().copied()), Err(Error::TooLarge(_))));
        assert_eq!(s.get(id, Key::Bytes(inside), b"", None).unwrap(), Some(&b"before"[..]));
    }

    #[test]
    fn refuses_other_state_kinds() {
        let (mut s, _) = store(None);
        let list = s.register_state(StateDescriptor::new("l", StateKind::List, "bytes", "").unwrap()).unwrap();
        assert!(matches!(s.write_many(list, b"", std::iter::empty()), Err(Error::WrongStateKind { .. })));
        assert!(matches!(s.read_many(list, b"", std::iter::empty(), None, |_| ()), Err(Error::WrongStateKind { .. })));
    }
}
