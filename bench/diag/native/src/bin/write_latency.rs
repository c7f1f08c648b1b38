//! p50/p99/p99.9 of single writes with and without an export pulled every
//! 100 writes (a full checkpoint of the same store, aborted at its end).
use keystate_core::Key;
use keystate_diag::{filled, keys, quantile, Rng};
use std::time::Instant;

fn main() {
    let n = 1_000_000;
    let keys = keys(n);
    let (mut s, st) = filled(&keys);
    let mut r = Rng(12345);
    for exporting in [false, true, false, true] {
        let mut lat = Vec::with_capacity(200_000);
        let mut cp: Option<u64> = None;
        let mut out = Vec::new();
        for j in 0..200_000usize {
            if j % 100 == 0 && exporting {
                let id = *cp.get_or_insert_with(|| s.checkpoint(Some(false)).expect("a checkpoint").id);
                out.clear();
                if s.checkpoint_next(id, &mut out, 64 * 1024).expect("a chunk") {
                    s.checkpoint_abort(id).expect("an abort");
                    cp = None;
                }
            }
            let k = &keys[r.below(n)];
            let t = Instant::now();
            s.put(st, Key::Bytes(k), &[], &(j as u32 % 1000).to_le_bytes()[..2]).expect("a write");
            lat.push(t.elapsed().as_nanos() as f64);
        }
        if let Some(id) = cp {
            s.checkpoint_abort(id).expect("an abort");
        }
        let (p50, p99, p999) = (quantile(&mut lat, 0.5), quantile(&mut lat, 0.99), quantile(&mut lat, 0.999));
        println!("exporting {exporting}: p50 {p50:.0} ns, p99 {p99:.0} ns, p99.9 {p999:.0} ns");
    }
}
