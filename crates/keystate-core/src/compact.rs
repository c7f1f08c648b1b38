//! Compaction: space freed in one size class becomes usable by every other.
//!
//! The slab arena (`crate::arena`) reuses a freed slot at once for a record of
//! its class, and a whole page for any class once its last slot is freed. When
//! values change size class and stay there (numbers of 1..3 bytes rewritten as
//! 5..7), the old class's pages stay half full forever: space that only a
//! class nobody allocates can use. Compaction moves records out of such pages.
//!
//! A round plans, then sweeps. The plan marks, per class, the emptiest pages
//! whose records the free slots of its other pages can take in
//! ([`Arena::plan_evacuation`]); marked pages leave their room list, so no new
//! record lands in them. The sweep walks every table's live index, a few
//! slots per write, and moves each record it finds in a marked page to a free
//! slot of the same class, pointing the index slot at the copy. A marked page
//! whose last record leaves goes to the pool, for any class; pooled pages
//! beyond a small slack go back to the allocator ([`Arena::trim_pool`]).
//!
//! A move is a write of the same bytes, as far as snapshots go: while a
//! snapshot needs the entry's current record, that record moves into the
//! snapshot's undo layer (exactly as an overwrite would save it) and is
//! freed when the snapshot is released; the page empties then. So snapshot
//! reads, a checkpoint's frozen view and a background export (which read
//! only records their snapshot pins) never see a record move or vanish. The
//! delta log is not told: the entry's value did not change.
//!
//! Compaction never fails and allocates almost nothing: a move happens only
//! when a free slot of the class is at hand and, under a snapshot, when the
//! snapshot's layer of the table exists and has room; otherwise the record
//! stays and its page is unmarked when the round ends. The one thing it
//! allocates is a copy of an index chunk a checkpoint's frozen view shares
//! (`crate::index`), at most one a step, within the budget less a
//! sixteenth; refused, the record waits for the next sweep. It skips what
//! it must not touch: detached map tables (frozen for a snapshot) and map
//! heads under a snapshot (saving one detaches its nested table). It runs
//! at the start of a public write, never inside a batch, whose reservation
//! counts the free slots and pooled pages it would take.

use crate::arena::{CLASSES, MAX_SMALL};
use crate::hash::{entry_hash, murmur3_32};
use crate::index::Entry;
use crate::mem::{Mem, TableId};
use crate::record;
use crate::room::Room;
use crate::write::Save;

/// Index slots a step looks at, and records it moves at most: a move costs
/// about a write (its record is a cache miss) and looking at a slot a few
/// nanoseconds, so a step adds about a tenth to a write while a round runs
/// (64 slots and 8 moves added 30-90%), and still keeps up with values that
/// change class (bench `arena_reuse_100`: 1.06x).
const STEP_SLOTS: usize = 32;
const STEP_MOVES: usize = 1;
/// A round is planned once stranded bytes exceed this fraction (1/n) of the
/// pages that have a class...
const STRANDED_DEN: u64 = 16;
/// ...and at least this many pages' worth are stranded.
const STRANDED_MIN_PAGES: u64 = 4;
/// Small slots freed before the next plan is considered, after a round or a
/// plan that found nothing to move.
const PLAN_AFTER_FREES: u64 = 1024;
/// Sweeps a round makes at most: records that cannot move (pinned by a
/// snapshot held for long, or no free slot left) end it.
const MAX_PASSES: u32 = 16;
/// Pooled pages kept beyond those a trim gives back: `POOL_KEEP` plus one
/// per `POOL_KEEP_DEN` pages with a class.
const POOL_KEEP: usize = 4;
const POOL_KEEP_DEN: usize = 128;

