//! Checkpoint format: round trips (whole and chunked), every key-group
//! subset, rescaling from several chains, and rejection of every corrupted
//! or truncated input with an error (never a panic, never partial state).

mod common;

use common::*;
use keystate_core::{restore_chain, Error, Key, KeyGroupRange, Restorer, Store};

/// A store with every state kind, namespaces, large values, removals.
fn populated(mp: u32, range: Option<KeyGroupRange>, seed: u64, n: u32) -> (Store, Model) {
    let mut store = store_with_states(mp, range);
    let mut model = Model::new();
    let mut rng = Rng(seed);
    let r = store.config().key_groups;
    let mut i = 0u32;
    while model.len() < n as usize {
        i += 1;
        let k = format!("key-{seed}-{i}").into_bytes();
        if !r.contains(store.key_group(&k)) {
            continue;
        }
        let ns = if rng.chance(20) { b"w1".to_vec() } else { Vec::new() };
        let v = if rng.chance(3) { rng.bytes(4000) } else { rng.bytes(24) };
        match rng.below(3) {
            0 => {
                store.put(VALUE, Key::Bytes(&k), &ns, &v).unwrap();
                model.insert((VALUE, k, ns, None), v);
            }
            1 => {
                store.append(LIST, Key::Bytes(&k), &ns, &v).unwrap();
                store.append(LIST, Key::Bytes(&k), &ns, b"more").unwrap();
                let mut l = v.clone();
                l.extend_from_slice(b"more");
                model.insert((LIST, k, ns, None), l);
            }
            _ => {
                for u in 0..rng.below(4) + 1 {
                    let uk = format!("uk{u}").into_bytes();
                    store.map_put(MAP, Key::Bytes(&k), &ns, &uk, &v).unwrap();
                    model.insert((MAP, k.clone(), ns.clone(), Some(uk)), v.clone());
                }
            }
        }
    }
    // Some removals, so the tables have holes.
    let victims: Vec<_> = model.keys().filter(|_| rng.chance(10)).cloned().collect();
    for v in victims {
        let (s, k, ns, uk) = &v;
        match uk {
            Some(uk) => assert!(store.map_remove(*s, Key::Bytes(k), ns, uk).unwrap()),
            None => assert!(store.remove(*s, Key::Bytes(k), ns).unwrap()),
        }
        model.remove(&v);
    }
    (store, model)
}

#[test]
fn full_round_trip_whole_and_in_chunks_of_any_size() {
    let (mut store, model) = populated(16, None, 1, 3000);
    let bytes = full_checkpoint(&mut store);
    let mut back = restore_chain(&[&bytes], opts(None)).unwrap();
    assert_eq!(dump(&back, None), model);
    check_reads(&mut back, None, &model);
    assert_eq!(back.memory().entries, model.len() as u64);
    for chunk in [1usize, 7, 64, 4096, 100_000] {
        let mut r = Restorer::new(opts(None));
        r.begin_piece(false).unwrap();
        for c in bytes.chunks(chunk) {
            r.feed(c).unwrap();
        }
        r.end_piece().unwrap();
        assert_eq!(dump(&r.finish().unwrap(), None), model, "chunks of {chunk}");
    }
    // Restoring and checkpointing again gives the same content.
    let mut back = back;
    let again = full_checkpoint(&mut back);
    assert_eq!(dump(&restore_chain(&[&again], opts(None)).unwrap(), None), model);
}

#[test]
fn export_is_chunked_and_reads_the_moment_it_was_taken() {
    let (mut store, model) = populated(32, None, 2, 4000);
    let cp = store.checkpoint(None).unwrap();
    let mut out = Vec::new();
    let mut chunks = 0;
    let mut i = 0u32;
    while !store.checkpoint_next(cp.id, &mut out, 4096).unwrap() {
        chunks += 1;
        // Writers run between chunks: overwrite, add, remove.
        for _ in 0..50 {
            i += 1;
            let k = format!("key-2-{i}");
            store.put(VALUE, Key::Bytes(k.as_bytes()), &[], b"after").unwrap();
            store.remove(LIST, Key::Bytes(k.as_bytes()), &[]).unwrap();
            store.map_put(MAP, Key::Bytes(k.as_bytes()), &[], b"uk0", b"after").unwrap();
        }
    }
    assert!(chunks > 10, "export should take several chunks, took {chunks}");
    assert_eq!(dump(&restore_chain(&[&out], opts(None)).unwrap(), None), model);
    // The export's snapshot is released when it finishes.
    assert_eq!(store.memory().open_snapshots, 0);
    assert_eq!(store.memory().pinned_bytes, 0);
}

