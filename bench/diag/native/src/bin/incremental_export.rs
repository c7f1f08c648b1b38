//! The incremental export alone, repeated: each round rewrites 10,000 keys
//! (1%, untimed), then takes and exports an incremental checkpoint (timed)
//! and confirms it. `incremental_export [ROUNDS]` (default 2) prints the
//! mean time of one export; the export is the function
//! `incremental_export::export`, so a profiler can count only it:
//! `valgrind --tool=callgrind --toggle-collect='incremental_export::export' target/release/incremental_export 2`.
use keystate_core::{export_all, Store};
use keystate_diag::{keys, rewrite_1pct, with_base};
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::args().nth(1).map_or(2, |a| a.parse().expect("ROUNDS is a number"));
    assert!(rounds > 0, "ROUNDS is at least 1");
    let keys = keys(1_000_000);
    let (mut s, st) = with_base(&keys, 0);
    let mut bytes = 0;
    let mut spent = Duration::ZERO;
    let mut taking = Duration::ZERO;
    for round in 0..rounds as u32 {
        rewrite_1pct(&mut s, st, &keys, round);
        let t = Instant::now();
        let cp = s.checkpoint(None).expect("a checkpoint");
        taking += t.elapsed();
        bytes += export(&mut s, cp.id).len();
        spent += t.elapsed();
        s.checkpoint_confirm(cp.id).expect("a confirm");
    }
    println!(
        "{rounds} incremental exports of 10,000 changed keys: {:?} each ({:?} of it the take), {} bytes each",
        spent / rounds as u32,
        taking / rounds as u32,
        bytes / rounds
    );
}

#[inline(never)]
fn export(s: &mut Store, id: u64) -> Vec<u8> {
    export_all(s, id).expect("an export")
}