/// Where a round is, and what it did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Compaction {
    /// A round is sweeping.
    active: bool,
    tid: TableId,
    slot: usize,
    /// `Arena::frees` at which the next plan is considered.
    plan_at: u64,
    /// Sweeps of this round, and whether the current one moved anything.
    passes: u32,
    moved_in_pass: bool,
    /// The current sweep skipped a table it may move records of later.
    skipped_in_pass: bool,
    /// Newest open snapshot when a record moved into its layer: the round
    /// waits for it (and every older one) to be released and its records
    /// reclaimed, which empties their pages, before it sweeps again.
    pinned_by: Option<u64>,
    waiting: bool,
    /// Records moved, and rounds finished, so far.
    pub moved: u64,
    pub rounds: u64,
}

impl Mem {
    /// One bounded step of compaction (see the module docs), and a trim of
    /// the pool. Called at the start of a public write, when no record ref
    /// is held outside the tables.
    pub fn compact_step(&mut self, room: &mut Room) {
        if self.keep_capacity {
            return;
        }
        let keep = POOL_KEEP + self.arena.class_bytes() as usize / crate::arena::PAGE_SIZE / POOL_KEEP_DEN;
        if self.arena.pooled() > keep {
            self.arena.trim_pool(keep);
        }
        if !self.compaction.active && !self.plan_round() {
            return;
        }
        if let (true, Some(e)) = (self.compaction.waiting, self.compaction.pinned_by) {
            // Between sweeps, waiting for the records last moved into
            // snapshot layers to be freed (their pages empty then).
            if self.open.first().is_some_and(|&o| o <= e) || !self.reclaim.layers.is_empty() {
                return;
            }
            self.compaction.pinned_by = None;
            self.compaction.waiting = false;
        }
        let (mut slots, mut moves) = (STEP_SLOTS, STEP_MOVES);
        while slots > 0 && moves > 0 {
            if self.arena.evacuating_pages() == 0 {
                self.end_round();
                return;
            }
            let c = self.compaction;
            if c.tid as usize >= self.tables.len() {
                self.end_pass();
                return;
            }
            let Some(t) = self.tables[c.tid as usize].as_ref().filter(|t| !t.detached && c.slot < t.live.capacity()) else {
                self.compaction.tid += 1;
                self.compaction.slot = 0;
                slots -= 1;
                continue;
            };
            // The next record in a marked page, looking at `slots` slots at most.
            let arena = &self.arena;
            let (found, next) = t.live.scan(c.slot, slots, |e| e.record().is_some_and(|r| arena.is_evacuating(r)));
            slots -= next - c.slot;
            self.compaction.slot = next;
            if let Some(slot) = found {
                if self.relocate(c.tid, slot, room) {
                    moves -= 1;
                    self.compaction.moved_in_pass = true;
                }
            }
        }
    }

    /// The sweep reached the last table: sweep again while it helps.
    fn end_pass(&mut self) {
        let c = &mut self.compaction;
        c.passes += 1;
        c.tid = 0;
        c.slot = 0;
        let moved = std::mem::take(&mut c.moved_in_pass);
        let skipped = std::mem::take(&mut c.skipped_in_pass);
        if c.passes >= MAX_PASSES || (!moved && !skipped && c.pinned_by.is_none()) {
            self.end_round();
        } else {
            c.waiting = c.pinned_by.is_some();
        }
    }

    /// Starts a round if enough space is stranded; true when one started.
    fn plan_round(&mut self) -> bool {
        let a = &self.arena;
        if a.frees() < self.compaction.plan_at {
            return false;
        }
        let stranded = a.stranded_bytes();
        if stranded * STRANDED_DEN <= a.class_bytes() || stranded < STRANDED_MIN_PAGES * crate::arena::PAGE_SIZE as u64 {
            self.compaction.plan_at = a.frees() + PLAN_AFTER_FREES;
            return false;
        }
        // Runs' unused slots count as used in their pages: give them back
        // first, so that the plan sees records only, and pages that a run
        // alone kept can empty.
        if self.arena.stashed_bytes() > 0 {
            let Mem { tables, arena, .. } = self;
            for r in tables.iter_mut().flatten().flat_map(|t| &mut t.runs) {
                arena.release_run(r);
            }
        }
        let marked = self.arena.plan_evacuation();
        if marked == 0 {
            self.compaction.plan_at = self.arena.frees() + PLAN_AFTER_FREES;
            return false;
        }
        let c = &mut self.compaction;
        (c.active, c.tid, c.slot, c.passes, c.moved_in_pass, c.skipped_in_pass, c.pinned_by, c.waiting) = (true, 0, 0, 0, false, false, None, false);
        true
    }

