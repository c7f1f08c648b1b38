//! Checkpoints exported on another thread (the native backend's async
//! snapshot) while the owner keeps writing: each one restores to exactly
//! the state of its moment, has the records of the same checkpoint exported
//! on the owner's thread, and stops promptly and safely when aborted or when
//! its store goes away.

mod common;

use std::sync::mpsc;
use std::thread;

use common::*;
use keystate_core::{export_all, restore_chain, CheckpointKind, ExportJob, Key, Policy, Store};

/// One random write of the model test's kinds, applied to store and model.
fn write(store: &mut Store, model: &mut Model, rng: &mut Rng, keys: u64) {
    let k = format!("k{}", rng.below(keys)).into_bytes();
    let n = if rng.chance(85) { Vec::new() } else { format!("ns{}", rng.below(3)).into_bytes() };
    let big = rng.chance(2);
    let value = |rng: &mut Rng| if big { rng.bytes(5000) } else { rng.bytes(30) };
    match rng.below(100) {
        0..=34 => {
            let v = value(rng);
            store.put(VALUE, Key::Bytes(&k), &n, &v).unwrap();
            model.insert((VALUE, k, n, None), v);
        }
        35..=44 => {
            store.remove(VALUE, Key::Bytes(&k), &n).unwrap();
            model.remove(&(VALUE, k, n, None));
        }
        45..=59 => {
            let v = rng.bytes(12);
            store.append(LIST, Key::Bytes(&k), &n, &v).unwrap();
            model.entry((LIST, k, n, None)).or_default().extend_from_slice(&v);
        }
        60..=64 => {
            store.remove(LIST, Key::Bytes(&k), &n).unwrap();
            model.remove(&(LIST, k, n, None));
        }
        65..=89 => {
            // Up to 40 user keys: maps outgrow the inline form into nested tables.
            let uk = format!("u{}", rng.below(40)).into_bytes();
            let v = value(rng);
            store.map_put(MAP, Key::Bytes(&k), &n, &uk, &v).unwrap();
            model.insert((MAP, k, n, Some(uk)), v);
        }
        90..=96 => {
            let uk = format!("u{}", rng.below(40)).into_bytes();
            store.map_remove(MAP, Key::Bytes(&k), &n, &uk).unwrap();
            model.remove(&(MAP, k, n, Some(uk)));
        }
        _ => {
            store.remove(MAP, Key::Bytes(&k), &n).unwrap();
            model.retain(|(s, mk, mn, _), _| !(*s == MAP && *mk == k && *mn == n));
        }
    }
}

/// Runs `job` to the end on another thread, a small chunk budget at a time
/// (so that the owner's writes interleave), while `during` runs here.
fn export_meanwhile(job: ExportJob, during: impl FnOnce()) -> Vec<u8> {
    let (tx, rx) = mpsc::channel();
    let runner = thread::spawn(move || {
        let mut chunks = Vec::new();
        while !job.run(&mut chunks, 2048, 4096).unwrap() {
            tx.send(()).ok();
        }
        chunks.into_iter().map(|(c, _)| c).collect::<Vec<_>>().concat()
    });
    during();
    drop(rx);
    runner.join().unwrap()
}

/// A decoded record: key group, state, op, key, namespace, user key, value.
type Rec = (u32, u32, u8, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// Every record of a checkpoint, decoded and sorted (by key group, state, op
/// and bytes): what two exports of one moment must agree on whatever the
/// order they wrote them in.
fn records(bytes: &[u8]) -> Vec<Rec> {
    let (version, sections) = sections(bytes);
    let mut out = Vec::new();
    for (kg, body) in &sections {
        keystate_core::format::body::for_each_record(body, version, |r| {
            out.push((*kg, r.state, r.op, r.key.to_vec(), r.ns.to_vec(), r.uk.to_vec(), r.value.to_vec()));
            Ok(())
        })
        .unwrap();
    }
    out.sort();
    out
}

/// Checkpoints a store every few hundred writes, each exported on another
/// thread while writing goes on; returns the pieces taken, each with the
/// model of its moment and its kind. With `sync`, the same store exports
/// each checkpoint on this thread before writing on: the reference.
fn scenario(seed: u64, rounds: usize, sync: bool) -> Vec<(Vec<u8>, Model, CheckpointKind)> {
    let mut rng = Rng(seed);
    let mut store = store_with_states(16, None);
    store.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 4, max_chain_ratio: 0.0 }).unwrap();
    let mut model = Model::new();
    let mut pieces = Vec::new();
    for _ in 0..rounds {
        for _ in 0..300 {
            write(&mut store, &mut model, &mut rng, 400);
        }
        let cp = store.checkpoint(None).unwrap();
        let moment = model.clone();
        // The writes made while the export runs: the same in both modes,
        // applied during the export or after it.
        let mut during = |store: &mut Store| {
            for _ in 0..300 {
                write(store, &mut model, &mut rng, 400);
            }
        };
        let bytes = if sync {
            let b = export_all(&mut store, cp.id).unwrap();
            during(&mut store);
            b
        } else {
            let job = store.checkpoint_job(cp.id).unwrap();
            let store_ref = &mut store;
            export_meanwhile(job, || during(store_ref))
        };
        assert!(store.checkpoint_progress(cp.id).unwrap().finished);
        store.checkpoint_confirm(cp.id).unwrap();
        store.check_invariants();
        assert_eq!(store.memory().pinned_bytes, 0, "a settled checkpoint pins nothing");
        pieces.push((bytes, moment, cp.kind));
    }
    pieces
}

