//! Map state operations. A map is a head record under (key, namespace)
//! whose value is the map, inline or as a nested table (see [`crate::mapval`]).
//! A map left empty is removed, as in Flink's heap backend.

use crate::delta;
use crate::error::Result;
use crate::hash::{entry_hash, murmur3_32};
use crate::mapval::{self, MapRef};
use crate::mem::{Change, NO_TABLE};
use crate::state::StateKind;
use crate::store::{check_len, Key, Store, MAX_KEY_LEN, MAX_VALUE_LEN};

fn is_map(k: StateKind) -> bool {
    k == StateKind::Map
}

impl Store {
    /// The head value of the map of (key, ns), live or at snapshot `at`.
    pub(crate) fn map_head(&self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>) -> Result<Option<&[u8]>> {
        let e = self.entry_of_kind(state, is_map, "map")?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        self.check_snapshot(at)?;
        let tid = e.parts[loc.part];
        if tid == NO_TABLE {
            return Ok(None);
        }
        let h = entry_hash(loc.hash, ns);
        let head = match at {
            None => self.mem.get(tid, h, loc.key, ns),
            Some(s) => self.mem.get_at(tid, h, loc.key, ns, s),
        };
        Ok(head.map(|r| self.mem.rec(r).value))
    }

    /// The value of user key `uk` in the map of (key, ns). (With TTL, a live
    /// read applies its rules: see `crate::ttl`; so do the calls below.)
    pub fn map_get(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8], at: Option<u64>) -> Result<Option<&[u8]>> {
        if self.ttl_of(state).is_some() {
            return self.ttl_map_get(state, key, ns, uk, at);
        }
        self.map_get_raw(state, key, ns, uk, at)
    }

    /// The stored value of `uk` (its timestamp included).
    pub(crate) fn map_get_raw(&self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8], at: Option<u64>) -> Result<Option<&[u8]>> {
        Ok(self.map_head(state, key, ns, at)?.and_then(|head| mapval::get(&self.mem, head, uk, at)))
    }

    /// Number of entries in the map of (key, ns).
    pub fn map_len(&mut self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>) -> Result<usize> {
        if self.ttl_of(state).is_some() {
            return self.ttl_map_len(state, key, ns, at);
        }
        Ok(self.map_head(state, key, ns, at)?.map_or(0, |head| mapval::len(&self.mem, head, at)))
    }

    /// Calls `f(user_key, value)` for each entry of the map of (key, ns).
    pub fn map_for_each(&mut self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>, f: impl FnMut(&[u8], &[u8])) -> Result<()> {
        if self.ttl_of(state).is_some() {
            return self.ttl_map_for_each(state, key, ns, at, f);
        }
        self.map_for_each_raw(state, key, ns, at, f)
    }

    /// Calls `f` with each stored entry (timestamps included).
    pub(crate) fn map_for_each_raw(&self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>, f: impl FnMut(&[u8], &[u8])) -> Result<()> {
        if let Some(head) = self.map_head(state, key, ns, at)? {
            mapval::for_each(&self.mem, head, at, f);
        }
        Ok(())
    }

    /// Puts `uk -> value` into the map of (key, ns).
    pub fn map_put(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8], value: &[u8]) -> Result<()> {
        if self.ttl_of(state).is_some() {
            return self.ttl_map_put(state, key, ns, uk, value);
        }
        self.map_put_raw(state, key, ns, uk, value)
    }

    /// Puts the stored bytes of `uk`.
    pub(crate) fn map_put_raw(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8], value: &[u8]) -> Result<()> {
        check_len("value", value.len(), MAX_VALUE_LEN)?;
        check_len("namespace", ns.len(), MAX_KEY_LEN)?;
        check_len("map key", uk.len(), MAX_KEY_LEN)?;
        self.entry_of_kind(state, is_map, "map")?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        let e = &mut self.states[state as usize];
        let tid = Self::part_for_write(&mut self.mem, e, loc.part);
        let h = entry_hash(loc.hash, ns);
        let mut out = std::mem::take(self.mem.tmp());
        let head = self.mem.get(tid, h, loc.key, ns);
        let created = match head.map(|r| mapval::view(self.mem.rec(r).value)) {
            None => {
                mapval::single(uk, value, &mut out);
                self.mem.put(tid, h, loc.key, ns, &[&out]);
                true
            }
            Some(MapRef::Inline(blob)) => {
                let (created, _, outgrown) = mapval::put(blob, uk, value, &mut out);
                if outgrown {
                    // Move to a nested table (born now: no snapshot needs its past).
                    let nt = self.mem.new_table(false);
                    if let MapRef::Inline(pairs) = mapval::view(&out) {
                        for (k, v) in mapval::pairs(pairs) {
                            self.mem.put(nt, murmur3_32(k, 0), k, &[], &[v]);
                        }
                    }
                    self.mem.put(tid, h, loc.key, ns, &[&mapval::nested(nt)]);
                } else {
                    self.mem.put(tid, h, loc.key, ns, &[&out]);
                }
                created
            }
            Some(MapRef::Nested(nt)) => self.mem.put(nt, murmur3_32(uk, 0), uk, &[], &[value]) == Change::Created,
        };
        *self.mem.tmp() = out;
        if created {
            e.entries += 1;
        }
        let parts = e.parts.len();
        self.cps.mark(state, loc.part, parts, h, loc.key, ns, delta::Change::MapEntry, uk);
        Ok(())
    }

    /// Removes user key `uk` from the map of (key, ns); a map left empty is
    /// removed.
    pub fn map_remove(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8]) -> Result<bool> {
        if self.ttl_of(state).is_some() {
            self.ttl_access(state);
        }
        self.map_remove_raw(state, key, ns, uk)
    }

    pub(crate) fn map_remove_raw(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8]) -> Result<bool> {
        self.entry_of_kind(state, is_map, "map")?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        let e = &mut self.states[state as usize];
        let tid = e.parts[loc.part];
        if tid == NO_TABLE {
            return Ok(false);
        }
        let h = entry_hash(loc.hash, ns);
        let Some(head) = self.mem.get(tid, h, loc.key, ns) else { return Ok(false) };
        let mut out = std::mem::take(self.mem.tmp());
        let removed = match mapval::view(self.mem.rec(head).value) {
            MapRef::Inline(blob) => {
                let (found, left) = mapval::remove(blob, uk, &mut out);
                if found && left == 0 {
                    self.mem.remove(tid, h, loc.key, ns);
                } else if found {
                    self.mem.put(tid, h, loc.key, ns, &[&out]);
                }
                found
            }
            MapRef::Nested(nt) => {
                let found = self.mem.remove(nt, murmur3_32(uk, 0), uk, &[]);
                if found && self.mem.table(nt).live.is_empty() {
                    self.mem.remove(tid, h, loc.key, ns);
                }
                found
            }
        };
        *self.mem.tmp() = out;
        if removed {
            e.entries -= 1;
            let parts = e.parts.len();
            self.cps.mark(state, loc.part, parts, h, loc.key, ns, delta::Change::MapEntry, uk);
        }
        Ok(removed)
    }
}
