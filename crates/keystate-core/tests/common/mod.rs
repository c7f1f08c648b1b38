//! Shared helpers for the integration tests: a seeded PRNG and a reference
//! model of keyed state built on `std::collections`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use keystate_core::{Key, KeyGroupRange, RestoreOptions, StateDescriptor, StateKind, Store, StoreConfig};

/// splitmix64: small, seeded, good enough for choosing operations.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max as u64 + 1) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// (state, key, namespace, user key) -> value. Lists are their bytes; map
/// entries carry `Some(uk)`.
pub type Entry = (u32, Vec<u8>, Vec<u8>, Option<Vec<u8>>);
pub type Model = BTreeMap<Entry, Vec<u8>>;

pub const VALUE: u32 = 0;
pub const LIST: u32 = 1;
pub const MAP: u32 = 2;

pub fn store_with_states(mp: u32, range: Option<KeyGroupRange>) -> Store {
    let mut s = Store::new(StoreConfig::new(mp, range, [7; 16]).unwrap());
    assert_eq!(s.register_state(StateDescriptor::new("value", StateKind::Value, "bytes", "").unwrap()).unwrap(), VALUE);
    assert_eq!(s.register_state(StateDescriptor::new("list", StateKind::List, "bytes", "").unwrap()).unwrap(), LIST);
    assert_eq!(s.register_state(StateDescriptor::new("map", StateKind::Map, "bytes", "bytes").unwrap()).unwrap(), MAP);
    s
}

/// Everything a store holds for the states of `store_with_states`, live or
/// at a snapshot, as a model.
pub fn dump(store: &Store, at: Option<u64>) -> Model {
    let mut m = Model::new();
    for state in [VALUE, LIST, MAP] {
        store
            .for_each_entry(state, at, |k, ns, uk, v| {
                let old = m.insert((state, k.to_vec(), ns.to_vec(), uk.map(|u| u.to_vec())), v.to_vec());
                assert!(old.is_none(), "entry listed twice");
            })
            .unwrap();
    }
    m
}

/// Entries of `model` whose key belongs to a key group in `range`.
pub fn filter_range(model: &Model, store: &Store, range: KeyGroupRange) -> Model {
    model.iter().filter(|((_, k, _, _), _)| range.contains(store.key_group(k))).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Checks point reads of every model entry (and that the store has no more).
pub fn check_reads(store: &mut Store, at: Option<u64>, model: &Model) {
    for ((state, k, ns, uk), v) in model {
        let got = match uk {
            Some(uk) => store.map_get(*state, Key::Bytes(k), ns, uk, at).unwrap(),
            None => store.get(*state, Key::Bytes(k), ns, at).unwrap(),
        };
        assert_eq!(got, Some(&v[..]), "read of state {state} key {k:?} ns {ns:?} uk {uk:?} at {at:?}");
    }
}

pub fn full_checkpoint(store: &mut Store) -> Vec<u8> {
    let cp = store.checkpoint(None).unwrap();
    keystate_core::export_all(store, cp.id).unwrap()
}

pub fn opts(range: Option<KeyGroupRange>) -> RestoreOptions {
    RestoreOptions { key_groups: range, new_store_id: [9; 16] }
}

/// A checkpoint's format version and its sections (key group, body), in
/// order, read and verified by the core's decoder.
pub fn sections(bytes: &[u8]) -> (u16, Vec<(u32, Vec<u8>)>) {
    use keystate_core::format::read::{Decoder, Event};
    let mut d = Decoder::new();
    let (mut version, mut out) = (0, Vec::new());
    d.feed(bytes, &mut |ev| {
        match ev {
            Event::Header(h) => version = h.version,
            Event::Section { key_group, body } => out.push((key_group, body.to_vec())),
        }
        Ok(())
    })
    .unwrap();
    d.finish().unwrap();
    (version, out)
}
