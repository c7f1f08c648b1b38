//! Randomized model test: millions of operations against a `BTreeMap`
//! reference, with snapshots taken and released at random and each open
//! snapshot checked against the model's copy of its moment.

mod common;

use common::*;
use keystate_core::{Key, Store};

fn key(rng: &mut Rng, keys: u64, long: bool) -> Vec<u8> {
    if long {
        // 10 bytes: with a short value, a record of 14 to 16 bytes, which
        // a wide slot holds in less room (see `run_checked`'s `wide_min`).
        format!("key-{:06}", rng.below(keys)).into_bytes()
    } else {
        format!("k{}", rng.below(keys)).into_bytes()
    }
}

fn ns(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(80) {
        Vec::new()
    } else {
        format!("ns{}", rng.below(3)).into_bytes()
    }
}

fn value(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(2) {
        rng.bytes(5000) // large records, own allocation
    } else {
        rng.bytes(40)
    }
}

/// The model's entries of the map of (k, n): a range of the ordered model.
fn map_entries<'a>(m: &'a Model, k: &[u8], n: &[u8]) -> impl Iterator<Item = (&'a Entry, &'a Vec<u8>)> {
    let mut after = n.to_vec();
    after.push(0);
    m.range((MAP, k.to_vec(), n.to_vec(), None)..(MAP, k.to_vec(), after, None))
}

/// A value for the value state: with `small`, most of them short enough to
/// sit inline in a wide index beside their key (a table goes wide only when
/// nearly all of its entries fit).
fn small_or_not(rng: &mut Rng, small: bool) -> Vec<u8> {
    if small && rng.chance(98) {
        let n = 2 + rng.below(3) as usize;
        (0..n).map(|_| rng.next() as u8).collect()
    } else {
        value(rng)
    }
}

fn run(seed: u64, ops: u64, keys: u64) -> Store {
    run_checked(seed, ops, keys, false, None)
}

/// Runs `ops` random operations, checking reads against a model, and
/// returns the store. With `wide_min`, tables of the value state may go
/// wide from that many entries on, and half its values are small.
fn run_checked(seed: u64, ops: u64, keys: u64, paranoid: bool, wide_min: Option<usize>) -> Store {
    let mut rng = Rng(seed);
    let mut store = store_with_states(32, None);
    if let Some(n) = wide_min {
        store.set_wide_min(n);
    }
    let mut model = Model::new();
    let mut snaps: Vec<(u64, Model)> = Vec::new();
    for step in 0..ops {
        if paranoid {
            store.check_invariants();
            assert_eq!(dump(&store, None), model, "live before step {step}");
            for (s, m) in &snaps {
                assert_eq!(&dump(&store, Some(*s)), m, "snapshot {s} before step {step}");
            }
        }
        let k = key(&mut rng, keys, wide_min.is_some());
        let n = ns(&mut rng);
        let choice = rng.below(100);
        match choice {
            0..=1 => {
                // A batch into one namespace: puts and removals in order,
                // keys may repeat; now and then a large one, which resizes.
                let n = if wide_min.is_some() && rng.chance(98) { Vec::new() } else { n };
                let len = if rng.chance(5) { 1 + rng.below(2000) } else { 1 + rng.below(64) };
                let mut ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
                for _ in 0..len {
                    let k = key(&mut rng, keys, wide_min.is_some());
                    let v = rng.chance(80).then(|| small_or_not(&mut rng, wide_min.is_some()));
                    ops.push((k, v));
                }
                let applied = store.write_many(VALUE, &n, ops.iter().map(|(k, v)| (&k[..], v.as_deref()))).unwrap();
                assert_eq!(applied, ops.len(), "step {step}");
                for (k, v) in ops {
                    match v {
                        Some(v) => model.insert((VALUE, k, n.clone(), None), v),
                        None => model.remove(&(VALUE, k, n.clone(), None)),
                    };
                }
            }
            2..=24 => {
                let v = small_or_not(&mut rng, wide_min.is_some());
                // Entries with a namespace are never inline: fewer of them.
                let n = if wide_min.is_some() && rng.chance(98) { Vec::new() } else { n };
                store.put(VALUE, Key::Bytes(&k), &n, &v).unwrap();
                model.insert((VALUE, k, n, None), v);
            }
            25..=32 => {
                let had = store.remove(VALUE, Key::Bytes(&k), &n).unwrap();
                assert_eq!(had, model.remove(&(VALUE, k, n, None)).is_some(), "step {step}");
            }
            33..=44 => {
                let v = rng.bytes(12);
                store.append(LIST, Key::Bytes(&k), &n, &v).unwrap();
                model.entry((LIST, k, n, None)).or_default().extend_from_slice(&v);
            }
            45..=47 => {
                let v = value(&mut rng);
                store.put(LIST, Key::Bytes(&k), &n, &v).unwrap();
                model.insert((LIST, k, n, None), v);
            }
            48..=50 => {
                store.remove(LIST, Key::Bytes(&k), &n).unwrap();
                model.remove(&(LIST, k, n, None));
            }
            51..=66 => {
                let uk = format!("u{}", rng.below(20)).into_bytes();
                let v = value(&mut rng);
                store.map_put(MAP, Key::Bytes(&k), &n, &uk, &v).unwrap();
                model.insert((MAP, k, n, Some(uk)), v);
            }
            67..=72 => {
                let uk = format!("u{}", rng.below(20)).into_bytes();
                let had = store.map_remove(MAP, Key::Bytes(&k), &n, &uk).unwrap();
                assert_eq!(had, model.remove(&(MAP, k, n, Some(uk))).is_some(), "step {step}");
            }
            73..=74 => {
                store.remove(MAP, Key::Bytes(&k), &n).unwrap();
                let gone: Vec<_> = map_entries(&model, &k, &n).map(|(e, _)| e.clone()).collect();
                for e in gone {
                    model.remove(&e);
                }
            }
            75..=86 => {
                // Point read, live or at a random open snapshot.
                let (at, m) = if !snaps.is_empty() && rng.chance(60) {
                    let (s, m) = &snaps[rng.below(snaps.len() as u64) as usize];
                    (Some(*s), m)
                } else {
                    (None, &model)
                };
                let state = [VALUE, LIST, MAP][rng.below(3) as usize];
                if state == MAP {
                    let uk = format!("u{}", rng.below(20)).into_bytes();
                    let got = store.map_get(MAP, Key::Bytes(&k), &n, &uk, at).unwrap();
                    assert_eq!(got, m.get(&(MAP, k.clone(), n.clone(), Some(uk))).map(|v| &v[..]), "step {step}");
                    let len = store.map_len(MAP, Key::Bytes(&k), &n, at).unwrap();
                    let want = map_entries(m, &k, &n).count();
                    assert_eq!(len, want, "map len, step {step}");
                } else {
                    let got = store.get(state, Key::Bytes(&k), &n, at).unwrap();
                    assert_eq!(got, m.get(&(state, k, n, None)).map(|v| &v[..]), "step {step}");
                }
            }
            87..=90 => {
                // Snapshots are cheap here but the model's copy is not.
                if snaps.len() < 5 && rng.below(keys) < 20 {
                    snaps.push((store.snapshot().unwrap(), model.clone()));
                }
            }
            91..=94 => {
                if !snaps.is_empty() && rng.below(keys) < 20 {
                    let i = rng.below(snaps.len() as u64) as usize;
                    let (s, m) = snaps.remove(i);
                    if rng.chance(25) {
                        assert_eq!(dump(&store, Some(s)), m, "snapshot {s} before release, step {step}");
                    }
                    store.release(s).unwrap();
                    assert!(store.get(VALUE, Key::Bytes(b"x"), &[], Some(s)).is_err(), "released snapshot still readable");
                }
            }
            _ => {
                // Full check, about ten times a run.
                if rng.below(ops) < 200 {
                    store.check_invariants();
                    assert_eq!(dump(&store, None), model, "live, step {step}");
                    for (s, m) in &snaps {
                        assert_eq!(&dump(&store, Some(*s)), m, "snapshot {s}, step {step}");
                    }
                    let mem = store.memory();
                    let entries = model.len() as u64;
                    assert_eq!(mem.entries, entries, "entry count, step {step}");
                    if snaps.is_empty() {
                        assert_eq!(mem.pinned_bytes, 0, "pinned with no snapshot open, step {step}");
                    }
                }
            }
        }
    }
    store.check_invariants();
    assert_eq!(dump(&store, None), model);
    for (s, m) in snaps.drain(..) {
        assert_eq!(dump(&store, Some(s)), m);
        check_reads(&mut store, Some(s), &m);
        store.release(s).unwrap();
    }
    check_reads(&mut store, None, &model);
    let mem = store.memory();
    assert_eq!(mem.pinned_bytes, 0, "releasing every snapshot returns all pinned memory");
    assert_eq!(mem.open_snapshots, 0);
    store
}

