//! Runs: slots of one page that one table claims at a time, so that the
//! records a table gains lie together instead of being spread over the
//! pages every table shares (issue 11; measurements in docs/LAYOUT.md).
//!
//! Without runs, tables that are written in turn (keys hash to key groups
//! at random) take slots from the same page, one after the other, so a
//! table's records end up one in every hundred or so slots of the arena:
//! a full export of the table, which reads them all, is a cache miss per
//! record. With runs, a table that is written to takes `RUN_SLOTS`
//! consecutive never-used slots of a page at once and hands them to its
//! next records of that class, so its records come in runs of 32 that an
//! export reads a cache line at a time.
//!
//! Runs are for a table's new entries (see `Mem::alloc_record`): a rewrite
//! takes any free slot, usually the one the old value freed, so that values
//! that change size class do not strand run slots all over the arena.
//!
//! What runs cost and why it is small:
//! - A run's slots not yet handed out are free space only its table can
//!   use: at most `RUN_SLOTS - 1` slots per table and class, and a table
//!   has runs of at most two classes. A table gets runs only once it holds
//!   `RUN_MIN_ENTRIES` entries (see `crate::mem`), and all runs together
//!   hold at most 1/`STASH_SHARE` of the bytes in use.
//! - They count as in use in their page (so the page is neither pooled nor
//!   given to another class while a run holds it) and as free in
//!   `used_bytes` (so `memory().freeBytes` reports them).
//! - Claiming takes more slots than one record, which a later allocation
//!   of the same write could have counted on. So a run is claimed only by
//!   the last allocation of a write (`Mem::put_last`), or by a batch
//!   (`setMany`), which reserves `RUN_SLOTS - 1` more slots for each table
//!   and class it may claim a run for (`crate::batch`). A map's entry after
//!   its head does not claim one.
//!
//! A run ends when its slots are all handed out, when its page is marked
//! for evacuation (compaction releases every run before it plans, so that
//! planning sees records only), and when its table is freed; its remaining
//! slots then go back on the page's free list.

use super::{class_for, slot_ref, Arena, Ref, CLASSES, NONE, PAGE_SIZE};

/// Slots a run claims.
pub const RUN_SLOTS: u16 = 32;

/// Runs' slots not handed out stay under 1/STASH_SHARE of the bytes in use
/// (many small tables would otherwise stash more than they hold).
const STASH_SHARE: u64 = 32;

/// Slots `next..end` of page `page`, of size class `class`, bumped from the
/// page for one table and not handed out yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    page: u32,
    next: u16,
    end: u16,
    class: u8,
}

impl Run {
    pub const EMPTY: Run = Run {
        page: NONE,
        next: 0,
        end: 0,
        class: 0,
    };

    pub fn is_empty(&self) -> bool {
        self.page == NONE
    }
}

/// A table's runs, the most recently claimed first: one per size class it
/// last wrote, at most two (values that alternate between two sizes).
pub type Runs = [Run; 2];

