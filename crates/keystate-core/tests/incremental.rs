//! Incremental checkpoints: a randomized model test with random writes and
//! removals of every state kind, random full and incremental checkpoints
//! exported while writers run, random aborts and out-of-order confirms. Every
//! confirmed checkpoint's chain must restore exactly to the model's state at
//! the moment the checkpoint was taken, and each delta may hold no more
//! records than the distinct entries changed since its parent.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use keystate_core::{compact, export_all, restore_chain, CheckpointKind, Key, Policy, RestoreOptions, Store};

/// An identity that changed: (state, key, ns, user key or whole-map marker).
type Changed = (u32, Vec<u8>, Vec<u8>, Option<Vec<u8>>);

struct InFlight {
    id: u64,
    parent: Option<u64>,
    model: Model,
    out: Vec<u8>,
    done: bool,
}

struct Confirmed {
    parent: Option<u64>,
    bytes: Vec<u8>,
    model: Model,
}

fn chain(confirmed: &BTreeMap<u64, Confirmed>, id: u64) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut at = Some(id);
    while let Some(i) = at {
        let c = &confirmed[&i];
        pieces.push(&c.bytes[..]);
        at = c.parent;
    }
    pieces.reverse();
    pieces
}

fn write_op(store: &mut Store, model: &mut Model, rng: &mut Rng, keys: u64, changed: &mut BTreeSet<Changed>) {
    let k = format!("k{}", rng.below(keys)).into_bytes();
    let ns = if rng.chance(85) { Vec::new() } else { b"w".to_vec() };
    let max = if rng.chance(2) { 3000 } else { 20 };
    let v = rng.bytes(max);
    match rng.below(10) {
        0..=2 => {
            store.put(VALUE, Key::Bytes(&k), &ns, &v).unwrap();
            changed.insert((VALUE, k.clone(), ns.clone(), None));
            model.insert((VALUE, k, ns, None), v);
        }
        3 => {
            if store.remove(VALUE, Key::Bytes(&k), &ns).unwrap() {
                changed.insert((VALUE, k.clone(), ns.clone(), None));
            }
            model.remove(&(VALUE, k, ns, None));
        }
        4 => {
            store.append(LIST, Key::Bytes(&k), &ns, &v[..v.len().min(8)]).unwrap();
            changed.insert((LIST, k.clone(), ns.clone(), None));
            model.entry((LIST, k, ns, None)).or_default().extend_from_slice(&v[..v.len().min(8)]);
        }
        5 => {
            if store.remove(LIST, Key::Bytes(&k), &ns).unwrap() {
                changed.insert((LIST, k.clone(), ns.clone(), None));
            }
            model.remove(&(LIST, k, ns, None));
        }
        6 | 7 => {
            let spread = if rng.chance(20) { 40 } else { 6 };
            let uk = format!("u{}", rng.below(spread)).into_bytes();
            store.map_put(MAP, Key::Bytes(&k), &ns, &uk, &v).unwrap();
            changed.insert((MAP, k.clone(), ns.clone(), Some(uk.clone())));
            model.insert((MAP, k, ns, Some(uk)), v);
        }
        8 => {
            let spread = if rng.chance(20) { 40 } else { 6 };
            let uk = format!("u{}", rng.below(spread)).into_bytes();
            if store.map_remove(MAP, Key::Bytes(&k), &ns, &uk).unwrap() {
                changed.insert((MAP, k.clone(), ns.clone(), Some(uk.clone())));
            }
            model.remove(&(MAP, k, ns, Some(uk)));
        }
        _ => {
            if store.remove(MAP, Key::Bytes(&k), &ns).unwrap() {
                // A whole-map marker: one MAP_CLEAR record.
                changed.insert((MAP, k.clone(), ns.clone(), Some(b"\xff whole".to_vec())));
            }
            model.retain(|(s, mk, mn, _), _| !(*s == MAP && *mk == k && *mn == ns));
        }
    }
}

