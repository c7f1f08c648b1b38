//! Checkpoints: taken from a snapshot of their moment, exported in chunks
//! (one or more key-group sections each) so writers run between chunks, and
//! counted only when confirmed.
//!
//! A full checkpoint writes every entry. An incremental one writes the
//! entries changed since the last confirmed checkpoint (its parent), read
//! from the same snapshot, with removals as tombstones. Changes are tracked
//! in delta sets (see [`crate::delta`]) while tracking is on.

use crate::arena::{Arena, Ref};
use crate::delta::{self, Change, Segment, StateSets};
use crate::error::{Error, Result};
use crate::format::write::Writer;
use crate::format::{body, op, CheckpointKind, Header};
use crate::hash::{entry_hash, murmur3_32};
use crate::index::Index;
use crate::mapval;
use crate::mem::NO_TABLE;
use crate::state::StateKind;
use crate::store::Store;

/// Identity of a checkpoint that a child can name as its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub id: u64,
    pub link: u64,
}

/// A confirmed checkpoint, with what the materialization policy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    pub link: Link,
    /// Incremental checkpoints since the chain's full checkpoint.
    pub chain_len: u32,
    /// Bytes of those incremental checkpoints.
    pub chain_bytes: u64,
    /// Bytes of the chain's full checkpoint.
    pub full_bytes: u64,
}

/// When an incremental checkpoint becomes a full one instead (Flink's
/// materialization): keeps restore time bounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Checkpoints are incremental unless asked otherwise.
    pub incremental: bool,
    /// A full checkpoint after this many incremental ones (0: no limit).
    pub max_incrementals: u32,
    /// A full checkpoint once the chain's incremental bytes pass this
    /// fraction of its full checkpoint's bytes (0: no limit).
    pub max_chain_ratio: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { incremental: false, max_incrementals: 100, max_chain_ratio: 1.0 }
    }
}

/// What `checkpoint()` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub id: u64,
    pub parent_id: Option<u64>,
    pub kind: CheckpointKind,
    pub snapshot: u64,
}

/// How far an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub key_groups_done: u32,
    pub key_groups_total: u32,
    pub bytes: u64,
    pub records: u64,
    pub finished: bool,
    /// File checksum, once finished.
    pub checksum: u64,
}

#[derive(Debug)]
struct Pending {
    header: Header,
    /// The base an incremental checkpoint extends.
    parent: Option<Base>,
    /// Held until the export finishes (or the checkpoint is aborted).
    snapshot: Option<u64>,
    /// Segments an incremental checkpoint reads (by checkpoint id), oldest first.
    segments: Vec<u64>,
    writer: Writer,
    /// Next key group to export; `None` before the header is written.
    next_kg: Option<u32>,
    finished: bool,
    checksum: u64,
}

/// The store's checkpoint bookkeeping.
#[derive(Debug)]
pub struct Checkpoints {
    next_id: u64,
    pub(crate) last_confirmed: Option<Base>,
    pending: Vec<Pending>,
    pub(crate) policy: Policy,
    /// Delta tracking is on.
    pub(crate) tracking: bool,
    /// Checkpoints with an id below this were taken without full tracking
    /// since, so no incremental checkpoint can extend them.
    tracked_from: u64,
    /// Current delta sets: [state][key group offset].
    current: Vec<StateSets>,
    current_bytes: u64,
    segments: Vec<Segment>,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Checkpoints {
            next_id: 1,
            last_confirmed: None,
            pending: Vec::new(),
            policy: Policy::default(),
            tracking: false,
            tracked_from: u64::MAX,
            current: Vec::new(),
            current_bytes: 0,
            segments: Vec::new(),
        }
    }
}

impl Checkpoints {
    pub(crate) fn holds_snapshot(&self, s: u64) -> bool {
        self.pending.iter().any(|p| p.snapshot == Some(s))
    }

    /// Bytes of delta tracking: current sets and kept segments.
    pub(crate) fn delta_bytes(&self) -> u64 {
        self.current_bytes + self.segments.iter().map(|s| s.bytes).sum::<u64>()
    }

    /// Distinct members of the current delta sets.
    pub fn delta_members(&self) -> usize {
        self.current.iter().flatten().map(Index::len).sum()
    }

    /// A restored store continues the chain it was restored from.
    pub(crate) fn continue_chain(&mut self, last: Base) {
        self.last_confirmed = Some(last);
        self.next_id = last.link.id + 1;
        // Tracking from birth: the restored state is exactly `last`.
        self.tracked_from = last.link.id;
    }

