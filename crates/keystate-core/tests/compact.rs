//! Compaction (`crate::compact`): space freed in one size class returns to
//! every other, under open snapshots and a checkpoint's export, without a
//! read ever seeing a record move.

mod common;

use common::*;
use keystate_core::{restore_chain, Key};

fn k(i: u32) -> Vec<u8> {
    format!("key-{i:07}").into_bytes()
}

/// A value whose record falls in a small size class (`big == false`) or a
/// class 4 bytes larger.
fn v(i: u32, big: bool) -> Vec<u8> {
    let n = if big { 6 + (i % 3) } else { 2 + (i % 3) } as usize;
    i.to_le_bytes().iter().copied().cycle().take(n).collect()
}

/// The arena-reuse workload of the bench (`bench/cases/memory.mjs`): cycles of
/// a full checkpoint drained in chunks, with 1% of the keys rewritten
/// between chunks into the other size class. After them the arena holds at
/// most 1.15x what its live and pinned records occupy (and a few pooled
/// pages), and every read,
/// live, at an open snapshot and from the exported bytes, is right.
#[test]
fn values_that_change_class_under_checkpoints_leave_little_free() {
    let n = 100_000u32;
    let mut store = store_with_states(128, None);
    let mut model = Model::new();
    for i in 0..n {
        store.put(VALUE, Key::Bytes(&k(i)), b"", &v(i, false)).unwrap();
        model.insert((VALUE, k(i), Vec::new(), None), v(i, false));
    }
    assert!(store.runs_claimed() > 0, "the first records of large tables are in runs");
    let per_cycle = n / 100;
    let mut at = 0u32;
    let mut last = Vec::new();
    for c in 0..100u32 {
        let cp = store.checkpoint(Some(false)).unwrap();
        let at_checkpoint = model.clone();
        let big = c % 2 == 0;
        let mut bytes = Vec::new();
        loop {
            for _ in 0..64 {
                if at >= (c + 1) * per_cycle {
                    break;
                }
                let i = ((u64::from(at) * 7919) % u64::from(n)) as u32;
                store.put(VALUE, Key::Bytes(&k(i)), b"", &v(i, big)).unwrap();
                model.insert((VALUE, k(i), Vec::new(), None), v(i, big));
                at += 1;
            }
            if c % 25 == 7 {
                // Mid-export: the checkpoint's snapshot is its export's alone
                // (read through its frozen index, not layers): refused.
                assert!(store.get(VALUE, Key::Bytes(&k(0)), b"", Some(cp.snapshot)).is_err(), "cycle {c}");
            }
            if store.checkpoint_next(cp.id, &mut bytes, 64 * 1024).unwrap() {
                break;
            }
        }
        store.checkpoint_confirm(cp.id).unwrap();
        if c % 25 == 24 || c % 25 == 7 {
            let back = restore_chain(&[&bytes], opts(None)).unwrap();
            assert_eq!(dump(&back, None), at_checkpoint, "restored checkpoint of cycle {c}");
        }
        last = bytes;
    }
    store.check_invariants();
    assert_eq!(dump(&store, None), model);
    check_reads(&mut store, None, &model);
    assert!(!last.is_empty());
    let m = store.memory();
    let needed = m.arena_bytes - m.free_bytes;
    let (moved, rounds) = store.compacted();
    eprintln!("arena {} bytes for {needed} needed: {:.3}x; {moved} moved in {rounds} rounds", m.arena_bytes, m.arena_bytes as f64 / needed as f64);
    assert!(moved > 0 && rounds > 0, "compaction ran: {moved} moved in {rounds} rounds");
    // The bench's target (at 1M keys) plus the few pooled pages a store
    // keeps for its next writes, which weigh more in a store this small.
    assert!(
        m.arena_bytes * 100 <= needed * 115 + 4 * 16384 * 100,
        "arena {} bytes for {} needed ({:.3}x); {moved} moved in {rounds} rounds",
        m.arena_bytes,
        needed,
        m.arena_bytes as f64 / needed as f64
    );
}