fn run(seed: u64, steps: u64, keys: u64, policy: Policy) {
    let mut rng = Rng(seed);
    let mut store = store_with_states(8, None);
    store.set_checkpoint_policy(policy).unwrap();
    let mut model = Model::new();
    let mut flight: Vec<InFlight> = Vec::new();
    let mut confirmed: BTreeMap<u64, Confirmed> = BTreeMap::new();
    let mut last_confirmed: Option<u64> = None;
    // Changes since each checkpoint was taken (to bound delta sizes).
    let mut changed_since: BTreeMap<u64, BTreeSet<Changed>> = BTreeMap::new();
    let mut incrementals = 0;
    for step in 0..steps {
        let mut changed = BTreeSet::new();
        write_op(&mut store, &mut model, &mut rng, keys, &mut changed);
        for set in changed_since.values_mut() {
            set.extend(changed.iter().cloned());
        }
        match rng.below(100) {
            0..=3 if flight.len() < 3 => {
                let info = store.checkpoint(Some(rng.chance(80))).unwrap();
                assert_eq!(info.parent_id.is_some(), info.kind == CheckpointKind::Incremental);
                if info.kind == CheckpointKind::Incremental {
                    assert_eq!(info.parent_id, last_confirmed, "an incremental checkpoint extends the last confirmed one");
                    incrementals += 1;
                }
                changed_since.insert(info.id, BTreeSet::new());
                flight.push(InFlight { id: info.id, parent: info.parent_id, model: model.clone(), out: Vec::new(), done: false });
            }
            4..=30 if !flight.is_empty() => {
                // Export a chunk of some checkpoint; writers keep going.
                let i = rng.below(flight.len() as u64) as usize;
                let f = &mut flight[i];
                if !f.done {
                    f.done = store.checkpoint_next(f.id, &mut f.out, 512).unwrap();
                }
            }
            31..=36 if !flight.is_empty() => {
                let i = rng.below(flight.len() as u64) as usize;
                if !flight[i].done || rng.chance(30) {
                    // Abort (finished or not): nothing may be lost.
                    let f = flight.remove(i);
                    store.checkpoint_abort(f.id).unwrap();
                    continue;
                }
                let id = flight[i].id;
                let r = store.checkpoint_confirm(id);
                if last_confirmed.is_some_and(|l| l > id) {
                    let e = r.unwrap_err();
                    assert_eq!(e.code(), "CHECKPOINT_STATE", "{e}");
                    // Refused, and the store still knows it: abort it.
                    store.checkpoint_abort(id).unwrap();
                    flight.remove(i);
                    continue;
                }
                r.unwrap();
                let f = flight.remove(i);
                last_confirmed = Some(id);
                if let Some(parent) = f.parent {
                    // Bound: no more records than distinct changes since the parent was taken.
                    let (version, parts) = sections(&f.out);
                    let delta_records: u64 =
                        parts.iter().map(|(_, body)| keystate_core::format::body::for_each_record(body, version, |_| Ok(())).unwrap()).sum();
                    let bound = changed_since[&parent].len() as u64;
                    assert!(delta_records <= bound, "delta of {delta_records} records, {bound} distinct changes (step {step})");
                }
                confirmed.insert(id, Confirmed { parent: f.parent, bytes: f.out, model: f.model });
                let back = restore_chain(&chain(&confirmed, id), opts(None)).unwrap();
                assert_eq!(dump(&back, None), confirmed[&id].model, "chain of checkpoint {id} (step {step})");
                assert_eq!(back.last_confirmed(), store.last_confirmed(), "restored store continues the chain");
            }
            _ => {}
        }
    }
    assert!(incrementals > 5, "the run should take incremental checkpoints ({incrementals})");
    // Finish everything; afterwards the delta log holds only what changed since.
    for f in flight.drain(..) {
        store.checkpoint_abort(f.id).unwrap();
    }
    let info = store.checkpoint(Some(true)).unwrap();
    let out = export_all(&mut store, info.id).unwrap();
    store.checkpoint_confirm(info.id).unwrap();
    if info.kind == CheckpointKind::Incremental {
        confirmed.insert(info.id, Confirmed { parent: info.parent_id, bytes: out, model: model.clone() });
        let pieces = chain(&confirmed, info.id);
        assert_eq!(dump(&restore_chain(&pieces, opts(None)).unwrap(), None), model);
        // Compaction equals the live state, and the chain continues from it.
        let full = compact(&pieces).unwrap();
        let back = restore_chain(&[&full], opts(None)).unwrap();
        assert_eq!(dump(&back, None), model);
        assert_eq!(back.last_confirmed(), store.last_confirmed());
    }
    assert_eq!(store.memory().delta_log_bytes, 0, "nothing changed since the last confirmed checkpoint");
    assert_eq!(store.memory().open_snapshots, 0);
}

