//! A full export against an incremental one of 10,000 changed keys (1%), on
//! the owner's thread and as a background job.
use keystate_core::export_all;
use keystate_diag::{keys, rewrite_1pct, with_base};
use std::time::Instant;

fn main() {
    let n = 1_000_000;
    let keys = keys(n);
    let (mut s, st) = with_base(&keys, 0);
    for round in 0..5u32 {
        rewrite_1pct(&mut s, st, &keys, round);
        let t = Instant::now();
        let cp = s.checkpoint(None).expect("a checkpoint");
        let inc = export_all(&mut s, cp.id).expect("an export");
        let ti = t.elapsed();
        s.checkpoint_confirm(cp.id).expect("a confirm");
        let t = Instant::now();
        let full = s.checkpoint(Some(false)).expect("a checkpoint");
        let fb = export_all(&mut s, full.id).expect("an export");
        let tf = t.elapsed();
        s.checkpoint_abort(full.id).expect("an abort");
        let t = Instant::now();
        let job_cp = s.checkpoint(Some(false)).expect("a checkpoint");
        let job = s.checkpoint_job(job_cp.id).expect("a job");
        let mut chunks = Vec::new();
        while !job.run(&mut chunks, 64 * 1024, 1 << 20).expect("a chunk") {}
        let tj = t.elapsed();
        s.checkpoint_abort(job_cp.id).expect("an abort");
        println!(
            "incremental {ti:?} ({} bytes, {:.1}% of the full's time), full {tf:?} ({} bytes), full as a job {tj:?}",
            inc.len(),
            ti.as_secs_f64() / tf.as_secs_f64() * 100.0,
            fb.len()
        );
    }
}
