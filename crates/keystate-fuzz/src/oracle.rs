//! What every case must satisfy. Restore either refuses with a typed error,
//! or builds a store that passes the core's invariant check, reads back what
//! it lists, counts what it holds, exports again, and whose export restores
//! to the same contents; when it continues a chain, a further incremental
//! checkpoint restores on top of the pieces. Feeding in chunks gives the
//! same outcome as feeding whole; a key-group subset gives the subset of the
//! contents (or the same refusal); compaction gives what restore gives;
//! after an error a restorer never hands out a store. Restoring N bytes
//! holds memory in proportion to N.

use std::collections::BTreeMap;

use keystate_core::{compact, export_all, restore_chain, Error, Key, KeyGroupRange, RestoreOptions, Restorer, Store};

use crate::alloc;
use crate::case::{Case, Feed, Op};
use crate::rng::Rng;

/// (state name, key, namespace, map user key) -> value.
pub type Dump = BTreeMap<(String, Vec<u8>, Vec<u8>, Option<Vec<u8>>), Vec<u8>>;

/// How a case ended, when it broke no rule.
#[derive(Debug)]
pub enum Outcome {
    Refused(Error),
    Restored { entries: usize },
    Compacted { entries: usize },
}

/// Restoring N bytes may hold this much per input byte (the input's copy in
/// the decoder, arena slots, index slots, descriptors)...
const PER_BYTE: usize = 64;
/// ...plus arena pages of each size class and small tables...
const FIXED: usize = 16 << 20;
/// ...plus a table slot per (state, key group): a store holds 2^24 at most.
const SLOT_BYTES: usize = 4;
const MAX_SLOTS: usize = 1 << 24;
/// Largest checkpoint id (docs/FORMAT.md: ids cross to JavaScript as numbers).
const MAX_CHECKPOINT_ID: u64 = (1 << 53) - 1;

fn opts(range: Option<(u32, u32)>) -> RestoreOptions {
    RestoreOptions { key_groups: range.map(|(s, e)| KeyGroupRange::new(s, e)), new_store_id: [0xee; 16] }
}

fn pieces(chain: &[Vec<u8>]) -> Vec<&[u8]> {
    chain.iter().map(Vec::as_slice).collect()
}

fn feed_chunks(r: &mut Restorer, piece: &[u8], rng: &mut Rng) -> Result<(), Error> {
    let mut at = 0;
    while at < piece.len() {
        let n = match rng.below(10) {
            0..=5 => 1 + rng.index(64),
            6..=8 => 1 + rng.index(4096),
            _ => piece.len() - at,
        };
        let end = (at + n).min(piece.len());
        r.feed(&piece[at..end])?;
        if rng.chance(3) {
            r.feed(&[])?;
        }
        at = end;
    }
    Ok(())
}

/// Restores `chains` as the case says. The outer `Err` is a broken rule.
fn restore(chains: &[Vec<Vec<u8>>], range: Option<(u32, u32)>, feed: Feed) -> Result<Result<Store, Error>, String> {
    let (seed, misuse) = match feed {
        Feed::Whole if chains.len() == 1 => return Ok(restore_chain(&pieces(&chains[0]), opts(range))),
        Feed::Whole => (None, false),
        Feed::Chunks(s) => (Some(s), false),
        Feed::Misuse(s) => (Some(s), true),
    };
    let mut rng = Rng::new(seed.unwrap_or(0));
    let mut r = Restorer::new(opts(range));
    let multi = chains.len() > 1;
    let mut first = None;
    for chain in chains {
        for (i, piece) in chain.iter().enumerate() {
            let step = (|| {
                r.begin_piece(i == 0 && multi)?;
                match seed {
                    Some(_) => feed_chunks(&mut r, piece, &mut rng)?,
                    None => r.feed(piece)?,
                }
                r.end_piece().map(drop)
            })();
            if let Err(e) = step {
                if !misuse {
                    return Ok(Err(e));
                }
                first.get_or_insert(e);
            }
        }
    }
    match (r.finish(), first) {
        (Ok(_), Some(e)) => Err(format!("after an error ({e}) the restorer still handed out a store")),
        (Ok(s), None) => Ok(Ok(s)),
        (Err(_), Some(e)) | (Err(e), None) => Ok(Err(e)),
    }
}

