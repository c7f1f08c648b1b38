//! Removing expired values without a read: incremental cleanup (a cursor per
//! state over its tables, advanced a few entries per access, as Flink's heap
//! backend does) and [`Store::expire`], a whole pass a user runs when idle.
//!
//! Both remove through the store's raw operations, so a removal is a
//! tombstone in the next incremental checkpoint and an open snapshot keeps
//! the value of its moment (copy-on-write).

use std::mem::take;

use super::{elements, stamp_of, TtlConfig, STAMP_LEN};
use crate::arena::Ref;
use crate::mapval;
use crate::mem::NO_TABLE;
use crate::record::Rec;
use crate::state::StateKind;
use crate::error::Result;
use crate::store::{Key, Store};

/// What cleaning one entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cleaned {
    /// Nothing had expired.
    Kept,
    /// Some values went; the entry stays.
    Trimmed,
    /// The whole entry went.
    Removed,
}

/// Whether any value of the entry in `rec` expired at `now`.
fn has_expired(mem: &crate::mem::Mem, kind: StateKind, cfg: &TtlConfig, rec: &Rec<'_>, now: u64) -> bool {
    match kind {
        StateKind::List => elements(rec.value).flatten().any(|e| cfg.expired(e.stamp, now)),
        StateKind::Map => {
            let mut any = false;
            mapval::for_each(mem, rec.value, None, |_, v| any |= cfg.expired(stamp_of(v), now));
            any
        }
        _ => cfg.expired(stamp_of(rec.value), now),
    }
}

/// The oldest stamp of the values of the entry in `rec` that have not
/// expired at `now` (`u64::MAX`: none).
fn oldest_live(mem: &crate::mem::Mem, kind: StateKind, cfg: &TtlConfig, rec: &Rec<'_>, now: u64) -> u64 {
    let live = |ts: u64| if cfg.expired(ts, now) { u64::MAX } else { ts };
    match kind {
        StateKind::List => elements(rec.value).flatten().map(|e| live(e.stamp)).min().unwrap_or(u64::MAX),
        StateKind::Map => {
            let mut min = u64::MAX;
            mapval::for_each(mem, rec.value, None, |_, v| min = min.min(live(stamp_of(v))));
            min
        }
        _ => live(stamp_of(rec.value)),
    }
}

impl Store {
    /// One incremental cleanup step of `state`: visits up to `size` entries
    /// from its cursor on and removes what expired, wrapping around at the
    /// end of its tables. Bounded work: it also stops after looking at
    /// `4 * size + 16` slots and tables.
    pub(crate) fn clean_step(&mut self, state: u32, size: usize) {
        let Some(cfg) = self.ttl_of(state).copied() else { return };
        let now = self.ttl.now;
        let parts = self.states[state as usize].parts.len();
        let mut cur = self.ttl.cursors[state as usize];
        let (mut visited, mut budget) = (0, 4 * size + 16);
        while visited < size && budget > 0 {
            budget -= 1;
            if cur.part >= parts {
                cur = Default::default();
            }
            let tid = self.states[state as usize].parts[cur.part];
            if tid == NO_TABLE || cur.slot >= self.mem.table(tid).live.capacity() {
                cur.part += 1;
                cur.slot = 0;
                continue;
            }
            let Some(r) = self.mem.table(tid).live.ref_in(cur.slot) else {
                cur.slot += 1;
                continue;
            };
            visited += 1;
            // Best effort: a removal that cannot get memory (an open
            // snapshot's undo layer) ends the step; the entry is looked at
            // again by the next one.
            match self.clean_record(state, cfg, r, now) {
                // A removal shifts the next entry into this slot: look at it again.
                Ok((Cleaned::Removed, _)) => {}
                Ok(_) => cur.slot += 1,
                Err(_) => break,
            }
        }
        self.ttl.cursors[state as usize] = cur;
    }

