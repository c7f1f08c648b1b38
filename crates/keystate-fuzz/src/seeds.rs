//! Seed checkpoints, written by the core through its public API: chains of a
//! full checkpoint and incremental ones over every state kind (namespaces,
//! lists, inline and nested maps, large values, tombstones of every kind),
//! their compactions, stores of one key group and of a key-group subset, an
//! empty store, a store without states, two stores of disjoint ranges
//! for rescaling, and a store whose states have TTL (stamped values, expiry
//! removals, full checkpoints without what expired). Small, so that a case
//! runs in microseconds.

use keystate_core::{compact, export_all, Key, KeyGroupRange, Policy, StateDescriptor, StateKind, Store, StoreConfig, TtlConfig, TtlUpdate, TtlVisibility};

use crate::rng::Rng;
use crate::wire::Wire;

/// A chain as one store wrote it.
#[derive(Debug, Clone)]
pub struct Lineage {
    pub name: &'static str,
    pub mp: u32,
    /// `[full, delta1, ...]`, bytes and parts.
    pub pieces: Vec<(Vec<u8>, Wire)>,
    /// `compacted[k]`: the compaction of `pieces[..=k + 1]`.
    pub compacted: Vec<(Vec<u8>, Wire)>,
}

/// Every seed of a run.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub lineages: Vec<Lineage>,
    /// Lineages of one max parallelism and disjoint ranges (rescaling).
    pub pairs: Vec<(usize, usize)>,
}

const STATES: [(&str, StateKind, &str, &str); 5] = [
    ("count", StateKind::Value, "number", ""),
    ("seen", StateKind::List, "string", ""),
    ("prefs", StateKind::Map, "string", "key"),
    ("total", StateKind::Reducing, "number", ""),
    ("avg", StateKind::Aggregating, "cbor", ""),
];

struct Spec {
    name: &'static str,
    mp: u32,
    range: Option<(u32, u32)>,
    states: usize,
    keys: u64,
    ops: u32,
    deltas: u32,
    seed: u64,
    /// States with TTL, and a clock that advances with the operations.
    ttl: bool,
}

/// The TTL of seed state `i` in a store with TTL: every kind of update,
/// visibility and cleanup among them.
fn ttl_of(i: usize) -> TtlConfig {
    let base = TtlConfig::new(100).expect("a seed TTL");
    match i {
        0 => TtlConfig { full_snapshot: true, ..base },
        1 => TtlConfig { update: TtlUpdate::OnReadAndWrite, incremental: None, full_snapshot: true, ..base },
        2 => TtlConfig { ttl_ms: 60, visibility: TtlVisibility::ReturnExpiredIfNotCleanedUp, incremental: Some(2), every_record: true, ..base },
        3 => TtlConfig { ttl_ms: u64::MAX, ..base },
        _ => TtlConfig { ttl_ms: 40, incremental: Some(3), full_snapshot: true, ..base },
    }
}

fn store(spec: &Spec) -> Store {
    let range = spec.range.map(|(s, e)| KeyGroupRange::new(s, e));
    let mut store = Store::new(StoreConfig::new(spec.mp, range, [spec.seed as u8; 16]).expect("seed config"));
    for (i, (name, kind, codec, uk)) in STATES[..spec.states].iter().enumerate() {
        let d = StateDescriptor::new(name, *kind, codec, uk).and_then(|d| d.with_ttl(spec.ttl.then(|| ttl_of(i))));
        store.register_state(d.expect("seed state")).expect("seed state");
    }
    store
}

/// A key of this store's range (keys outside it are skipped).
fn key(store: &Store, rng: &mut Rng, keys: u64) -> Vec<u8> {
    let range = store.config().key_groups;
    loop {
        let k = format!("user-{}", rng.below(keys)).into_bytes();
        if range.contains(store.key_group(&k)) {
            return k;
        }
    }
}

fn value(rng: &mut Rng) -> Vec<u8> {
    match rng.below(40) {
        0 => vec![rng.u64() as u8; 2100 + rng.index(400)],
        1..=4 => rng.bytes(300),
        _ => rng.bytes(12),
    }
}