/// Everything a store holds, by state name; refuses an entry listed twice.
pub fn dump(store: &Store) -> Result<Dump, String> {
    let mut d = Dump::new();
    for desc in store.states() {
        let id = store.state_id(&desc.name).ok_or("a listed state has no id")?;
        let mut twice = None;
        store
            .for_each_entry(id, None, |k, ns, uk, v| {
                let key = (desc.name.clone(), k.to_vec(), ns.to_vec(), uk.map(<[u8]>::to_vec));
                if d.insert(key.clone(), v.to_vec()).is_some() {
                    twice = Some(key);
                }
            })
            .map_err(|e| format!("listing state '{}': {e}", desc.name))?;
        if let Some(k) = twice {
            return Err(format!("entry {k:?} listed twice"));
        }
    }
    Ok(d)
}

/// The invariant check, counts and point reads of a restored store.
fn sound(store: &mut Store) -> Result<Dump, String> {
    store.check_invariants();
    let d = dump(store)?;
    let entries = store.memory().entries;
    if entries != d.len() as u64 {
        return Err(format!("the store counts {entries} entries and lists {}", d.len()));
    }
    for ((name, k, ns, uk), v) in &d {
        let id = store.state_id(name).ok_or("a listed state has no id")?;
        let got = match uk {
            Some(uk) => store.map_get(id, Key::Bytes(k), ns, uk, None),
            None => store.get(id, Key::Bytes(k), ns, None),
        };
        if got.map_err(|e| e.to_string())? != Some(&v[..]) {
            return Err(format!("state '{name}' lists key {k:?} ns {ns:?} uk {uk:?} but reads another value"));
        }
    }
    Ok(d)
}

/// Exports a restored store, restores the export, compares; continues the
/// chain with an incremental checkpoint when the store continues one.
fn export_again(store: &mut Store, chain: Option<&[Vec<u8>]>, want: &Dump) -> Result<(), String> {
    let cp = match store.checkpoint(Some(false)) {
        Err(e) if ids_used_up(store, &e) => return Ok(()),
        r => r.map_err(|e| format!("a restored store refuses a checkpoint: {e}"))?,
    };
    let bytes = export_all(store, cp.id).map_err(|e| format!("a restored store does not export: {e}"))?;
    let mut again = restore_chain(&[&bytes], opts(None)).map_err(|e| format!("the export of a restored store does not restore: {e}"))?;
    if &sound(&mut again)? != want {
        return Err("the export of a restored store restores to other contents".into());
    }
    if let (Some(chain), true) = (chain, store.last_confirmed().is_some()) {
        store.checkpoint_abort(cp.id).map_err(|e| e.to_string())?;
        let cp = match store.checkpoint(Some(true)) {
            Err(e) if ids_used_up(store, &e) => return Ok(()),
            r => r.map_err(|e| format!("a restored chain refuses to continue: {e}"))?,
        };
        let delta = export_all(store, cp.id).map_err(|e| format!("a restored chain does not export a delta: {e}"))?;
        if cp.kind == keystate_core::CheckpointKind::Incremental {
            let mut all = pieces(chain);
            all.push(&delta);
            let on_top = restore_chain(&all, opts(None)).map_err(|e| format!("a delta of a restored chain does not restore on top of it: {e}"))?;
            if &dump(&on_top)? != want {
                return Err("a delta of a restored chain restores to other contents".into());
            }
        }
    }
    Ok(())
}

/// A chain restored near the largest id a reader accepts has no id left
/// for its next checkpoints: the store says so.
fn ids_used_up(store: &Store, e: &Error) -> bool {
    e.code() == "CHECKPOINT_STATE" && store.last_confirmed().is_some_and(|l| l.id >= MAX_CHECKPOINT_ID - 1)
}

fn same_refusal(a: &Error, b: &Error, what: &str) -> Result<(), String> {
    if a.code() == b.code() {
        Ok(())
    } else {
        Err(format!("{what}: {} ({a}) against {} ({b})", a.code(), b.code()))
    }
}

fn within_bound(peak: usize, input: usize, slots: usize) -> Result<(), String> {
    let bound = PER_BYTE * input + FIXED + SLOT_BYTES * slots;
    if alloc::installed() && peak > bound {
        return Err(format!("restoring {input} bytes held {peak} bytes at once (bound {bound})"));
    }
    Ok(())
}

/// Table slots a store holds: one per (state, key group).
fn slots(store: &Store) -> usize {
    store.states().count() * store.config().key_groups.len()
}