#[test]
fn every_key_group_subset_restores_exactly_its_entries() {
    let mp = 12;
    let (mut store, model) = populated(mp, None, 3, 1500);
    let bytes = full_checkpoint(&mut store);
    for start in 0..mp {
        for end in start..mp {
            let range = KeyGroupRange::new(start, end);
            let part = restore_chain(&[&bytes], opts(Some(range))).unwrap();
            assert_eq!(part.config().key_groups, range);
            assert_eq!(dump(&part, None), filter_range(&model, &store, range), "range {start}..={end}");
            // A subset is a new lineage: it does not continue the chain.
            assert_eq!(part.last_confirmed().is_none(), range != KeyGroupRange::new(0, mp - 1));
        }
    }
}

#[test]
fn several_chains_restore_into_one_store_rescaling() {
    let mp = 16;
    let (mut a, ma) = populated(mp, Some(KeyGroupRange::new(0, 6)), 4, 800);
    let (mut b, mb) = populated(mp, Some(KeyGroupRange::new(7, 15)), 5, 800);
    let (ca, cb) = (full_checkpoint(&mut a), full_checkpoint(&mut b));
    let mut all = ma.clone();
    all.extend(mb.clone());
    // Scale in: two stores into one.
    let mut r = Restorer::new(opts(Some(KeyGroupRange::new(0, 15))));
    for piece in [&ca, &cb] {
        r.begin_piece(true).unwrap();
        r.feed(piece).unwrap();
        r.end_piece().unwrap();
    }
    let merged = r.finish().unwrap();
    assert_eq!(dump(&merged, None), all);
    // Scale out across the boundary: keep 4..=10 from both.
    let range = KeyGroupRange::new(4, 10);
    let mut r = Restorer::new(opts(Some(range)));
    for piece in [&ca, &cb] {
        r.begin_piece(true).unwrap();
        r.feed(piece).unwrap();
        r.end_piece().unwrap();
    }
    assert_eq!(dump(&r.finish().unwrap(), None), filter_range(&all, &merged, range));
    // A requested key group that no chain covers is refused, not left empty.
    let err = restore_chain(&[&ca], opts(Some(KeyGroupRange::new(0, 9)))).unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
}

fn restore_err(bytes: &[u8]) -> Error {
    match restore_chain(&[bytes], opts(None)) {
        Ok(_) => panic!("restore accepted bad input"),
        Err(e) => e,
    }
}

#[test]
fn every_single_byte_corruption_is_refused() {
    let (mut store, _) = populated(4, None, 6, 40);
    let bytes = full_checkpoint(&mut store);
    assert!(bytes.len() < 60_000);
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            let e = restore_err(&bad);
            if i < 8 {
                assert_eq!(e, Error::BadMagic, "byte {i}");
            } else if i < 10 {
                assert!(matches!(e, Error::UnsupportedVersion(_)), "byte {i}: {e}");
            }
        }
    }
}

#[test]
fn a_damaged_length_in_a_whole_file_is_corrupt_not_truncated() {
    let (mut store, _) = populated(4, None, 8, 40);
    let bytes = full_checkpoint(&mut store);
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let section = 16 + header_len + 8;
    assert_eq!(bytes[section], 0x01, "a section starts here");
    let mut bad = bytes.clone();
    bad[section + 7] ^= 1; // body_len grows by 64 KiB
    assert_eq!(restore_err(&bad).code(), "CORRUPT");
}