/// Without snapshots, a store whose values all moved to another class gives
/// the old class's pages back: the arena returns to about one class's worth.
#[test]
fn a_class_emptied_by_rewrites_returns_its_pages() {
    let n = 50_000u32;
    let mut store = store_with_states(16, None);
    for i in 0..n {
        store.put(VALUE, Key::Bytes(&k(i)), b"", &v(i, false)).unwrap();
    }
    let one_class = store.memory().arena_bytes;
    // Every other key changes class: half of each small page is stranded.
    for i in (0..n).step_by(2) {
        store.put(VALUE, Key::Bytes(&k(i)), b"", &v(i, true)).unwrap();
    }
    // Later writes (overwrites in place) drive compaction's steps.
    for round in 0..4u32 {
        for i in (1..n).step_by(2) {
            store.put(VALUE, Key::Bytes(&k(i)), b"", &v(i + round, false)).unwrap();
        }
    }
    store.check_invariants();
    let m = store.memory();
    let needed = m.arena_bytes - m.free_bytes;
    assert!(m.arena_bytes * 100 <= needed * 115, "arena {} for {} needed", m.arena_bytes, needed);
    assert!(m.arena_bytes < one_class * 13 / 10, "arena {} bytes, one class {}", m.arena_bytes, one_class);
    for i in 0..n {
        let want = if i % 2 == 0 { v(i, true) } else { v(i + 3, false) };
        assert_eq!(store.get(VALUE, Key::Bytes(&k(i)), b"", None).unwrap(), Some(&want[..]), "key {i}");
    }
}

/// Random writes of every kind with values that change class, snapshots
/// taken and released at random, and a checkpoint exported in chunks at
/// times: after every step the structures are consistent (each record
/// referenced once, room lists exact, accounting exact), and every open
/// snapshot reads its moment.
#[test]
fn model_with_compaction_under_open_snapshots() {
    compaction_model(false);
}

/// The same with the value state's tables wide (filled with short entries
/// first, so that they go wide): compaction moves the records of the
/// entries that are not inline, beside inline ones.
#[test]
fn model_with_compaction_and_wide_tables() {
    compaction_model(true);
}