#[test]
fn random_chains_restore_to_the_model() {
    let policy = Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 };
    for seed in 0..6 {
        run(seed, 6_000, 300, policy);
    }
}

#[test]
fn random_chains_with_materialization() {
    let policy = Policy { incremental: true, max_incrementals: 4, max_chain_ratio: 0.5 };
    for seed in 10..14 {
        run(seed, 6_000, 300, policy);
    }
}

fn restore_err(pieces: &[&[u8]]) -> keystate_core::Error {
    restore_chain(pieces, RestoreOptions { key_groups: None, new_store_id: [0; 16] }).map(drop).unwrap_err()
}

#[test]
fn chains_with_a_gap_a_reordering_or_a_foreign_piece_are_refused() {
    let mut store = store_with_states(8, None);
    store.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).unwrap();
    let mut pieces = Vec::new();
    for round in 0..4u32 {
        for i in 0..50u32 {
            let k = format!("k{i}");
            store.put(VALUE, Key::Bytes(k.as_bytes()), &[], &(round * 100 + i).to_le_bytes()).unwrap();
        }
        let info = store.checkpoint(None).unwrap();
        assert_eq!(info.kind == CheckpointKind::Full, round == 0);
        pieces.push(export_all(&mut store, info.id).unwrap());
        store.checkpoint_confirm(info.id).unwrap();
    }
    let p: Vec<&[u8]> = pieces.iter().map(|v| &v[..]).collect();
    assert!(restore_chain(&p, opts(None)).is_ok());
    assert_eq!(restore_err(&[p[0], p[2]]).code(), "BROKEN_CHAIN", "gap");
    assert_eq!(restore_err(&[p[0], p[2], p[1]]).code(), "BROKEN_CHAIN", "reordered");
    assert_eq!(restore_err(&[p[1], p[2]]).code(), "BROKEN_CHAIN", "no full checkpoint first");
    assert_eq!(restore_err(&[p[0], p[0]]).code(), "BROKEN_CHAIN", "two full checkpoints");
    // A piece of another store with the same ids and shape.
    let mut other = store_with_states(8, None);
    let oid = other.config().store_id;
    assert_eq!(oid, store.config().store_id, "same lineage id on purpose: only the link checksum differs");
    other.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).unwrap();
    let mut foreign = Vec::new();
    for round in 0..2u32 {
        other.put(VALUE, Key::Bytes(b"x"), &[], &round.to_le_bytes()).unwrap();
        let info = other.checkpoint(None).unwrap();
        foreign.push(export_all(&mut other, info.id).unwrap());
        other.checkpoint_confirm(info.id).unwrap();
    }
    assert_eq!(restore_err(&[p[0], &foreign[1]]).code(), "BROKEN_CHAIN", "foreign piece");
    // A restore that fails leaves nothing: the same call with the right pieces works.
    assert!(restore_chain(&p[..2], opts(None)).is_ok());
}

/// An entry's member keeps `[Entry, status, kept bytes]`, a map entry's
/// `[MapEntry, user key]`: user keys whose bytes would read as a status and
/// a kept value are still exported as map entries (the export copies kept
/// puts without parsing them, `delta::kept_put`).
#[test]
fn map_members_whose_user_keys_look_like_kept_values_export_as_map_entries() {
    let mut store = store_with_states(8, None);
    store.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 8, max_chain_ratio: 8.0 }).unwrap();
    let full = store.checkpoint(None).unwrap();
    let full_bytes = export_all(&mut store, full.id).unwrap();
    store.checkpoint_confirm(full.id).unwrap();
    let uks: [&[u8]; 7] = [&[2], &[2, 0], &[3, 7], &[4, 1, 2], &[0, 2, 5], &[1], &[2, 2, 2, 2]];
    for (i, uk) in uks.iter().enumerate() {
        store.map_put(MAP, Key::Bytes(b"m"), &[], uk, &[b'v', i as u8]).unwrap();
        store.put(VALUE, Key::Bytes(uk), &[], uk).unwrap();
    }
    let inc = store.checkpoint(None).unwrap();
    assert_eq!(inc.kind, CheckpointKind::Incremental);
    let inc_bytes = export_all(&mut store, inc.id).unwrap();
    store.checkpoint_confirm(inc.id).unwrap();
    let mut back = restore_chain(&[&full_bytes, &inc_bytes], opts(None)).unwrap();
    for (i, uk) in uks.iter().enumerate() {
        assert_eq!(back.map_get(MAP, Key::Bytes(b"m"), &[], uk, None).unwrap(), Some(&[b'v', i as u8][..]), "map entry {uk:?}");
        assert_eq!(back.get(VALUE, Key::Bytes(uk), &[], None).unwrap(), Some(*uk), "value {uk:?}");
    }
}

