//! Restore: builds a new store from one or more chains of checkpoints (a
//! full checkpoint followed by incremental ones), keeping only the requested
//! key groups. The store is handed out only after every piece was verified;
//! on any error it is dropped, so restore never leaves partial state.
//!
//! Several chains (from stores with disjoint key-group ranges) restore into
//! one store: that, and restoring a subset, is rescaling.

use crate::checkpoint::{Base, Link};
use crate::error::{Error, Result};
use crate::format::body::{self, BodyRecord};
use crate::format::read::{Decoder, Event, Summary};
use crate::format::{op, CheckpointKind, Header};
use crate::state::StateKind;
use crate::store::{check_len, Key, KeyGroupRange, Store, StoreConfig, MAX_KEY_LEN, MAX_VALUE_LEN};

/// Restore options.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Key groups to keep; default: those of the (single) chain.
    pub key_groups: Option<KeyGroupRange>,
    /// Lineage id for the restored store when it does not continue the chain
    /// (a subset, or several chains merged).
    pub new_store_id: [u8; 16],
}

#[derive(Debug)]
struct Chain {
    range: KeyGroupRange,
    store_id: [u8; 16],
    last: Option<Link>,
    pieces: u32,
    full_bytes: u64,
    chain_bytes: u64,
}

/// Incremental restore: feed pieces in order, then [`Restorer::finish`].
#[derive(Debug)]
pub struct Restorer {
    opts: RestoreOptions,
    store: Option<Store>,
    chains: Vec<Chain>,
    decoder: Option<Decoder>,
    /// (checkpoint-local state id, store state id) of the current piece,
    /// sorted by local id.
    ids: Vec<(u32, u32)>,
    /// The current piece is incremental (only those carry deletions).
    incremental: bool,
    /// The current piece's format version.
    version: u16,
    records: u64,
    /// The first error returned: the restorer repeats it for every call
    /// after it, so that no store with part of a refused piece is handed out.
    failed: Option<Error>,
    /// Key groups of the current piece: passed (its sections seen), in all.
    kg_done: u32,
    kg_total: u32,
    /// The restored store's memory budget (see `Store::set_memory_limit`),
    /// in force while it is built.
    limit: Option<u64>,
    /// `Store::set_wide_min` for the restored store (tests).
    wide_min: Option<usize>,
}

/// How far a restore is in its current piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreProgress {
    /// Key groups of the piece passed (up to its last verified section), of its total.
    pub key_groups_done: u32,
    pub key_groups_total: u32,
    /// Records of the piece verified and applied.
    pub records: u64,
    /// Bytes of the piece taken in.
    pub bytes: u64,
}

/// What one verified piece was.
#[derive(Debug, Clone)]
pub struct PieceInfo {
    pub id: u64,
    pub parent_id: u64,
    pub kind: CheckpointKind,
    pub bytes: u64,
    pub records: u64,
    pub checksum: u64,
}

impl Restorer {
    pub fn new(opts: RestoreOptions) -> Self {
        Restorer {
            opts,
            store: None,
            chains: Vec::new(),
            decoder: None,
            ids: Vec::new(),
            incremental: false,
            version: crate::format::VERSION,
            records: 0,
            failed: None,
            kg_done: 0,
            kg_total: 0,
            limit: None,
            wide_min: None,
        }
    }

    /// The restored store's `Store::set_wide_min`, for tests. Set before the
    /// first piece.
    #[doc(hidden)]
    pub fn set_wide_min(&mut self, entries: usize) {
        self.wide_min = Some(entries);
    }

    /// Holds the restored store to a memory budget from its first record
    /// (a chain that does not fit is refused with `STORE_FULL`). Set before
    /// the first piece.
    pub fn set_memory_limit(&mut self, bytes: Option<u64>) -> Result<()> {
        if bytes == Some(0) {
            return Err(Error::InvalidArgument("maxMemoryBytes must be at least 1".into()));
        }
        if self.store.is_some() {
            return Err(Error::InvalidArgument("the memory budget is set before the first piece".into()));
        }
        self.limit = bytes;
        Ok(())
    }

