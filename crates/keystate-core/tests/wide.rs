//! Wide tables: a value state's entries inline in its index (see
//! docs/LAYOUT.md, "Inline entries"). Conversions both ways at resizes,
//! inline entries saved for snapshots, batches, checkpoints and restore,
//! each checked against a model with the store's invariants.

mod common;

use common::*;
use keystate_core::{restore_chain, CheckpointKind, Key, Policy, Store};

fn k(i: u32) -> Vec<u8> {
    format!("user-{i:06}").into_bytes()
}

fn put(store: &mut Store, model: &mut Model, i: u32, v: &[u8]) {
    store.put(VALUE, Key::Bytes(&k(i)), &[], v).unwrap();
    model.insert((VALUE, k(i), Vec::new(), None), v.to_vec());
}

/// A store of `parts` key groups whose tables may go wide from `wide_min`
/// entries on, holding keys `0..n` with values `value(i)`, and its model.
fn filled(parts: u32, wide_min: usize, n: u32, value: impl Fn(u32) -> Vec<u8>) -> (Store, Model) {
    let mut store = store_with_states(parts, None);
    store.set_wide_min(wide_min);
    let mut model = Model::new();
    for i in 0..n {
        put(&mut store, &mut model, i, &value(i));
    }
    (store, model)
}

/// Live reads, listings and invariants agree with `model`; snapshot `at`
/// (if any) with its own model.
fn check(store: &mut Store, model: &Model, at: Option<(u64, &Model)>) {
    store.check_invariants();
    assert_eq!(&dump(store, None), model);
    check_reads(store, None, model);
    if let Some((s, m)) = at {
        assert_eq!(&dump(store, Some(s)), m);
        check_reads(store, Some(s), m);
    }
}

#[test]
fn a_table_goes_wide_and_back_at_resizes_and_keeps_every_entry() {
    // 11-byte keys and 3-byte values: 16-byte records, which a wide slot holds.
    let (mut store, mut model) = filled(1, 64, 1000, |i| i.to_le_bytes()[..3].to_vec());
    assert_eq!(store.wide_tables(), (1, 1000), "every entry inline");
    check(&mut store, &model, None);
    // Values that do not fit: rewritten in place as records, then at the
    // next growth the table goes narrow again.
    for i in 0..1000 {
        put(&mut store, &mut model, i, &[7; 30]);
    }
    assert_eq!(store.wide_tables(), (1, 0), "still wide until it resizes");
    for i in 1000..1400 {
        put(&mut store, &mut model, i, &[8; 30]);
    }
    assert_eq!(store.wide_tables(), (0, 0), "narrow after the resize");
    check(&mut store, &model, None);
    // Small again, and removals: wide at the next growth, removals of
    // inline entries and of records alike.
    for i in 0..1400 {
        put(&mut store, &mut model, i, &[1, 2, 3]);
    }
    for i in 1400..2000 {
        put(&mut store, &mut model, i, &[4, 5]);
    }
    assert!(store.wide_tables().0 == 1, "wide again");
    for i in (0..2000).step_by(3) {
        assert!(store.remove(VALUE, Key::Bytes(&k(i)), &[]).unwrap());
        model.remove(&(VALUE, k(i), Vec::new(), None));
    }
    check(&mut store, &model, None);
}

#[test]
fn snapshots_keep_their_moment_of_inline_entries_and_block_conversions() {
    let (mut store, mut model) = filled(2, 16, 500, |_| vec![1, 2, 3]);
    assert_eq!(store.wide_tables().1, 500);
    let moment = model.clone();
    let s = store.snapshot().unwrap();
    // Overwrites (inline to inline, inline to a record), removals and new
    // entries: the first write of each saves a copy for the snapshot.
    for i in 0..500 {
        match i % 4 {
            0 => put(&mut store, &mut model, i, &[9, 9]),
            1 => put(&mut store, &mut model, i, &[5; 40]),
            2 => {
                assert!(store.remove(VALUE, Key::Bytes(&k(i)), &[]).unwrap());
                model.remove(&(VALUE, k(i), Vec::new(), None));
            }
            _ => {}
        }
    }
    // Growth under the snapshot keeps the width (a conversion would free
    // records the snapshot reads).
    let before = store.wide_tables().0;
    for i in 500..1500 {
        put(&mut store, &mut model, i, &[6; 40]);
    }
    assert_eq!(store.wide_tables().0, before, "no conversion while a snapshot is open");
    check(&mut store, &model, Some((s, &moment)));
    assert!(store.memory().pinned_bytes > 0);
    store.release(s).unwrap();
    assert_eq!(store.memory().pinned_bytes, 0, "released copies go");
    check(&mut store, &model, None);
}