    /// Removes what expired at `now` of the live entry in record `r`;
    /// returns what it did and how many values (entries, elements, map
    /// entries) went.
    fn clean_record(&mut self, state: u32, cfg: TtlConfig, r: Ref, now: u64) -> Result<(Cleaned, u64)> {
        let kind = self.states[state as usize].desc.kind;
        let rec = self.mem.rec(r);
        if !has_expired(&self.mem, kind, &cfg, &rec, now) {
            return Ok((Cleaned::Kept, 0));
        }
        // Key and namespace, then what the entry keeps or the user keys it drops.
        let mut buf = take(&mut self.ttl.tmp);
        buf.clear();
        // At most the entry's bytes (its key, namespace and value, user keys
        // and all), and one position per value; reserved first.
        let (mut values, mut uk_bytes) = (0usize, 0usize);
        if kind == StateKind::Map {
            mapval::for_each(&self.mem, rec.value, None, |uk, _| {
                values += 1;
                uk_bytes += uk.len();
            });
        }
        let need = rec.key.len() + rec.ns.len() + rec.value.len() + uk_bytes;
        let mut dropped: Vec<usize> = Vec::new();
        let reserved = crate::room::reserve_bytes(&mut buf, need)
            .and_then(|()| crate::room::reserve(&mut dropped, if kind == StateKind::Map { values } else { rec.value.len() / STAMP_LEN + 1 }));
        if let Err(e) = reserved {
            self.ttl.tmp = buf;
            return Err(e.into());
        }
        buf.extend_from_slice(rec.key);
        buf.extend_from_slice(rec.ns);
        let (kl, nl) = (rec.key.len(), rec.ns.len());
        let mut left = 0u64;
        match kind {
            StateKind::List => {
                for e in elements(rec.value).flatten() {
                    if cfg.expired(e.stamp, now) {
                        dropped.push(0);
                    } else {
                        buf.extend_from_slice(&super::stamp(e.stamp));
                        buf.extend_from_slice(e.frame);
                        left += 1;
                    }
                }
            }
            StateKind::Map => mapval::for_each(&self.mem, rec.value, None, |uk, v| {
                if cfg.expired(stamp_of(v), now) {
                    dropped.push(buf.len());
                    buf.extend_from_slice(uk);
                } else {
                    left += 1;
                }
            }),
            _ => {}
        }
        let (key, rest) = buf.split_at(kl);
        let (ns, rest) = rest.split_at(nl);
        let key = Key::Bytes(key);
        // Each change is a store write, reserved before it commits; one that
        // cannot get memory (an open snapshot's undo layer) fails whole.
        let done = (|| match kind {
            StateKind::List if left == 0 => {
                self.remove_raw(state, key, ns)?;
                Ok((Cleaned::Removed, dropped.len() as u64))
            }
            StateKind::List => {
                self.put_raw(state, key, ns, rest)?;
                Ok((Cleaned::Trimmed, dropped.len() as u64))
            }
            StateKind::Map => {
                let base = kl + nl;
                let mut gone = 0;
                for (i, &at) in dropped.iter().enumerate() {
                    let end = dropped.get(i + 1).copied().unwrap_or(kl + nl + rest.len());
                    let uk = rest.get(at - base..end - base).unwrap_or_default();
                    // Removals before a failure stay (each is whole, of an
                    // expired entry), but the entry is not clean: an error.
                    self.map_remove_raw(state, key, ns, uk)?;
                    gone += 1;
                }
                Ok((if left == 0 { Cleaned::Removed } else { Cleaned::Trimmed }, gone))
            }
            _ => {
                self.remove_raw(state, key, ns)?;
                Ok((Cleaned::Removed, 1))
            }
        })();
        if let (StateKind::List, Ok((_, n))) = (kind, &done) {
            self.add_list_stamps(state, 0, *n);
        }
        self.ttl.tmp = buf;
        done
    }

