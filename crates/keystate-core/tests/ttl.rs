//! State time-to-live in the core: the cases of Flink's TtlStateTestBase
//! (flink-runtime, org.apache.flink.runtime.state.ttl) for each state kind,
//! with the store's time as the mock clock, and each step's store restored
//! from a full checkpoint of the one before (Flink's takeAndRestoreSnapshot).

mod common;

use common::opts;
use keystate_core::ttl::STAMP_LEN;
use keystate_core::{export_all, restore_chain, Key, StateDescriptor, StateKind, Store, StoreConfig, TtlConfig, TtlUpdate, TtlVisibility};

const TTL: u64 = 100;
const KEY: &[u8] = b"defaultKey";

/// One state kind (Flink's TtlStateTestContext): how a test writes and reads
/// it, and what reads return (see test/ttl.test.ts for the same table).
#[derive(Clone, Copy, Debug)]
enum Ctx {
    Value,
    /// Per element: what was added at 0 is gone at 120.
    List,
    /// One user key, written over.
    MapEntry,
    /// A fold (`get_for_update`, then a write), as the TypeScript `add`.
    Reducing,
}

const CTXS: [Ctx; 4] = [Ctx::Value, Ctx::List, Ctx::MapEntry, Ctx::Reducing];

impl Ctx {
    fn kind(self) -> StateKind {
        match self {
            Ctx::Value => StateKind::Value,
            Ctx::List => StateKind::List,
            Ctx::MapEntry => StateKind::Map,
            Ctx::Reducing => StateKind::Reducing,
        }
    }

    fn desc(self, ttl: Option<TtlConfig>) -> StateDescriptor {
        let uk = if self.kind() == StateKind::Map { "bytes" } else { "" };
        StateDescriptor::new("s", self.kind(), "bytes", uk).unwrap().with_ttl(ttl).unwrap()
    }

    /// Writes update `i` (1, 2, 3: Flink's updateEmpty, updateUnexpired, updateExpired).
    fn update(self, s: &mut Store, key: &[u8], ns: &[u8], i: u8) {
        let k = Key::Bytes(key);
        match self {
            Ctx::Value => s.put(0, k, ns, &[i]).unwrap(),
            Ctx::List => s.append(0, k, ns, &[1, i]).unwrap(),
            Ctx::MapEntry => s.map_put(0, k, ns, b"uk", &[i]).unwrap(),
            Ctx::Reducing => {
                let cur = s.get_for_update(0, k, ns).unwrap().map_or(0, |v| v[0]);
                s.put(0, k, ns, &[cur + i]).unwrap();
            }
        }
    }

    fn get(self, s: &mut Store, key: &[u8], ns: &[u8]) -> Option<Vec<u8>> {
        let k = Key::Bytes(key);
        let v = match self {
            Ctx::MapEntry => s.map_get(0, k, ns, b"uk", None).unwrap(),
            _ => s.get(0, k, ns, None).unwrap(),
        };
        v.map(<[u8]>::to_vec)
    }

    fn get_at(self, s: &mut Store, key: &[u8], at: u64) -> Option<Vec<u8>> {
        let k = Key::Bytes(key);
        let v = match self {
            Ctx::MapEntry => s.map_get(0, k, b"", b"uk", Some(at)).unwrap(),
            _ => s.get(0, k, b"", Some(at)).unwrap(),
        };
        v.map(<[u8]>::to_vec)
    }

    /// What a read returns after `updates` (each unexpired when read).
    fn expect(self, updates: &[u8]) -> Option<Vec<u8>> {
        let last = *updates.last()?;
        Some(match self {
            Ctx::List => vec![1, last],
            Ctx::Reducing => vec![updates.iter().sum()],
            _ => vec![last],
        })
    }
}

fn cfg(update: TtlUpdate, visibility: TtlVisibility, ttl_ms: u64) -> TtlConfig {
    TtlConfig { ttl_ms, update, visibility, incremental: None, every_record: false, full_snapshot: false }
}

fn on_write() -> TtlConfig {
    cfg(TtlUpdate::OnCreateAndWrite, TtlVisibility::NeverReturnExpired, TTL)
}

fn store(ctx: Ctx, ttl: TtlConfig) -> Store {
    let mut s = Store::new(StoreConfig::new(16, None, [3; 16]).unwrap());
    assert_eq!(s.register_state(ctx.desc(Some(ttl))).unwrap(), 0);
    s
}

