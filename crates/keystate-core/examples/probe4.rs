use keystate_core::*;
use std::time::Instant;
fn main() {
    let n = 1_000_000u32;
    let mut s = Store::new(StoreConfig::new(128, None, [1; 16]).unwrap());
    let st = s.register_state(StateDescriptor::new("count", StateKind::Value, "number", "").unwrap()).unwrap();
    let keys: Vec<String> = (0..n).map(|i| format!("user-{i:06}")).collect();
    for (i, k) in keys.iter().enumerate() {
        s.put(st, Key::Bytes(k.as_bytes()), &[], &(i as u32 % 1000).to_le_bytes()[..2]).unwrap();
    }
    s.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).unwrap();
    let cp = s.checkpoint(None).unwrap();
    export_all(&mut s, cp.id).unwrap();
    s.checkpoint_confirm(cp.id).unwrap();
    let full_too = std::env::args().count() < 2;
    for round in 0..if full_too { 5u32 } else { 100 } {
        for i in 0..10_000usize {
            s.put(st, Key::Bytes(keys[(i * 97 + round as usize) % n as usize].as_bytes()), &[], &round.to_le_bytes()[..2]).unwrap();
        }
        let t = Instant::now();
        let cp = s.checkpoint(None).unwrap();
        let b = export_all(&mut s, cp.id).unwrap();
        let te = t.elapsed();
        s.checkpoint_confirm(cp.id).unwrap();
        if !full_too { continue; }
        let tf = Instant::now();
        let full = s.checkpoint(Some(false)).unwrap();
        let fb = export_all(&mut s, full.id).unwrap();
        let tfe = tf.elapsed();
        s.checkpoint_abort(full.id).unwrap();
        println!("incremental {:?} {} bytes ({:?} incl confirm) full {:?} {} bytes", te, b.len(), t.elapsed() - tfe, tfe, fb.len());
    }
}
