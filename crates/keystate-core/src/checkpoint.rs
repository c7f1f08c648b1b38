//! Checkpoints: taken from a snapshot of their moment, exported in chunks
//! (one or more key-group sections each) so writers run between chunks, and
//! counted only when confirmed.
//!
//! A full checkpoint writes every entry. An incremental one writes the
//! entries changed since the last confirmed checkpoint (its parent), read
//! from the same snapshot, with removals as tombstones. Changes are tracked
//! in delta sets (see [`crate::delta`]) while tracking is on.

use std::sync::Arc;

use crate::arena::Ref;
use crate::delta::{self, Change, Members, Segment, StateSets};
use crate::error::{Error, Full, Result};
use crate::export::{Export, ExportJob, Frozen, Job};
use crate::format::{CheckpointKind, Header};
use crate::index::{AnyIndex, Index};
use crate::mem::{Mem, TableId};
use crate::room::{self, Room};
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
    /// The epoch of the checkpoint's snapshot: its export's alone, read
    /// through the index frozen with it (`Mem::snapshot_frozen`); reads at
    /// it are refused as of an unknown snapshot (`Store::check_snapshot`).
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
    id: u64,
    /// The base an incremental checkpoint extends.
    parent: Option<Base>,
    /// Held until the export finishes (or the checkpoint is aborted).
    snapshot: Option<u64>,
    /// Segments an incremental checkpoint reads (by checkpoint id), oldest first.
    segments: Vec<u64>,
    /// The export, shared with a runner on another thread (see `crate::export`).
    job: Arc<Job>,
    /// The export's frozen indexes, for counting what writers copied since
    /// as pinned memory; dropped with the snapshot.
    frozen: Option<Arc<Vec<Option<AnyIndex>>>>,
}