#[test]
fn an_aborted_or_unconfirmed_checkpoint_leaves_the_next_one_complete() {
    let mut store = store_with_states(8, None);
    store.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).unwrap();
    store.put(VALUE, Key::Bytes(b"a"), &[], b"1").unwrap();
    let full = store.checkpoint(None).unwrap();
    let full_bytes = export_all(&mut store, full.id).unwrap();
    store.checkpoint_confirm(full.id).unwrap();

    store.put(VALUE, Key::Bytes(b"b"), &[], b"2").unwrap();
    store.map_put(MAP, Key::Bytes(b"m"), &[], b"x", b"1").unwrap();
    let lost = store.checkpoint(None).unwrap();
    let _half = store.checkpoint_next(lost.id, &mut Vec::new(), 1).unwrap();
    store.checkpoint_abort(lost.id).unwrap();

    store.put(VALUE, Key::Bytes(b"c"), &[], b"3").unwrap();
    let never = store.checkpoint(None).unwrap();
    export_all(&mut store, never.id).unwrap(); // written, never confirmed

    store.remove(VALUE, Key::Bytes(b"a"), &[]).unwrap();
    let next = store.checkpoint(None).unwrap();
    assert_eq!(next.parent_id, Some(full.id));
    let next_bytes = export_all(&mut store, next.id).unwrap();
    store.checkpoint_confirm(next.id).unwrap();
    let mut back = restore_chain(&[&full_bytes, &next_bytes], opts(None)).unwrap();
    assert_eq!(back.get(VALUE, Key::Bytes(b"a"), &[], None).unwrap(), None, "tombstone");
    assert_eq!(back.get(VALUE, Key::Bytes(b"b"), &[], None).unwrap(), Some(&b"2"[..]), "from the aborted one");
    assert_eq!(back.get(VALUE, Key::Bytes(b"c"), &[], None).unwrap(), Some(&b"3"[..]), "from the unconfirmed one");
    assert_eq!(back.map_get(MAP, Key::Bytes(b"m"), &[], b"x", None).unwrap(), Some(&b"1"[..]));
    // The never-confirmed checkpoint is older than the confirmed one now.
    assert_eq!(store.checkpoint_confirm(never.id).unwrap_err().code(), "CHECKPOINT_STATE");
}

#[test]
fn delta_tracking_is_proportional_to_distinct_changed_keys() {
    let mut store = store_with_states(128, None);
    for i in 0..100_000u32 {
        store.put(VALUE, Key::Bytes(format!("user-{i}").as_bytes()), &[], &i.to_le_bytes()).unwrap();
    }
    store.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).unwrap();
    let full = store.checkpoint(None).unwrap();
    let full_bytes = export_all(&mut store, full.id).unwrap();
    store.checkpoint_confirm(full.id).unwrap();
    // 1,000 distinct keys, each written 100 times.
    for round in 0..100u32 {
        for i in 0..1000u32 {
            store.put(VALUE, Key::Bytes(format!("user-{}", i * 97).as_bytes()), &[], &round.to_le_bytes()).unwrap();
        }
    }
    let members = store.delta_members();
    assert_eq!(members, 1000, "a key written a hundred times counts once");
    let log = store.memory().delta_log_bytes;
    assert!(log < 1000 * 40, "delta log of {log} bytes for 1000 keys");
    let inc = store.checkpoint(None).unwrap();
    assert_eq!(inc.kind, CheckpointKind::Incremental);
    let inc_bytes = export_all(&mut store, inc.id).unwrap();
    store.checkpoint_confirm(inc.id).unwrap();
    assert!(inc_bytes.len() * 50 < full_bytes.len(), "1% of keys changed: {} vs {} bytes", inc_bytes.len(), full_bytes.len());
    assert_eq!(store.memory().delta_log_bytes, 0);
}