#[test]
fn batches_under_a_snapshot_save_inline_entries_they_overwrite_or_remove() {
    let (mut store, mut model) = filled(1, 16, 300, |_| vec![1, 2, 3]);
    assert_eq!(store.wide_tables(), (1, 300));
    let moment = model.clone();
    let s = store.snapshot().unwrap();
    let keys: Vec<Vec<u8>> = (0..400).map(k).collect();
    let small = [7u8, 7];
    let big = [8u8; 50];
    let ops: Vec<(&[u8], Option<&[u8]>)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| (&key[..], [Some(&small[..]), Some(&big[..]), None][i % 3]))
        .collect();
    store.write_many(VALUE, &[], ops.iter().copied()).unwrap();
    for (key, v) in &ops {
        match v {
            Some(v) => model.insert((VALUE, key.to_vec(), Vec::new(), None), v.to_vec()),
            None => model.remove(&(VALUE, key.to_vec(), Vec::new(), None)),
        };
    }
    check(&mut store, &model, Some((s, &moment)));
    store.release(s).unwrap();
    check(&mut store, &model, None);
}

#[test]
fn checkpoints_of_wide_tables_restore_what_they_held() {
    let (mut store, mut model) = filled(4, 32, 2000, |i| if i % 50 == 0 { vec![3; 20] } else { i.to_le_bytes()[..3].to_vec() });
    assert_eq!(store.wide_tables(), (4, 1960), "every table wide, the short entries inline");
    let full = full_checkpoint(&mut store);
    let restored = restore_chain(&[&full], opts(None)).unwrap();
    assert_eq!(dump(&restored, None), model);
    restored.check_invariants();
    // Restore sizes a table wide up front and keeps it so when its entries fit.
    let mut restored = restore_chain_wide_from(&full, 32);
    assert_eq!(restored.wide_tables(), (4, 1960));
    check(&mut restored, &model, None);
    // ... and narrows it when they do not.
    let mut big = store_with_states(4, None);
    let mut big_model = Model::new();
    for i in 0..2000 {
        put(&mut big, &mut big_model, i, &[9; 30]);
    }
    let mut narrow = restore_chain_wide_from(&full_checkpoint(&mut big), 32);
    assert_eq!(narrow.wide_tables(), (0, 0));
    check(&mut narrow, &big_model, None);
    // An incremental checkpoint of changes to inline entries, on top of a
    // confirmed full one.
    store.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).unwrap();
    let cp = store.checkpoint(Some(false)).unwrap();
    let base = keystate_core::export_all(&mut store, cp.id).unwrap();
    store.checkpoint_confirm(cp.id).unwrap();
    for i in (0..2000).step_by(7) {
        put(&mut store, &mut model, i, &[4, 4]);
    }
    for i in (1..2000).step_by(11) {
        store.remove(VALUE, Key::Bytes(&k(i)), &[]).unwrap();
        model.remove(&(VALUE, k(i), Vec::new(), None));
    }
    let delta = store.checkpoint(Some(true)).unwrap();
    assert_eq!(delta.kind, CheckpointKind::Incremental);
    let bytes = keystate_core::export_all(&mut store, delta.id).unwrap();
    let restored = restore_chain(&[&base, &bytes], opts(None)).unwrap();
    assert_eq!(dump(&restored, None), model);
    restored.check_invariants();
    check(&mut store, &model, None);
}

/// `bytes` restored into a store whose tables may go wide from `wide_min`
/// entries on.
fn restore_chain_wide_from(bytes: &[u8], wide_min: usize) -> Store {
    let mut r = keystate_core::Restorer::new(opts(None));
    r.set_wide_min(wide_min);
    r.begin_piece(true).unwrap();
    r.feed(bytes).unwrap();
    r.end_piece().unwrap();
    r.finish().unwrap()
}