/// Checks one case. `Err` is a broken rule; a panic is one too.
pub fn check(case: &Case, rng: &mut Rng) -> Result<Outcome, String> {
    let input = case.bytes();
    match case.op {
        Op::Restore { range, feed } => {
            let (res, peak) = alloc::peak(|| restore(&case.chains, range, feed));
            let res = res?;
            let slots_held = res.as_ref().map_or(MAX_SLOTS, slots);
            within_bound(peak, input, slots_held)?;
            let single = case.chains.len() == 1;
            // Differential runs, on a share of cases: chunked against whole,
            // and a key-group subset against the whole range.
            let chunked = (single && feed == Feed::Whole && rng.chance(20)).then(|| restore(&case.chains, range, Feed::Chunks(rng.u64())));
            match res {
                Err(e) => {
                    if let Some(other) = chunked {
                        match other? {
                            Ok(_) => return Err(format!("whole input refused ({e}), the same input in chunks restored")),
                            Err(o) => same_refusal(&e, &o, "whole and chunked input refused differently")?,
                        }
                    }
                    if single && range.is_none() && rng.chance(15) {
                        if let Some(sub) = subset_of_header(case, rng) {
                            if let Ok(Ok(_)) = restore(&case.chains, Some(sub), Feed::Whole) {
                                if e.code() != "TOO_LARGE" {
                                    return Err(format!("the chain is refused ({e}) but its key groups {sub:?} restore"));
                                }
                            }
                        }
                    }
                    Ok(Outcome::Refused(e))
                }
                Ok(mut store) => {
                    let want = sound(&mut store)?;
                    if let Some(other) = chunked {
                        match other? {
                            Err(e) => return Err(format!("whole input restored, the same input in chunks refused: {e}")),
                            Ok(s) if dump(&s)? != want => return Err("whole and chunked input restore differently".into()),
                            Ok(_) => {}
                        }
                    }
                    if single && range.is_none() && rng.chance(20) {
                        let r = store.config().key_groups;
                        let a = r.start + rng.below(u64::from(r.end - r.start) + 1) as u32;
                        let b = r.start + rng.below(u64::from(r.end - r.start) + 1) as u32;
                        let sub = KeyGroupRange::new(a.min(b), a.max(b));
                        match restore(&case.chains, Some((sub.start, sub.end)), Feed::Whole)? {
                            Err(e) => return Err(format!("the chain restores but its key groups {sub:?} are refused: {e}")),
                            Ok(mut part) => {
                                let filtered: Dump = want.iter().filter(|((_, k, _, _), _)| sub.contains(store.key_group(k))).map(|(k, v)| (k.clone(), v.clone())).collect();
                                if sound(&mut part)? != filtered {
                                    return Err(format!("key groups {sub:?} restore to other contents than the whole chain's"));
                                }
                            }
                        }
                    }
                    let chain = (single && range.is_none()).then(|| &case.chains[0][..]);
                    export_again(&mut store, chain, &want)?;
                    store.check_invariants();
                    Ok(Outcome::Restored { entries: want.len() })
                }
            }
        }
        Op::Compact => {
            let chain = pieces(&case.chains[0]);
            let (res, peak) = alloc::peak(|| compact(&chain));
            within_bound(peak, input, MAX_SLOTS)?;
            match (res, restore_chain(&chain, opts(None))) {
                (Err(a), Err(b)) => {
                    same_refusal(&a, &b, "compaction and restore refused differently")?;
                    Ok(Outcome::Refused(a))
                }
                (Ok(_), Err(e)) => Err(format!("a chain that does not restore ({e}) was compacted")),
                (Err(e), Ok(_)) => Err(format!("a chain that restores was not compacted: {e}")),
                (Ok(bytes), Ok(mut store)) => {
                    let want = sound(&mut store)?;
                    let mut back = restore_chain(&[&bytes], opts(None)).map_err(|e| format!("a compaction does not restore: {e}"))?;
                    if sound(&mut back)? != want {
                        return Err("a compaction restores to other contents than its chain".into());
                    }
                    if back.last_confirmed() != store.last_confirmed() {
                        return Err("a compaction does not stand in for its chain's last piece".into());
                    }
                    Ok(Outcome::Compacted { entries: want.len() })
                }
            }
        }
    }
}

/// A random key-group subset of the range the case's first header claims.
fn subset_of_header(case: &Case, rng: &mut Rng) -> Option<(u32, u32)> {
    let h = crate::model::Header::of_file(case.chains.first()?.first()?)?;
    if h.start > h.end || h.end >= h.mp || h.mp > 1 << 15 {
        return None;
    }
    let a = h.start + rng.below(u64::from(h.end - h.start) + 1) as u32;
    Some((a, h.end))
}
