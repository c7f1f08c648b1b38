//! Memory limits are errors: every allocation a write can fail on is made
//! fallibly, before the write changes anything, and a write that cannot get
//! memory returns `STORE_FULL` and leaves the store as it was.
//!
//! This binary's allocator can refuse the n-th allocation the core marks as
//! fallible (`keystate_core::room::fallible`), and counts the allocations a
//! write makes outside such marks (which would abort on a full wasm memory).
//! Each test below runs an operation once for every allocation it makes,
//! refusing that one.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

use common::*;
use keystate_core::{export_all, restore_chain, Error, Full, Inspector, Key, Policy, Store};

thread_local! {
    /// Fallible allocations to grant before refusing one; `None`: grant all.
    static GRANT: Cell<Option<u64>> = const { Cell::new(None) };
    /// Whether the armed refusal happened.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
    /// Counting unmarked allocations.
    static WATCH: Cell<bool> = const { Cell::new(false) };
    static UNMARKED: Cell<u64> = const { Cell::new(0) };
}

struct Refusing;

/// Whether to refuse this allocation (and count an unmarked one).
fn refuse() -> bool {
    if keystate_core::room::fallible() {
        let Ok(Some(n)) = GRANT.try_with(Cell::get) else { return false };
        if n == 0 {
            let _ = GRANT.try_with(|g| g.set(None));
            let _ = REFUSED.try_with(|r| r.set(true));
            return true;
        }
        let _ = GRANT.try_with(|g| g.set(Some(n - 1)));
    } else if WATCH.try_with(Cell::get).unwrap_or(false) {
        let _ = UNMARKED.try_with(|u| u.set(u.get() + 1));
    }
    false
}

// Safety: forwards to `System` unchanged, or refuses with null (which the
// GlobalAlloc contract allows).
unsafe impl GlobalAlloc for Refusing {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if refuse() {
            return std::ptr::null_mut();
        }
        // Safety: the caller's layout, passed on.
        unsafe { System.alloc(l) }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if refuse() {
            return std::ptr::null_mut();
        }
        // Safety: the caller's layout, passed on.
        unsafe { System.alloc_zeroed(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // Safety: `p` came from `System` with `l`.
        unsafe { System.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if refuse() {
            return std::ptr::null_mut();
        }
        // Safety: `p` and `l` came from `System`; the caller upholds realloc's contract.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Refusing = Refusing;

/// Runs `f` with the `n`-th fallible allocation refused; returns its result,
/// whether the refusal happened, and how many unmarked allocations it made.
fn refusing<T>(n: u64, f: impl FnOnce() -> T) -> (T, bool, u64) {
    REFUSED.with(|r| r.set(false));
    UNMARKED.with(|u| u.set(0));
    GRANT.with(|g| g.set(Some(n)));
    WATCH.with(|w| w.set(true));
    let out = f();
    WATCH.with(|w| w.set(false));
    GRANT.with(|g| g.set(None));
    (out, REFUSED.with(Cell::get), UNMARKED.with(Cell::get))
}

type Op = fn(&mut Store) -> keystate_core::Result<()>;

/// The situation's key group without entries (its first write makes a table).
const EMPTY_KG: u32 = 7;

/// The situation's keys (none in `EMPTY_KG`), made once: an operation
/// under test must allocate nothing but what the store does.
fn keys() -> &'static [Vec<u8>] {
    static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..).map(|j| format!("key-{j}").into_bytes()).filter(|b| keystate_core::hash::key_group(b, 8) != EMPTY_KG).take(300).collect()
    })
}

fn k(i: usize) -> &'static [u8] {
    &keys()[i]
}

/// A key of `EMPTY_KG`.
fn empty_kg_key() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| (0..).map(|j| format!("other-{j}").into_bytes()).find(|b| keystate_core::hash::key_group(b, 8) == EMPTY_KG).unwrap())
}

