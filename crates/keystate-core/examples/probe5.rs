use keystate_core::*;
use std::time::Instant;
fn q(v: &mut [f64], p: f64) -> f64 { v.sort_by(|a, b| a.partial_cmp(b).unwrap()); v[((v.len() as f64) * p) as usize] }
fn main() {
    let n = 1_000_000usize;
    let mut s = Store::new(StoreConfig::new(128, None, [1; 16]).unwrap());
    let st = s.register_state(StateDescriptor::new("count", StateKind::Value, "number", "").unwrap()).unwrap();
    let keys: Vec<String> = (0..n).map(|i| format!("user-{i:06}")).collect();
    for (i, k) in keys.iter().enumerate() { s.put(st, Key::Bytes(k.as_bytes()), &[], &(i as u32 % 1000).to_le_bytes()[..2]).unwrap(); }
    let mut x: u64 = 12345;
    for exporting in [false, true, false, true] {
        let mut lat = Vec::with_capacity(200_000);
        let mut cp: Option<u64> = None;
        let mut out = Vec::new();
        for j in 0..200_000usize {
            if j % 100 == 0 && exporting {
                let id = match cp { Some(id) => id, None => { let c = s.checkpoint(Some(false)).unwrap(); cp = Some(c.id); c.id } };
                out.clear();
                if s.checkpoint_next(id, &mut out, 64 * 1024).unwrap() { s.checkpoint_abort(id).unwrap(); cp = None; }
            }
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            let k = &keys[(x % n as u64) as usize];
            let t = Instant::now();
            s.put(st, Key::Bytes(k.as_bytes()), &[], &(j as u32 % 1000).to_le_bytes()[..2]).unwrap();
            lat.push(t.elapsed().as_nanos() as f64);
        }
        if let Some(id) = cp { s.checkpoint_abort(id).unwrap(); }
        println!("exporting {exporting}: p50 {:.0} ns p99 {:.0} ns p999 {:.0} ns", q(&mut lat, 0.5), q(&mut lat, 0.99), q(&mut lat, 0.999));
    }
}
