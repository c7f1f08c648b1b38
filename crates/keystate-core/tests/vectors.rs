//! Golden vectors shared with the TypeScript suite (test/vectors.test.ts):
//! each scenario in test/vectors is run here natively and there through
//! WebAssembly; both must produce exactly the committed checkpoint bytes.
//! `KEYSTATE_BLESS=1 cargo test --test vectors` rewrites the files (review
//! the diff: a changed vector means a changed format).
//!
//! This file carries a small encoder for the built-in TypeScript codecs, so
//! a codec change on either side shows up as a byte difference.

use std::path::PathBuf;

use keystate_core::{
    export_all, restore_chain, CheckpointKind, Key, RestoreOptions, StateDescriptor, StateKind, Store, StoreConfig, TtlConfig, TtlUpdate,
    TtlVisibility,
};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/vectors")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

// ---- the TypeScript codecs, for the values the scenarios use -----------------

fn number(v: f64) -> Vec<u8> {
    let safe = 2f64.powi(51);
    if v.fract() == 0.0 && v.abs() <= safe && !(v == 0.0 && v.is_sign_negative()) {
        let i = v as i64;
        let mut z = ((i << 1) ^ (i >> 63)) as u64;
        let mut out = Vec::new();
        while z != 0 {
            out.push(z as u8);
            z >>= 8;
        }
        out
    } else {
        v.to_le_bytes().to_vec()
    }
}

fn unnumber(b: &[u8]) -> f64 {
    if b.len() == 8 {
        return f64::from_le_bytes(b.try_into().unwrap());
    }
    let z = b.iter().rev().fold(0u64, |z, x| (z << 8) | u64::from(*x));
    ((z >> 1) as i64 ^ -((z & 1) as i64)) as f64
}

/// Minimal two's-complement little-endian bytes of a decimal integer.
fn bigint(dec: &str) -> Vec<u8> {
    let (neg, digits) = dec.strip_prefix('-').map_or((false, dec), |d| (true, d));
    let mut mag: Vec<u8> = Vec::new(); // little-endian base 256
    for c in digits.bytes() {
        let mut carry = u32::from(c - b'0');
        for b in mag.iter_mut() {
            let x = u32::from(*b) * 10 + carry;
            *b = x as u8;
            carry = x >> 8;
        }
        if carry > 0 {
            mag.push(carry as u8);
        }
    }
    mag.push(0); // room for the sign bit
    if neg {
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let x = u16::from(!*b) + carry;
            *b = x as u8;
            carry = x >> 8;
        }
    }
    // Drop redundant sign bytes.
    while mag.len() > 1 {
        let (last, prev) = (mag[mag.len() - 1], mag[mag.len() - 2]);
        if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
            mag.pop();
        } else {
            break;
        }
    }
    mag
}

fn key(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Number(n) => {
            let mut out = vec![0xf8];
            out.extend(number(n.as_f64().unwrap()));
            out
        }
        Value::Object(o) if o.contains_key("bigint") => {
            let mut out = vec![0xf9];
            out.extend(bigint(o["bigint"].as_str().unwrap()));
            out
        }
        Value::Object(o) if o.contains_key("bytes") => {
            let mut out = vec![0xfa];
            out.extend(hex(o["bytes"].as_str().unwrap()));
            out
        }
        other => panic!("not a key: {other}"),
    }
}

fn value(codec: &str, v: &Value) -> Vec<u8> {
    match codec {
        "number" => number(v.as_f64().unwrap()),
        "string" => v.as_str().unwrap().as_bytes().to_vec(),
        "boolean" => vec![u8::from(v.as_bool().unwrap())],
        "bigint" => bigint(v["bigint"].as_str().unwrap()),
        other => panic!("no encoder for codec {other}"),
    }
}

fn frames(codec: &str, items: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for it in items {
        let b = value(codec, it);
        keystate_core::varint::put(&mut out, b.len() as u64);
        out.extend(b);
    }
    out
}