    /// Runs one step; an error, or an earlier one, fails the whole restore.
    fn step<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = f(self);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Starts the next piece; `new_chain` starts another chain (rescaling
    /// from several stores).
    pub fn begin_piece(&mut self, new_chain: bool) -> Result<()> {
        self.step(|r| r.begin(new_chain))
    }

    fn begin(&mut self, new_chain: bool) -> Result<()> {
        if self.decoder.is_some() {
            return Err(Error::InvalidArgument("the previous piece was not ended".into()));
        }
        if new_chain || self.chains.is_empty() {
            if !self.chains.is_empty() && self.opts.key_groups.is_none() {
                return Err(Error::InvalidArgument(
                    "restoring several chains needs an explicit keyGroupRange".into(),
                ));
            }
            self.chains.push(Chain { range: KeyGroupRange::new(0, 0), store_id: [0; 16], last: None, pieces: 0, full_bytes: 0, chain_bytes: 0 });
        }
        self.decoder = Some(Decoder::new());
        self.ids.clear();
        self.records = 0;
        (self.kg_done, self.kg_total) = (0, 0);
        Ok(())
    }

    /// How far the current piece is.
    pub fn progress(&self) -> RestoreProgress {
        RestoreProgress {
            key_groups_done: self.kg_done,
            key_groups_total: self.kg_total,
            records: self.records,
            bytes: self.decoder.as_ref().map_or(0, Decoder::position),
        }
    }

    /// Feeds bytes of the current piece.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        self.step(|r| r.feed_piece(bytes))
    }

    fn feed_piece(&mut self, bytes: &[u8]) -> Result<()> {
        let mut dec = self.decoder.take().ok_or_else(|| Error::InvalidArgument("no piece was begun".into()))?;
        let r = dec.feed(bytes, &mut |ev| match ev {
            Event::Header(h) => self.on_header(h),
            Event::Section { key_group, body } => self.on_section(key_group, body),
        });
        self.decoder = Some(dec);
        r
    }

    /// Ends the current piece: it must be complete and verified.
    pub fn end_piece(&mut self) -> Result<PieceInfo> {
        self.step(Self::end)
    }

    fn end(&mut self) -> Result<PieceInfo> {
        let dec = self.decoder.take().ok_or_else(|| Error::InvalidArgument("no piece was begun".into()))?;
        let s: Summary = dec.finish()?;
        if s.footer.records != self.records {
            return Err(Error::Corrupt(format!(
                "footer counts {} records, sections hold {}",
                s.footer.records, self.records
            )));
        }
        self.kg_done = self.kg_total;
        let chain = self.chains.last_mut().expect("begin_piece pushed a chain");
        chain.last = Some(Link { id: s.header.id, link: s.link() });
        if s.header.kind == CheckpointKind::Full {
            chain.full_bytes = s.bytes;
        } else {
            chain.chain_bytes += s.bytes;
        }
        Ok(PieceInfo {
            id: s.header.id,
            parent_id: s.header.parent_id,
            kind: s.header.kind,
            bytes: s.bytes,
            records: s.footer.records,
            checksum: s.file_checksum,
        })
    }

