//! One test for every defect the fuzzer found (and for the reservation that
//! prompted it), each on a checkpoint resealed as an attacker could.

use keystate_core::{export_all, restore_chain, Error, Key, KeyGroupRange, Policy, RestoreOptions, Restorer, StateDescriptor, StateKind, Store, StoreConfig};
use keystate_fuzz::model::{decode_body, encode_body, Header, Record, State};
use keystate_fuzz::wire::{Part, Wire};

#[global_allocator]
static ALLOC: keystate_fuzz::alloc::Counting = keystate_fuzz::alloc::Counting;

fn opts(range: Option<KeyGroupRange>) -> RestoreOptions {
    RestoreOptions { key_groups: range, new_store_id: [3; 16] }
}

/// A full checkpoint of a value and a map state over 4 key groups, and an
/// incremental one on top of it.
fn chain() -> Vec<Vec<u8>> {
    let mut s = Store::new(StoreConfig::new(4, None, [1; 16]).unwrap());
    s.register_state(StateDescriptor::new("v", StateKind::Value, "bytes", "").unwrap()).unwrap();
    s.register_state(StateDescriptor::new("m", StateKind::Map, "bytes", "key").unwrap()).unwrap();
    s.set_checkpoint_policy(Policy { incremental: true, max_incrementals: 0, max_chain_ratio: 0.0 }).unwrap();
    let mut pieces = Vec::new();
    for round in 0..2u8 {
        for i in 0..40u8 {
            let k = [b'k', i];
            s.put(0, Key::Bytes(&k), b"", &[round, i]).unwrap();
            s.map_put(1, Key::Bytes(&k), b"", b"uk", &[round]).unwrap();
        }
        let cp = s.checkpoint(Some(round > 0)).unwrap();
        pieces.push(export_all(&mut s, cp.id).unwrap());
        s.checkpoint_confirm(cp.id).unwrap();
    }
    pieces
}

fn wire(b: &[u8]) -> Wire {
    Wire::parse(b).expect("a checkpoint the core wrote")
}

fn edit_header(b: &[u8], f: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut w = wire(b);
    let mut h = Header::decode(&w.header).unwrap();
    f(&mut h);
    w.header = h.encode();
    w.seal().0
}

fn edit_first_body(b: &[u8], f: impl FnOnce(&mut Vec<keystate_fuzz::model::Block>)) -> Vec<u8> {
    let mut w = wire(b);
    let s = w.sections_mut().next().unwrap();
    let mut blocks = decode_body(&s.body).unwrap();
    f(&mut blocks);
    s.body = encode_body(&blocks);
    w.seal().0
}

fn refused(pieces: &[&[u8]], range: Option<KeyGroupRange>) -> Error {
    restore_chain(pieces, opts(range)).map(drop).expect_err("restore accepted hostile input")
}

/// The parent link a child of `b` must name.
fn link_of(b: &[u8]) -> (u64, u64) {
    let h = Header::of_file(b).unwrap();
    let file_sum = u64::from_le_bytes(b[b.len() - 16..b.len() - 8].try_into().unwrap());
    (h.id, if h.link != 0 { h.link } else { file_sum })
}

fn relink(child: &[u8], parent: &[u8]) -> Vec<u8> {
    let (id, link) = link_of(parent);
    edit_header(child, |h| (h.parent_id, h.parent_link) = (id, link))
}

#[test]
fn a_record_count_the_body_cannot_hold_reserves_nothing() {
    // The known case: a resealed block count of u32::MAX made restore
    // reserve 26 GB for the table before reading a record.
    let full = &chain()[0];
    let bad = edit_first_body(full, |blocks| blocks[0].count = Some(u32::MAX));
    let (e, peak) = keystate_fuzz::alloc::peak(|| refused(&[&bad], None));
    assert_eq!(e.code(), "CORRUPT", "{e}");
    assert!(e.to_string().contains("claims"), "{e}");
    assert!(peak < 1 << 20, "refusing it held {peak} bytes");
}

#[test]
fn a_restorer_refuses_everything_after_an_error() {
    let pieces = chain();
    // A footer whose record total is off: the piece fails at its end.
    let mut w = wire(&pieces[0]);
    w.lies.records = Some(1);
    let bad = w.seal().0;
    let mut r = Restorer::new(opts(None));
    r.begin_piece(false).unwrap();
    r.feed(&bad).unwrap();
    let first = r.end_piece().unwrap_err();
    assert_eq!(first.code(), "CORRUPT");
    // Going on used to hand out a store with the refused piece's entries,
    // or panic ("an ended piece sets last").
    assert_eq!(r.begin_piece(false).unwrap_err(), first);
    assert_eq!(r.feed(&pieces[1]).unwrap_err(), first);
    assert_eq!(r.end_piece().unwrap_err(), first);
    assert_eq!(r.finish().unwrap_err(), first);
    // A piece that fails before its header, then a new chain.
    let mut r = Restorer::new(opts(Some(KeyGroupRange::new(0, 3))));
    r.begin_piece(false).unwrap();
    let e = r.end_piece().unwrap_err();
    assert_eq!(e.code(), "TRUNCATED");
    assert_eq!(r.begin_piece(true).unwrap_err(), e);
    assert_eq!(r.finish().unwrap_err(), e);
}