fn ops(store: &mut Store, spec: &Spec, rng: &mut Rng, n: u32) {
    let states = spec.states as u64;
    for _ in 0..n {
        if states == 0 {
            return;
        }
        if spec.ttl {
            store.set_time(store.time() + rng.below(12)).expect("a seed time");
            if rng.chance(5) {
                store.expire().unwrap();
            }
        }
        let k = key(store, rng, spec.keys);
        let ns: &[u8] = if rng.chance(15) { b"w1" } else { b"" };
        let mut v = value(rng);
        let state = rng.below(states) as u32;
        if spec.ttl && state == 1 {
            // A list state with TTL stamps each element: its values are frames.
            let mut framed = Vec::new();
            keystate_core::varint::put(&mut framed, v.len().min(9) as u64);
            framed.extend_from_slice(&v[..v.len().min(9)]);
            v = framed;
        }
        let r = match (state, rng.below(10)) {
            (1, 0..=6) => store.append(1, Key::Bytes(&k), ns, &v[..v.len().min(10)]),
            (2, 0..=5) => {
                // Some maps outgrow the inline form (more than 16 entries).
                let spread = if rng.chance(20) { 40 } else { 5 };
                let uk = format!("u{}", rng.below(spread));
                store.map_put(2, Key::Bytes(&k), ns, uk.as_bytes(), &v)
            }
            (_, 7) if spec.ttl => store.get(state, Key::Bytes(&k), ns, None).map(drop).or_else(|_| store.map_len(state, Key::Bytes(&k), ns, None).map(drop)),
            (2, 6 | 7) => store.map_remove(2, Key::Bytes(&k), ns, format!("u{}", rng.below(5)).as_bytes()).map(drop),
            (_, 0..=6) => store.put(state, Key::Bytes(&k), ns, &v),
            _ => store.remove(state, Key::Bytes(&k), ns).map(drop),
        };
        r.expect("seed write");
    }
}

fn lineage(spec: &Spec) -> Lineage {
    let mut rng = Rng::new(spec.seed);
    let mut s = store(spec);
    s.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).expect("policy");
    let mut pieces = Vec::new();
    for round in 0..=spec.deltas {
        ops(&mut s, spec, &mut rng, if round == 0 { spec.ops } else { spec.ops / 3 + 1 });
        let cp = s.checkpoint(Some(round > 0)).expect("seed checkpoint");
        let bytes = export_all(&mut s, cp.id).expect("seed export");
        s.checkpoint_confirm(cp.id).expect("seed confirm");
        pieces.push(bytes);
    }
    let compacted = (2..=pieces.len())
        .map(|n| compact(&pieces[..n].iter().map(Vec::as_slice).collect::<Vec<_>>()).expect("seed compaction"))
        .collect::<Vec<_>>();
    let parse = |b: Vec<u8>| {
        let w = Wire::parse(&b).expect("the harness reads what the core writes, byte for byte");
        (b, w)
    };
    Lineage { name: spec.name, mp: spec.mp, pieces: pieces.into_iter().map(parse).collect(), compacted: compacted.into_iter().map(parse).collect() }
}

impl Corpus {
    pub fn build() -> Corpus {
        let specs = [
            Spec { name: "mp4", mp: 4, range: None, states: 5, keys: 40, ops: 90, deltas: 3, seed: 1, ttl: false },
            Spec { name: "mp1", mp: 1, range: None, states: 5, keys: 12, ops: 40, deltas: 2, seed: 2, ttl: false },
            Spec { name: "mp128-subset", mp: 128, range: Some((10, 20)), states: 5, keys: 60, ops: 50, deltas: 2, seed: 3, ttl: false },
            Spec { name: "mp16", mp: 16, range: None, states: 5, keys: 150, ops: 200, deltas: 1, seed: 4, ttl: false },
            Spec { name: "mp8-low", mp: 8, range: Some((0, 3)), states: 3, keys: 30, ops: 40, deltas: 1, seed: 5, ttl: false },
            Spec { name: "mp8-high", mp: 8, range: Some((4, 7)), states: 3, keys: 30, ops: 40, deltas: 1, seed: 6, ttl: false },
            Spec { name: "empty", mp: 4, range: None, states: 5, keys: 4, ops: 0, deltas: 1, seed: 7, ttl: false },
            Spec { name: "stateless", mp: 2, range: None, states: 0, keys: 1, ops: 0, deltas: 1, seed: 8, ttl: false },
            Spec { name: "ttl-mp4", mp: 4, range: None, states: 5, keys: 40, ops: 120, deltas: 3, seed: 9, ttl: true },
        ];
        Corpus { lineages: specs.iter().map(lineage).collect(), pairs: vec![(4, 5)] }
    }

    /// Total bytes of all seed pieces.
    pub fn bytes(&self) -> usize {
        self.lineages.iter().flat_map(|l| l.pieces.iter().chain(&l.compacted)).map(|(b, _)| b.len()).sum()
    }
}
