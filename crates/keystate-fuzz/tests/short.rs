//! The short fuzz run of `npm test` (and `cargo test --workspace`): 150,000
//! cases on two threads, about 20 s here, every check of docs/FORMAT.md's
//! "Reading" and "Chains" reached a thousand times or more.
//! `KEYSTATE_FUZZ_INPUTS=N` runs N cases instead, `KEYSTATE_FUZZ_SEED=S`
//! another seed; the long mode is `cargo run --profile fuzz -p keystate-fuzz`.

use keystate_fuzz::{run, stats::LISTED, Config, Corpus};

#[global_allocator]
static ALLOC: keystate_fuzz::alloc::Counting = keystate_fuzz::alloc::Counting;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn resealed_mutations_are_refused_with_a_typed_error_or_restore_soundly() {
    let inputs = env("KEYSTATE_FUZZ_INPUTS", 150_000);
    let cfg = Config { seed: env("KEYSTATE_FUZZ_SEED", 1), inputs, threads: 2, ..Config::default() };
    let stats = run(&Corpus::build(), &cfg);
    println!("{}", stats.report());
    assert!(stats.failures.is_empty(), "{}", stats.report());
    let floor = inputs / 150;
    let thin: Vec<_> = stats.hits().into_iter().take(LISTED).filter(|(_, n)| *n < floor).collect();
    assert!(thin.is_empty(), "checks reached fewer than {floor} times: {thin:?}\n{}", stats.report());
    assert!(stats.accepted() > inputs / 10, "too few cases restored: {}", stats.report());
}