/// Where a writer records the last write of the entry it marked: a member
/// of the current generation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Noted {
    gen: u64,
    member: Ref,
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
    /// Where the current sets' members are.
    members: Members,
    /// Counts replacements of `members`, so that a [`Noted`] of an earlier
    /// generation writes nothing.
    members_gen: u64,
    /// Members of each set of the last sealed generation: the next one's starting size.
    last_sizes: Vec<Vec<usize>>,
    /// Bytes of the current sets' indexes.
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
            members: Members::default(),
            members_gen: 0,
            last_sizes: Vec::new(),
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
        self.current_bytes + self.members.bytes() + self.segments.iter().map(|s| s.bytes).sum::<u64>()
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
        self.pending.iter().position(|p| p.id == id).ok_or(Error::UnknownCheckpoint(id))
    }

    /// Bytes of frozen index copies that pending exports hold and no live
    /// table shares any more (writers copied them since).
    pub(crate) fn frozen_bytes(&self, mem: &Mem) -> u64 {
        let mut n = 0;
        for tables in self.pending.iter().filter_map(|p| p.frozen.as_ref()) {
            for (tid, ix) in tables.iter().enumerate() {
                let Some(ix) = ix else { continue };
                n += ix.bytes_not_shared_with(mem.live_index(tid as TableId)) as u64;
            }
        }
        n
    }

    /// Stops every export and waits for chunks in progress (the store is
    /// going away).
    pub(crate) fn cancel_all(&self) {
        for p in &self.pending {
            p.job.cancel();
        }
    }

    /// Records a change (no-op unless tracking). Writers call it before
    /// they change anything: a member for a change that then fails for want
    /// of memory is harmless (the next incremental checkpoint writes that
    /// entry as it is), while a change without its member would be lost.
    /// For a `Change::Entry`, `note_len` is the length of the write the
    /// caller will [`Checkpoints::note`]: the value once the write succeeded,
    /// `Last::Unknown` if it failed. Without it (`None`), the member's last
    /// write becomes unknown here.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mark(
        &mut self,
        room: &mut Room,
        state: u32,
        part: usize,
        parts: usize,
        entry: u32,
        key: &[u8],
        ns: &[u8],
        change: Change,
        uk: &[u8],
        note_len: Option<usize>,
    ) -> Result<Option<Noted>, Full> {
        if self.tracking {
            return self.mark_tracked(room, state, part, parts, entry, key, ns, change, uk, note_len);
        }
        Ok(None)
    }

    /// Records the last write of the entry `mark` returned `noted` for (see
    /// `crate::delta`): the value put, a removal, or unknown (it failed).
    #[inline]
    pub(crate) fn note(&mut self, noted: Option<Noted>, last: delta::Last<'_>) {
        if let Some(n) = noted.filter(|n| n.gen == self.members_gen) {
            self.members.note(n.member, last);
        }
    }

    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn mark_tracked(
        &mut self,
        room: &mut Room,
        state: u32,
        part: usize,
        parts: usize,
        entry: u32,
        key: &[u8],
        ns: &[u8],
        change: Change,
        uk: &[u8],
        note_len: Option<usize>,
    ) -> Result<Option<Noted>, Full> {
        let state = state as usize;
        if self.current.len() <= state {
            room::reserve_capacity(&mut self.current, state + 1)?;
            while self.current.len() <= state {
                let mut sets = Vec::new();
                room::reserve(&mut sets, parts)?;
                sets.resize_with(parts, Index::new);
                self.current.push(sets);
            }
        }
        let set = &mut self.current[state][part];
        let before = set.bytes();
        if set.capacity() == 0 {
            // Sized like the same set of the last generation: a set grown from
            // empty re-places its members (reading each one's record) a few
            // times over, which doubled a tracked write's cost. Only when it
            // fits the budget: otherwise the set grows from empty as before.
            // The allocator refusing is refused like any other allocation.
            let last = self.last_sizes.get(state).and_then(|s| s.get(part)).copied().unwrap_or(0);
            let mut trial = *room;
            if last > 0 && trial.take(Index::bytes_for(last) as u64).is_ok() {
                *set = Index::try_with_capacity(last).ok_or_else(|| room::oom(Index::bytes_for(last)))?;
                *room = trial;
            }
        }
        let h = delta::member_hash(entry, change, uk);
        let r = delta::add(&mut self.members, set, h, key, ns, change, uk, note_len, room);
        self.current_bytes += (set.bytes() - before) as u64;
        match r? {
            Some(member) => Ok(Some(Noted { gen: self.members_gen, member })),
            None => {
                self.lose_track();
                Ok(None)
            }
        }
    }

    /// The delta log cannot hold this change (a generation ran out of
    /// refs): drop it; the next checkpoint is full, and tracking goes on
    /// from there.
    #[cold]
    fn lose_track(&mut self) {
        self.drop_log();
        self.tracked_from = self.next_id;
    }

    /// Drops the current sets and every segment no pending checkpoint reads.
    fn drop_log(&mut self) {
        self.current.clear();
        self.members = Members::default();
        self.members_gen += 1;
        self.current_bytes = 0;
        for s in &mut self.segments {
            s.live = false;
        }
        self.collect();
    }

    fn seal(&mut self, checkpoint: u64) {
        let sets = std::mem::take(&mut self.current);
        self.last_sizes = sets.iter().map(|s| s.iter().map(Index::len).collect()).collect();
        let members = Arc::new(std::mem::take(&mut self.members));
        self.members_gen += 1;
        let bytes = std::mem::take(&mut self.current_bytes) + members.bytes();
        self.segments.push(Segment { checkpoint, sets: Arc::new(sets), members, holders: 0, live: true, bytes });
    }

    fn hold(&mut self, ids: &[u64], delta: i32) {
        for s in self.segments.iter_mut().filter(|s| ids.contains(&s.checkpoint)) {
            s.holders = s.holders.checked_add_signed(delta).expect("segment holders balance");
        }
    }

    /// Frees segments no future or pending checkpoint needs: each in one go
    /// (its members' chunks), whatever its size.
    fn collect(&mut self) {
        self.segments.retain(|s| s.live || s.holders > 0);
    }

    fn stop_tracking(&mut self) {
        self.tracking = false;
        self.tracked_from = u64::MAX;
        self.drop_log();
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
            self.cps.stop_tracking();
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
        let id = self.cps.next_id;
        let kind = if parent.is_some() { CheckpointKind::Incremental } else { CheckpointKind::Full };
        // Everything the checkpoint holds is allocated before anything
        // changes: one that cannot get memory is refused, as a write is.
        let header = self.header(kind, id, parent.map_or((0, 0), |b| (b.link.id, b.link.link)), 0)?;
        let tables = self.mem.freeze()?;
        let parts = self.frozen_parts()?;
        // An incremental checkpoint reads every live segment and the one it
        // seals now (the current sets).
        let mut segments: Vec<u64> = Vec::new();
        let mut sets: Vec<(Arc<Members>, Arc<Vec<StateSets>>)> = Vec::new();
        if parent.is_some() {
            let live = self.cps.segments.iter().filter(|s| s.live).count();
            room::reserve(&mut segments, live + 1)?;
            room::reserve(&mut sets, live + 1)?;
            for s in self.cps.segments.iter().filter(|s| s.live) {
                segments.push(s.checkpoint);
                sets.push((Arc::clone(&s.members), Arc::clone(&s.sets)));
            }
        }
        room::reserve(&mut self.cps.segments, 1)?;
        room::reserve(&mut self.cps.pending, 1)?;
        let expire = if kind == CheckpointKind::Full { self.expiring_at(self.ttl.now)? } else { Vec::new() };
        self.ttl.reserve_snapshot()?;
        // Read only through `tables`, frozen above at this same moment.
        let snapshot = self.mem.snapshot_frozen()?;
        // Nothing below fails.
        self.ttl.snapshot_taken(snapshot);
        self.cps.next_id += 1;
        if self.cps.tracking {
            self.cps.seal(id);
            if parent.is_some() {
                // The sets sealed now, shared: they never change again.
                let sealed = self.cps.segments.last().expect("sealed above");
                segments.push(id);
                sets.push((Arc::clone(&sealed.members), Arc::clone(&sealed.sets)));
            }
        }
        self.cps.hold(&segments, 1);
        let frozen = Frozen { tables: Arc::new(tables), parts, segments: sets, expire };
        let tables = Arc::clone(&frozen.tables);
        self.cps.pending.push(Pending {
            id,
            parent,
            snapshot: Some(snapshot),
            segments,
            job: Job::new(Export::new(header, frozen)),
            frozen: Some(tables),
        });
        Ok(CheckpointInfo { id, parent_id: parent.map(|b| b.link.id), kind, snapshot })
    }

    /// The header of a checkpoint of this store's states, now.
    fn header(&self, kind: CheckpointKind, id: u64, (parent_id, parent_link): (u64, u64), link: u64) -> Result<Header> {
        let mut states = Vec::new();
        room::reserve(&mut states, self.states.len())?;
        states.extend(self.states.iter().enumerate().map(|(i, e)| (i as u32, e.desc.clone())));
        Ok(Header {
            version: crate::format::VERSION,
            kind,
            id,
            parent_id,
            parent_link,
            link,
            store_id: self.cfg.store_id,
            max_parallelism: self.cfg.max_parallelism,
            key_groups: self.cfg.key_groups,
            states,
        })
    }

    /// Per state: its TTL configuration and `t`, where a full checkpoint
    /// at time `t` leaves expired values out (full-snapshot cleanup).
    fn expiring_at(&self, t: u64) -> Result<Vec<Option<(crate::ttl::TtlConfig, u64)>>> {
        let mut v = Vec::new();
        room::reserve(&mut v, self.states.len())?;
        v.extend(self.states.iter().map(|e| e.desc.ttl.filter(|c| c.full_snapshot).map(|c| (c, t))));
        Ok(v)
    }

    /// Every state's kind and tables per owned key group, now.
    fn frozen_parts(&self) -> Result<Vec<(StateKind, Vec<TableId>)>> {
        let mut parts = Vec::new();
        room::reserve(&mut parts, self.states.len())?;
        for e in &self.states {
            let mut p = Vec::new();
            room::reserve(&mut p, e.parts.len())?;
            p.extend_from_slice(&e.parts);
            parts.push((e.desc.kind, p));
        }
        Ok(parts)
    }

    /// Recounts the index arrays only frozen views hold, after one went,
    /// and frees the chunks no copy reads any more.
    fn recount_frozen(&mut self) {
        self.mem.settle_indexes();
        self.cps.current.iter_mut().flatten().for_each(Index::settle);
        let bytes = self.cps.frozen_bytes(&self.mem);
        self.mem.set_frozen_copies(bytes);
    }

    /// Once checkpoint `i`'s export is complete: releases its snapshot and the
    /// delta segments it read.
    fn settle(&mut self, i: usize) {
        let p = &mut self.cps.pending[i];
        if p.snapshot.is_none() || !p.job.lock().finished() {
            return;
        }
        let snapshot = p.snapshot.take().expect("checked above");
        p.frozen = None;
        let segs = std::mem::take(&mut p.segments);
        self.recount_frozen();
        self.release_internal(snapshot);
        // The bytes are written: the delta sets it read can go.
        self.cps.hold(&segs, -1);
        self.cps.collect();
    }

    /// Appends the next chunk of checkpoint `id` to `out` (at least one part,
    /// cut once `out` grows by `target` bytes). Returns true when the
    /// checkpoint is complete; its snapshot is then released.
    pub fn checkpoint_next(&mut self, id: u64, out: &mut Vec<u8>, target: usize) -> Result<bool> {
        let i = self.cps.position(id)?;
        let job = Arc::clone(&self.cps.pending[i].job);
        let finished = job.with(|ex| ex.next(&self.mem.arena, out, target));
        self.settle(i);
        finished
    }

    /// Checkpoint `id`'s export, to run on another thread while this store
    /// goes on: chunks come from [`ExportJob::run`], in the same order and
    /// with the same bytes as from [`Store::checkpoint_next`]. Aborting the
    /// checkpoint or dropping the store stops the job (waiting for a chunk
    /// in progress); once it reports the end, [`Store::checkpoint_progress`]
    /// or a confirm settles the checkpoint here.
    pub fn checkpoint_job(&mut self, id: u64) -> Result<ExportJob> {
        let i = self.cps.position(id)?;
        let job = Arc::clone(&self.cps.pending[i].job);
        Ok(ExportJob::new(job, self.mem.arena.pointers()))
    }

    /// Export progress of a pending checkpoint (settles one whose export
    /// finished on another thread).
    pub fn checkpoint_progress(&mut self, id: u64) -> Result<Progress> {
        let i = self.cps.position(id)?;
        self.settle(i);
        Ok(self.cps.pending[i].job.progress())
    }

    /// Confirms that checkpoint `id` is stored durably: it becomes the parent
    /// of the next incremental checkpoint, and the delta sets it covers are
    /// freed. Confirming a checkpoint older than the last confirmed one is
    /// refused, and changes nothing.
    pub fn checkpoint_confirm(&mut self, id: u64) -> Result<()> {
        let i = self.cps.position(id)?;
        self.settle(i);
        let p = &self.cps.pending[i];
        let (finished, bytes, checksum) = p.job.with(|ex| (ex.finished(), ex.bytes(), ex.checksum()));
        if !finished {
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
        // A checkpoint taken here names no other link: children name its checksum.
        let link = Link { id, link: checksum };
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
        self.cps.collect();
        Ok(())
    }

    /// Abandons checkpoint `id`. Nothing is lost: its delta sets stay until a
    /// later checkpoint is confirmed, so the next checkpoint carries
    /// everything since the last confirmed one.
    pub fn checkpoint_abort(&mut self, id: u64) -> Result<()> {
        let i = self.cps.position(id)?;
        let p = self.cps.pending.swap_remove(i);
        // Stop a runner on another thread before what it reads goes.
        p.job.cancel();
        drop(p.frozen);
        self.recount_frozen();
        if let Some(s) = p.snapshot {
            self.release_internal(s);
        }
        self.cps.hold(&p.segments, -1);
        self.cps.collect();
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
        // No writer runs meanwhile, so the frozen view needs no snapshot. It
        // stands in for the chain: expired values stay, as they were in it.
        let header = self.header(CheckpointKind::Full, base.link.id, (0, 0), base.link.link)?;
        let frozen = Frozen { tables: Arc::new(self.mem.freeze()?), parts: self.frozen_parts()?, segments: Vec::new(), expire: Vec::new() };
        let mut export = Export::new(header, frozen);
        let mut out = Vec::new();
        while !export.next(&self.mem.arena, &mut out, usize::MAX)? {}
        Ok(out)
    }
}