    fn position(&self, id: u64) -> Result<usize> {
        self.pending.iter().position(|p| p.header.id == id).ok_or(Error::UnknownCheckpoint(id))
    }

    /// Records a change (no-op unless tracking).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mark(&mut self, arena: &mut Arena, state: u32, part: usize, parts: usize, entry: u32, key: &[u8], ns: &[u8], change: Change, uk: &[u8]) {
        if self.tracking {
            self.mark_tracked(arena, state, part, parts, entry, key, ns, change, uk);
        }
    }

    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn mark_tracked(&mut self, arena: &mut Arena, state: u32, part: usize, parts: usize, entry: u32, key: &[u8], ns: &[u8], change: Change, uk: &[u8]) {
        let state = state as usize;
        while self.current.len() <= state {
            self.current.push(vec![Index::new(); parts]);
        }
        let h = delta::member_hash(entry, change, uk);
        self.current_bytes += delta::add(arena, &mut self.current[state][part], h, key, ns, change, uk);
    }

    fn seal(&mut self, checkpoint: u64) {
        let sets = std::mem::take(&mut self.current);
        let bytes = std::mem::take(&mut self.current_bytes);
        self.segments.push(Segment { checkpoint, sets, holders: 0, live: true, bytes });
    }

    fn hold(&mut self, ids: &[u64], delta: i32) {
        for s in self.segments.iter_mut().filter(|s| ids.contains(&s.checkpoint)) {
            s.holders = s.holders.checked_add_signed(delta).expect("segment holders balance");
        }
    }

    /// Frees segments no future or pending checkpoint needs.
    fn collect(&mut self, arena: &mut Arena) {
        let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut self.segments).into_iter().partition(|s| s.live || s.holders > 0);
        self.segments = keep;
        for seg in drop {
            for set in seg.sets.into_iter().flatten() {
                delta::free(arena, set);
            }
        }
    }

    fn stop_tracking(&mut self, arena: &mut Arena) {
        self.tracking = false;
        self.tracked_from = u64::MAX;
        for set in std::mem::take(&mut self.current).into_iter().flatten() {
            delta::free(arena, set);
        }
        self.current_bytes = 0;
        for s in &mut self.segments {
            s.live = false;
        }
        self.collect(arena);
    }

    /// The base an incremental checkpoint taken now would extend, if any.
    fn base(&self) -> Option<Base> {
        self.last_confirmed.filter(|b| self.tracking && b.link.id >= self.tracked_from)
    }

    /// Whether the policy asks for a full checkpoint on top of `base`.
    fn materialize(&self, base: &Base) -> bool {
        let p = self.policy;
        (p.max_incrementals > 0 && base.chain_len >= p.max_incrementals)
            || (p.max_chain_ratio > 0.0 && base.chain_bytes as f64 > p.max_chain_ratio * base.full_bytes as f64)
    }
}

/// Output chunks are cut after the first section that reaches this size.
pub const DEFAULT_CHUNK: usize = 64 * 1024;

impl Store {
    /// Sets the checkpoint policy. Turning `incremental` on starts delta
    /// tracking (the next checkpoint is full, as nothing was tracked before);
    /// turning it off stops tracking and frees the delta log.
    pub fn set_checkpoint_policy(&mut self, policy: Policy) -> Result<()> {
        if policy.max_chain_ratio.is_nan() || policy.max_chain_ratio < 0.0 {
            return Err(Error::InvalidArgument("maxChainRatio must be a number >= 0".into()));
        }
        let was = self.cps.policy.incremental;
        self.cps.policy = policy;
        if policy.incremental && !was {
            self.start_tracking();
        } else if !policy.incremental && was {
            self.cps.stop_tracking(&mut self.mem.arena);
        }
        Ok(())
    }

    pub fn checkpoint_policy(&self) -> Policy {
        self.cps.policy
    }

    fn start_tracking(&mut self) {
        if !self.cps.tracking {
            self.cps.tracking = true;
            if self.cps.tracked_from == u64::MAX {
                self.cps.tracked_from = self.cps.next_id;
            }
        }
    }