impl Arena {
    /// As [`Arena::alloc`], taking the slot from the table's run of its class,
    /// or claiming a new run from the first page with room when that page
    /// has `RUN_SLOTS` never-used slots (else a slot as `alloc` takes one).
    ///
    /// Only for the last allocation of a write (see the module docs).
    pub fn alloc_in(&mut self, len: usize, class: Option<u8>, runs: &mut Runs) -> (Ref, usize) {
        let Some(c) = class_for(len, class) else {
            return self.alloc_large(len);
        };
        let size = CLASSES[c as usize] as usize;
        if let Some(i) = runs.iter().position(|r| !r.is_empty() && r.class == c) {
            let run = runs[i];
            if run.next < run.end && !self.meta[run.page as usize].evac {
                runs[i].next += 1;
                self.stashed -= size as u64;
                self.used += size as u64;
                return (slot_ref(run.page, run.next, size), size);
            }
            self.release_run(&mut runs[i]);
        }
        let p = self.page_with_room(c);
        let per_page = (PAGE_SIZE / size) as u16;
        let m = self.meta[p as usize];
        let claim = u64::from(RUN_SLOTS - 1) * size as u64;
        if m.free != 0
            || per_page - m.bumped < RUN_SLOTS
            || (self.stashed + claim) * STASH_SHARE > self.used
        {
            // Freed slots are reused first, as `alloc` does: runs come only
            // from space no record has used yet; and all runs together hold
            // at most 1/STASH_SHARE of the bytes in use.
            return self.take_slot(p);
        }
        let i = match runs.iter().position(|r| r.is_empty() || r.class == c) {
            Some(i) => i,
            None => {
                self.release_run(&mut runs[1]);
                1
            }
        };
        let first = self.bump(p, RUN_SLOTS);
        self.stashed += u64::from(RUN_SLOTS - 1) * size as u64;
        self.runs_claimed += 1;
        self.used += size as u64;
        runs[i] = Run {
            page: p,
            next: first + 1,
            end: first + RUN_SLOTS,
            class: c,
        };
        if i == 1 {
            runs.swap(0, 1);
        }
        (slot_ref(p, first, size), size)
    }

    /// Gives a run's slots not handed out back to its page (which goes to
    /// the pool if they were all it held) and empties the run.
    pub fn release_run(&mut self, run: &mut Run) {
        if run.is_empty() {
            return;
        }
        let size = CLASSES[run.class as usize] as usize;
        for slot in run.next..run.end {
            self.stashed -= size as u64;
            self.release_slot(run.page, usize::from(slot) * size, size);
        }
        *run = Run::EMPTY;
    }

    /// Bytes of run slots not handed out (free space of the tables holding them).
    pub fn stashed_bytes(&self) -> u64 {
        self.stashed
    }

    /// Runs claimed so far.
    pub fn runs_claimed(&self) -> u64 {
        self.runs_claimed
    }