/// A store with entries of every kind, in a given situation: an open
/// snapshot, a checkpoint whose frozen view shares the indexes, delta
/// tracking.
fn situation(snapshot: bool, pending: bool, tracking: bool) -> (Store, Option<u64>) {
    let mut s = store_with_states(8, None);
    if tracking {
        s.set_checkpoint_policy(Policy { incremental: true, ..Policy::default() }).unwrap();
        let cp = s.checkpoint(None).unwrap();
        export_all(&mut s, cp.id).unwrap();
        s.checkpoint_confirm(cp.id).unwrap();
    }
    for (i, key) in keys().iter().enumerate() {
        s.put(VALUE, Key::Bytes(key), &[], &[i as u8; 9]).unwrap();
        s.append(LIST, Key::Bytes(key), &[], &[1, 2, 3]).unwrap();
    }
    // A map inline, one nested (past 16 entries), and one about to move.
    for uk in 0..3u8 {
        s.map_put(MAP, Key::Bytes(b"inline"), &[], &[uk], b"v").unwrap();
    }
    for uk in 0..40u8 {
        s.map_put(MAP, Key::Bytes(b"nested"), &[], &[uk], b"v").unwrap();
    }
    for uk in 0..16u8 {
        s.map_put(MAP, Key::Bytes(b"edge"), &[], &[uk], b"v").unwrap();
    }
    s.map_put(MAP, Key::Bytes(b"lone"), &[], b"x", b"1").unwrap();
    // Nested, with one entry left.
    for uk in 0..17u8 {
        s.map_put(MAP, Key::Bytes(b"last"), &[], &[uk], b"v").unwrap();
    }
    for uk in 1..17u8 {
        s.map_remove(MAP, Key::Bytes(b"last"), &[], &[uk]).unwrap();
    }
    let snap = snapshot.then(|| s.snapshot().unwrap());
    if pending {
        // Left pending: its frozen view shares every live index.
        s.checkpoint(Some(false)).unwrap();
    }
    (s, snap)
}

/// A value of a large record.
static BIG: [u8; 5000] = [7; 5000];

fn big() -> &'static [u8] {
    &BIG
}

const OPS: &[(&str, Op)] = &[
    ("put new", |s| s.put(VALUE, Key::Bytes(b"fresh"), &[], b"v")),
    ("put over, other class", |s| s.put(VALUE, Key::Bytes(k(3)), &[], &[1; 40])),
    ("put large", |s| s.put(VALUE, Key::Bytes(b"large"), &[], big())),
    ("put large over", |s| s.put(VALUE, Key::Bytes(k(4)), b"ns", big())),
    ("put in a new key group table", |s| s.put(VALUE, Key::Bytes(empty_kg_key()), b"ns", b"v")),
    ("append new", |s| s.append(LIST, Key::Bytes(b"fresh"), &[], b"abc")),
    ("append grows", |s| s.append(LIST, Key::Bytes(k(5)), &[], &[9; 300])),
    ("append large", |s| s.append(LIST, Key::Bytes(k(6)), &[], big())),
    ("remove", |s| s.remove(VALUE, Key::Bytes(k(7)), &[]).map(drop)),
    ("remove a map", |s| s.remove(MAP, Key::Bytes(b"nested"), &[]).map(drop)),
    ("map put new map", |s| s.map_put(MAP, Key::Bytes(b"new-map"), &[], b"a", b"1")),
    ("map put inline", |s| s.map_put(MAP, Key::Bytes(b"inline"), &[], b"b", b"22")),
    ("map put moves to nested", |s| s.map_put(MAP, Key::Bytes(b"edge"), &[], b"new", b"v")),
    ("map put nested", |s| s.map_put(MAP, Key::Bytes(b"nested"), &[], b"new", b"v")),
    ("map put large", |s| s.map_put(MAP, Key::Bytes(b"inline"), &[], b"big", big())),
    ("map remove inline", |s| s.map_remove(MAP, Key::Bytes(b"inline"), &[], &[1]).map(drop)),
    ("map remove lone", |s| s.map_remove(MAP, Key::Bytes(b"lone"), &[], b"x").map(drop)),
    ("map remove nested", |s| s.map_remove(MAP, Key::Bytes(b"nested"), &[], &[3]).map(drop)),
    ("map remove nested, last", |s| s.map_remove(MAP, Key::Bytes(b"last"), &[], &[0]).map(drop)),
    ("batch", |s| {
        let (a, b, c, e) = (k(8), k(9), &b"batch-new"[..], empty_kg_key());
        let ops: [(&[u8], Option<&[u8]>); 6] = [(a, Some(b"x")), (b, None), (c, Some(big())), (a, None), (c, Some(b"y")), (e, Some(&[5; 60]))];
        s.write_many(VALUE, &[], ops.into_iter()).map(drop)
    }),
    ("batch of deletes then puts", |s| {
        let ops = keys().iter().map(|k| (&k[..], None)).chain(keys().iter().map(|k| (&k[..], Some(&b"back"[..]))));
        s.write_many(VALUE, &[], ops).map(drop)
    }),
    ("set current key", |s| s.set_current_key(&[3; 100])),
];