/// A full checkpoint of `s` at its time, restored and declared again.
fn cycle(s: &mut Store, ctx: Ctx, ttl: TtlConfig) -> Store {
    let cp = s.checkpoint(None).unwrap();
    let bytes = export_all(s, cp.id).unwrap();
    let mut back = restore_chain(&[&bytes], opts(None)).unwrap();
    assert_eq!(back.register_state(ctx.desc(Some(ttl))).unwrap(), 0);
    back.set_time(s.time()).unwrap();
    back.check_invariants();
    back
}

/// Whether the core holds nothing of the state (Flink's isOriginalEmptyValue;
/// these tests write one key).
fn original_empty(s: &Store, _ns: &[u8]) -> bool {
    s.entries(0).unwrap() == 0
}

#[test]
fn non_existent_value() {
    for ctx in CTXS {
        let mut s = store(ctx, on_write());
        assert_eq!(ctx.get(&mut s, KEY, b""), None, "{ctx:?}");
    }
}

#[test]
fn exact_expiration_on_write() {
    for ctx in CTXS {
        let c = on_write();
        let mut s = store(ctx, c);
        s = cycle(&mut s, ctx, c);
        ctx.update(&mut s, KEY, b"", 1);
        s = cycle(&mut s, ctx, c);
        s.set_time(20).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[1]), "{ctx:?}");
        s = cycle(&mut s, ctx, c);
        s.set_time(50).unwrap();
        ctx.update(&mut s, KEY, b"", 2);
        s = cycle(&mut s, ctx, c);
        s.set_time(120).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[1, 2]), "{ctx:?}: unexpired after an update");
        s = cycle(&mut s, ctx, c);
        s.set_time(170).unwrap();
        ctx.update(&mut s, KEY, b"", 3);
        s = cycle(&mut s, ctx, c);
        s.set_time(220).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[3]), "{ctx:?}: written after expiry");
        s = cycle(&mut s, ctx, c);
        s.set_time(300).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), None, "{ctx:?}: expired");
        assert!(original_empty(&s, b""), "{ctx:?}: cleared on access");
        s.check_invariants();
    }
}

#[test]
fn relaxed_expiration_on_write() {
    for ctx in CTXS {
        let c = cfg(TtlUpdate::OnCreateAndWrite, TtlVisibility::ReturnExpiredIfNotCleanedUp, TTL);
        let mut s = store(ctx, c);
        ctx.update(&mut s, KEY, b"", 1);
        s = cycle(&mut s, ctx, c);
        s.set_time(120).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[1]), "{ctx:?}: returned once");
        assert!(original_empty(&s, b""), "{ctx:?}: and removed");
        assert_eq!(ctx.get(&mut s, KEY, b""), None, "{ctx:?}");
    }
}

#[test]
fn exact_expiration_on_read() {
    for ctx in CTXS {
        let c = cfg(TtlUpdate::OnReadAndWrite, TtlVisibility::NeverReturnExpired, TTL);
        let mut s = store(ctx, c);
        ctx.update(&mut s, KEY, b"", 1);
        s = cycle(&mut s, ctx, c);
        s.set_time(50).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[1]), "{ctx:?}");
        s = cycle(&mut s, ctx, c);
        s.set_time(120).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[1]), "{ctx:?}: renewed by the read at 50");
        s = cycle(&mut s, ctx, c);
        s.set_time(250).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), None, "{ctx:?}");
        assert!(original_empty(&s, b""));
    }
}

#[test]
fn relaxed_expiration_on_read() {
    for ctx in CTXS {
        let c = cfg(TtlUpdate::OnReadAndWrite, TtlVisibility::ReturnExpiredIfNotCleanedUp, TTL);
        let mut s = store(ctx, c);
        ctx.update(&mut s, KEY, b"", 1);
        s = cycle(&mut s, ctx, c);
        s.set_time(50).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[1]));
        s = cycle(&mut s, ctx, c);
        s.set_time(170).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[1]), "{ctx:?}: expired, returned once");
        assert_eq!(ctx.get(&mut s, KEY, b""), None, "{ctx:?}");
    }
}

#[test]
fn expiration_timestamp_overflow() {
    for ctx in CTXS {
        let c = cfg(TtlUpdate::OnCreateAndWrite, TtlVisibility::NeverReturnExpired, u64::MAX);
        let mut s = store(ctx, c);
        s.set_time(10).unwrap();
        ctx.update(&mut s, KEY, b"", 1);
        s = cycle(&mut s, ctx, c);
        s.set_time(keystate_core::ttl::MAX_TIME).unwrap();
        assert_eq!(ctx.get(&mut s, KEY, b""), ctx.expect(&[1]), "{ctx:?}: ts + ttl saturates");
    }
}

