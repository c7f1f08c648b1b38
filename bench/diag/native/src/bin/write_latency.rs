//! p50/p99/p99.9 of 200,000 single puts of random existing keys (inline in
//! a wide index), in four conditions, each twice:
//!   none    nothing else open
//!   snap    under a user snapshot (re-taken every 16,384 writes)
//!   cp      under a full checkpoint, nothing exported (re-taken every
//!           16,384 writes): its frozen index makes writers copy chunks
//!   export  a full checkpoint's export pulled one chunk every 64 writes
//!           (a new one starts when one ends), as the bench case
//!           `write_p99_during_export` does through JavaScript
//! `write_latency [MODES]` (default `none,snap,cp,export,none,snap,cp,export`,
//! comma-separated). With `PINNED=1` each write also reads
//! `memory().pinned_bytes` around it (untimed, but it evicts caches) and
//! counts the slow writes (at or above p99) that pinned more than 64 bytes:
//! a chunk copied, a layer made or resized.
use keystate_core::{Key, Store};
use keystate_diag::{filled, keys, quantile, Rng};
use std::time::Instant;

const WRITES: usize = 200_000;
const RETAKE: usize = 16_384;

fn main() {
    let modes = std::env::args().nth(1).unwrap_or_else(|| "none,snap,cp,export,none,snap,cp,export".into());
    let pinned = std::env::var_os("PINNED").is_some();
    let n = 1_000_000;
    let keys = keys(n);
    let (mut s, st) = filled(&keys);
    let mut r = Rng(12345);
    for mode in modes.split(',') {
        assert!(["none", "snap", "cp", "export"].contains(&mode), "modes: none, snap, cp, export; not {mode}");
        let mut lat = Vec::with_capacity(WRITES);
        let mut jumps = Vec::new();
        let (mut snap, mut cp): (Option<u64>, Option<u64>) = (None, None);
        let mut out = Vec::new();
        for j in 0..WRITES {
            between(&mut s, mode, j, &mut snap, &mut cp, &mut out);
            let k = &keys[r.below(n)];
            let before = if pinned { s.memory().pinned_bytes } else { 0 };
            let t = Instant::now();
            s.put(st, Key::Bytes(k), &[], &(j as u32 % 1000).to_le_bytes()[..2]).expect("a write");
            let e = t.elapsed().as_nanos() as f64;
            if pinned {
                jumps.push((e, s.memory().pinned_bytes.saturating_sub(before) > 64));
            }
            lat.push(e);
        }
        if let Some(id) = cp {
            s.checkpoint_abort(id).expect("an abort");
        }
        if let Some(id) = snap {
            s.release(id).expect("a release");
        }
        let (p50, p99, p999) = (quantile(&mut lat, 0.5), quantile(&mut lat, 0.99), quantile(&mut lat, 0.999));
        print!("{mode:7} p50 {p50:5.0} ns, p99 {p99:5.0} ns, p99.9 {p999:6.0} ns");
        if pinned {
            let slow = jumps.iter().filter(|j| j.0 >= p99);
            let (all, big) = slow.fold((0, 0), |(a, b), j| (a + 1, b + usize::from(j.1)));
            print!("; of {all} writes at p99 or more, {big} pinned more than 64 bytes");
        }
        println!();
    }
}

/// What runs before write `j` in `mode` (untimed).
fn between(s: &mut Store, mode: &str, j: usize, snap: &mut Option<u64>, cp: &mut Option<u64>, out: &mut Vec<u8>) {
    match mode {
        "snap" if j.is_multiple_of(RETAKE) => {
            if let Some(id) = snap.take() {
                s.release(id).expect("a release");
            }
            *snap = Some(s.snapshot().expect("a snapshot"));
        }
        "cp" if j.is_multiple_of(RETAKE) => {
            if let Some(id) = cp.take() {
                s.checkpoint_abort(id).expect("an abort");
            }
            *cp = Some(s.checkpoint(Some(false)).expect("a checkpoint").id);
        }
        "export" if j.is_multiple_of(64) => {
            let id = *cp.get_or_insert_with(|| s.checkpoint(Some(false)).expect("a checkpoint").id);
            out.clear();
            if s.checkpoint_next(id, out, 64 * 1024).expect("a chunk") {
                s.checkpoint_abort(id).expect("an abort");
                *cp = None;
            }
        }
        _ => {}
    }
}