/// Runs `op` in `situation`, refusing each of its allocations in turn.
fn refuse_each(name: &str, op: Op, snapshot: bool, pending: bool, tracking: bool) -> u64 {
    refuse_each_in(name, op, situation, (false, false), snapshot, pending, tracking)
}

type Situation = fn(bool, bool, bool) -> (Store, Option<u64>);

/// `refuse_each` in a given situation. `swallows`: the operation may
/// swallow a refusal (TTL cleanup after a write, or on a read, which only
/// ever removes expired values: what a read shows stays the same).
/// `cleans_first`: cleanup it ran before it failed may have changed the
/// entry counts (expired entries only).
fn refuse_each_in(name: &str, op: Op, situation: Situation, (swallows, cleans_first): (bool, bool), snapshot: bool, pending: bool, tracking: bool) -> u64 {
    let (mut fine, snap) = situation(snapshot, pending, tracking);
    op(&mut fine).unwrap_or_else(|e| panic!("{name}: {e}"));
    let after = dump(&fine, None);
    let mut n = 0;
    loop {
        let (mut s, snap2) = situation(snapshot, pending, tracking);
        assert_eq!(snap, snap2);
        let before = dump(&s, None);
        let at_snap = snap.map(|id| dump(&s, Some(id)));
        let entries: Vec<u64> = (0..3).map(|st| s.entries(st).unwrap()).collect();
        let (r, refused, unmarked) = refusing(n, || op(&mut s));
        assert_eq!(unmarked, 0, "{name}: {unmarked} allocations outside a reservation (refusing #{n})");
        s.check_invariants();
        match r {
            Err(Error::StoreFull(Full::OutOfMemory { .. })) => {
                assert!(refused, "{name}: out of memory without a refusal");
                assert_eq!(dump(&s, None), before, "{name}: a failed write left something (refusing #{n})");
                let now: Vec<u64> = (0..3).map(|st| s.entries(st).unwrap()).collect();
                assert!(cleans_first || now == entries, "{name}: entry counts changed (refusing #{n})");
                // And the store goes on: the same write now succeeds.
                op(&mut s).unwrap_or_else(|e| panic!("{name}: retry after refusing #{n}: {e}"));
                s.check_invariants();
                assert_eq!(dump(&s, None), after, "{name}: retry after refusing #{n}");
            }
            Ok(()) => {
                assert!(!refused || swallows, "{name}: refusal #{n} was not reported");
                assert_eq!(dump(&s, None), after, "{name}: the write");
            }
            Err(e) => panic!("{name}: {e} (refusing #{n})"),
        }
        if let (Some(id), Some(want)) = (snap, at_snap) {
            assert_eq!(dump(&s, Some(id)), want, "{name}: the snapshot changed (refusing #{n})");
        }
        // What is there checkpoints and restores.
        let cp = s.checkpoint(Some(false)).unwrap();
        let bytes = export_all(&mut s, cp.id).unwrap();
        let mut back = restore_chain(&[&bytes], opts(None)).unwrap();
        back.set_time(s.time()).unwrap();
        assert!(dump(&back, None) == dump(&s, None), "{name}: checkpoint");
        if !refused {
            return n;
        }
        n += 1;
    }
}