    /// Starts a checkpoint of this moment (O(1)): incremental when asked (or
    /// by policy) and a confirmed base exists and the policy does not ask for
    /// a full one; full otherwise. Bytes come from [`Store::checkpoint_next`].
    pub fn checkpoint(&mut self, incremental: Option<bool>) -> Result<CheckpointInfo> {
        if self.cps.next_id > crate::format::MAX_CHECKPOINT_ID {
            // Only a chain restored at the largest id gets here: a reader
            // would refuse the next id.
            return Err(Error::CheckpointState(format!("checkpoint ids are used up (the last was {})", self.cps.next_id - 1)));
        }
        let want = incremental.unwrap_or(self.cps.policy.incremental);
        if want {
            self.start_tracking();
        }
        let parent = if want { self.cps.base().filter(|b| !self.cps.materialize(b)) } else { None };
        let snapshot = self.mem.snapshot();
        let id = self.cps.next_id;
        self.cps.next_id += 1;
        if self.cps.tracking {
            self.cps.seal(id);
        }
        let segments: Vec<u64> = match parent {
            Some(_) => self.cps.segments.iter().filter(|s| s.live).map(|s| s.checkpoint).collect(),
            None => Vec::new(),
        };
        self.cps.hold(&segments, 1);
        let kind = if parent.is_some() { CheckpointKind::Incremental } else { CheckpointKind::Full };
        let header = Header {
            kind,
            id,
            parent_id: parent.map_or(0, |b| b.link.id),
            parent_link: parent.map_or(0, |b| b.link.link),
            link: 0,
            store_id: self.cfg.store_id,
            max_parallelism: self.cfg.max_parallelism,
            key_groups: self.cfg.key_groups,
            states: self.states.iter().enumerate().map(|(i, e)| (i as u32, e.desc.clone())).collect(),
        };
        self.cps.pending.push(Pending {
            header,
            parent,
            snapshot: Some(snapshot),
            segments,
            writer: Writer::new(),
            next_kg: None,
            finished: false,
            checksum: 0,
        });
        Ok(CheckpointInfo { id, parent_id: parent.map(|b| b.link.id), kind, snapshot })
    }

    /// Appends the next chunk of checkpoint `id` to `out` (at least one part,
    /// cut once `out` grows by `target` bytes). Returns true when the
    /// checkpoint is complete; its snapshot is then released.
    pub fn checkpoint_next(&mut self, id: u64, out: &mut Vec<u8>, target: usize) -> Result<bool> {
        let i = self.cps.position(id)?;
        if self.cps.pending[i].finished {
            return Ok(true);
        }
        // Take the pending checkpoint out so the store can be read while it writes.
        let mut p = self.cps.pending.swap_remove(i);
        let start = out.len();
        let range = p.header.key_groups;
        let mut kg = match p.next_kg {
            None => {
                p.writer.header(&p.header, out);
                range.start
            }
            Some(kg) => kg,
        };
        let snapshot = p.snapshot.expect("unfinished checkpoints hold their snapshot");
        while kg <= range.end && out.len() - start < target {
            self.write_section(&mut p, kg, snapshot, out);
            kg += 1;
        }
        p.next_kg = Some(kg);
        if kg > range.end {
            p.checksum = p.writer.finish(out);
            p.finished = true;
            p.snapshot = None;
            self.release_internal(snapshot);
            // The bytes are written: the delta sets it read can go.
            let segs = std::mem::take(&mut p.segments);
            self.cps.hold(&segs, -1);
            self.cps.collect(&mut self.mem.arena);
        }
        let finished = p.finished;
        self.cps.pending.push(p);
        Ok(finished)
    }

    fn write_section(&self, p: &mut Pending, kg: u32, snapshot: u64, out: &mut Vec<u8>) {
        let part = (kg - self.cfg.key_groups.start) as usize;
        let mark = p.writer.begin_section(kg, out);
        let mut records = 0u64;
        for (sid, _) in &p.header.states {
            let e = &self.states[*sid as usize];
            let tid = e.parts[part];
            if tid == NO_TABLE {
                continue;
            }
            let block = out.len();
            let count_at = body::begin_block(out, *sid);
            let mut count = 0u32;
            let is_map = e.desc.kind == StateKind::Map;
            let mut emit = |o: u8, key: &[u8], ns: &[u8], uk: &[u8], value: &[u8]| {
                body::put_record(out, o, key, ns, uk, value);
                count += 1;
            };
            if p.header.kind == CheckpointKind::Full && !is_map {
                // Most records are copied as they are (see format::body).
                let arena = &self.mem.arena;
                self.mem.for_each_visible(tid, Some(snapshot), |r, rec| {
                    if rec.cap.is_none() {
                        body::put_entry(out, &arena.bytes(r)[..rec.len]);
                    } else {
                        body::put_record(out, op::PUT, rec.key, rec.ns, &[], rec.value);
                    }
                    count += 1;
                });
            } else if p.header.kind == CheckpointKind::Full {
                self.for_each_in_table(tid, is_map, Some(snapshot), &mut |key, ns, uk, value| {
                    emit(op::MAP_PUT, key, ns, uk.expect("map entries have user keys"), value)
                });
            } else {
                self.write_delta(p, *sid as usize, part, tid, is_map, snapshot, &mut emit);
            }
            body::end_block(out, count_at, block, count);
            records += u64::from(count);
        }
        p.writer.end_section(mark, records, out);
    }

