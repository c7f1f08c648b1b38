//! What a checkpoint costs its writer's thread: taking it, settling it
//! (releasing its snapshot, after an export on another thread) and
//! confirming it (dropping its delta log), with 300,000 writes before it and
//! 120,000 during its export (the bench's checkpointing_writer_1m, natively).
use keystate_core::Key;
use keystate_diag::{keys, with_base, Rng};
use std::time::Instant;

fn main() {
    let n = 1_000_000;
    let keys = keys(n);
    let (mut s, v) = with_base(&keys, 100);
    let mut r = Rng(7);
    for round in 0..3u8 {
        for _ in 0..300_000 {
            s.put(v, Key::Bytes(&keys[r.below(n)]), &[], &[round + 3]).expect("a write");
        }
        let t = Instant::now();
        let cp = s.checkpoint(None).expect("a checkpoint");
        let take = t.elapsed();
        let job = s.checkpoint_job(cp.id).expect("a job");
        for _ in 0..120_000 {
            s.put(v, Key::Bytes(&keys[r.below(n)]), &[], &[round + 9, 1]).expect("a write");
        }
        let mut chunks = Vec::new();
        while !job.run(&mut chunks, 64 * 1024, 1 << 20).expect("a chunk") {}
        let pinned = s.memory().pinned_bytes;
        let t = Instant::now();
        s.checkpoint_progress(cp.id).expect("progress");
        let settle = t.elapsed();
        let t = Instant::now();
        s.checkpoint_confirm(cp.id).expect("a confirm");
        let confirm = t.elapsed();
        println!("round {round}: take {take:?}, settle {settle:?} ({pinned} bytes pinned), confirm {confirm:?}");
    }
}