/// States 0, 1, 2 as in `situation`, with a time to live of 100 ms: entries
/// written at 0 (expired now, at 120, and not cleaned up yet) and at 60.
fn ttl_situation(snapshot: bool, pending: bool, tracking: bool) -> (Store, Option<u64>) {
    use keystate_core::{StateDescriptor, StateKind, StoreConfig, TtlConfig, TtlUpdate};
    let mut s = Store::new(StoreConfig::new(8, None, [7; 16]).unwrap());
    let ttl = TtlConfig { update: TtlUpdate::OnReadAndWrite, incremental: Some(3), every_record: true, ..TtlConfig::new(100).unwrap() };
    for (name, kind, uk) in [("value", StateKind::Value, ""), ("list", StateKind::List, ""), ("map", StateKind::Map, "bytes")] {
        s.register_state(StateDescriptor::new(name, kind, "bytes", uk).unwrap().with_ttl(Some(ttl)).unwrap()).unwrap();
    }
    if tracking {
        s.set_checkpoint_policy(Policy { incremental: true, ..Policy::default() }).unwrap();
        let cp = s.checkpoint(None).unwrap();
        export_all(&mut s, cp.id).unwrap();
        s.checkpoint_confirm(cp.id).unwrap();
    }
    for (i, key) in keys().iter().enumerate().take(120) {
        s.set_time(if i % 2 == 0 { 0 } else { 60 }).unwrap();
        s.put(VALUE, Key::Bytes(key), &[], &[i as u8; 9]).unwrap();
        s.append(LIST, Key::Bytes(key), &[], &[1, 2]).unwrap();
    }
    for uk in 0..40u8 {
        s.set_time(if uk % 2 == 0 { 0 } else { 60 }).unwrap();
        s.map_put(MAP, Key::Bytes(b"nested"), &[], &[uk], b"v").unwrap();
        s.map_put(MAP, Key::Bytes(b"inline"), &[], &[uk % 3], b"v").unwrap();
    }
    // The list of key 1: elements from 0 and from 60.
    s.set_time(0).unwrap();
    s.append(LIST, Key::Bytes(k(1)), &[], &[1, 9]).unwrap();
    s.set_time(120).unwrap();
    let snap = snapshot.then(|| s.snapshot().unwrap());
    if pending {
        s.checkpoint(Some(false)).unwrap();
    }
    (s, snap)
}

fn ignore<T>(r: keystate_core::Result<T>) -> keystate_core::Result<()> {
    r.map(drop)
}