/// Flink's testMultipleStateIds, over keys or namespaces.
fn multiple_ids(ctx: Ctx, full_snapshot: bool, by_ns: bool) {
    let c = TtlConfig { full_snapshot, ..on_write() };
    let at = |id: &'static [u8]| if by_ns { (KEY, id) } else { (id, &b""[..]) };
    let mut s = store(ctx, c);
    s = cycle(&mut s, ctx, c);
    let (k2, n2) = at(b"id2");
    let (k1, n1) = at(b"id1");
    ctx.update(&mut s, k2, n2, 1);
    s = cycle(&mut s, ctx, c);
    s.set_time(50).unwrap();
    ctx.update(&mut s, k1, n1, 1);
    ctx.update(&mut s, k2, n2, 2);
    s.set_time(120).unwrap();
    s = cycle(&mut s, ctx, c);
    assert_eq!(ctx.get(&mut s, k1, n1), ctx.expect(&[1]), "{ctx:?}");
    assert_eq!(ctx.get(&mut s, k2, n2), ctx.expect(&[1, 2]), "{ctx:?}");
    s.set_time(170).unwrap();
    ctx.update(&mut s, k2, n2, 3);
    s.set_time(230).unwrap();
    s = cycle(&mut s, ctx, c);
    if full_snapshot {
        // Set back: what the full checkpoint left out stays out.
        s.set_time(170).unwrap();
    }
    assert_eq!(ctx.get(&mut s, k1, n1), None, "{ctx:?}");
    assert_eq!(ctx.get(&mut s, k2, n2), ctx.expect(&[3]), "{ctx:?}");
    s.set_time(300).unwrap();
    s = cycle(&mut s, ctx, c);
    if full_snapshot {
        s.set_time(230).unwrap();
    }
    assert_eq!(ctx.get(&mut s, k1, n1), None, "{ctx:?}");
    assert_eq!(ctx.get(&mut s, k2, n2), None, "{ctx:?}");
}

#[test]
fn multiple_keys_and_namespaces_with_and_without_snapshot_cleanup() {
    for ctx in CTXS {
        for (full, ns) in [(false, false), (true, false), (false, true), (true, true)] {
            multiple_ids(ctx, full, ns);
        }
    }
}

#[test]
fn snapshot_change_restore() {
    for ctx in CTXS {
        let c = on_write();
        let mut s = store(ctx, c);
        ctx.update(&mut s, b"k1", b"", 1);
        s.set_time(50).unwrap();
        ctx.update(&mut s, b"k1", b"", 2);
        s.set_time(100).unwrap();
        ctx.update(&mut s, b"k2", b"", 1);
        let cp = s.checkpoint(None).unwrap();
        s.set_time(170).unwrap();
        ctx.update(&mut s, b"k1", b"", 3);
        ctx.update(&mut s, b"k2", b"", 2);
        let bytes = export_all(&mut s, cp.id).unwrap();
        let mut back = restore_chain(&[&bytes], opts(None)).unwrap();
        back.register_state(ctx.desc(Some(c))).unwrap();
        back.set_time(180).unwrap();
        assert_eq!(ctx.get(&mut back, b"k1", b""), None, "{ctx:?}");
        assert_eq!(ctx.get(&mut back, b"k2", b""), ctx.expect(&[1]), "{ctx:?}");
    }
}

#[test]
fn restoring_ttl_state_and_declaring_it_without_ttl_fails_and_the_reverse() {
    for ctx in CTXS {
        let mut s = store(ctx, on_write());
        ctx.update(&mut s, KEY, b"", 1);
        let cp = s.checkpoint(None).unwrap();
        let bytes = export_all(&mut s, cp.id).unwrap();
        let mut back = restore_chain(&[&bytes], opts(None)).unwrap();
        assert_eq!(back.register_state(ctx.desc(None)).unwrap_err().code(), "INCOMPATIBLE_STATE", "{ctx:?}");

        let mut plain = Store::new(StoreConfig::new(16, None, [3; 16]).unwrap());
        plain.register_state(ctx.desc(None)).unwrap();
        let cp = plain.checkpoint(None).unwrap();
        let bytes = export_all(&mut plain, cp.id).unwrap();
        let mut back = restore_chain(&[&bytes], opts(None)).unwrap();
        assert_eq!(back.register_state(ctx.desc(Some(on_write()))).unwrap_err().code(), "INCOMPATIBLE_STATE", "{ctx:?}");
    }
}