#[test]
fn model_small_key_space() {
    for seed in 0..4 {
        run(seed, 250_000, 200);
    }
}

#[test]
fn model_large_key_space() {
    // Tables this large take their new records from runs (`arena::Runs`),
    // under open snapshots and with compaction moving records.
    let store = run(42, 1_000_000, 20_000);
    assert!(store.runs_claimed() > 0, "runs were claimed");
}

#[test]
fn memory_returns_to_baseline_after_snapshot_churn() {
    let mut store = store_with_states(16, None);
    let mut rng = Rng(5);
    for i in 0..20_000u32 {
        store.put(VALUE, Key::Bytes(format!("k{i}").as_bytes()), &[], &rng.bytes(16)).unwrap();
    }
    let before = store.memory();
    for _ in 0..20 {
        let s = store.snapshot().unwrap();
        for i in 0..20_000u32 {
            if rng.chance(30) {
                store.put(VALUE, Key::Bytes(format!("k{i}").as_bytes()), &[], &rng.bytes(16)).unwrap();
            }
        }
        assert!(store.memory().pinned_bytes > 0);
        store.release(s).unwrap();
        assert_eq!(store.memory().pinned_bytes, 0);
    }
    let after = store.memory();
    // Freed copies are reused: the arena does not keep growing with churn.
    assert!(
        after.arena_bytes <= before.arena_bytes * 3 / 2 + (1 << 20),
        "arena grew from {} to {}",
        before.arena_bytes,
        after.arena_bytes
    );
}

/// Every step checked in full, with the store's structural invariants
/// (each record referenced once, every entry found at its slot, arena
/// accounting exact): small, but catches a broken step where it happens.
#[test]
fn model_paranoid() {
    run_checked(7, 4_000, 150, true, None);
}

/// The model with wide tables (entries inline in the index) from 8 entries
/// on: conversions both ways at resizes, inline entries saved for open
/// snapshots, overwritten, removed and listed.
#[test]
fn model_with_wide_tables() {
    for seed in 0..3 {
        let store = run_checked(seed, 250_000, 4_000, false, Some(8));
        let (tables, inline) = store.wide_tables();
        assert!(tables > 0 && inline > 0, "seed {seed}: {tables} wide tables, {inline} inline entries");
    }
    run_checked(11, 6_000, 300, true, Some(8));
}
