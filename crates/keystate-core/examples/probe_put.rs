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
    // Random order, as a service reading keys as events arrive sees them.
    let shuffled: Vec<&String> = (0..n as usize).map(|i| &keys[i * 7919 % n as usize]).collect();
    let t = Instant::now();
    let mut sum1 = 0usize;
    for k in &shuffled {
        sum1 += s.get(st, Key::Bytes(k.as_bytes()), &[], None).unwrap().unwrap().len();
    }
    println!("get, random order {:.0} ns/op ({sum1})", t.elapsed().as_nanos() as f64 / n as f64);
    let t = Instant::now();
    let mut sum3 = 0usize;
    for chunk in shuffled.chunks(1000) {
        s.read_many(st, &[], chunk.iter().map(|k| k.as_bytes()), None, |v| sum3 += v.unwrap().len()).unwrap();
    }
    println!("read_many, random order {:.0} ns/op ({sum3})", t.elapsed().as_nanos() as f64 / n as f64);
    let t = Instant::now();
    let mut sum2 = 0usize;
    for chunk in keys.chunks(1000) {
        s.read_many(st, &[], chunk.iter().map(|k| k.as_bytes()), None, |v| sum2 += v.unwrap().len()).unwrap();
    }
    println!("read_many {:.0} ns/op ({sum2})", t.elapsed().as_nanos() as f64 / n as f64);
    let t = Instant::now();
    let v = 7u16.to_le_bytes();
    for chunk in keys.chunks(1000) {
        s.write_many(st, &[], chunk.iter().map(|k| (k.as_bytes(), Some(&v[..])))).unwrap();
    }
    println!("write_many (overwrite) {:.0} ns/op", t.elapsed().as_nanos() as f64 / n as f64);
}