    fn on_header(&mut self, h: &Header) -> Result<()> {
        self.kg_total = h.key_groups.len() as u32;
        let n_chains = self.chains.len();
        let chain = self.chains.last_mut().expect("begin_piece pushed a chain");
        let piece = chain.pieces;
        chain.pieces += 1;
        if piece == 0 {
            if h.kind != CheckpointKind::Full {
                return Err(Error::BrokenChain(format!(
                    "checkpoint {} is incremental (parent {}); a chain starts with a full checkpoint",
                    h.id, h.parent_id
                )));
            }
            chain.range = h.key_groups;
            chain.store_id = h.store_id;
        } else {
            let last = chain.last.expect("an ended piece sets last");
            if h.kind == CheckpointKind::Full {
                return Err(Error::BrokenChain(format!(
                    "checkpoint {} is full; only the first piece of a chain may be full",
                    h.id
                )));
            }
            if h.store_id != chain.store_id {
                return Err(Error::BrokenChain(format!("checkpoint {} belongs to another store", h.id)));
            }
            if h.parent_id != last.id || h.parent_link != last.link {
                return Err(Error::BrokenChain(format!(
                    "checkpoint {} extends checkpoint {}, not the piece before it ({})",
                    h.id, h.parent_id, last.id
                )));
            }
            if h.key_groups != chain.range {
                return Err(Error::BrokenChain(format!("checkpoint {} covers other key groups", h.id)));
            }
        }
        let range = chain.range;
        if self.store.is_none() {
            let want = self.opts.key_groups.unwrap_or(range);
            let cfg = StoreConfig::new(h.max_parallelism, Some(want), self.opts.new_store_id)?;
            let mut store = Store::new(cfg);
            store.set_memory_limit(self.limit)?;
            if let Some(n) = self.wide_min {
                store.set_wide_min(n);
            }
            self.store = Some(store);
        }
        let store = self.store.as_mut().expect("created above");
        if store.config().max_parallelism != h.max_parallelism {
            return Err(Error::BrokenChain(format!(
                "checkpoint {} has max parallelism {}, not {}",
                h.id,
                h.max_parallelism,
                store.config().max_parallelism
            )));
        }
        if n_chains > 1 {
            let overlap = self.chains[..n_chains - 1].iter().any(|c| c.range.start <= range.end && range.start <= c.range.end);
            if overlap && piece == 0 {
                return Err(Error::BrokenChain("two chains cover the same key groups".into()));
            }
        }
        for (sid, d) in &h.states {
            let id = store.register_restored(d.clone())?;
            self.ids.push((*sid, id));
        }
        self.ids.sort_unstable();
        self.incremental = h.kind == CheckpointKind::Incremental;
        self.version = h.version;
        Ok(())
    }

    fn on_section(&mut self, kg: u32, body: &[u8]) -> Result<()> {
        let store = self.store.as_mut().expect("header precedes sections");
        let keep = store.config().key_groups.contains(kg);
        let ids = &self.ids;
        let incremental = self.incremental;
        let store_cell = std::cell::RefCell::new(store);
        // The states whose tables this section sized wide, to settle once
        // their blocks are in (a table filled before is left as it is).
        let mut sized: Vec<u32> = Vec::new();
        let n = body::for_each_block(
            body,
            self.version,
            |state, count| {
                // Tables built from a checkpoint are sized once, up front.
                if let (true, Some(sid)) = (keep, local(ids, state)) {
                    if store_cell.borrow_mut().reserve(sid, kg, count as usize)? {
                        crate::room::reserve(&mut sized, 1)?;
                        sized.push(sid);
                    }
                }
                Ok(())
            },
            |r: BodyRecord<'_>| {
                let store = &mut *store_cell.borrow_mut();
                let sid = local(ids, r.state).ok_or_else(|| Error::Corrupt(format!("record of unknown state {}", r.state)))?;
                if store.key_group(r.key) != kg {
                    return Err(Error::Corrupt(format!("a record in key group {kg}'s section belongs to another")));
                }
                // Checked in every key group, kept or not: a subset restores
                // only from a checkpoint that restores whole.
                let d = store.descriptor(sid)?;
                let kind = d.kind;
                check(kind, incremental, &r)?;
                if d.ttl.is_some() && matches!(r.op, op::PUT | op::MAP_PUT) {
                    if let Some(why) = crate::ttl::check_value(kind == StateKind::List, r.value) {
                        return Err(Error::Corrupt(format!("{why} (state '{}')", d.name)));
                    }
                }
                if keep {
                    apply(store, sid, kind, &r)?;
                }
                Ok(())
            },
        )?;
        let store = store_cell.into_inner();
        for sid in sized {
            store.settle_width(sid, kg)?;
        }
        self.records += n;
        self.kg_done = kg - store_start(&self.chains) + 1;
        Ok(())
    }

    /// The restored store, after every piece verified. Every key group of the
    /// store's range must come from some chain.
    pub fn finish(mut self) -> Result<Store> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.decoder.is_some() {
            return Err(Error::InvalidArgument("the last piece was not ended".into()));
        }
        let mut store = self.store.take().ok_or_else(|| Error::InvalidArgument("no checkpoint given".into()))?;
        let want = store.config().key_groups;
        for kg in want.iter() {
            if !self.chains.iter().any(|c| c.range.contains(kg)) {
                return Err(Error::InvalidArgument(format!(
                    "key group {kg} of the requested range is in none of the checkpoints"
                )));
            }
        }
        if let [chain] = &self.chains[..] {
            if chain.range == want {
                // Same store, same key groups: continue its chain.
                store.cfg.store_id = chain.store_id;
                store.cps.continue_chain(Base {
                    link: chain.last.expect("a finished chain has pieces"),
                    chain_len: chain.pieces - 1,
                    chain_bytes: chain.chain_bytes,
                    full_bytes: chain.full_bytes,
                });
            }
        }
        Ok(store)
    }
}

