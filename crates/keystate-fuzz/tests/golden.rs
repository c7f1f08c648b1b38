//! Golden fuzz cases, shared with the TypeScript suite (test/fuzz.test.ts),
//! which runs them through the public API on the wasm backend (32-bit
//! lengths, the binding's error conversion, TypeScript's restore driver):
//! test/vectors/fuzz/pieces.bin holds every distinct piece once,
//! cases.json the cases (pieces by offset and length, the operation, the
//! outcome the core gives). This test checks the committed cases natively;
//! `KEYSTATE_FUZZ_GOLDEN=write cargo test -p keystate-fuzz --test golden`
//! selects them anew: a few cases of every outcome class of seed 7, small
//! ones, and the hand-made cases below.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use keystate_core::{compact, export_all, restore_chain, Error, KeyGroupRange, RestoreOptions, Restorer};
use keystate_fuzz::case::Op;
use keystate_fuzz::model::{decode_body, encode_body, Header};
use keystate_fuzz::oracle::Outcome;
use keystate_fuzz::stats::class;
use keystate_fuzz::wire::{Part, Wire};
use keystate_fuzz::{run_case, Corpus};
use serde_json::{json, Value};

const SEED: u64 = 7;
const SCAN: u64 = 40_000;
const PER_CLASS: usize = 2;
const MAX_CASE_BYTES: usize = 3000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/vectors/fuzz")
}

/// A case as the TypeScript side runs it: whole pieces, one restore or compaction.
struct Golden {
    name: String,
    compact: bool,
    range: Option<(u32, u32)>,
    chains: Vec<Vec<Vec<u8>>>,
}

/// What the core gives for a case: an error code, or the entries restored
/// and whether the store checkpoints again.
fn outcome(g: &Golden) -> Value {
    let opts = RestoreOptions { key_groups: g.range.map(|(s, e)| KeyGroupRange::new(s, e)), new_store_id: [0; 16] };
    let store = if g.compact {
        let pieces: Vec<&[u8]> = g.chains[0].iter().map(Vec::as_slice).collect();
        compact(&pieces).and_then(|b| restore_chain(&[&b], RestoreOptions { key_groups: None, new_store_id: [0; 16] }))
    } else {
        let mut r = Restorer::new(opts);
        (|| {
            for chain in &g.chains {
                for (i, p) in chain.iter().enumerate() {
                    r.begin_piece(i == 0 && g.chains.len() > 1)?;
                    r.feed(p)?;
                    r.end_piece()?;
                }
            }
            Ok::<(), Error>(())
        })()
        .and_then(|()| r.finish())
    };
    match store {
        Err(e) => json!(e.code()),
        Ok(mut s) => {
            let entries = s.memory().entries;
            let again = s.checkpoint(None).is_ok_and(|cp| export_all(&mut s, cp.id).is_ok());
            json!({ "entries": entries, "checkpoints": again })
        }
    }
}

/// Cases made by hand: the reservation that started this, and lengths
/// that wrap a 32-bit usize (only the wasm build can show those).
fn handmade(corpus: &Corpus) -> Vec<Golden> {
    let full = &corpus.lineages[0].pieces[0].1;
    let mut out = Vec::new();
    let mut add = |name: &str, w: Wire| out.push(Golden { name: name.into(), compact: false, range: None, chains: vec![vec![w.seal().0]] });
    let mut w = full.clone();
    if let Some(s) = w.sections_mut().next() {
        let mut blocks = decode_body(&s.body).expect("a seed body");
        blocks[0].count = Some(u32::MAX);
        s.body = encode_body(&blocks);
    }
    add("a block claiming u32::MAX records (reserved 26 GB)", w);
    for (name, len) in [("body_len u32::MAX", u32::MAX), ("body_len u32::MAX - 8", u32::MAX - 8), ("body_len u32::MAX - 16", u32::MAX - 16)] {
        let mut w = full.clone();
        if let Some(Part::Section(s)) = w.parts.first_mut() {
            s.body_len = Some(len);
        }
        add(name, w);
    }
    let mut w = full.clone();
    let mut h = Header::decode(&w.header).expect("a seed header");
    h.state_count = Some(1 << 40);
    w.header = h.encode();
    add("a header declaring 2^40 states", w);
    out
}