#[test]
fn incremental_cleanup_of_a_whole_state_on_every_record() {
    for ctx in CTXS {
        let c = TtlConfig { incremental: Some(5), every_record: true, ..on_write() };
        let mut s = store(ctx, c);
        let n = 1000u32;
        for i in 0..n {
            ctx.update(&mut s, format!("{i}").as_bytes(), b"", 1);
        }
        assert_eq!(s.entries(0).unwrap(), u64::from(n));
        s.set_time(120).unwrap();
        for i in 0..n {
            s.set_current_key(format!("{i}").as_bytes()).unwrap();
        }
        assert_eq!(s.entries(0).unwrap(), 0, "{ctx:?}: every expired entry went");
        assert_eq!(s.memory().ttl_bytes, 0);
        s.check_invariants();
    }
}

#[test]
fn incremental_cleanup_keeps_what_a_snapshot_holds_and_what_was_renewed() {
    // Flink's testIncrementalCleanup, in short: cleanup while a checkpoint
    // is taken removes only from the live state.
    for ctx in CTXS {
        let c = TtlConfig { incremental: Some(5), ..on_write() };
        let mut s = store(ctx, c);
        for i in 0..300u32 {
            ctx.update(&mut s, format!("{i}").as_bytes(), b"", 1);
        }
        s.set_time(50).unwrap();
        for i in 0..30u32 {
            ctx.update(&mut s, format!("{i}").as_bytes(), b"", 2);
        }
        let cp = s.checkpoint(None).unwrap();
        s.set_time(120).unwrap();
        for _ in 0..400 {
            ctx.get(&mut s, b"other", b"");
        }
        assert_eq!(s.entries(0).unwrap(), 30, "{ctx:?}: the accesses cleaned up the rest");
        for i in 0..30u32 {
            assert_eq!(ctx.get(&mut s, format!("{i}").as_bytes(), b""), ctx.expect(&[1, 2]), "{ctx:?}");
        }
        let bytes = export_all(&mut s, cp.id).unwrap();
        let mut back = restore_chain(&[&bytes], opts(None)).unwrap();
        back.register_state(ctx.desc(Some(c))).unwrap();
        back.set_time(50).unwrap();
        assert_eq!(back.entries(0).unwrap(), 300, "{ctx:?}: the checkpoint has everything of its moment");
        assert_eq!(ctx.get(&mut back, b"200", b""), ctx.expect(&[1]));
        s.check_invariants();
    }
}

#[test]
fn expire_removes_as_tombstones_and_snapshots_keep_their_moment() {
    for ctx in CTXS {
        let mut s = store(ctx, TtlConfig { incremental: None, ..on_write() });
        s.set_checkpoint_policy(keystate_core::Policy { incremental: true, ..Default::default() }).unwrap();
        for i in 0..100u32 {
            s.set_time(if i % 10 == 0 { 0 } else { 60 }).unwrap();
            ctx.update(&mut s, format!("{i}").as_bytes(), b"", 1);
        }
        let full = s.checkpoint(None).unwrap();
        let fb = export_all(&mut s, full.id).unwrap();
        s.checkpoint_confirm(full.id).unwrap();
        let snap = s.snapshot().unwrap();
        s.set_time(120).unwrap();
        assert_eq!(s.expire().unwrap(), 10, "{ctx:?}");
        assert_eq!(s.expire().unwrap(), 0);
        assert_eq!(s.entries(0).unwrap(), 90);
        assert_eq!(ctx.get_at(&mut s, b"0", snap), ctx.expect(&[1]), "{ctx:?}: the snapshot keeps it");
        s.release(snap).unwrap();
        let inc = s.checkpoint(None).unwrap();
        let ib = export_all(&mut s, inc.id).unwrap();
        let back = restore_chain(&[&fb, &ib], opts(None)).unwrap();
        assert_eq!(back.entries(0).unwrap(), 90, "{ctx:?}: the removals travelled as deletes");
        s.check_invariants();
        back.check_invariants();
    }
}