    /// Checks that `runs` are all the arena's runs: within their pages'
    /// used slots, of their pages' class, adding up to `stashed_bytes`.
    /// For tests; panics with a description.
    #[doc(hidden)]
    pub fn check_runs<'a>(&self, runs: impl Iterator<Item = &'a Run>) {
        let mut stashed = 0u64;
        for r in runs.filter(|r| !r.is_empty()) {
            let m = &self.meta[r.page as usize];
            assert_eq!(
                m.class, r.class,
                "a run of class {} in page {} of class {}",
                r.class, r.page, m.class
            );
            assert!(
                r.next <= r.end && r.end <= m.bumped,
                "run {r:?} past its page's bumped slots ({})",
                m.bumped
            );
            assert!(
                u32::from(r.end - r.next) <= u32::from(m.used),
                "run {r:?} holds more than its page uses"
            );
            stashed += u64::from(r.end - r.next) * u64::from(CLASSES[r.class as usize]);
        }
        assert_eq!(stashed, self.stashed, "bytes held by runs");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::PAGE_BITS;
    use crate::room::Room;

    fn reserve(a: &mut Arena, class: u8, n: usize) {
        a.reserve_slots(&[(class, n)], &mut { Room::UNLIMITED })
            .unwrap();
    }

    /// An arena holding a large record of `len` bytes, so that runs (held
    /// under 1/STASH_SHARE of the bytes in use) may be claimed in it.
    fn arena_using(len: usize) -> (Arena, Ref, usize) {
        let mut a = Arena::new();
        a.reserve_large(len, &mut { Room::UNLIMITED }).unwrap();
        let (r, size) = a.alloc(len, None);
        (a, r, size)
    }

    #[test]
    fn a_table_takes_consecutive_slots_while_others_write_in_between() {
        let (mut a, _, big) = arena_using(64 * 1024);
        let (mut t1, mut t2) = ([Run::EMPTY; 2], [Run::EMPTY; 2]);
        let c = super::super::class_of(16);
        let mut got = (Vec::new(), Vec::new());
        for _ in 0..40 {
            reserve(&mut a, c, 1);
            got.0.push(a.alloc_in(16, None, &mut t1).0);
            reserve(&mut a, c, 1);
            got.1.push(a.alloc_in(16, None, &mut t2).0);
            reserve(&mut a, c, 1);
            a.alloc(16, None); // a write without runs
        }
        for refs in [&got.0, &got.1] {
            // Runs of 32 consecutive slots.
            for w in refs[..32].windows(2) {
                assert_eq!(w[1], w[0] + 16);
            }
            assert_ne!(refs[32], refs[31] + 16, "a second run starts elsewhere");
        }
        a.check_runs(t1.iter().chain(&t2));
        assert_eq!(a.stashed_bytes(), 2 * 24 * 16);
        assert_eq!(a.used_bytes(), big as u64 + 120 * 16);
        a.check();
    }

    #[test]
    fn released_runs_give_their_slots_back_and_empty_pages_go_to_the_pool() {
        let (mut a, big, big_size) = arena_using(64 * 1024);
        let mut runs = [Run::EMPTY; 2];
        let (c16, c20) = (super::super::class_of(16), super::super::class_of(20));
        reserve(&mut a, c16, 1);
        let (r16, s16) = a.alloc_in(16, None, &mut runs);
        reserve(&mut a, c20, 1);
        let (r20, s20) = a.alloc_in(20, None, &mut runs);
        assert_eq!(a.stashed_bytes(), 31 * 16 + 31 * 20);
        a.check_runs(runs.iter());
        // A third class replaces the older run, which is released.
        let c24 = super::super::class_of(24);
        reserve(&mut a, c24, 1);
        let (r24, s24) = a.alloc_in(24, None, &mut runs);
        assert_eq!(a.stashed_bytes(), 31 * 20 + 31 * 24);
        a.check_runs(runs.iter());
        a.check();
        a.free(r16, s16);
        assert_eq!(a.pooled(), 1, "the 16-byte page emptied");
        for r in &mut runs {
            a.release_run(r);
        }
        assert_eq!(a.stashed_bytes(), 0);
        a.check();
        a.free(r20, s20);
        a.free(r24, s24);
        assert_eq!(a.pooled(), 3);
        a.free(big, big_size);
        assert_eq!(a.used_bytes(), 0);
        a.check();
    }

    #[test]
    fn runs_stay_a_small_share_of_the_bytes_in_use() {
        let mut a = Arena::new();
        let c = super::super::class_of(16);
        let mut tables = vec![[Run::EMPTY; 2]; 64];
        for _ in 0..4 {
            for t in &mut tables {
                reserve(&mut a, c, 1);
                a.alloc_in(16, None, t);
            }
            assert!(
                a.stashed_bytes() * STASH_SHARE <= a.used_bytes(),
                "{} stashed of {}",
                a.stashed_bytes(),
                a.used_bytes()
            );
        }
        a.check_runs(tables.iter().flatten());
        a.check();
    }

    #[test]
    fn a_run_in_a_page_marked_for_evacuation_ends() {
        let (mut a, _, _) = arena_using(64 * 1024);
        let mut runs = [Run::EMPTY; 2];
        let c = super::super::class_of(16);
        reserve(&mut a, c, 1);
        let (r, _) = a.alloc_in(16, None, &mut runs);
        let p = r >> PAGE_BITS;
        a.meta[p as usize].evac = true;
        a.evac_pages += 1;
        a.unlink(p, c as usize);
        reserve(&mut a, c, 1);
        let (r2, _) = a.alloc_in(16, None, &mut runs);
        assert_ne!(
            r2 >> PAGE_BITS,
            p,
            "no record lands in a page being evacuated"
        );
        a.end_evacuation();
        a.check_runs(runs.iter());
        a.check();
    }
}