#[test]
fn background_exports_match_their_moment_and_the_owner_threads_records() {
    for seed in 0..6 {
        let background = scenario(seed, 12, false);
        let reference = scenario(seed, 12, true);
        assert!(background.iter().any(|(_, _, k)| *k == CheckpointKind::Incremental));
        let mut chain: Vec<&[u8]> = Vec::new();
        for (i, ((bytes, moment, kind), (want, _, _))) in background.iter().zip(&reference).enumerate() {
            // The same records; not always the same bytes: a full export
            // writes records in arena order, and writes during the export
            // (which cannot reuse the slots it pins) lay out later records
            // differently from writes after it.
            assert!(records(bytes) == records(want), "seed {seed} checkpoint {i} {kind:?}: background records differ from the owner thread's");
            if *kind == CheckpointKind::Full {
                chain.clear();
            }
            chain.push(bytes);
            let restored = restore_chain(&chain, opts(None)).unwrap();
            restored.check_invariants();
            assert_eq!(&dump(&restored, None), moment, "seed {seed} checkpoint {i} restores to its moment");
        }
    }
}

/// A store large enough that its export spans many chunks while the owner
/// rewrites most of it.
fn big_store(entries: u32) -> (Store, Model) {
    big_store_of(entries, None)
}

/// `big_store`, its tables going wide from `wide_min` entries on (`None`:
/// the store's rule; `Some(usize::MAX)`: never).
fn big_store_of(entries: u32, wide_min: Option<usize>) -> (Store, Model) {
    let mut store = store_with_states(64, None);
    if let Some(n) = wide_min {
        store.set_wide_min(n);
    }
    let mut model = Model::new();
    for i in 0..entries {
        let (k, v) = (format!("user-{i}").into_bytes(), i.to_le_bytes().to_vec());
        store.put(VALUE, Key::Bytes(&k), &[], &v).unwrap();
        model.insert((VALUE, k, Vec::new(), None), v);
    }
    (store, model)
}

#[test]
fn writers_copy_only_the_indexes_they_change_and_get_it_back() {
    let (mut store, moment) = big_store(50_000);
    let cp = store.checkpoint(Some(false)).unwrap();
    let job = store.checkpoint_job(cp.id).unwrap();
    assert_eq!(store.memory().pinned_bytes, 0, "taking the checkpoint copies nothing");
    // Rewrite a quarter of the keys before the export starts: their tables'
    // indexes are copied once, their old records pinned.
    let mut model = moment.clone();
    for i in (0..50_000u32).step_by(4) {
        let (k, v) = (format!("user-{i}").into_bytes(), b"new".to_vec());
        store.put(VALUE, Key::Bytes(&k), &[], &v).unwrap();
        model.insert((VALUE, k, Vec::new(), None), v);
    }
    let pinned = store.memory().pinned_bytes;
    assert!(pinned > 0);
    let bytes = export_meanwhile(job, || {});
    store.checkpoint_progress(cp.id).unwrap();
    assert_eq!(store.memory().pinned_bytes, 0, "the end of the export returns what it pinned");
    assert_eq!(dump(&restore_chain(&[&bytes], opts(None)).unwrap(), None), moment);
    assert_eq!(dump(&store, None), model);
}