    /// Emits the changes of one state in one key group: each distinct member
    /// of the checkpoint's segments, resolved against its snapshot.
    #[allow(clippy::too_many_arguments)]
    fn write_delta(
        &self,
        p: &Pending,
        state: usize,
        part: usize,
        tid: u32,
        is_map: bool,
        snapshot: u64,
        emit: &mut impl FnMut(u8, &[u8], &[u8], &[u8], &[u8]),
    ) {
        let arena = &self.mem.arena;
        let sets: Vec<&Index> = p
            .segments
            .iter()
            .filter_map(|id| self.cps.segments.iter().find(|s| s.checkpoint == *id))
            .filter_map(|s| s.set(state, part))
            .collect();
        // Members are looked up in batches whose index slots and records are
        // warmed first: most of a member's cost is cache misses.
        const BATCH: usize = 16;
        let mut refs = [0 as Ref; BATCH];
        let mut lookups = [(tid, 0u32); BATCH];
        for (i, set) in sets.iter().enumerate() {
            let mut members = set.refs_spread().peekable();
            while members.peek().is_some() {
                let mut n = 0;
                for r in members.by_ref().take(BATCH) {
                    let m = delta::member(arena, r);
                    refs[n] = r;
                    lookups[n].1 = entry_hash(murmur3_32(m.key, 0), m.ns);
                    n += 1;
                }
                self.mem.warm(&lookups[..n]);
                for (&r, &(_, entry)) in refs[..n].iter().zip(&lookups[..n]) {
                    self.write_member(r, entry, &sets, i, tid, is_map, snapshot, emit);
                }
            }
        }
    }

    /// Emits one member of `sets[i]` (`entry`: its entry hash) unless an
    /// earlier set holds it too.
    #[allow(clippy::too_many_arguments)]
    fn write_member(
        &self,
        r: Ref,
        entry: u32,
        sets: &[&Index],
        i: usize,
        tid: u32,
        is_map: bool,
        snapshot: u64,
        emit: &mut impl FnMut(u8, &[u8], &[u8], &[u8], &[u8]),
    ) {
        let arena = &self.mem.arena;
        let in_any = |upto: usize, h: u32, key: &[u8], ns: &[u8], change: Change, uk: &[u8]| {
            sets[..upto].iter().any(|s| delta::find(arena, s, h, key, ns, change, uk))
        };
        let m = delta::member(arena, r);
        if in_any(i, delta::member_hash(entry, m.change, m.uk), m.key, m.ns, m.change, m.uk) {
            return;
        }
        match m.change {
            Change::Entry => match self.mem.get_at(tid, entry, m.key, m.ns, snapshot) {
                Some(v) => emit(op::PUT, m.key, m.ns, &[], self.mem.rec(v).value),
                None => emit(op::DELETE, m.key, m.ns, &[], &[]),
            },
            Change::WholeMap => {
                emit(op::MAP_CLEAR, m.key, m.ns, &[], &[]);
                if let Some(head) = self.mem.get_at(tid, entry, m.key, m.ns, snapshot) {
                    mapval::for_each(&self.mem, self.mem.rec(head).value, Some(snapshot), |uk, v| {
                        emit(op::MAP_PUT, m.key, m.ns, uk, v);
                    });
                }
            }
            Change::MapEntry => {
                debug_assert!(is_map);
                // A cleared map is written whole; its entries need nothing more.
                let whole = delta::member_hash(entry, Change::WholeMap, &[]);
                if in_any(sets.len(), whole, m.key, m.ns, Change::WholeMap, &[]) {
                    return;
                }
                let value = self
                    .mem
                    .get_at(tid, entry, m.key, m.ns, snapshot)
                    .and_then(|head| mapval::get(&self.mem, self.mem.rec(head).value, m.uk, Some(snapshot)));
                match value {
                    Some(v) => emit(op::MAP_PUT, m.key, m.ns, m.uk, v),
                    None => emit(op::MAP_DELETE, m.key, m.ns, m.uk, &[]),
                }
            }
        }
    }