// ---- the scenario --------------------------------------------------------------

struct Scenario {
    doc: Value,
    store: Store,
}

fn kind(s: &str) -> StateKind {
    match s {
        "value" => StateKind::Value,
        "list" => StateKind::List,
        "map" => StateKind::Map,
        "reducing" => StateKind::Reducing,
        "aggregating" => StateKind::Aggregating,
        other => panic!("unknown kind {other}"),
    }
}

/// A state's `ttl` option as the TypeScript API reads it (same defaults).
fn ttl(v: Option<&Value>) -> Option<TtlConfig> {
    let v = v?;
    let cleanup = v.get("cleanup");
    let inc = cleanup.and_then(|c| c.get("incremental"));
    let incremental = match inc {
        Some(Value::Bool(false)) => None,
        Some(i) => Some(i.get("size").and_then(Value::as_u64).unwrap_or(5) as u32),
        None => Some(5),
    };
    Some(TtlConfig {
        ttl_ms: v["ttlMs"].as_u64().unwrap(),
        update: if v.get("update").and_then(Value::as_str) == Some("onReadAndWrite") { TtlUpdate::OnReadAndWrite } else { TtlUpdate::OnCreateAndWrite },
        visibility: if v.get("visibility").and_then(Value::as_str) == Some("returnExpiredIfNotCleanedUp") {
            TtlVisibility::ReturnExpiredIfNotCleanedUp
        } else {
            TtlVisibility::NeverReturnExpired
        },
        incremental,
        every_record: inc.and_then(|i| i.get("everyRecord")).and_then(Value::as_bool).unwrap_or(false),
        full_snapshot: cleanup.and_then(|c| c.get("fullSnapshot")).and_then(Value::as_bool).unwrap_or(false),
    })
}

impl Scenario {
    fn load(name: &str) -> Scenario {
        let text = std::fs::read_to_string(vectors_dir().join(name)).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let id: [u8; 16] = hex(doc["storeId"].as_str().unwrap()).try_into().unwrap();
        let mp = doc["maxParallelism"].as_u64().unwrap() as u32;
        let mut store = Store::new(StoreConfig::new(mp, None, id).unwrap());
        for s in doc["states"].as_array().unwrap() {
            let d = StateDescriptor::new(
                s["name"].as_str().unwrap(),
                kind(s["kind"].as_str().unwrap()),
                s["codec"].as_str().unwrap(),
                s.get("keyCodec").and_then(Value::as_str).unwrap_or(""),
            )
            .and_then(|d| d.with_ttl(ttl(s.get("ttl"))))
            .unwrap();
            store.register_state(d).unwrap();
        }
        Scenario { doc, store }
    }

    fn codec(&self, state: &str) -> String {
        let s = self.doc["states"].as_array().unwrap().iter().find(|s| s["name"] == state).unwrap();
        s["codec"].as_str().unwrap().to_string()
    }

