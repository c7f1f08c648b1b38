//! Where inserting and reading 1M keys spends its time (native):
//! `cargo run --release --example probe_put`, or under `perf record`.
use keystate_core::*;
use std::time::Instant;
fn main() {
    let n = 1_000_000u32;
    let keys: Vec<String> = (0..n).map(|i| format!("user-{i}")).collect();
    let mut s = Store::new(StoreConfig::new(128, None, [1; 16]).unwrap());
    let st = s.register_state(StateDescriptor::new("count", StateKind::Value, "number", "").unwrap()).unwrap();
    let t = Instant::now();
    for (i, k) in keys.iter().enumerate() {
        s.put(st, Key::Bytes(k.as_bytes()), &[], &(i as u32 % 1000).to_le_bytes()[..2]).unwrap();
    }
    println!("insert {:.0} ns/op", t.elapsed().as_nanos() as f64 / n as f64);
    let t = Instant::now();
    for (i, k) in keys.iter().enumerate() {
        s.put(st, Key::Bytes(k.as_bytes()), &[], &(i as u32 % 1000 + 1).to_le_bytes()[..2]).unwrap();
    }
    println!("overwrite {:.0} ns/op", t.elapsed().as_nanos() as f64 / n as f64);
    let t = Instant::now();
    let mut sum = 0usize;
    for k in &keys {
        sum += s.get(st, Key::Bytes(k.as_bytes()), &[], None).unwrap().unwrap().len();
    }
    println!("get {:.0} ns/op ({sum})", t.elapsed().as_nanos() as f64 / n as f64);
}
