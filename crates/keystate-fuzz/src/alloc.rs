//! A counting allocator, so that the oracle can check that restoring N bytes
//! takes memory in proportion to N. Binaries opt in with
//! `#[global_allocator] static A: keystate_fuzz::alloc::Counting = keystate_fuzz::alloc::Counting;`.
//! Counts are per thread (fuzz threads do not share stores), and a single
//! allocation above the thread's limit is refused after naming the case:
//! the process then aborts, as it would have without the limit, but says why.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

thread_local! {
    static NOW: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
    static CASE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
}

/// The system allocator, counted.
#[derive(Debug, Clone, Copy)]
pub struct Counting;

fn grew(n: usize) {
    let _ = NOW.try_with(|c| {
        let now = c.get() + n as isize;
        c.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = INSTALLED.try_with(|i| i.set(true));
}

fn shrank(n: usize) {
    let _ = NOW.try_with(|c| c.set(c.get() - n as isize));
}

fn admit(n: usize) -> bool {
    if n <= LIMIT.try_with(Cell::get).unwrap_or(usize::MAX) {
        return true;
    }
    let (seed, case) = CASE.try_with(Cell::get).unwrap_or((0, 0));
    // Formatting integers into stderr does not allocate.
    let _ = writeln!(std::io::stderr(), "keystate-fuzz: allocation of {n} bytes refused in case {case} of seed {seed} (replay: keystate-fuzz --seed {seed} --case {case})");
    false
}

// Safety: every method forwards the caller's layout and pointer to `System`
// unchanged (or refuses with null); the counters are plain thread-locals.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if !admit(l.size()) {
            return std::ptr::null_mut();
        }
        // Safety: same contract as ours, the caller's layout passed on.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if !admit(l.size()) {
            return std::ptr::null_mut();
        }
        // Safety: same contract as ours, the caller's layout passed on.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // Safety: `p` was allocated by `System` with layout `l` (all our methods forward to it).
        unsafe { System.dealloc(p, l) };
        shrank(l.size());
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if !admit(new) {
            return std::ptr::null_mut();
        }
        // Safety: `p` and `l` come from `System` through us; the caller upholds `realloc`'s contract.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            shrank(l.size());
            grew(new);
        }
        q
    }
}

/// Whether this process counts allocations (a binary installed [`Counting`]).
pub fn installed() -> bool {
    INSTALLED.try_with(Cell::get).unwrap_or(false)
}

/// Names the case running on this thread, and refuses single allocations
/// above `limit` bytes while it runs.
pub fn begin_case(seed: u64, case: u64, limit: usize) {
    let _ = CASE.try_with(|c| c.set((seed, case)));
    let _ = LIMIT.try_with(|c| c.set(limit));
}

pub fn end_case() {
    let _ = LIMIT.try_with(|c| c.set(usize::MAX));
}

/// Runs `f`; returns its result and the most memory it held at once, in
/// bytes above what was held before (0 when allocations are not counted).
pub fn peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = NOW.try_with(Cell::get).unwrap_or(0);
    let _ = PEAK.try_with(|p| p.set(before));
    let out = f();
    let peak = PEAK.try_with(Cell::get).unwrap_or(before);
    (out, (peak - before).max(0) as usize)
}
