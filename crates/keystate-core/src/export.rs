//! Writing a checkpoint's bytes from a frozen view of its moment, on the
//! store's thread or on another one while the owner goes on writing.
//!
//! Taking a checkpoint takes a snapshot (records that writers change from
//! then on are moved aside, never overwritten: see `crate::mem`) and clones
//! the live index of every table, O(1) each (the slot arrays are shared
//! copy-on-write, see `crate::index`). Those frozen indexes are exactly the
//! checkpoint's moment: an entry written since has its old record, untouched
//! and at the same address, in an undo layer; an entry removed since still
//! has its record there; an entry created since is in no frozen index. So
//! the export reads frozen indexes and pinned records only, and never looks
//! at undo layers or at anything writers change.
//!
//! The same [`Export`] runs on the store's thread, reading records through
//! the arena (wasm), or on another thread, reading them through copies of the
//! arena's pointers ([`crate::arena::Pointers`], native). Both produce the
//! same bytes, in the same order.
//!
//! Cross-thread rules (see [`Job`]): the export state sits behind a mutex
//! that a running chunk holds; before the store releases the checkpoint's
//! snapshot (abort, or after the end) or drops its arena, it sets `cancel`
//! and takes the mutex, so a chunk in progress finishes first and no chunk
//! starts after.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::arena::{self, Pointers, Ref};
use crate::checkpoint::Progress;
use crate::delta::{self, Change, Last, Members, StateSets};
use crate::error::{Error, Full, Result};
use crate::format::write::Writer;
use crate::format::{body, op, CheckpointKind, Header};
use crate::hash::{entry_hash, murmur3_32};
use crate::index::{AnyIndex, Entry, Index, NO_REF};
use crate::mapval::{self, MapRef};
use crate::mem::{TableId, NO_TABLE};
use crate::record::{self, EntryRecords, Records};
use crate::{radix, room};
use crate::state::StateKind;
use crate::ttl::{self, TtlConfig};

/// What an export reads besides records: the checkpoint's moment.
#[derive(Debug, Default)]
pub(crate) struct Frozen {
    /// The live index of every table at the checkpoint's moment, by table id
    /// (nested map tables included). Shared with the pending checkpoint,
    /// which counts the copies writers made since as pinned memory.
    pub tables: Arc<Vec<Option<AnyIndex>>>,
    /// Per state of the header, in its order: kind, and table per owned key
    /// group (`NO_TABLE`: none).
    pub parts: Vec<(StateKind, Vec<TableId>)>,
    /// The delta sets an incremental checkpoint writes, oldest segment first
    /// (`[segment][state][key group]`), with where their members are.
    pub segments: Vec<(Arc<Members>, Arc<Vec<StateSets>>)>,
    /// Per state of the header: for a full checkpoint of a state with TTL
    /// and full-snapshot cleanup, its configuration and the checkpoint's
    /// time: values expired then are left out. Fixed when the checkpoint is
    /// taken, so that the export (on any thread) changes nothing.
    pub expire: Vec<Option<(TtlConfig, u64)>>,
}

impl Frozen {
    #[inline]
    fn index(&self, tid: TableId) -> &AnyIndex {
        self.tables.get(tid as usize).and_then(Option::as_ref).expect("a frozen table exists at the checkpoint's moment")
    }

