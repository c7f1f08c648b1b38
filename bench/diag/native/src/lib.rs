//! What the diagnostics share: the store of 1M keys and a PRNG.
use keystate_core::{export_all, Key, Policy, StateDescriptor, StateKind, Store, StoreConfig};

/// `user-000000`.. `user-{n-1}`.
pub fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("user-{i:06}").into_bytes()).collect()
}

/// A store of 128 key groups with one number state holding `keys` (2-byte values); the state's id.
pub fn filled(keys: &[Vec<u8>]) -> (Store, u32) {
    let mut s = Store::new(StoreConfig::new(128, None, [1; 16]).expect("a valid config"));
    let st = s.register_state(StateDescriptor::new("count", StateKind::Value, "number", "").expect("a valid state")).expect("a new state");
    for (i, k) in keys.iter().enumerate() {
        s.put(st, Key::Bytes(k), &[], &(i as u32 % 1000).to_le_bytes()[..2]).expect("a write");
    }
    (s, st)
}

/// `filled`, with incremental checkpoints on (a full one after
/// `max_incrementals`; 0: never) and a confirmed full checkpoint as their
/// base: the next checkpoint holds only what changes from here.
pub fn with_base(keys: &[Vec<u8>], max_incrementals: u32) -> (Store, u32) {
    let (mut s, st) = filled(keys);
    s.set_checkpoint_policy(Policy { incremental: true, max_incrementals, max_chain_ratio: 0.0 }).expect("a policy");
    let cp = s.checkpoint(None).expect("a checkpoint");
    export_all(&mut s, cp.id).expect("an export");
    s.checkpoint_confirm(cp.id).expect("a confirm");
    (s, st)
}

/// Rewrites the 1% of `keys` that round `round` changes (10,000 of 1M:
/// every 97th from `round` on), each to `round`: what an incremental
/// checkpoint of that round holds.
pub fn rewrite_1pct(s: &mut Store, st: u32, keys: &[Vec<u8>], round: u32) {
    let n = keys.len();
    for i in 0..n / 100 {
        s.put(st, Key::Bytes(&keys[(i * 97 + round as usize) % n]), &[], &round.to_le_bytes()[..2]).expect("a write");
    }
}

/// xorshift64: a seeded random order.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The `p` quantile of `v` (sorted in place).
pub fn quantile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}