    /// Export progress of a pending checkpoint.
    pub fn checkpoint_progress(&self, id: u64) -> Result<Progress> {
        let p = &self.cps.pending[self.cps.position(id)?];
        let range = p.header.key_groups;
        let done = p.next_kg.map_or(0, |kg| kg - range.start);
        Ok(Progress {
            key_groups_done: done,
            key_groups_total: range.len() as u32,
            bytes: p.writer.offset(),
            records: p.writer.records(),
            finished: p.finished,
            checksum: p.checksum,
        })
    }

    /// Confirms that checkpoint `id` is stored durably: it becomes the parent
    /// of the next incremental checkpoint, and the delta sets it covers are
    /// freed. Confirming a checkpoint older than the last confirmed one is
    /// refused, and changes nothing.
    pub fn checkpoint_confirm(&mut self, id: u64) -> Result<()> {
        let i = self.cps.position(id)?;
        let p = &self.cps.pending[i];
        if !p.finished {
            return Err(Error::CheckpointState(format!(
                "checkpoint {id} cannot be confirmed before its stream has been read to the end"
            )));
        }
        if let Some(last) = self.cps.last_confirmed {
            if last.link.id > id {
                return Err(Error::CheckpointState(format!(
                    "checkpoint {id} is older than the last confirmed checkpoint {}",
                    last.link.id
                )));
            }
        }
        let link = Link { id, link: if p.header.link != 0 { p.header.link } else { p.checksum } };
        let bytes = p.writer.offset();
        self.cps.last_confirmed = Some(match p.parent {
            Some(b) => Base { link, chain_len: b.chain_len + 1, chain_bytes: b.chain_bytes + bytes, full_bytes: b.full_bytes },
            None => Base { link, chain_len: 0, chain_bytes: 0, full_bytes: bytes },
        });
        let p = self.cps.pending.swap_remove(i);
        self.cps.hold(&p.segments, -1);
        for s in &mut self.cps.segments {
            if s.checkpoint <= id {
                s.live = false;
            }
        }
        self.cps.collect(&mut self.mem.arena);
        Ok(())
    }

    /// Abandons checkpoint `id`. Nothing is lost: its delta sets stay until a
    /// later checkpoint is confirmed, so the next checkpoint carries
    /// everything since the last confirmed one.
    pub fn checkpoint_abort(&mut self, id: u64) -> Result<()> {
        let i = self.cps.position(id)?;
        let p = self.cps.pending.swap_remove(i);
        if let Some(s) = p.snapshot {
            self.release_internal(s);
        }
        self.cps.hold(&p.segments, -1);
        self.cps.collect(&mut self.mem.arena);
        Ok(())
    }

    /// The last confirmed checkpoint.
    pub fn last_confirmed(&self) -> Option<Link> {
        self.cps.last_confirmed.map(|b| b.link)
    }

    /// Distinct entries changed since the last checkpoint was taken.
    pub fn delta_members(&self) -> usize {
        self.cps.delta_members()
    }

    /// The last confirmed checkpoint with its chain statistics.
    pub fn last_base(&self) -> Option<Base> {
        self.cps.last_confirmed
    }

    /// Writes this store as one full checkpoint that stands in for the chain
    /// it was restored from: same id and link as the chain's last piece, so
    /// later incremental checkpoints of that chain apply on top of it.
    pub fn export_compacted(&mut self) -> Result<Vec<u8>> {
        let base = self.cps.last_confirmed.ok_or_else(|| Error::InvalidArgument("nothing to compact: no chain was restored".into()))?;
        let snapshot = self.mem.snapshot();
        let header = Header {
            kind: CheckpointKind::Full,
            id: base.link.id,
            parent_id: 0,
            parent_link: 0,
            link: base.link.link,
            store_id: self.cfg.store_id,
            max_parallelism: self.cfg.max_parallelism,
            key_groups: self.cfg.key_groups,
            states: self.states.iter().enumerate().map(|(i, e)| (i as u32, e.desc.clone())).collect(),
        };
        let mut p = Pending {
            header,
            parent: None,
            snapshot: Some(snapshot),
            segments: Vec::new(),
            writer: Writer::new(),
            next_kg: Some(self.cfg.key_groups.start),
            finished: false,
            checksum: 0,
        };
        let mut out = Vec::new();
        p.writer.header(&p.header, &mut out);
        for kg in self.cfg.key_groups.iter() {
            self.write_section(&mut p, kg, snapshot, &mut out);
        }
        p.writer.finish(&mut out);
        self.release_internal(snapshot);
        Ok(out)
    }
}