/// The store state id of a checkpoint-local one (ids sorted by local id;
/// a header may declare many states, so no scan).
#[inline]
fn local(ids: &[(u32, u32)], sid: u32) -> Option<u32> {
    ids.binary_search_by_key(&sid, |(l, _)| *l).ok().map(|i| ids[i].1)
}

/// Whether a record's op applies to its state's kind and checkpoint kind,
/// and its lengths to what a store holds.
fn check(kind: StateKind, incremental: bool, r: &BodyRecord<'_>) -> Result<()> {
    let map = kind == StateKind::Map;
    let applies = match r.op {
        op::PUT | op::DELETE => !map,
        op::MAP_PUT | op::MAP_DELETE | op::MAP_CLEAR => map,
        _ => false,
    };
    if !applies {
        return Err(Error::Corrupt(format!("record op {} does not apply to {} state", r.op, kind.a())));
    }
    if !incremental && matches!(r.op, op::DELETE | op::MAP_DELETE | op::MAP_CLEAR) {
        return Err(Error::Corrupt(format!("record op {} (a deletion) in a full checkpoint", r.op)));
    }
    check_len("key", r.key.len(), MAX_KEY_LEN)?;
    check_len("namespace", r.ns.len(), MAX_KEY_LEN)?;
    check_len("map key", r.uk.len(), MAX_KEY_LEN)?;
    check_len("value", r.value.len(), MAX_VALUE_LEN)
}

fn apply(store: &mut Store, sid: u32, kind: StateKind, r: &BodyRecord<'_>) -> Result<()> {
    let key = Key::Bytes(r.key);
    match (r.op, kind == StateKind::Map) {
        // Bytes as they are: the values of a state with TTL keep their stamps.
        (op::PUT, false) => store.restore_put(sid, key, r.ns, r.value),
        (op::DELETE, false) => store.restore_remove(sid, key, r.ns).map(drop),
        (op::MAP_PUT, true) => store.restore_map_put(sid, key, r.ns, r.uk, r.value),
        (op::MAP_DELETE, true) => store.map_remove_raw(sid, key, r.ns, r.uk).map(drop),
        (op::MAP_CLEAR, true) => store.remove_raw(sid, key, r.ns).map(drop),
        _ => unreachable!("check() refused record op {} for {} state", r.op, kind.a()),
    }
}

/// First key group of the current piece's chain.
fn store_start(chains: &[Chain]) -> u32 {
    chains.last().map_or(0, |c| c.range.start)
}
