//! Inserts, overwrites and reads of 1M keys, in key order and in a random
//! order; with `tracking`, overwrites with delta tracking on (as under
//! incremental checkpoints), each round's log dropped by a checkpoint after it.
use keystate_core::{export_all, Key, Policy};
use keystate_diag::{filled, keys, Rng};
use std::time::Instant;

fn main() {
    let n = 1_000_000;
    let keys = keys(n);
    let t = Instant::now();
    let (mut s, st) = filled(&keys);
    println!("insert in key order: {:.0} ns/key", t.elapsed().as_nanos() as f64 / n as f64);
    let tracking = std::env::args().any(|a| a == "tracking");
    if tracking {
        s.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).expect("a policy");
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut r = Rng(99);
    for i in (1..n).rev() {
        order.swap(i, r.below(i + 1));
    }
    for round in 0..3u32 {
        let t = Instant::now();
        for &i in &order {
            s.put(st, Key::Bytes(&keys[i]), &[], &round.to_le_bytes()[..2]).expect("a write");
        }
        let w = t.elapsed().as_nanos() as f64 / n as f64;
        let t = Instant::now();
        let mut sum = 0usize;
        for &i in &order {
            sum += s.get(st, Key::Bytes(&keys[i]), &[], None).expect("a read").map_or(0, <[u8]>::len);
        }
        let g = t.elapsed().as_nanos() as f64 / n as f64;
        println!("random order, round {round}: overwrite {w:.0} ns/key{}, get {g:.0} ns/key ({sum} bytes read)", if tracking { " (tracked)" } else { "" });
        if tracking {
            let cp = s.checkpoint(None).expect("a checkpoint");
            export_all(&mut s, cp.id).expect("an export");
            s.checkpoint_confirm(cp.id).expect("a confirm");
        }
    }
}
