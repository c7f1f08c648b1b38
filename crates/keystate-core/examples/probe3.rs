use keystate_core::*;
use std::time::Instant;
fn main() {
    let n = 1_000_000u32;
    let mut s = Store::new(StoreConfig::new(128, None, [1; 16]).unwrap());
    let st = s.register_state(StateDescriptor::new("count", StateKind::Value, "number", "").unwrap()).unwrap();
    for i in 0..n {
        let k = format!("user-{i:06}");
        s.put(st, Key::Bytes(k.as_bytes()), &[], &(i % 1000).to_le_bytes()[..2]).unwrap();
    }
    for _ in 0..5 {
        let t = Instant::now();
        let cp = s.checkpoint(None).unwrap();
        let mut out = Vec::with_capacity(1 << 20);
        let mut total = 0;
        loop { out.clear(); let done = s.checkpoint_next(cp.id, &mut out, 1 << 20).unwrap(); total += out.len(); if done { break; } }
        s.checkpoint_abort(cp.id).unwrap();
        println!("export {:?} {} bytes", t.elapsed(), total);
    }
}