/// TTL operations: (name, op, is a read or runs cleanup first).
const TTL_OPS: &[(&str, Op, bool)] = &[
    ("ttl put new", |s| s.put(VALUE, Key::Bytes(b"fresh"), &[], b"v"), false),
    ("ttl put over an expired value", |s| s.put(VALUE, Key::Bytes(k(0)), &[], &[1; 40]), false),
    ("ttl put large", |s| s.put(VALUE, Key::Bytes(b"large"), &[], big()), false),
    ("ttl append new", |s| s.append(LIST, Key::Bytes(b"fresh"), &[], &[3, 1, 2, 3]), false),
    ("ttl append to a list", |s| s.append(LIST, Key::Bytes(k(1)), &[], &[2, 7, 7]), false),
    ("ttl list replaced", |s| s.put(LIST, Key::Bytes(k(3)), &[], &[1, 5, 1, 6]), false),
    ("ttl map put", |s| s.map_put(MAP, Key::Bytes(b"nested"), &[], b"new", b"v"), false),
    ("ttl map put inline", |s| s.map_put(MAP, Key::Bytes(b"inline"), &[], b"z", big()), false),
    ("ttl remove", |s| ignore(s.remove(VALUE, Key::Bytes(k(5)), &[])), false),
    ("ttl map remove", |s| ignore(s.map_remove(MAP, Key::Bytes(b"nested"), &[], &[1])), false),
    ("ttl read renews a value", |s| ignore(s.get(VALUE, Key::Bytes(k(7)), &[], None)), true),
    ("ttl read of an expired value", |s| ignore(s.get(VALUE, Key::Bytes(k(8)), &[], None)), true),
    ("ttl read renews a list, drops expired elements", |s| ignore(s.get(LIST, Key::Bytes(k(1)), &[], None)), true),
    ("ttl read renews a map entry", |s| ignore(s.map_get(MAP, Key::Bytes(b"nested"), &[], &[3], None)), true),
    ("ttl map listing renews and cleans", |s| s.map_for_each(MAP, Key::Bytes(b"nested"), &[], None, |_, _| ()), true),
    ("ttl fold reads for update", |s| ignore(s.get_for_update(VALUE, Key::Bytes(k(9)), &[])), true),
    ("ttl set current key cleans up", |s| s.set_current_key(b"someone"), true),
    ("ttl expire", |s| ignore(s.expire()), true),
];

#[test]
fn a_ttl_write_that_cannot_get_memory_changes_nothing() {
    let mut total = 0;
    for (snapshot, pending, tracking) in [(false, false, false), (true, false, false), (false, true, false), (false, false, true), (true, true, true)] {
        for (name, op, best_effort) in TTL_OPS {
            let label = format!("{name} (snapshot {snapshot}, pending checkpoint {pending}, tracking {tracking})");
            // Every TTL operation may end with a cleanup step that swallows a refusal.
            total += refuse_each_in(&label, *op, ttl_situation, (true, *best_effort), snapshot, pending, tracking);
        }
    }
    eprintln!("{total} allocations refused in all (TTL)");
    assert!(total > 100, "only {total} allocations refused in all");
}

#[test]
fn a_write_that_cannot_get_memory_changes_nothing() {
    let mut total = 0;
    for (snapshot, pending, tracking) in [(false, false, false), (true, false, false), (false, true, false), (false, false, true), (true, true, true)] {
        for (name, op) in OPS {
            let label = format!("{name} (snapshot {snapshot}, pending checkpoint {pending}, tracking {tracking})");
            total += refuse_each(&label, *op, snapshot, pending, tracking);
        }
    }
    // The situations make writes allocate: layers, copies, members, pages.
    eprintln!("{total} allocations refused in all");
    assert!(total > 200, "only {total} allocations refused in all");
}

#[test]
fn an_incremental_checkpoint_after_failed_writes_is_complete() {
    // Failed writes may leave delta-log members: harmless, the chain still
    // restores to exactly the live state.
    let (mut s, _) = situation(false, false, true);
    let mut chain = Vec::new();
    let cp = s.checkpoint(Some(false)).unwrap();
    chain.push(export_all(&mut s, cp.id).unwrap());
    s.checkpoint_confirm(cp.id).unwrap();
    for (i, (_, op)) in OPS.iter().enumerate() {
        let (r, _, _) = refusing(i as u64 % 4, || op(&mut s));
        if r.is_err() {
            let (r, _, _) = refusing(u64::MAX, || op(&mut s));
            r.unwrap();
        }
    }
    let cp = s.checkpoint(Some(true)).unwrap();
    chain.push(export_all(&mut s, cp.id).unwrap());
    let pieces: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    assert_eq!(dump(&restore_chain(&pieces, opts(None)).unwrap(), None), dump(&s, None));
}