    /// The entry of (key, ns) in table `tid` at the checkpoint's moment.
    #[inline]
    fn find(&self, recs: &impl Records, tid: TableId, h: u32, key: &[u8], ns: &[u8]) -> Option<Entry<'_>> {
        let ix = self.index(tid);
        ix.find(h, |e| recs.entry_matches(e, key, ns)).map(|slot| ix.get(slot))
    }

    /// The value of `uk` in the map a head value describes.
    fn map_get<'a>(&'a self, recs: &'a impl Records, head: &'a [u8], uk: &[u8]) -> Option<&'a [u8]> {
        match mapval::view(head) {
            MapRef::Inline(blob) => mapval::find(blob, uk),
            MapRef::Nested(nt) => self.find(recs, nt, murmur3_32(uk, 0), uk, &[]).map(|e| recs.entry(e).value),
        }
    }

    /// Calls `f(uk, value)` for each entry of the map a head value describes.
    fn map_for_each(&self, recs: &impl Records, head: &[u8], mut f: impl FnMut(&[u8], &[u8])) {
        match mapval::view(head) {
            MapRef::Inline(blob) => mapval::pairs(blob).for_each(|(k, v)| f(k, v)),
            MapRef::Nested(nt) => {
                for e in self.index(nt).spread() {
                    let e = recs.entry(e);
                    f(e.key, e.value);
                }
            }
        }
    }

    /// Loads the index slots, then the records, of a batch of lookups as
    /// independent loads, so that their cache misses overlap (wasm has no
    /// prefetch instruction). Changes nothing.
    fn warm(&self, recs: &impl Records, tid: TableId, hashes: &[u32]) {
        let ix = self.index(tid);
        let mut touch = 0u8;
        for &h in hashes {
            touch ^= ix.home_byte(h);
        }
        std::hint::black_box(touch);
        for &h in hashes {
            ix.candidates(h, |r| touch ^= recs.bytes(r)[0]);
        }
        std::hint::black_box(touch);
    }
}

/// A checkpoint's export: header, writer, position, frozen view.
#[derive(Debug)]
pub(crate) struct Export {
    header: Header,
    writer: Writer,
    frozen: Frozen,
    /// Next key group to write; `None` before the header is written.
    next_kg: Option<u32>,
    finished: bool,
    checksum: u64,
    /// Scratch for lists written without their expired elements.
    tmp: Vec<u8>,
    /// Scratch for a table's refs in export order (`for_each_spread`,
    /// `write_entries`).
    order: Vec<Ref>,
    /// Scratch of the sort of `order` (`write_entries`).
    sorted: Vec<Ref>,
}