#[test]
fn the_timestamp_costs_six_bytes_per_value_and_memory_says_so() {
    let mut with = store(Ctx::Value, on_write());
    let mut without = Store::new(StoreConfig::new(16, None, [3; 16]).unwrap());
    without.register_state(Ctx::Value.desc(None)).unwrap();
    for i in 0..1000u32 {
        with.put(0, Key::Bytes(&i.to_le_bytes()), b"", &[7; 10]).unwrap();
        without.put(0, Key::Bytes(&i.to_le_bytes()), b"", &[7; 10]).unwrap();
    }
    assert_eq!(with.memory().ttl_bytes, 1000 * STAMP_LEN as u64);
    assert_eq!(with.memory().states[0].ttl_bytes, 1000 * STAMP_LEN as u64);
    assert_eq!(without.memory().ttl_bytes, 0);
    let (a, b) = (with.memory().states[0].live_bytes, without.memory().states[0].live_bytes);
    // Records are slotted by size class: the stamp costs at most its class step.
    assert!(a >= b && a - b <= 1000 * 16, "{a} vs {b}");
}

#[test]
fn cleanup_skips_states_with_nothing_expired_and_resumes_when_something_is() {
    // A state's floor (its oldest stamp, at most) lets a step be skipped while
    // nothing can have expired; writes, restores and expire() keep it honest.
    for ctx in CTXS {
        let c = TtlConfig { incremental: Some(5), every_record: true, ..on_write() };
        let mut s = store(ctx, c);
        for i in 0..1000u32 {
            ctx.update(&mut s, format!("{i}").as_bytes(), b"", 1);
        }
        s.set_time(50).unwrap();
        for i in 0..10u32 {
            ctx.update(&mut s, format!("{i}").as_bytes(), b"", 2);
        }
        s.set_time(120).unwrap();
        assert_eq!(s.expire().unwrap(), if matches!(ctx, Ctx::List) { 1000 } else { 990 }, "{ctx:?}");
        s.check_invariants();
        // A restore of what is left, and more writes at 130.
        s = cycle(&mut s, ctx, c);
        s.set_time(130).unwrap();
        for i in 1000..1500u32 {
            ctx.update(&mut s, format!("{i}").as_bytes(), b"", 1);
        }
        s.set_time(140).unwrap();
        for i in 0..100u32 {
            s.set_current_key(format!("{i}").as_bytes()).unwrap();
        }
        assert_eq!(s.entries(0).unwrap(), 510, "{ctx:?}: nothing had expired at 140");
        s.set_time(300).unwrap();
        for i in 0..1000u32 {
            s.set_current_key(format!("{i}").as_bytes()).unwrap();
        }
        assert_eq!(s.entries(0).unwrap(), 0, "{ctx:?}: everything had at 300");
        s.check_invariants();
    }
}

#[test]
fn a_batch_stamps_its_values_as_single_writes_do() {
    // `setMany` on a state with TTL once stored its values without stamps,
    // so every read found them long expired and removed them.
    let c = TtlConfig { full_snapshot: true, ..on_write() };
    let mut s = store(Ctx::Value, c);
    s.set_time(10).unwrap();
    s.put(0, Key::Bytes(b"gone"), b"", b"x").unwrap();
    let ops: [(&[u8], Option<&[u8]>); 4] = [(b"a", Some(b"1")), (b"b", Some(b"22")), (b"gone", None), (b"b", Some(b"2"))];
    assert_eq!(s.write_many(0, b"", ops.into_iter()).unwrap(), 4);
    let read = |s: &mut Store, k: &[u8]| s.get(0, Key::Bytes(k), b"", None).unwrap().map(<[u8]>::to_vec);
    assert_eq!(read(&mut s, b"a"), Some(b"1".to_vec()));
    assert_eq!(read(&mut s, b"b"), Some(b"2".to_vec()));
    assert_eq!(read(&mut s, b"gone"), None);
    assert_eq!(s.entries(0).unwrap(), 2);
    // Stamped with the batch's time: unexpired, through a checkpoint too,
    // until the time to live has passed.
    s.set_time(10 + TTL - 1).unwrap();
    let mut back = cycle(&mut s, Ctx::Value, c);
    assert_eq!(read(&mut back, b"a"), Some(b"1".to_vec()));
    s.set_time(10 + TTL).unwrap();
    assert_eq!(read(&mut s, b"a"), None);
    assert_eq!(read(&mut s, b"b"), None);
    // A batch read sees what single reads see.
    let mut got = Vec::new();
    back.read_many(0, b"", [&b"a"[..], b"b", b"gone"].into_iter(), None, |v| got.push(v.map(<[u8]>::to_vec))).unwrap();
    assert_eq!(got, vec![Some(b"1".to_vec()), Some(b"2".to_vec()), None]);
}