#[test]
fn a_key_group_subset_is_refused_when_the_whole_chain_is() {
    // A map op on the value state, in the first section's key group: the
    // check ran only in kept key groups, so a subset without it restored.
    let full = &chain()[0];
    let first_kg = wire(full).sections().next().unwrap().kg;
    let bad = edit_first_body(full, |blocks| {
        let b = blocks.iter_mut().find(|b| b.sid == 0).unwrap();
        b.records[0].op = 2;
    });
    assert_eq!(refused(&[&bad], None).code(), "CORRUPT");
    let others = if first_kg == 3 { KeyGroupRange::new(0, 2) } else { KeyGroupRange::new(first_kg + 1, 3) };
    let e = refused(&[&bad], Some(others));
    assert!(e.to_string().contains("does not apply"), "{e}");
}

#[test]
fn a_full_checkpoint_holds_no_deletions() {
    let full = &chain()[0];
    let bad = edit_first_body(full, |blocks| blocks[0].records[0] = Record { op: 1, ..blocks[0].records[0].clone() });
    let e = refused(&[&bad], None);
    assert!(e.to_string().contains("in a full checkpoint"), "{e}");
}

#[test]
fn checkpoint_ids_stay_within_what_a_reader_accepts() {
    const MAX: u64 = (1 << 53) - 1;
    let pieces = chain();
    for id in [0, MAX + 1, u64::MAX] {
        let bad = edit_header(&pieces[0], |h| h.id = id);
        assert_eq!(refused(&[&bad], None).code(), "CORRUPT", "id {id}");
    }
    // An incremental checkpoint extends an older one.
    let bad = edit_header(&pieces[1], |h| h.id = 1);
    assert_eq!(refused(&[&pieces[0], &bad], None).code(), "CORRUPT");
    // A chain at the largest id restores (its pieces are readable), but its
    // store has no id left: a typed refusal, not an overflow of `id + 1`.
    let full = edit_header(&pieces[0], |h| h.id = MAX - 1);
    let delta = relink(&edit_header(&pieces[1], |h| h.id = MAX), &full);
    let mut s = restore_chain(&[&full, &delta], opts(None)).unwrap();
    assert_eq!(s.checkpoint(None).unwrap_err().code(), "CHECKPOINT_STATE");
    // One below: the next checkpoint takes the largest id, and restores.
    let mut s = restore_chain(&[&full], opts(None)).unwrap();
    let cp = s.checkpoint(Some(false)).unwrap();
    assert_eq!(cp.id, MAX);
    let bytes = export_all(&mut s, cp.id).unwrap();
    restore_chain(&[&bytes], opts(None)).unwrap();
}

#[test]
fn what_a_header_declares_is_bounded_by_what_a_store_holds() {
    let full = &chain()[0];
    // A count no store holds is refused before anything is read or sized.
    let bad = edit_header(full, |h| h.state_count = Some(1 << 40));
    let e = refused(&[&bad], None);
    assert!(e.to_string().contains("states (a store holds"), "{e}");
    // Many states decode in linear time (the duplicate check compared every
    // pair: 60,000 states took seconds, a 64 MiB header hours).
    let many = edit_header(full, |h| {
        for i in 0..60_000u64 {
            h.states.push(State { sid: 10 + i, kind: 0, name: format!("s{i}").into_bytes(), value_codec: vec![], uk_codec: vec![], ttl: keystate_fuzz::model::Ttl::None });
        }
    });
    let t = std::time::Instant::now();
    let s = restore_chain(&[&many], opts(None)).unwrap();
    assert_eq!(s.states().count(), 60_002);
    assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    // A store of 32768 key groups holds 512 states (4 bytes per state and
    // key group, 64 MiB in all); the 513th is refused, live as in restore.
    let mut s = Store::new(StoreConfig::new(1 << 15, None, [1; 16]).unwrap());
    for i in 0..512 {
        s.register_state(StateDescriptor::new(&format!("s{i}"), StateKind::Value, "", "").unwrap()).unwrap();
    }
    let e = s.register_state(StateDescriptor::new("one more", StateKind::Value, "", "").unwrap()).unwrap_err();
    assert_eq!(e.code(), "TOO_LARGE");
}

#[test]
fn max_parallelism_beyond_the_limit_is_corrupt() {
    let full = &chain()[0];
    let bad = edit_header(full, |h| h.mp = (1 << 15) + 1);
    assert_eq!(refused(&[&bad], None).code(), "CORRUPT");
}

#[test]
fn a_section_length_near_4_gib_is_refused() {
    // On wasm32, 9 + body_len + 8 wrapped a usize for a body length near
    // u32::MAX: the reader then sliced the buffer backwards.
    let full = &chain()[0];
    for len in [u32::MAX, u32::MAX - 16, u32::MAX - 8] {
        let mut w = wire(full);
        if let Some(Part::Section(s)) = w.parts.first_mut() {
            s.body_len = Some(len);
        }
        let e = refused(&[&w.seal().0], None);
        assert_eq!(e.code(), "CORRUPT", "{e}");
    }
}
