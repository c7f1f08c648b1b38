//! keystate-fuzz: structure-aware fuzzing of restore and compaction.
//!
//! Seeds are real checkpoints and chains ([`seeds`]); a case mutates their
//! headers, sections, footers and chains ([`mutate`], [`case`]) and reseals
//! every length, index entry and checksum ([`wire`]), so the checks behind the
//! checksums run; [`oracle`] says what every outcome must satisfy; [`stats`]
//! counts the checks reached. A run is deterministic in its seed: case `n`
//! of seed `s` replays alone (`keystate-fuzz --seed s --case n`).
//!
//! Uses only keystate-core's public API; the format knowledge it needs to
//! reseal is written here from docs/FORMAT.md.

pub mod alloc;
pub mod case;
pub mod model;
pub mod mutate;
pub mod oracle;
pub mod rng;
pub mod seeds;
pub mod stats;
pub mod wire;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

pub use case::Case;
pub use seeds::Corpus;
pub use stats::{Failure, Stats};

/// A run: cases `first..first + inputs` of `seed`, on `threads` threads,
/// stopping early after `time_limit`.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub first: u64,
    pub inputs: u64,
    pub threads: usize,
    pub time_limit: Option<Duration>,
    /// Stop after this many failures.
    pub max_failures: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { seed: 1, first: 0, inputs: 10_000, threads: 1, time_limit: None, max_failures: 20 }
    }
}

/// No single allocation in a case may be larger (the allocator refuses it,
/// naming the case, when [`alloc::Counting`] is installed).
pub const ALLOCATION_LIMIT: usize = 1 << 30;

thread_local! {
    static IN_CASE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic inside a case is a failure of that case: keep its message
/// instead of printing it; panics elsewhere print as usual.
fn capture_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = IN_CASE.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(msg) => {
                        *msg = format!("panic: {info}");
                        true
                    }
                    None => false,
                }
            });
            // With panic=abort (a cargo-fuzz build) nothing is caught: say it now.
            if !captured || cfg!(panic = "abort") {
                prev(info);
            }
        }));
    });
}

/// Builds and checks case `n` of `seed`: the case, and its outcome or the
/// rule it broke (a panic included).
pub fn run_case(corpus: &Corpus, seed: u64, n: u64) -> (Case, Result<oracle::Outcome, String>) {
    let (case, r, _) = timed_case(corpus, seed, n);
    (case, r)
}

/// Builds and checks the case a tape of decisions describes (for
/// coverage-guided fuzzers: crates/keystate-fuzz/fuzz).
pub fn run_tape(corpus: &Corpus, tape: &[u8]) -> (Case, Result<oracle::Outcome, String>) {
    let (case, r, _) = timed(corpus, rng::Rng::from_tape(tape), (0, 0));
    (case, r)
}

/// [`run_case`], with the time its checks took (building it excluded).
fn timed_case(corpus: &Corpus, seed: u64, n: u64) -> (Case, Result<oracle::Outcome, String>, Duration) {
    timed(corpus, rng::Rng::for_case(seed, n), (seed, n))
}

fn timed(corpus: &Corpus, mut rng: rng::Rng, (seed, n): (u64, u64)) -> (Case, Result<oracle::Outcome, String>, Duration) {
    capture_panics();
    IN_CASE.with(|c| *c.borrow_mut() = Some(String::new()));
    let built = panic::catch_unwind(AssertUnwindSafe(|| case::build(corpus, &mut rng)));
    let case = match built {
        Ok(case) => case,
        Err(_) => {
            let msg = IN_CASE.with(|c| c.borrow_mut().take()).unwrap_or_default();
            let empty = Case { chains: Vec::new(), op: case::Op::Compact, mutations: Vec::new() };
            return (empty, Err(format!("the harness failed to build the case: {msg}")), Duration::ZERO);
        }
    };
    let started = Instant::now();
    alloc::begin_case(seed, n, ALLOCATION_LIMIT);
    let r = panic::catch_unwind(AssertUnwindSafe(|| oracle::check(&case, &mut rng)));
    alloc::end_case();
    let msg = IN_CASE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    let r = match r {
        Ok(r) => r,
        Err(_) => Err(msg),
    };
    (case, r, started.elapsed())
}

fn run_thread(corpus: &Corpus, cfg: &Config, t: usize, deadline: Option<Instant>) -> Stats {
    let mut stats = Stats::default();
    let mut n = cfg.first + t as u64;
    let end = cfg.first + cfg.inputs;
    while n < end {
        if deadline.is_some_and(|d| Instant::now() >= d) || stats.failures.len() >= cfg.max_failures {
            break;
        }
        let (case, r, took) = timed_case(corpus, cfg.seed, n);
        if took > stats.slowest.0 {
            stats.slowest = (took, n, case.bytes());
        }
        match r {
            Ok(outcome) => stats.record(&outcome, &case.mutations, case.bytes()),
            Err(message) => {
                stats.cases += 1;
                stats.failures.push(Failure { seed: cfg.seed, case: n, message, mutations: case.mutations.clone() });
            }
        }
        n += cfg.threads as u64;
    }
    stats
}

/// Runs a configuration over a corpus.
pub fn run(corpus: &Corpus, cfg: &Config) -> Stats {
    let started = Instant::now();
    let deadline = cfg.time_limit.map(|d| started + d);
    let threads = cfg.threads.max(1);
    let cfg = Config { threads, ..cfg.clone() };
    let mut total = Stats::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|t| s.spawn({
            let cfg = &cfg;
            move || run_thread(corpus, cfg, t, deadline)
        })).collect();
        for h in handles {
            total.merge(h.join().expect("fuzz threads catch their panics"));
        }
    });
    total.failures.sort_by_key(|f| f.case);
    total.elapsed = started.elapsed();
    total
}