impl Export {
    pub fn new(header: Header, frozen: Frozen) -> Export {
        Export { header, writer: Writer::new(), frozen, next_kg: None, finished: false, checksum: 0, tmp: Vec::new(), order: Vec::new(), sorted: Vec::new() }
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Bytes written so far (the whole checkpoint's, once finished).
    pub fn bytes(&self) -> u64 {
        self.writer.offset()
    }

    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    pub fn progress(&self) -> Progress {
        let range = self.header.key_groups;
        Progress {
            key_groups_done: self.next_kg.map_or(0, |kg| kg - range.start),
            key_groups_total: range.len() as u32,
            bytes: self.writer.offset(),
            records: self.writer.records(),
            finished: self.finished,
            checksum: self.checksum,
        }
    }

    /// Drops the frozen view (writers stop paying copies for it).
    pub fn thaw(&mut self) {
        self.frozen = Frozen::default();
        self.order = Vec::new();
        self.sorted = Vec::new();
    }

    /// Appends the next chunk to `out`: at least one part, cut once `out`
    /// grew by `target` bytes. Returns true when the checkpoint is complete.
    ///
    /// A part that cannot be written (no memory for it, a key group past
    /// 4 GiB) ends the chunk early; when it is the first part of the chunk,
    /// the error is returned instead, with nothing appended and the export
    /// where it was (a later call tries again).
    pub fn next(&mut self, recs: &impl Records, out: &mut Vec<u8>, target: usize) -> Result<bool> {
        if self.finished {
            return Ok(true);
        }
        let start = out.len();
        let range = self.header.key_groups;
        let mut kg = match self.next_kg {
            None => {
                self.writer.header(&self.header, out)?;
                self.next_kg = Some(range.start);
                range.start
            }
            Some(kg) => kg,
        };
        let failed = |out: &mut Vec<u8>, before: usize, e: Error| {
            out.truncate(before);
            if out.len() > start {
                Ok(false)
            } else {
                Err(e)
            }
        };
        while kg <= range.end && out.len() - start < target {
            let before = out.len();
            if let Err(e) = self.write_section(recs, kg, out) {
                return failed(out, before, e);
            }
            kg += 1;
            self.next_kg = Some(kg);
        }
        if kg > range.end {
            let before = out.len();
            match self.writer.finish(out) {
                Ok(sum) => self.checksum = sum,
                Err(e) => return failed(out, before, e),
            }
            self.finished = true;
            self.thaw();
        }
        Ok(self.finished)
    }

    fn write_section(&mut self, recs: &impl Records, kg: u32, out: &mut Vec<u8>) -> Result<()> {
        let part = (kg - self.header.key_groups.start) as usize;
        let mark = self.writer.begin_section(kg, out)?;
        let mut records = 0u64;
        let incremental = self.header.kind == CheckpointKind::Incremental;
        // Set by a record that found no room: the section is dropped.
        let mut full: Option<Full> = None;
        for (i, (sid, _)) in self.header.states.iter().enumerate() {
            let (kind, tables) = &self.frozen.parts[i];
            let tid = tables[part];
            if tid == NO_TABLE {
                continue;
            }
            room::reserve_bytes(out, body::BLOCK_HEAD)?;
            let block = out.len();
            let count_at = body::begin_block(out, *sid);
            let is_map = *kind == StateKind::Map;
            let frozen = &self.frozen;
            let expire = if incremental { None } else { frozen.expire.get(i).copied().flatten() };
            let count = if incremental || is_map {
                let mut count = 0u32;
                let mut emit = |e: Emit<'_>| {
                    if full.is_some() {
                        return;
                    }
                    let done = match e {
                        Emit::Entry(entry) => body::put_entry(out, entry),
                        Emit::Kept(m) => body::put_kept(out, m),
                        Emit::Record(o, key, ns, uk, value) => room::reserve_bytes(out, body::record_bound(key, ns, uk, value))
                            .map(|()| body::put_record(out, o, key, ns, uk, value)),
                    };
                    match done {
                        Ok(()) => count += 1,
                        Err(e) => full = Some(e),
                    }
                };
                if incremental {
                    write_delta(frozen, recs, i, part, tid, is_map, &mut emit);
                } else {
                    for_each_spread(frozen.index(tid), &mut self.order, |e| {
                        let head = recs.entry(e);
                        frozen.map_for_each(recs, head.value, |uk, v| {
                            if !expire.is_some_and(|(c, t)| c.expired(ttl::stamp_of(v), t)) {
                                emit(Emit::Record(op::MAP_PUT, head.key, head.ns, uk, v));
                            }
                        });
                        Ok(())
                    })?;
                }
                count
            } else if let Some((cfg, t)) = expire {
                write_unexpired(recs, frozen.index(tid), &mut self.order, *kind == StateKind::List, &cfg, t, &mut self.tmp, out)?
            } else {
                write_entries(recs, frozen.index(tid), &mut self.order, &mut self.sorted, out)?
            };
            if let Some(f) = full {
                return Err(f.into());
            }
            body::end_block(out, count_at, block, count);
            records += u64::from(count);
        }
        self.writer.end_section(mark, records, out)
    }
}

/// Largest index whose `refs_spread` order an export reads through a scratch
/// array of 4 bytes a slot (`Index::spread_into`); a larger one is walked
/// in place, so an export never holds more than 4 MiB for it.
const SPREAD_SCRATCH_SLOTS: usize = 1 << 20;

/// Calls `f` with every entry of `ix` in `spread` order: through `order`
/// for a narrow index that it can hold whole (see `Index::spread_into`),
/// else walking the index.
fn for_each_spread(ix: &AnyIndex, order: &mut Vec<Ref>, mut f: impl FnMut(Entry<'_>) -> Result<()>) -> Result<()> {
    if let Some(ix) = ix.narrow().filter(|ix| ix.capacity() <= SPREAD_SCRATCH_SLOTS) {
        if ix.spread_into(order).is_ok() {
            for &r in order.iter().filter(|&&r| r != NO_REF) {
                f(Entry::Ref(r))?;
            }
            return Ok(());
        }
    }
    ix.spread().try_for_each(f)
}

/// Refs a full export sorts at once (two scratch arrays of 4 MiB at most):
/// a larger table is written a piece at a time, each in address order.
const SORT_REFS: usize = 1 << 20;

/// Writes every entry of a value-like or list table as PUT records; returns
/// how many. In the order the records lie in the arena (the index read
/// front to back, its refs sorted), and records side by side as one RUN:
/// a table's new records take consecutive slots (`arena::runs`), so most of
/// an export is copies of whole runs of records (see docs/LAYOUT.md).
fn write_entries(recs: &impl Records, ix: &AnyIndex, order: &mut Vec<Ref>, tmp: &mut Vec<Ref>, out: &mut Vec<u8>) -> Result<u32> {
    let count = u32::try_from(ix.len()).map_err(|_| Error::TooLarge("a key group of more than 2^32 entries".into()))?;
    if ix.is_empty() {
        return Ok(0);
    }
    let piece = ix.len().min(SORT_REFS);
    // Grown, never cleared: zeroing it for every table would cost more than
    // reading the index.
    if order.len() < piece {
        room::reserve(order, piece - order.len())?;
        order.resize(piece, NO_REF);
    }
    if ix.is_wide() {
        // Room for every entry as an inline one's PUT.
        room::reserve_bytes(out, ix.len() * INLINE_PUT)?;
    }
    let mut from = 0;
    while from < ix.capacity() {
        // Entries inline in the slots are written as they are met; records
        // gathered, then copied in arena order.
        let (n, next) = ix.refs_into(from, order, piece, |b| write_inline(b, out));
        from = next;
        let refs = &mut order[..n];
        radix::sort_refs(refs, tmp)?;
        write_in_order(recs, refs, out)?;
    }
    Ok(count)
}

/// Bytes of a PUT of an inline entry, at most: the op, the record's two
/// one-byte lengths, 14 bytes of key and value.
const INLINE_PUT: usize = 3 + record::INLINE - 1;

/// Writes a live inline entry as a PUT record, in room reserved for it: its
/// record is a one-byte header (`klen << 3`, no flags) and a one-byte value
/// length, then the key and the value (see `crate::record`). Writes a whole
/// `INLINE_PUT` bytes (one fixed-size copy, no call to `memcpy`) and keeps
/// the PUT's own.
#[inline]
fn write_inline(b: &[u8], out: &mut Vec<u8>) {
    let (k, v) = (usize::from(b[0] >> 4), usize::from(b[0] & 0xF));
    debug_assert!(k + v < record::INLINE, "a live entry, not an absence mark");
    let mut put = [0u8; INLINE_PUT];
    put[0] = op::PUT;
    put[1] = (k << 3) as u8;
    put[2] = v as u8;
    put[3..].copy_from_slice(&b[1..]);
    let at = out.len();
    let spare = out.spare_capacity_mut();
    assert!(spare.len() >= INLINE_PUT, "write_entries reserves INLINE_PUT bytes an entry");
    for (d, &x) in spare[..INLINE_PUT].iter_mut().zip(&put) {
        d.write(x);
    }
    // Safety: the `3 + k + v <= INLINE_PUT` bytes after `at` were written
    // just above, within `out`'s capacity (checked).
    unsafe { out.set_len(at + 3 + k + v) };
}

/// Writes the records of `refs` (sorted) as PUTs, those that tile a stretch
/// of a page as one RUN.
fn write_in_order(recs: &impl Records, refs: &[Ref], out: &mut Vec<u8>) -> Result<()> {
    let mut i = 0;
    while i < refs.len() {
        let r = refs[i];
        let b = recs.bytes(r);
        let Some(len) = record::plain_len(b) else {
            let rec = record::parse(b);
            room::reserve_bytes(out, body::record_bound(rec.key, rec.ns, &[], rec.value))?;
            body::put_record(out, op::PUT, rec.key, rec.ns, &[], rec.value);
            i += 1;
            continue;
        };
        // Extend the run while the next ref starts where it ends: within the
        // page's bytes where the owner reads them, else record by record.
        let (mut j, mut end) = (i + 1, len);
        if let Some(tail) = recs.page_tail(r) {
            let mut next = r.wrapping_add(len as u32);
            while j < refs.len() && refs[j] == next && end + 2 <= tail.len() {
                let Some(l) = record::plain_len(&tail[end..]) else { break };
                end += l;
                next = next.wrapping_add(l as u32);
                j += 1;
            }
        } else {
            while j < refs.len() && arena::follows(r, end) == Some(refs[j]) {
                let Some(l) = record::plain_len(recs.bytes(refs[j])) else { break };
                end += l;
                j += 1;
            }
        }
        if j == i + 1 {
            body::put_entry(out, &b[..len])?;
        } else {
            body::put_run(out, (j - i) as u32, recs.span(r, end))?;
        }
        i = j;
    }
    Ok(())
}

/// Writes the entries of a value-like or list table of a state with TTL
/// without what expired at `t` (lists: without their expired elements, and
/// not at all when none is left); returns how many.
#[allow(clippy::too_many_arguments)]
fn write_unexpired(
    recs: &impl Records,
    ix: &AnyIndex,
    order: &mut Vec<Ref>,
    is_list: bool,
    cfg: &TtlConfig,
    t: u64,
    tmp: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<u32> {
    let mut n = 0;
    for_each_spread(ix, order, |e| {
        let rec = recs.entry(e);
        if !is_list {
            if !cfg.expired(ttl::stamp_of(rec.value), t) {
                room::reserve_bytes(out, body::record_bound(rec.key, rec.ns, &[], rec.value))?;
                body::put_record(out, op::PUT, rec.key, rec.ns, &[], rec.value);
                n += 1;
            }
            return Ok(());
        }
        tmp.clear();
        room::reserve_bytes(tmp, rec.value.len())?;
        let mut any = false;
        for e in ttl::elements(rec.value) {
            let e = e.expect("stored lists are stamped");
            any = true;
            if !cfg.expired(e.stamp, t) {
                tmp.extend_from_slice(&ttl::stamp(e.stamp));
                tmp.extend_from_slice(e.frame);
            }
        }
        if !any || !tmp.is_empty() {
            room::reserve_bytes(out, body::record_bound(rec.key, rec.ns, &[], tmp))?;
            body::put_record(out, op::PUT, rec.key, rec.ns, &[], tmp);
            n += 1;
        }
        Ok(())
    })?;
    Ok(n)
}

/// A record of an incremental or a map export.
enum Emit<'a> {
    /// A PUT of an arena record without room to grow: its own bytes are
    /// the record after the op (see `format::body`).
    Entry(&'a [u8]),
    /// Op, key, namespace, user key, value (what the op does not carry is
    /// ignored).
    Record(u8, &'a [u8], &'a [u8], &'a [u8], &'a [u8]),
    /// An entry's member that kept a short put (`delta::kept_put`).
    Kept(&'a [u8]),
}

/// Emits the changes of one state in one key group: each distinct member of
/// the checkpoint's segments, resolved against its moment.
fn write_delta(
    frozen: &Frozen,
    recs: &impl Records,
    state: usize,
    part: usize,
    tid: TableId,
    is_map: bool,
    emit: &mut impl FnMut(Emit<'_>),
) {
    let sets: Vec<(&Members, &Index)> = frozen
        .segments
        .iter()
        .filter_map(|(m, seg)| seg.get(state).and_then(|s| s.get(part)).map(|s| (&**m, s)))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    // Members are looked up in batches whose index slots and records are
    // warmed first: most of a member's cost is cache misses. A member of the
    // newest set that kept its entry's last write needs no lookup: that
    // write is the entry at the checkpoint's moment (the set was sealed
    // then). An older set's member may be out of date, and a member of a
    // later set needs its hash to be skipped where an earlier one holds it.
    const BATCH: usize = 16;
    let mut batch = [None; BATCH];
    let mut hashes = [0u32; BATCH];
    let mut lookups = [0u32; BATCH];
    // The only set: no earlier one to skip a member for.
    let only = sets.len() == 1;
    for (i, &(mem, set)) in sets.iter().enumerate() {
        let newest = i + 1 == sets.len();
        let (mut n, mut w) = (0, 0);
        // Members are read in groups whose first bytes are loaded first, as
        // independent loads, so that their cache misses overlap: a member
        // lies wherever its first write put it in the generation's storage.
        let mut refs = set.refs_spread();
        let mut ahead = [0 as Ref; BATCH];
        loop {
            let (mut got, mut touch) = (0, 0u8);
            for r in refs.by_ref().take(BATCH) {
                touch ^= Records::bytes(mem, r)[0];
                ahead[got] = r;
                got += 1;
            }
            std::hint::black_box(touch);
            for &r in &ahead[..got] {
                // In the only set, with no member before it waiting for a
                // lookup, a kept write is written now, in order: the common
                // short put straight from the member's bytes.
                let now = only && n == 0;
                if now {
                    if let Some(b) = delta::kept_put(mem, r) {
                        emit(Emit::Kept(b));
                        continue;
                    }
                }
                let m = delta::member(mem, r);
                let kept = newest && m.change == Change::Entry && m.last != Last::Unknown;
                if kept && now {
                    write_kept(m, emit);
                    continue;
                }
                batch[n] = Some(m);
                if !(kept && only) {
                    hashes[n] = entry_hash(murmur3_32(m.key, 0), m.ns);
                }
                if !kept {
                    lookups[w] = hashes[n];
                    w += 1;
                }
                n += 1;
                if n == BATCH {
                    write_batch(frozen, recs, &batch, &hashes, &lookups[..w], &sets, i, tid, is_map, emit);
                    (n, w) = (0, 0);
                }
            }
            if got < BATCH {
                break;
            }
        }
        write_batch(frozen, recs, &batch[..n], &hashes[..n], &lookups[..w], &sets, i, tid, is_map, emit);
    }
}

/// Warms the lookups of a batch of members of `sets[i]`, then writes them in order.
#[allow(clippy::too_many_arguments)]
fn write_batch(
    frozen: &Frozen,
    recs: &impl Records,
    batch: &[Option<delta::Member<'_>>],
    hashes: &[u32],
    lookups: &[u32],
    sets: &[(&Members, &Index)],
    i: usize,
    tid: TableId,
    is_map: bool,
    emit: &mut impl FnMut(Emit<'_>),
) {
    frozen.warm(recs, tid, lookups);
    for (&m, &entry) in batch.iter().flatten().zip(hashes) {
        write_member(frozen, recs, m, entry, sets, i, tid, is_map, emit);
    }
}

/// Emits one member of `sets[i]` (`entry`: its entry hash, unused when `i`
/// is 0 and the member kept its last write) unless an earlier set holds it
/// too.
#[allow(clippy::too_many_arguments)]
fn write_member(
    frozen: &Frozen,
    recs: &impl Records,
    m: delta::Member<'_>,
    entry: u32,
    sets: &[(&Members, &Index)],
    i: usize,
    tid: TableId,
    is_map: bool,
    emit: &mut impl FnMut(Emit<'_>),
) {
    let in_any = |upto: usize, h: u32, key: &[u8], ns: &[u8], change: Change, uk: &[u8]| {
        sets[..upto].iter().any(|&(mem, s)| delta::find(mem, s, h, key, ns, change, uk))
    };
    if in_any(i, delta::member_hash(entry, m.change, m.uk), m.key, m.ns, m.change, m.uk) {
        return;
    }
    match m.change {
        Change::Entry if i + 1 == sets.len() && m.last != Last::Unknown => write_kept(m, emit),
        Change::Entry => match frozen.find(recs, tid, entry, m.key, m.ns) {
            Some(Entry::Ref(v)) => {
                let b = recs.bytes(v);
                match record::plain_len(b) {
                    Some(len) => emit(Emit::Entry(&b[..len])),
                    None => emit(Emit::Record(op::PUT, m.key, m.ns, &[], recs.rec(v).value)),
                }
            }
            Some(e) => emit(Emit::Record(op::PUT, m.key, m.ns, &[], recs.entry(e).value)),
            None => emit(Emit::Record(op::DELETE, m.key, m.ns, &[], &[])),
        },
        Change::WholeMap => {
            emit(Emit::Record(op::MAP_CLEAR, m.key, m.ns, &[], &[]));
            if let Some(head) = frozen.find(recs, tid, entry, m.key, m.ns) {
                frozen.map_for_each(recs, recs.entry(head).value, |uk, v| emit(Emit::Record(op::MAP_PUT, m.key, m.ns, uk, v)));
            }
        }
        Change::MapEntry => {
            debug_assert!(is_map);
            // A cleared map is written whole; its entries need nothing more.
            let whole = delta::member_hash(entry, Change::WholeMap, &[]);
            if in_any(sets.len(), whole, m.key, m.ns, Change::WholeMap, &[]) {
                return;
            }
            let value = frozen.find(recs, tid, entry, m.key, m.ns).and_then(|head| frozen.map_get(recs, recs.entry(head).value, m.uk));
            match value {
                Some(v) => emit(Emit::Record(op::MAP_PUT, m.key, m.ns, m.uk, v)),
                None => emit(Emit::Record(op::MAP_DELETE, m.key, m.ns, m.uk, &[])),
            }
        }
    }
}

/// Emits an entry's member that kept its last write: that write.
#[inline(always)]
fn write_kept(m: delta::Member<'_>, emit: &mut impl FnMut(Emit<'_>)) {
    match m.last {
        Last::Put(v) => emit(Emit::Record(op::PUT, m.key, m.ns, &[], v)),
        _ => emit(Emit::Record(op::DELETE, m.key, m.ns, &[], &[])),
    }
}

/// A pending checkpoint's export, shared between the store and a runner on
/// another thread.
#[derive(Debug)]
pub(crate) struct Job {
    export: Mutex<Export>,
    /// Progress as of the last chunk, readable without waiting for one.
    progress: Mutex<Progress>,
    /// Set by the store before it releases what the export reads.
    cancel: AtomicBool,
}

fn unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while locked aborts in release builds; in tests, the data is
    // still consistent (a chunk is either appended or not), so carry on.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Job {
    pub fn new(export: Export) -> Arc<Job> {
        let progress = export.progress();
        Arc::new(Job { export: Mutex::new(export), progress: Mutex::new(progress), cancel: AtomicBool::new(false) })
    }

    /// The export, locked: waits for a chunk in progress on another thread.
    pub fn lock(&self) -> MutexGuard<'_, Export> {
        unpoisoned(&self.export)
    }

    pub fn progress(&self) -> Progress {
        *unpoisoned(&self.progress)
    }

    /// Runs `f` on the locked export, then publishes its progress.
    pub fn with<T>(&self, f: impl FnOnce(&mut Export) -> T) -> T {
        let mut ex = self.lock();
        let r = f(&mut ex);
        *unpoisoned(&self.progress) = ex.progress();
        r
    }

    /// Stops the export for good and waits for a chunk in progress; after
    /// this no chunk reads anything. Frees the frozen view.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.lock().thaw();
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// A checkpoint's export, to run on another thread while the store's owner
/// keeps writing (the native backend's async snapshot). Made by
/// [`crate::Store::checkpoint_job`]; the store settles the checkpoint (its
/// progress, confirm) once the job reports the end.
#[derive(Debug)]
pub struct ExportJob {
    job: Arc<Job>,
    pointers: Pointers,
}

impl ExportJob {
    pub(crate) fn new(job: Arc<Job>, pointers: Pointers) -> ExportJob {
        ExportJob { job, pointers }
    }

    /// Appends chunks of about `target` bytes each to `chunks`, with the
    /// progress after each, until they hold `budget` bytes or the checkpoint
    /// is complete; returns true when it is. Refused once the checkpoint was
    /// aborted or its store closed.
    pub fn run(&self, chunks: &mut Vec<(Vec<u8>, Progress)>, target: usize, budget: usize) -> Result<bool> {
        let target = target.max(1);
        self.job.with(|ex| {
            // Checked under the lock: the store sets `cancel` before taking
            // it, so once cancelled, nothing here reads a record again.
            if self.job.cancelled() {
                return Err(Error::CheckpointState("the checkpoint was aborted or its store closed".into()));
            }
            let mut total = 0;
            while !ex.finished() && total < budget {
                // A chunk that cannot be had ends the pull; with none made,
                // the error is the pull's (the export stays where it was).
                let mut out = Vec::new();
                let made = room::reserve_bytes(&mut out, target.saturating_add(target / 8))
                    .and_then(|()| room::reserve(chunks, 1))
                    .map_err(Error::from)
                    .and_then(|()| ex.next(&self.pointers, &mut out, target));
                if let Err(e) = made {
                    return if total > 0 { Ok(false) } else { Err(e) };
                }
                total += out.len();
                chunks.push((out, ex.progress()));
            }
            Ok(ex.finished())
        })
    }

    /// Progress as of the last chunk.
    pub fn progress(&self) -> Progress {
        self.job.progress()
    }
}
