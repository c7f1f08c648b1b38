use keystate_core::*;
use std::time::Instant;
fn main() {
    let n = 1_000_000usize;
    let mut s = Store::new(StoreConfig::new(128, None, [1; 16]).unwrap());
    let st = s.register_state(StateDescriptor::new("count", StateKind::Value, "number", "").unwrap()).unwrap();
    let keys: Vec<String> = (0..n).map(|i| format!("user-{i:06}")).collect();
    for (i, k) in keys.iter().enumerate() { s.put(st, Key::Bytes(k.as_bytes()), &[], &(i as u32 % 1000).to_le_bytes()[..2]).unwrap(); }
    let mut order: Vec<usize> = (0..n).collect();
    let mut x: u64 = 99;
    for i in (1..n).rev() { x ^= x << 13; x ^= x >> 7; x ^= x << 17; order.swap(i, (x % (i as u64 + 1)) as usize); }
    for _ in 0..4 {
        let t = Instant::now();
        let mut sum = 0usize;
        for &i in &order { sum += s.get(st, Key::Bytes(keys[i].as_bytes()), &[], None).unwrap().unwrap().len(); }
        let get = t.elapsed();
        let t = Instant::now();
        for &i in &order { s.put(st, Key::Bytes(keys[i].as_bytes()), &[], &(i as u32 % 999).to_le_bytes()[..2]).unwrap(); }
        println!("get {:?}/op  overwrite {:?}/op  ({sum})", get / n as u32, t.elapsed() / n as u32);
    }
}