    fn end_round(&mut self) {
        self.arena.end_evacuation();
        self.compaction.active = false;
        self.compaction.pinned_by = None;
        self.compaction.waiting = false;
        self.compaction.rounds += 1;
        self.compaction.plan_at = self.arena.frees() + PLAN_AFTER_FREES;
    }

    /// Moves the record at `slot` of table `tid`'s live index out of its page
    /// if that page is being evacuated and the move needs no memory but a
    /// copy of the slot's index chunk (at most one a step, since a step
    /// moves at most one record). True when it moved.
    fn relocate(&mut self, tid: TableId, slot: usize, room: &mut Room) -> bool {
        let t = self.table(tid);
        // Inline entries have no record to move.
        let Some(r) = t.live.slot_at(slot).and_then(Entry::record) else { return false };
        if !self.arena.is_evacuating(r) {
            return false;
        }
        let c = self.arena.class_at(r);
        if !self.arena.has_free_slot(c) {
            return false;
        }
        let size = CLASSES[c as usize] as usize;
        // The record, copied out: its key and namespace are read from the
        // copy while the tables change.
        let mut buf = [0u8; MAX_SMALL];
        buf[..size].copy_from_slice(&self.arena.bytes(r)[..size]);
        let rec = record::parse(&buf[..size]);
        let h = entry_hash(murmur3_32(rec.key, 0), rec.ns);
        let save = self.plan_save(tid, h, rec.key, rec.ns, Some(slot));
        match save {
            Save::No => {}
            // A new layer would need memory.
            Save::NewLayer => return false,
            Save::Into => {
                let has_room = t.layers.last().is_some_and(|l| l.index.has_room(1));
                if t.heads || !has_room {
                    return false;
                }
            }
        }
        if !self.table(tid).live.owns_slot(slot) {
            // A frozen view shares the slot's chunk: copy it (within the
            // budget), or come back next pass.
            if !self.own_live_slot(tid, slot, room) {
                self.compaction.skipped_in_pass = true;
                return false;
            }
        }
        let (nr, got) = self.arena.alloc(size, Some(c));
        debug_assert_eq!(got, size);
        self.arena.bytes_mut(nr)[..size].copy_from_slice(&buf[..size]);
        let moved = save == Save::Into && self.commit_save(tid, h, rec.key, rec.ns, Some(slot));
        let t = self.table_mut(tid);
        t.live.set(slot, Entry::Ref(nr));
        if moved {
            // The old record now belongs to the snapshot's layer.
            t.live_bytes += size as u64;
            self.compaction.pinned_by = self.open.last().copied();
        } else {
            self.arena.free(r, size);
        }
        self.compaction.moved += 1;
        true
    }

    /// Makes the chunk of `slot` of the live index of `tid` its own; false
    /// when the budget or the allocator refuses.
    fn own_live_slot(&mut self, tid: TableId, slot: usize, room: &mut Room) -> bool {
        let Mem { tables, acct, .. } = self;
        let ix = &mut tables[tid as usize].as_mut().expect("dangling table id").live;
        match ix.try_own_slot(slot, room) {
            Ok(frozen) => {
                acct.frozen_copies += frozen;
                true
            }
            Err(_) => false,
        }
    }

    /// What compaction did so far.
    pub fn compaction(&self) -> Compaction {
        self.compaction
    }
}
