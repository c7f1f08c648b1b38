//! What copy-on-write costs a writer: rounds of 15,000 puts of random
//! existing keys, alternately with a full checkpoint open (its snapshot
//! pinned, nothing exported) and without. `cow_writes [none|under] [ROUNDS]`
//! (default `under`, 6 rounds) prints the mean time of a put per round;
//! with `none` no checkpoint is ever open, the baseline for a profiler
//! (`perf record -e cpu-clock target/release/cow_writes under 200` against
//! `... none 200`).
use keystate_core::Key;
use keystate_diag::{filled, keys, Rng};
use std::time::Instant;

fn main() {
    let open = match std::env::args().nth(1).as_deref() {
        None | Some("under") => true,
        Some("none") => false,
        Some(m) => panic!("usage: cow_writes [none|under] [ROUNDS], not {m}"),
    };
    let rounds: usize = std::env::args().nth(2).map_or(6, |a| a.parse().expect("ROUNDS is a number"));
    let n = 1_000_000;
    let keys = keys(n);
    let (mut s, st) = filled(&keys);
    let mut r = Rng(12345);
    for round in 0..rounds {
        let under = open && round % 2 == 1;
        let cp = under.then(|| s.checkpoint(Some(false)).expect("a checkpoint").id);
        let t = Instant::now();
        for j in 0..15_000usize {
            let k = &keys[r.below(n)];
            s.put(st, Key::Bytes(k), &[], &(j as u32 % 1000).to_le_bytes()[..2]).expect("a write");
        }
        let e = t.elapsed();
        if let Some(id) = cp {
            s.checkpoint_abort(id).expect("an abort");
        }
        println!("round {round}, {}: {:?} per put", if under { "a checkpoint open" } else { "none open" }, e / 15_000);
    }
}
