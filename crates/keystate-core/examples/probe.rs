use keystate_core::*;
use std::time::Instant;
fn main() {
    let n = 1_000_000u32;
    let mut s = Store::new(StoreConfig::new(128, None, [1; 16]).unwrap());
    let st = s.register_state(StateDescriptor::new("count", StateKind::Value, "number", "").unwrap()).unwrap();
    let t = Instant::now();
    for i in 0..n {
        let k = format!("user-{i:06}");
        s.put(st, Key::Bytes(k.as_bytes()), &[], &(i % 1000).to_le_bytes()[..2]).unwrap();
    }
    println!("put {:?}", t.elapsed());
    let t = Instant::now();
    let cp = s.checkpoint(None).unwrap();
    let bytes = export_all(&mut s, cp.id).unwrap();
    println!("export {:?} {} bytes", t.elapsed(), bytes.len());
    let t = Instant::now();
    let r = restore_chain(&[&bytes], RestoreOptions { key_groups: None, new_store_id: [0; 16] }).unwrap();
    println!("restore {:?} {}", t.elapsed(), r.memory().entries);
}