#[test]
fn a_refused_write_leaves_no_value_in_the_delta_log() {
    // A member keeps its entry's last write for the incremental export
    // (crate::delta); a write refused after its member was found or made
    // must not be that write. Not retried here: the entry keeps its value
    // from before, and the chain must restore exactly that.
    let ops: &[(&str, Op)] = &[
        ("put new", |s| s.put(VALUE, Key::Bytes(b"fresh"), &[], b"v")),
        ("put over, same size", |s| s.put(VALUE, Key::Bytes(k(3)), &[], &[1; 9])),
        ("put over, other class", |s| s.put(VALUE, Key::Bytes(k(4)), &[], &[2; 40])),
        ("remove", |s| s.remove(VALUE, Key::Bytes(k(7)), &[]).map(drop)),
    ];
    let mut refused = 0;
    // What makes the write allocate: a snapshot taken after the members
    // were made (a chunk copy), or a checkpoint left pending (the same, and
    // a new generation of members; the incremental below then reads both).
    for ((name, op), pending) in ops.iter().flat_map(|op| [(op, false), (op, true)]) {
        for n in 0.. {
            let (mut s, _) = situation(false, false, true);
            let base = {
                let cp = s.checkpoint(Some(false)).unwrap();
                let b = export_all(&mut s, cp.id).unwrap();
                s.checkpoint_confirm(cp.id).unwrap();
                b
            };
            // Members made and kept by successful writes.
            s.put(VALUE, Key::Bytes(k(3)), &[], &[5; 9]).unwrap();
            s.put(VALUE, Key::Bytes(k(4)), &[], &[6; 9]).unwrap();
            s.put(VALUE, Key::Bytes(k(7)), &[], &[8; 9]).unwrap();
            let held = if pending {
                s.checkpoint(Some(false)).unwrap();
                None
            } else {
                Some(s.snapshot().unwrap())
            };
            let (r, hit, _) = refusing(n, || op(&mut s));
            if !hit {
                r.unwrap();
                break;
            }
            assert!(matches!(r, Err(Error::StoreFull(_))), "{name}: {r:?}");
            refused += 1;
            if let Some(snap) = held {
                s.release(snap).unwrap();
            }
            let cp = s.checkpoint(Some(true)).unwrap();
            assert_eq!(cp.kind, keystate_core::CheckpointKind::Incremental);
            let delta = export_all(&mut s, cp.id).unwrap();
            let back = restore_chain(&[&base, &delta], opts(None)).unwrap();
            assert_eq!(dump(&back, None), dump(&s, None), "{name}, refusal {n} (pending checkpoint {pending})");
        }
    }
    assert!(refused >= 8, "only {refused} refusals");
}