#[test]
fn abort_and_drop_stop_a_running_export() {
    // Abort between chunks: the runner's next call is refused, nothing is read.
    let (mut store, _) = big_store(20_000);
    let cp = store.checkpoint(Some(false)).unwrap();
    let job = store.checkpoint_job(cp.id).unwrap();
    let mut chunks = Vec::new();
    assert!(!job.run(&mut chunks, 1024, 1024).unwrap());
    store.checkpoint_abort(cp.id).unwrap();
    let err = job.run(&mut chunks, 1024, 1024).unwrap_err();
    assert_eq!(err.code(), "CHECKPOINT_STATE", "{err}");
    assert_eq!(store.memory().pinned_bytes, 0);

    // Abort and drop while a runner is inside a chunk on another thread:
    // both wait for that chunk, then the runner is refused.
    for drop_store in [false, true] {
        let (mut store, _) = big_store(20_000);
        let cp = store.checkpoint(Some(false)).unwrap();
        let job = store.checkpoint_job(cp.id).unwrap();
        let (started, go) = mpsc::channel();
        let runner = thread::spawn(move || {
            let mut chunks = Vec::new();
            let mut first = true;
            loop {
                match job.run(&mut chunks, 512, 512) {
                    Ok(true) => return Ok(chunks.len()),
                    Ok(false) if first => {
                        first = false;
                        started.send(()).unwrap();
                    }
                    Ok(false) => {}
                    Err(e) => return Err(e),
                }
            }
        });
        go.recv().unwrap();
        if drop_store {
            drop(store);
        } else {
            store.checkpoint_abort(cp.id).unwrap();
            for i in 0..1000u32 {
                store.put(VALUE, Key::Bytes(format!("user-{i}").as_bytes()), &[], b"after").unwrap();
            }
            store.check_invariants();
        }
        // The runner either finished before the stop or was refused after it.
        match runner.join().unwrap() {
            Ok(n) => assert!(n > 0),
            Err(e) => assert_eq!(e.code(), "CHECKPOINT_STATE"),
        }
    }
}

#[test]
fn with_no_writes_meanwhile_a_background_export_writes_the_owner_threads_bytes() {
    // Narrow tables: the owner's export reads a run's records within its
    // page; the export thread, which may read only pinned slots, one slot
    // at a time: the same RUNs either way.
    let (mut store, moment) = big_store_of(50_000, Some(usize::MAX));
    assert_eq!(store.wide_tables().0, 0);
    let (a, background) = background_and_owner(&mut store);
    // As PUTs each record would take an op byte besides its own: RUNs saved
    // many (a third here: a table's records take runs of slots from its
    // 512th entry on).
    let as_puts: usize = moment.keys().map(|(_, k, _, _)| 1 + 2 + k.len() + 4).sum();
    let body_bytes: usize = a.iter().map(|(_, b)| b.len()).sum();
    assert!(body_bytes + moment.len() / 5 < as_puts, "{body_bytes} bytes of bodies against {as_puts} as PUTs: few RUNs");
    assert_eq!(dump(&restore_chain(&[&background], opts(None)).unwrap(), None), moment);
    // Wide tables (these entries fit inline): PUTs written from the slots,
    // the same bytes from either thread.
    let (mut store, moment) = big_store(50_000);
    let (tables, inline) = store.wide_tables();
    assert!(tables == 64 && inline == 50_000, "{tables} wide tables, {inline} inline entries");
    let (a, background) = background_and_owner(&mut store);
    let body_bytes: usize = a.iter().map(|(_, b)| b.len()).sum();
    // A PUT an entry, and each block's state id and record count (docs/FORMAT.md).
    assert_eq!(body_bytes, as_puts + 64 * 5, "PUTs only");
    assert_eq!(dump(&restore_chain(&[&background], opts(None)).unwrap(), None), moment);
}

/// A full checkpoint of `store` exported by the export thread, then
/// another by the owner: their section bodies (equal), and the first's bytes.
fn background_and_owner(store: &mut Store) -> (Vec<(u32, Vec<u8>)>, Vec<u8>) {
    let cp = store.checkpoint(Some(false)).unwrap();
    let job = store.checkpoint_job(cp.id).unwrap();
    let background = export_meanwhile(job, || {});
    store.checkpoint_confirm(cp.id).unwrap();
    let cp = store.checkpoint(Some(false)).unwrap();
    let owner = export_all(store, cp.id).unwrap();
    let (a, b) = (sections(&background).1, sections(&owner).1);
    assert_eq!(a.len(), 64);
    assert!(a == b, "the section bodies differ");
    (a, background)
}