fn compaction_model(wide: bool) {
    let mut rng = Rng(11);
    let mut store = store_with_states(8, None);
    let mut model = Model::new();
    let mut snaps: Vec<(u64, Model)> = Vec::new();
    let mut export: Option<(u64, Model, Vec<u8>)> = None;
    let keys = 8000;
    let key_of = |i: u64| if wide { format!("key-{i:06}") } else { format!("k{i}") }.into_bytes();
    if wide {
        store.set_wide_min(64);
        for i in 0..keys {
            store.put(VALUE, Key::Bytes(&key_of(i)), b"", &[1, 2, 3]).unwrap();
            model.insert((VALUE, key_of(i), Vec::new(), None), vec![1, 2, 3]);
        }
        assert_eq!(store.wide_tables(), (8, 8000), "the value state's tables wide, every entry inline");
    }
    for step in 0..90_000u32 {
        let key = key_of(rng.below(keys));
        // Sizes drift with time: each phase favours other classes.
        let phase = (step / 10_000) % 3;
        let len = match phase {
            0 => 1 + rng.below(4),
            1 => 20 + rng.below(8),
            _ => 8 + rng.below(30),
        } as usize;
        let val: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        match rng.below(100) {
            0..=49 => {
                store.put(VALUE, Key::Bytes(&key), b"", &val).unwrap();
                model.insert((VALUE, key, Vec::new(), None), val);
            }
            50..=59 => {
                store.remove(VALUE, Key::Bytes(&key), b"").unwrap();
                model.remove(&(VALUE, key, Vec::new(), None));
            }
            60..=74 => {
                let uk = format!("u{}", rng.below(6)).into_bytes();
                store.map_put(MAP, Key::Bytes(&key), b"", &uk, &val).unwrap();
                model.insert((MAP, key, Vec::new(), Some(uk)), val);
            }
            75..=79 => {
                let uk = format!("u{}", rng.below(6)).into_bytes();
                store.map_remove(MAP, Key::Bytes(&key), b"", &uk).unwrap();
                model.remove(&(MAP, key, Vec::new(), Some(uk)));
            }
            80..=84 => {
                store.append(LIST, Key::Bytes(&key), b"", &val).unwrap();
                model.entry((LIST, key, Vec::new(), None)).or_default().extend_from_slice(&val);
            }
            85..=86 if snaps.len() < 3 => snaps.push((store.snapshot().unwrap(), model.clone())),
            87..=88 if !snaps.is_empty() => {
                let (s, m) = snaps.remove(rng.below(snaps.len() as u64) as usize);
                assert_eq!(dump(&store, Some(s)), m, "snapshot {s} at release, step {step}");
                store.release(s).unwrap();
            }
            89..=91 => match export.take() {
                None => {
                    let cp = store.checkpoint(Some(false)).unwrap();
                    export = Some((cp.id, model.clone(), Vec::new()));
                }
                Some((id, m, mut bytes)) => {
                    if store.checkpoint_next(id, &mut bytes, 4096).unwrap() {
                        store.checkpoint_confirm(id).unwrap();
                        let back = restore_chain(&[&bytes], opts(None)).unwrap();
                        assert_eq!(dump(&back, None), m, "exported checkpoint, step {step}");
                    } else {
                        export = Some((id, m, bytes));
                    }
                }
            },
            _ => {}
        }
        if step % 4999 == 0 {
            store.check_invariants();
            for (s, m) in &snaps {
                assert_eq!(&dump(&store, Some(*s)), m, "snapshot {s}, step {step}");
            }
        }
    }
    store.check_invariants();
    assert_eq!(dump(&store, None), model);
    let (moved, rounds) = store.compacted();
    assert!(moved > 1000 && rounds > 2, "compaction ran: {moved} moved in {rounds} rounds");
    for (s, m) in snaps.drain(..) {
        assert_eq!(dump(&store, Some(s)), m);
        store.release(s).unwrap();
    }
    if let Some((id, _, _)) = export {
        store.checkpoint_abort(id).unwrap();
    }
    assert_eq!(store.memory().pinned_bytes, 0);
}

/// Checkpoints exported on another thread (the native backend's way) while
/// the owner rewrites values into other size classes, so that compaction
/// moves records during every export: each export restores to exactly its
/// moment, and the moves happened.
#[test]
fn background_exports_read_their_moment_while_records_move() {
    let n = 30_000u32;
    let mut store = store_with_states(32, None);
    let mut model = Model::new();
    for i in 0..n {
        store.put(VALUE, Key::Bytes(&k(i)), b"", &v(i, false)).unwrap();
        model.insert((VALUE, k(i), Vec::new(), None), v(i, false));
    }
    let mut at = 0u64;
    for c in 0..40u32 {
        let cp = store.checkpoint(Some(false)).unwrap();
        let moment = model.clone();
        let job = store.checkpoint_job(cp.id).unwrap();
        let runner = std::thread::spawn(move || {
            let mut chunks = Vec::new();
            while !job.run(&mut chunks, 2048, 4096).unwrap() {
                std::thread::yield_now();
            }
            chunks.into_iter().map(|(c, _)| c).collect::<Vec<_>>().concat()
        });
        for _ in 0..n / 20 {
            let i = ((at * 7919) % u64::from(n)) as u32;
            at += 1;
            let big = (at / u64::from(n / 2)) % 2 == 0;
            store.put(VALUE, Key::Bytes(&k(i)), b"", &v(i, big)).unwrap();
            model.insert((VALUE, k(i), Vec::new(), None), v(i, big));
        }
        let bytes = runner.join().unwrap();
        assert!(store.checkpoint_progress(cp.id).unwrap().finished);
        store.checkpoint_confirm(cp.id).unwrap();
        let back = restore_chain(&[&bytes], opts(None)).unwrap();
        assert_eq!(dump(&back, None), moment, "background export of cycle {c}");
        store.check_invariants();
    }
    assert_eq!(dump(&store, None), model);
    let (moved, _) = store.compacted();
    assert!(moved > 1000, "records moved during the exports: {moved}");
    assert_eq!(store.memory().pinned_bytes, 0);
}