fn select(corpus: &Corpus) -> Vec<Golden> {
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = handmade(corpus);
    for n in 0..SCAN {
        let (case, r) = run_case(corpus, SEED, n);
        let r = r.unwrap_or_else(|e| panic!("case {n} of seed {SEED} breaks a rule: {e}"));
        // Ranges beyond 2^31 do not cross the wasm binding as ranges (i32).
        let range = match case.op {
            Op::Restore { range, .. } => range,
            Op::Compact => None,
        };
        if case.bytes() > MAX_CASE_BYTES || range.is_some_and(|(s, e)| s > i32::MAX as u32 || e > i32::MAX as u32) {
            continue;
        }
        // Stores that restored are what the wasm side most needs to rebuild.
        let (key, limit) = match &r {
            Outcome::Refused(e) if e.code() == "INCOMPATIBLE_STATE" => (e.code().to_string(), 4),
            Outcome::Refused(e) => (class(e), PER_CLASS),
            Outcome::Restored { entries: 0 } => ("restored, empty".into(), 4),
            Outcome::Restored { .. } => ("restored".into(), 40),
            Outcome::Compacted { .. } => ("compacted".into(), 15),
        };
        let seen = per_class.entry(key).or_default();
        if *seen >= limit {
            continue;
        }
        *seen += 1;
        let name = format!("seed {SEED} case {n}: {}", case.mutations.join(", "));
        out.push(Golden { name, compact: case.op == Op::Compact, range, chains: case.chains });
    }
    out
}

fn write(cases: &[Golden]) {
    let mut bin = Vec::new();
    let mut at: HashMap<&[u8], usize> = HashMap::new();
    let mut index = Vec::new();
    for g in cases {
        let chains: Vec<Value> = g
            .chains
            .iter()
            .map(|c| {
                Value::Array(
                    c.iter()
                        .map(|p| {
                            let off = *at.entry(p.as_slice()).or_insert_with(|| {
                                bin.extend_from_slice(p);
                                bin.len() - p.len()
                            });
                            json!([off, p.len()])
                        })
                        .collect(),
                )
            })
            .collect();
        index.push(json!({
            "name": g.name,
            "op": if g.compact { "compact" } else { "restore" },
            "range": g.range.map(|(s, e)| json!([s, e])),
            "chains": chains,
            "expect": outcome(g),
        }));
    }
    let doc = json!({
        "about": "Golden fuzz cases: resealed mutations of checkpoints (crates/keystate-fuzz/tests/golden.rs writes them). Pieces are [offset, length] into pieces.bin; expect is the error code, or the entries restored and whether the store checkpoints again.",
        "cases": index,
    });
    std::fs::create_dir_all(dir()).expect("create test/vectors/fuzz");
    std::fs::write(dir().join("pieces.bin"), bin).expect("write pieces.bin");
    std::fs::write(dir().join("cases.json"), serde_json::to_string_pretty(&doc).expect("json") + "\n").expect("write cases.json");
}

fn read() -> Vec<(Golden, Value)> {
    let bin = std::fs::read(dir().join("pieces.bin")).expect("test/vectors/fuzz/pieces.bin (KEYSTATE_FUZZ_GOLDEN=write makes it)");
    let doc: Value = serde_json::from_slice(&std::fs::read(dir().join("cases.json")).expect("cases.json")).expect("cases.json is JSON");
    let cases = doc["cases"].as_array().expect("cases");
    cases
        .iter()
        .map(|c| {
            let piece = |p: &Value| {
                let (o, l) = (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize);
                bin[o..o + l].to_vec()
            };
            let chains = c["chains"].as_array().unwrap().iter().map(|ch| ch.as_array().unwrap().iter().map(piece).collect()).collect();
            let range = c["range"].as_array().map(|r| (r[0].as_u64().unwrap() as u32, r[1].as_u64().unwrap() as u32));
            let g = Golden { name: c["name"].as_str().unwrap().into(), compact: c["op"] == "compact", range, chains };
            (g, c["expect"].clone())
        })
        .collect()
}

#[test]
fn golden_fuzz_cases_give_their_outcomes_natively() {
    if std::env::var("KEYSTATE_FUZZ_GOLDEN").as_deref() == Ok("write") {
        write(&select(&Corpus::build()));
    }
    let cases = read();
    assert!(cases.len() > 100, "{} golden cases", cases.len());
    let mut wrong = Vec::new();
    for (g, want) in &cases {
        let got = outcome(g);
        if &got != want {
            wrong.push(format!("{}: {got} (expected {want})", g.name));
        }
    }
    assert!(wrong.is_empty(), "{} of {} golden cases differ:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}
