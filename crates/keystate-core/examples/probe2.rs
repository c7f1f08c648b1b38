use keystate_core::*;
use std::time::Instant;
fn main() {
    for (n, mp) in [(100_000u32, 128u32), (1_000_000, 128), (1_000_000, 1), (1_000_000, 4096)] {
        let mut s = Store::new(StoreConfig::new(mp, None, [1; 16]).unwrap());
        let st = s.register_state(StateDescriptor::new("count", StateKind::Value, "number", "").unwrap()).unwrap();
        let keys: Vec<String> = (0..n).map(|i| format!("user-{i:06}")).collect();
        let t = Instant::now();
        for (i, k) in keys.iter().enumerate() {
            s.put(st, Key::Bytes(k.as_bytes()), &[], &(i as u32 % 1000).to_le_bytes()[..2]).unwrap();
        }
        println!("n {n} mp {mp}: put {:?} per op {:?}", t.elapsed(), t.elapsed() / n);
    }
}