#[test]
fn snapshots_checkpoints_and_restores_refuse_instead_of_aborting() {
    let (mut s, _) = situation(true, false, true);
    let mut refused = 0;
    for n in 0..64 {
        let (r, hit, _) = refusing(n, || s.snapshot().map(drop).and_then(|()| s.checkpoint(None).map(drop)));
        match r {
            Ok(()) => {}
            Err(Error::StoreFull(_)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
        s.check_invariants();
        if !hit {
            break;
        }
    }
    assert!(refused > 0);
    // Every pending checkpoint still exports, chunk by chunk, through refusals.
    let cp = s.checkpoint(Some(false)).unwrap();
    let mut out = Vec::new();
    let mut n = 0;
    loop {
        let (r, _, _) = refusing(n % 3, || s.checkpoint_next(cp.id, &mut out, 256));
        match r {
            Ok(true) => break,
            Ok(false) | Err(Error::StoreFull(_)) => n += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let back = restore_chain(&[&out], opts(None)).unwrap();
    assert_eq!(dump(&back, None), dump(&s, None));
    // A restore that runs out of memory fails, and hands out nothing.
    for n in 0..32 {
        let (r, hit, _) = refusing(n, || restore_chain(&[&out], opts(None)).map(|s| dump(&s, None)));
        match r {
            Ok(m) => assert_eq!(m, dump(&s, None)),
            Err(Error::StoreFull(_)) => assert!(hit),
            Err(e) => panic!("{e}"),
        }
    }
    // So does reading it without restoring (the command line's inspect),
    // record listing and report included.
    let inspect = |bytes: &[u8]| -> Result<(String, usize), Error> {
        let mut ins = Inspector::new(true);
        let mut listed = 0;
        for chunk in bytes.chunks(200) {
            ins.feed(chunk)?;
            listed += ins.records().len();
        }
        Ok((ins.finish()?, listed))
    };
    let whole = inspect(&out).unwrap();
    let mut refused = 0;
    for n in 0..10_000 {
        let (r, hit, _) = refusing(n, || inspect(&out));
        match r {
            Ok(got) => assert_eq!(got, whole),
            Err(Error::StoreFull(_)) => {
                assert!(hit);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
        if !hit {
            break;
        }
    }
    assert!(refused > 2, "{refused} refusals");
}

/// Puts values of `len` bytes under new keys until the budget refuses one;
/// returns how many fit.
fn fill(s: &mut Store, len: usize) -> usize {
    fill_as(s, len, "fill")
}

fn fill_as(s: &mut Store, len: usize, prefix: &str) -> usize {
    let limit = s.memory_limit().unwrap();
    for i in 0.. {
        let key = format!("{prefix}-{i}").into_bytes();
        match s.put(VALUE, Key::Bytes(&key), &[], &vec![i as u8; len]) {
            Ok(()) => assert!(s.used_bytes() <= limit, "{} bytes held, over the budget {limit}", s.used_bytes()),
            Err(Error::StoreFull(Full::Budget { used, limit: l, .. })) => {
                assert_eq!(l, limit);
                assert!(used <= limit);
                assert_eq!(s.get(VALUE, Key::Bytes(&key), &[], None).unwrap(), None, "the refused write left nothing");
                return i;
            }
            Err(e) => panic!("{e}"),
        }
    }
    unreachable!()
}

#[test]
fn a_budget_refuses_writes_and_deletes_make_room() {
    let mut s = store_with_states(16, None);
    s.set_memory_limit(Some(512 << 10)).unwrap();
    let n = fill(&mut s, 100);
    assert!(n > 2000, "only {n} values of 100 bytes in 512 KiB");
    assert_eq!(s.entries(VALUE).unwrap(), n as u64);
    assert_eq!(s.memory().total_bytes, s.used_bytes());
    // Reads, snapshots and checkpoints go on; overwrites in place need nothing.
    assert_eq!(s.get(VALUE, Key::Bytes(b"fill-7"), &[], None).unwrap(), Some(&[7u8; 100][..]));
    s.put(VALUE, Key::Bytes(b"fill-7"), &[], &[1; 100]).unwrap();
    let cp = s.checkpoint(None).unwrap();
    let bytes = export_all(&mut s, cp.id).unwrap();
    s.checkpoint_confirm(cp.id).unwrap();
    // Deletes are not held to the budget, and make room for writes again.
    for i in 0..n / 2 {
        assert!(s.remove(VALUE, Key::Bytes(format!("fill-{i}").as_bytes()), &[]).unwrap());
    }
    let more = fill(&mut s, 100);
    assert!(more >= n / 3, "{more} values fit after deleting {}", n / 2);
    s.check_invariants();
    // A restore held to a budget too small for the chain refuses it.
    let mut r = keystate_core::Restorer::new(opts(None));
    r.set_memory_limit(Some(64 << 10)).unwrap();
    r.begin_piece(false).unwrap();
    let err = r.feed(&bytes).and_then(|()| r.end_piece().map(drop)).unwrap_err();
    assert!(matches!(err, Error::StoreFull(Full::Budget { .. })), "{err}");
    assert!(r.finish().is_err(), "a refused restore hands out nothing");
    let mut r = keystate_core::Restorer::new(opts(None));
    r.set_memory_limit(Some(1 << 20)).unwrap();
    r.begin_piece(false).unwrap();
    r.feed(&bytes).unwrap();
    r.end_piece().unwrap();
    let back = r.finish().unwrap();
    assert_eq!(back.memory_limit(), Some(1 << 20));
    assert_eq!(back.entries(VALUE).unwrap(), n as u64);
}

#[test]
fn a_batch_that_does_not_fit_the_budget_writes_nothing() {
    let mut s = store_with_states(16, None);
    s.set_memory_limit(Some(256 << 10)).unwrap();
    let n = fill(&mut s, 40);
    // Room for a few more, not for a thousand.
    for i in 0..n / 10 {
        s.remove(VALUE, Key::Bytes(format!("fill-{i}").as_bytes()), &[]).unwrap();
    }
    let before = dump(&s, None);
    let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("batch-{i}").into_bytes()).collect();
    let value = [9u8; 40];
    let ops = keys.iter().map(|k| (&k[..], Some(&value[..])));
    let err = s.write_many(VALUE, &[], ops).unwrap_err();
    assert!(matches!(err, Error::StoreFull(Full::Budget { .. })), "{err}");
    assert_eq!(dump(&s, None), before, "a refused batch writes nothing");
    s.check_invariants();
    let ops = keys.iter().take(10).map(|k| (&k[..], Some(&value[..])));
    assert_eq!(s.write_many(VALUE, &[], ops).unwrap(), 10);
}

#[test]
fn deletes_are_not_held_to_the_budget_even_when_tombstones_need_memory() {
    // With delta tracking, a delete records a tombstone member: memory the
    // budget would refuse at its limit. Single deletes and delete-only
    // batches go through anyway, as they would without tracking.
    let mut s = store_with_states(16, None);
    s.set_checkpoint_policy(Policy { incremental: true, ..Policy::default() }).unwrap();
    s.set_memory_limit(Some(256 << 10)).unwrap();
    let n = fill_as(&mut s, 40, "old");
    // A new generation of the delta log, filled again: tombstones of the old
    // keys need new members.
    let cp = s.checkpoint(None).unwrap();
    export_all(&mut s, cp.id).unwrap();
    s.checkpoint_confirm(cp.id).unwrap();
    fill_as(&mut s, 40, "new");
    let olds: Vec<Vec<u8>> = (0..n).map(|i| format!("old-{i}").into_bytes()).collect();
    let members = s.delta_members();
    assert!(s.remove(VALUE, Key::Bytes(&olds[0]), &[]).unwrap());
    assert_eq!(s.write_many(VALUE, &[], olds[1..].iter().map(|k| (&k[..], None))).unwrap(), n - 1);
    assert_eq!(s.delta_members(), members + n, "every delete has its tombstone");
    assert!(s.used_bytes() > s.memory_limit().unwrap(), "the tombstones took memory past the budget");
    s.check_invariants();
}

#[test]
fn maps_and_lists_are_held_to_the_budget() {
    let mut s = store_with_states(4, None);
    s.set_memory_limit(Some(128 << 10)).unwrap();
    let mut maps = 0;
    let err = loop {
        match s.map_put(MAP, Key::Bytes(b"m"), &[], format!("uk-{maps}").as_bytes(), &[3; 30]) {
            Ok(()) => maps += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::StoreFull(Full::Budget { .. })), "{err}");
    assert_eq!(s.map_len(MAP, Key::Bytes(b"m"), &[], None).unwrap(), maps);
    s.remove(MAP, Key::Bytes(b"m"), &[]).unwrap();
    let mut appended = 0;
    let err = loop {
        match s.append(LIST, Key::Bytes(b"l"), &[], &[1; 64]) {
            Ok(()) => appended += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::StoreFull(Full::Budget { .. })), "{err}");
    assert_eq!(s.get(LIST, Key::Bytes(b"l"), &[], None).unwrap().map(<[u8]>::len), Some(appended * 64));
    s.check_invariants();
    assert!(s.set_memory_limit(Some(0)).is_err());
}