    fn run(&mut self, ops: &str) {
        let ops = self.doc.pointer(ops).unwrap().as_array().unwrap().clone();
        for op in &ops {
            match op["op"].as_str().unwrap() {
                "time" => {
                    self.store.set_time(op["value"].as_u64().unwrap()).unwrap();
                    continue;
                }
                "expire" => {
                    self.store.expire().unwrap();
                    continue;
                }
                _ => {}
            }
            let state = op["state"].as_str().unwrap();
            let sid = self.store.state_id(state).unwrap();
            let codec = self.codec(state);
            let k = key(&op["key"]);
            let ns = op.get("namespace").map(key).unwrap_or_default();
            let s = &mut self.store;
            match op["op"].as_str().unwrap() {
                "set" => s.put(sid, Key::Bytes(&k), &ns, &value(&codec, &op["value"])).unwrap(),
                "delete" | "clear" => drop(s.remove(sid, Key::Bytes(&k), &ns).unwrap()),
                "add" => s.append(sid, Key::Bytes(&k), &ns, &frames(&codec, &[op["value"].clone()])).unwrap(),
                "update" => {
                    let items = op["value"].as_array().unwrap();
                    if items.is_empty() {
                        s.remove(sid, Key::Bytes(&k), &ns).unwrap();
                    } else {
                        s.put(sid, Key::Bytes(&k), &ns, &frames(&codec, items)).unwrap();
                    }
                }
                "put" => s.map_put(sid, Key::Bytes(&k), &ns, &key(&op["userKey"]), &value(&codec, &op["value"])).unwrap(),
                "remove" => drop(s.map_remove(sid, Key::Bytes(&k), &ns, &key(&op["userKey"])).unwrap()),
                "get" => match s.descriptor(sid).unwrap().kind {
                    StateKind::Map => s.map_for_each(sid, Key::Bytes(&k), &ns, None, |_, _| ()).unwrap(),
                    _ => drop(s.get(sid, Key::Bytes(&k), &ns, None).unwrap()),
                },
                "reduce" => {
                    // As the TypeScript ReducingState.add: a read for the fold, then a write.
                    let cur = s.get_for_update(sid, Key::Bytes(&k), &ns).unwrap().map(unnumber);
                    let v = op["value"].as_f64().unwrap() + cur.unwrap_or(0.0);
                    s.put(sid, Key::Bytes(&k), &ns, &number(v)).unwrap();
                }
                other => panic!("unknown op {other}"),
            }
        }
    }

    /// Checks the `expect` reads against a store (at the scenario's time for them).
    fn check(&self, store: &mut Store, expect: &str) {
        let time = expect.rsplit_once('/').map_or(String::new(), |(p, _)| format!("{p}/expectTime"));
        if let Some(t) = self.doc.pointer(&time).and_then(Value::as_u64) {
            store.set_time(t).unwrap();
        }
        for e in self.doc.pointer(expect).unwrap().as_array().unwrap() {
            let state = e["state"].as_str().unwrap();
            let sid = store.state_id(state).unwrap();
            let codec = self.codec(state);
            let k = key(&e["key"]);
            let ns = e.get("namespace").map(key).unwrap_or_default();
            let desc = store.descriptor(sid).unwrap();
            match desc.kind {
                StateKind::Map => {
                    let mut got = Vec::new();
                    store.map_for_each(sid, Key::Bytes(&k), &ns, None, |uk, v| got.push((uk.to_vec(), v.to_vec()))).unwrap();
                    let mut want: Vec<_> = e["value"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (key(&p[0]), value(&codec, &p[1])))
                        .collect();
                    got.sort();
                    want.sort();
                    assert_eq!(got, want, "{e}");
                }
                StateKind::List => {
                    let want = frames(&codec, e["value"].as_array().unwrap());
                    let got = store.get(sid, Key::Bytes(&k), &ns, None).unwrap().unwrap_or_default();
                    assert_eq!(got, &want[..], "{e}");
                }
                _ => {
                    let got = store.get(sid, Key::Bytes(&k), &ns, None).unwrap();
                    let want = (!e["value"].is_null()).then(|| value(&codec, &e["value"]));
                    assert_eq!(got.map(<[u8]>::to_vec), want, "{e}");
                }
            }
        }
    }
}

/// Checks a scenario's reads against its own store.
fn check_own(sc: &mut Scenario, expect: &str) {
    let mut store = std::mem::replace(&mut sc.store, Store::new(StoreConfig::new(1, None, [0; 16]).unwrap()));
    sc.check(&mut store, expect);
    sc.store = store;
}

/// The golden files of `name` (`basic.full`, ...): version 1's, which the
/// writers before version 2 wrote (kept to prove they still restore), and
/// this version's.
fn goldens(name: &str) -> [Vec<u8>; 2] {
    ["v1", "v2"].map(|v| std::fs::read(vectors_dir().join(format!("{name}-{v}.bin"))).unwrap())
}