#[test]
fn every_truncation_and_any_trailing_bytes_are_refused() {
    let (mut store, _) = populated(4, None, 7, 40);
    let bytes = full_checkpoint(&mut store);
    for len in 0..bytes.len() {
        let e = restore_err(&bytes[..len]);
        assert!(matches!(e, Error::Truncated(_) | Error::BadMagic), "length {len}: {e}");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(restore_err(&long).code(), "CORRUPT");
    assert_eq!(restore_err(b"PK\x03\x04 a zip file").code(), "BAD_MAGIC");
    // Versions 1 and 2 are read; others are refused before anything else.
    for v in [0u8, 3, 0xff] {
        let mut other = bytes.clone();
        other[8] = v;
        assert_eq!(restore_err(&other), Error::UnsupportedVersion(u16::from(v)));
    }
}

#[test]
fn table_growth_and_rehash_under_open_snapshots() {
    // One key group, so one table grows from empty to 200k entries while
    // snapshots taken at different sizes stay open and correct.
    let mut store = store_with_states(1, None);
    let mut model = Model::new();
    let mut snaps = Vec::new();
    for i in 0..200_000u32 {
        let k = format!("k{i}").into_bytes();
        store.put(VALUE, Key::Bytes(&k), &[], &i.to_le_bytes()).unwrap();
        model.insert((VALUE, k, Vec::new(), None), i.to_le_bytes().to_vec());
        if i.is_power_of_two() && i >= 1024 {
            snaps.push((store.snapshot().unwrap(), model.clone()));
        }
        if i % 3 == 0 && i > 0 {
            // Rewrite an old key and remove another: copy-on-write under growth.
            let o = format!("k{}", i / 2).into_bytes();
            store.put(VALUE, Key::Bytes(&o), &[], b"new").unwrap();
            model.insert((VALUE, o, Vec::new(), None), b"new".to_vec());
            let d = format!("k{}", i / 3).into_bytes();
            store.remove(VALUE, Key::Bytes(&d), &[]).unwrap();
            model.remove(&(VALUE, d, Vec::new(), None));
        }
    }
    store.check_invariants();
    for (s, m) in &snaps {
        assert_eq!(&dump(&store, Some(*s)), m, "snapshot {s}");
    }
    assert_eq!(dump(&store, None), model);
    // Release in an arbitrary order; survivors stay exact.
    let order = [3usize, 0, 5, 1, 7, 2, 4, 6];
    for (n, i) in order.iter().enumerate() {
        if *i >= snaps.len() {
            continue;
        }
        store.release(snaps[*i].0).unwrap();
        store.check_invariants();
        for (j, (s, m)) in snaps.iter().enumerate() {
            if !order[..=n].contains(&j) {
                assert_eq!(&dump(&store, Some(*s)), m, "snapshot {s} after releasing {:?}", &order[..=n]);
            }
        }
    }
}

#[test]
fn key_groups_follow_murmur3_modulo_max_parallelism() {
    // Golden values: murmur3_x86_32(key, seed 0) % mp. Keys are the encoded
    // bytes, so the TypeScript side must agree (test/vectors checks it too).
    let store = store_with_states(128, None);
    let cases: [(&[u8], u32); 5] = [(b"", 0), (b"user-1", 0), (b"user-2", 0), (b"a", 0), (b"\xf8\x02", 0)];
    for (key, _) in cases {
        let h = keystate_core::hash::murmur3_32(key, 0);
        assert_eq!(store.key_group(key), h % 128);
    }
    assert_eq!(store.key_group(b"user-1"), keystate_core::hash::murmur3_32(b"user-1", 0) % 128);
    // Out-of-range keys are refused with a typed error.
    let mut part = store_with_states(128, Some(KeyGroupRange::new(0, 9)));
    let mut refused = 0;
    for i in 0..1000 {
        let k = format!("user-{i}");
        let kg = part.key_group(k.as_bytes());
        match part.put(VALUE, Key::Bytes(k.as_bytes()), &[], b"v") {
            Ok(()) => assert!(kg <= 9),
            Err(e) => {
                assert_eq!(e.code(), "KEY_GROUP_OUT_OF_RANGE");
                assert!(kg > 9);
                refused += 1;
            }
        }
    }
    assert!(refused > 800);
}