    /// Removes every expired value of every state with TTL, whatever their
    /// cleanup settings (a pass over all their entries; for a store that is
    /// idle). Returns how many values went: entries of value-like states,
    /// list elements, map entries.
    pub fn expire(&mut self) -> Result<u64> {
        let now = self.ttl.now;
        let mut removed = 0;
        let mut keys: Vec<u8> = Vec::new();
        let mut at: Vec<(usize, usize)> = Vec::new();
        for state in 0..self.states.len() as u32 {
            let Some(cfg) = self.ttl_of(state).copied() else { continue };
            let kind = self.states[state as usize].desc.kind;
            // The oldest stamp left once the pass is done: the state's exact floor.
            let mut oldest = u64::MAX;
            for part in 0..self.states[state as usize].parts.len() {
                let tid = self.states[state as usize].parts[part];
                if tid == NO_TABLE {
                    continue;
                }
                // First the entries with something expired (their keys),
                // then their cleanup: removals move the others around.
                keys.clear();
                at.clear();
                let mut full = None;
                self.mem.for_each_visible(tid, None, |rec| {
                    oldest = oldest.min(oldest_live(&self.mem, kind, &cfg, rec, now));
                    if full.is_some() || !has_expired(&self.mem, kind, &cfg, rec, now) {
                        return;
                    }
                    let r = crate::room::reserve(&mut at, 1).and_then(|()| crate::room::reserve_bytes(&mut keys, rec.key.len() + rec.ns.len()));
                    match r {
                        Ok(()) => {
                            at.push((keys.len(), rec.key.len()));
                            keys.extend_from_slice(rec.key);
                            keys.extend_from_slice(rec.ns);
                        }
                        Err(e) => full = Some(e),
                    }
                });
                // What fits is cleaned before the error goes out: a pass that
                // runs out of memory still frees what it can.
                for (i, &(start, kl)) in at.iter().enumerate() {
                    let end = at.get(i + 1).map_or(keys.len(), |a| a.0);
                    let Some((key, ns)) = keys.get(start..end).filter(|k| k.len() >= kl).map(|k| k.split_at(kl)) else { continue };
                    if kind.is_value_like() {
                        self.remove_raw(state, Key::Bytes(key), ns)?;
                        removed += 1;
                    } else if let Some(r) = self.ref_at(state, Key::Bytes(key), ns, None)? {
                        removed += self.clean_record(state, cfg, r, now)?.1;
                    }
                }
                if let Some(e) = full {
                    return Err(e.into());
                }
            }
            if let Some(f) = self.ttl.floor.get_mut(state as usize) {
                *f = oldest;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use crate::ttl::{TtlConfig, STAMP_LEN};
    use crate::{Key, StateDescriptor, StateKind, Store, StoreConfig};

    fn store(kind: StateKind, size: Option<u32>) -> (Store, u32) {
        let mut s = Store::new(StoreConfig::new(8, None, [1; 16]).unwrap());
        let cfg = TtlConfig { incremental: size, ..TtlConfig::new(100).unwrap() };
        let uk = if kind == StateKind::Map { "bytes" } else { "" };
        let d = StateDescriptor::new("t", kind, "bytes", uk).unwrap().with_ttl(Some(cfg)).unwrap();
        let id = s.register_state(d).unwrap();
        (s, id)
    }

    #[test]
    fn incremental_cleanup_visits_every_entry_in_time() {
        // 1000 entries written at 0, expired at 120; 5 entries per access:
        // 200 accesses of another key visit them all.
        let (mut s, id) = store(StateKind::Value, Some(5));
        for i in 0..1000u32 {
            s.put(id, Key::Bytes(format!("k{i}").as_bytes()), b"", b"v").unwrap();
        }
        s.set_time(120).unwrap();
        let mut steps = 0;
        while s.entries(id).unwrap() > 0 {
            s.put(id, Key::Bytes(b"other"), b"ns", b"v").unwrap();
            s.remove(id, Key::Bytes(b"other"), b"ns").unwrap();
            steps += 1;
            assert!(steps < 400, "cleanup does not come round");
        }
        s.check_invariants();
    }

    #[test]
    fn expire_removes_exactly_what_expired_of_every_kind() {
        for kind in [StateKind::Value, StateKind::List, StateKind::Map] {
            let (mut s, id) = store(kind, None);
            for i in 0..300u32 {
                s.set_time(if i % 10 == 0 { 0 } else { 50 }).unwrap();
                let k = format!("k{}", i % 100);
                match kind {
                    StateKind::List => s.append(id, Key::Bytes(k.as_bytes()), b"", &[1, i as u8]).unwrap(),
                    StateKind::Map => s.map_put(id, Key::Bytes(k.as_bytes()), b"", &i.to_le_bytes(), b"v").unwrap(),
                    _ => s.put(id, Key::Bytes(format!("k{i}").as_bytes()), b"", b"v").unwrap(),
                }
            }
            s.set_time(120).unwrap();
            assert_eq!(s.expire().unwrap(), 30, "{kind:?}");
            assert_eq!(s.expire().unwrap(), 0, "{kind:?}: a second pass finds nothing");
            assert_eq!(s.memory().ttl_bytes, 270 * STAMP_LEN as u64, "{kind:?}");
            s.check_invariants();
            s.set_time(150).unwrap();
            assert_eq!(s.expire().unwrap(), 270);
            assert_eq!(s.memory().entries, 0);
            s.check_invariants();
        }
    }
}