fn compare_or_bless(file: &str, bytes: &[u8]) {
    let path = vectors_dir().join(file);
    if std::env::var_os("KEYSTATE_BLESS").is_some() {
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (bless with KEYSTATE_BLESS=1)", path.display()));
    assert!(golden == bytes, "{file}: the native checkpoint differs from the golden vector ({} vs {} bytes)", bytes.len(), golden.len());
}

#[test]
fn codec_encodings_match_the_typescript_codecs() {
    assert_eq!(number(0.0), Vec::<u8>::new());
    assert_eq!(number(1.0), vec![2]);
    assert_eq!(number(-1.0), vec![1]);
    assert_eq!(number(64.0), vec![128]);
    assert_eq!(number(-0.0), (-0.0f64).to_le_bytes().to_vec());
    assert_eq!(bigint("0"), vec![0]);
    assert_eq!(bigint("127"), vec![0x7f]);
    assert_eq!(bigint("128"), vec![0x80, 0]);
    assert_eq!(bigint("-128"), vec![0x80]);
    assert_eq!(bigint("-129"), vec![0x7f, 0xff]);
    assert_eq!(bigint("-1"), vec![0xff]);
    for v in [0.0, 1.0, -1.0, 127.0, -5.0, 1e12, -(2f64.powi(51)), 0.5, 1e300] {
        assert_eq!(unnumber(&number(v)), v);
    }
}

#[test]
fn basic_full_checkpoint_is_the_golden_vector() {
    let mut sc = Scenario::load("basic.scenario.json");
    sc.run("/ops");
    check_own(&mut sc, "/expect");
    let cp = sc.store.checkpoint(None).unwrap();
    let bytes = export_all(&mut sc.store, cp.id).unwrap();
    compare_or_bless("basic.full-v2.bin", &bytes);
    // And the golden files (this version's, and version 1's that earlier
    // writers wrote) restore to the scenario's state.
    for golden in goldens("basic.full") {
        let mut back = restore_chain(&[&golden], RestoreOptions { key_groups: None, new_store_id: [0; 16] }).unwrap();
        sc.check(&mut back, "/expect");
    }
}

#[test]
fn basic_incremental_checkpoint_is_the_golden_vector() {
    let mut sc = Scenario::load("basic.scenario.json");
    sc.run("/ops");
    // The first checkpoint asked to be incremental is full: nothing was tracked before.
    let full = sc.store.checkpoint(Some(true)).unwrap();
    assert_eq!(full.kind, CheckpointKind::Full);
    let full_bytes = export_all(&mut sc.store, full.id).unwrap();
    compare_or_bless("basic.full-v2.bin", &full_bytes);
    sc.store.checkpoint_confirm(full.id).unwrap();
    sc.run("/incremental/ops");
    let inc = sc.store.checkpoint(Some(true)).unwrap();
    assert_eq!((inc.kind, inc.parent_id), (CheckpointKind::Incremental, Some(full.id)));
    let inc_bytes = export_all(&mut sc.store, inc.id).unwrap();
    compare_or_bless("basic.incr-v2.bin", &inc_bytes);
    for (gf, gi) in goldens("basic.full").into_iter().zip(goldens("basic.incr")) {
        let mut back = restore_chain(&[&gf, &gi], RestoreOptions { key_groups: None, new_store_id: [0; 16] }).unwrap();
        sc.check(&mut back, "/incremental/expect");
    }
    check_own(&mut sc, "/incremental/expect");
}

#[test]
fn ttl_full_checkpoint_is_the_golden_vector() {
    let mut sc = Scenario::load("ttl.scenario.json");
    sc.run("/ops");
    let cp = sc.store.checkpoint(None).unwrap();
    let bytes = export_all(&mut sc.store, cp.id).unwrap();
    compare_or_bless("ttl.full-v2.bin", &bytes);
    for golden in goldens("ttl.full") {
        let mut back = restore_chain(&[&golden], RestoreOptions { key_groups: None, new_store_id: [0; 16] }).unwrap();
        assert_eq!(back.states().map(|d| d.ttl.is_some()).collect::<Vec<_>>(), [true, true, true, true, false], "TTL configurations travel in the header");
        sc.check(&mut back, "/expect");
        back.check_invariants();
        // With the clock set back, what full-snapshot cleanup left out is still
        // absent: it is not in the bytes (Flink's testMultipleKeysWithSnapshotCleanup).
        let mut back = restore_chain(&[&golden], RestoreOptions { key_groups: None, new_store_id: [0; 16] }).unwrap();
        back.set_time(1000).unwrap();
        let (session, clicks, prefs) = (back.state_id("session").unwrap(), back.state_id("clicks").unwrap(), back.state_id("prefs").unwrap());
        assert_eq!(back.get(session, Key::Bytes(b"user-1"), b"", None).unwrap(), None);
        assert_eq!(back.get(session, Key::Bytes(b"user-3"), b"", None).unwrap(), Some(&b"c"[..]));
        assert_eq!(back.get(clicks, Key::Bytes(b"user-2"), b"", None).unwrap(), Some(&frames("number", &[9.into(), 10.into()])[..]));
        // Without full-snapshot cleanup, expired map entries travel (with their stamps).
        assert_eq!(back.map_get(prefs, Key::Bytes(b"user-2"), b"", b"x", None).unwrap(), Some(&[1u8][..]));
    }
}

#[test]
fn ttl_incremental_checkpoint_is_the_golden_vector() {
    let mut sc = Scenario::load("ttl.scenario.json");
    sc.run("/ops");
    let full = sc.store.checkpoint(Some(true)).unwrap();
    let full_bytes = export_all(&mut sc.store, full.id).unwrap();
    compare_or_bless("ttl.full-v2.bin", &full_bytes);
    sc.store.checkpoint_confirm(full.id).unwrap();
    sc.run("/incremental/ops");
    let inc = sc.store.checkpoint(Some(true)).unwrap();
    assert_eq!(inc.kind, CheckpointKind::Incremental);
    let inc_bytes = export_all(&mut sc.store, inc.id).unwrap();
    compare_or_bless("ttl.incr-v2.bin", &inc_bytes);
    for (gf, gi) in goldens("ttl.full").into_iter().zip(goldens("ttl.incr")) {
        let mut back = restore_chain(&[&gf, &gi], RestoreOptions { key_groups: None, new_store_id: [0; 16] }).unwrap();
        sc.check(&mut back, "/incremental/expect");
        back.check_invariants();
    }
    check_own(&mut sc, "/incremental/expect");
}

#[test]
fn runs_full_checkpoint_is_the_golden_vector() {
    let mut sc = Scenario::load("runs.scenario.json");
    sc.run("/ops");
    check_own(&mut sc, "/expect");
    let cp = sc.store.checkpoint(None).unwrap();
    let bytes = export_all(&mut sc.store, cp.id).unwrap();
    compare_or_bless("runs.full-v2.bin", &bytes);
    let golden = std::fs::read(vectors_dir().join("runs.full-v2.bin")).unwrap();
    // The vector holds RUNs (op 5 after a block head), else it proves nothing.
    let mut runs = 0;
    let mut d = keystate_core::format::read::Decoder::new();
    d.feed(&golden, &mut |ev| {
        if let keystate_core::format::read::Event::Section { body, .. } = ev {
            runs += body.windows(2).filter(|w| w[0] == keystate_core::format::op::RUN && w[1] >= 2).count();
        }
        Ok(())
    })
    .unwrap();
    assert!(runs >= 2, "runs.full-v2.bin has {runs} RUNs");
    let mut back = restore_chain(&[&golden], RestoreOptions { key_groups: None, new_store_id: [0; 16] }).unwrap();
    sc.check(&mut back, "/expect");
    back.check_invariants();
}
