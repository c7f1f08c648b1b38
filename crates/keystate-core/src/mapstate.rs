//! Map state operations. A map is a head record under (key, namespace)
//! whose value is the map, inline or as a nested table (see [`crate::mapval`]).
//! A map left empty is removed, as in Flink's heap backend.

use crate::delta;
use crate::error::Result;
use crate::hash::{entry_hash, murmur3_32};
use crate::mapval::{self, MapRef};
use crate::mem::{Change, Mem, TableId, NO_TABLE};
use crate::room::{self, Room};
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
        Ok(head.map(|e| self.mem.entry(e).value))
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

    /// Puts `uk -> value` into the map of (key, ns). All or nothing: a map
    /// that moves to a nested table and cannot get the memory for it stays
    /// as it was.
    pub fn map_put(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8], value: &[u8]) -> Result<()> {
        self.compact_step();
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
        let mut room = self.room();
        let e = &mut self.states[state as usize];
        let tid = Self::part_for_write(&mut self.mem, e, loc.part, &mut room)?;
        let h = entry_hash(loc.hash, ns);
        let parts = e.parts.len();
        self.cps.mark(&mut room, state, loc.part, parts, h, loc.key, ns, delta::Change::MapEntry, uk, None)?;
        let mut out = std::mem::take(self.mem.tmp());
        let r = Self::map_put_in(&mut self.mem, &mut room, tid, h, loc.key, ns, uk, value, &mut out);
        *self.mem.tmp() = out;
        if r? {
            e.entries += 1;
        }
        Ok(())
    }

    /// The change of `map_put` to the tables; returns whether `uk` is new.
    #[allow(clippy::too_many_arguments)]
    fn map_put_in(mem: &mut Mem, room: &mut Room, tid: TableId, h: u32, key: &[u8], ns: &[u8], uk: &[u8], value: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        // Room for the head value: the old pairs, and the new pair with its lengths.
        let pair = uk.len() + value.len() + 20;
        let head = mem.get(tid, h, key, ns);
        Ok(match head.map(|e| mapval::view(mem.entry(e).value)) {
            None => {
                out.clear();
                room::reserve_bytes(out, 1 + pair)?;
                mapval::single(uk, value, out);
                mem.put(room, tid, h, key, ns, &[out])?;
                true
            }
            Some(MapRef::Inline(blob)) => {
                out.clear();
                room::reserve_bytes(out, 1 + blob.len() + pair)?;
                let (created, _, outgrown) = mapval::put(blob, uk, value, out);
                if outgrown {
                    // Move to a nested table (born now: no snapshot needs its
                    // past). A new table nobody sees yet: on an error it goes.
                    let nt = mem.new_table(false, false, room)?;
                    let moved = Self::fill_nested(mem, room, nt, out).and_then(|()| Ok(mem.put(room, tid, h, key, ns, &[&mapval::nested(nt)])?));
                    if let Err(e) = moved {
                        mem.free_table(nt);
                        return Err(e);
                    }
                } else {
                    mem.put(room, tid, h, key, ns, &[out])?;
                }
                created
            }
            Some(MapRef::Nested(nt)) => mem.put(room, nt, murmur3_32(uk, 0), uk, &[], &[value])? == Change::Created,
        })
    }

    /// Puts the pairs of an inline head value into the new table `nt`.
    fn fill_nested(mem: &mut Mem, room: &mut Room, nt: TableId, head: &[u8]) -> Result<()> {
        if let MapRef::Inline(pairs) = mapval::view(head) {
            for (k, v) in mapval::pairs(pairs) {
                mem.put(room, nt, murmur3_32(k, 0), k, &[], &[v])?;
            }
        }
        Ok(())
    }

    /// Removes user key `uk` from the map of (key, ns); a map left empty is
    /// removed. Not held to the memory budget.
    pub fn map_remove(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8]) -> Result<bool> {
        self.compact_step();
        let removed = self.map_remove_raw(state, key, ns, uk)?;
        if self.ttl_of(state).is_some() {
            self.ttl_access(state);
        }
        Ok(removed)
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
        let mut room = Room::UNLIMITED;
        let found = match mapval::view(self.mem.entry(head).value) {
            MapRef::Inline(blob) => mapval::find(blob, uk).is_some(),
            MapRef::Nested(nt) => self.mem.get(nt, murmur3_32(uk, 0), uk, &[]).is_some(),
        };
        if !found {
            return Ok(false);
        }
        let parts = e.parts.len();
        self.cps.mark(&mut room, state, loc.part, parts, h, loc.key, ns, delta::Change::MapEntry, uk, None)?;
        let mut out = std::mem::take(self.mem.tmp());
        let r = Self::map_remove_in(&mut self.mem, &mut room, tid, h, loc.key, ns, uk, &mut out);
        *self.mem.tmp() = out;
        r?;
        e.entries -= 1;
        Ok(true)
    }

    /// The change of `map_remove` (of a user key that is there) to the tables.
    #[allow(clippy::too_many_arguments)]
    fn map_remove_in(mem: &mut Mem, room: &mut Room, tid: TableId, h: u32, key: &[u8], ns: &[u8], uk: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let head = mem.get(tid, h, key, ns).expect("the caller found the map");
        match mapval::view(mem.entry(head).value) {
            MapRef::Inline(blob) => {
                out.clear();
                room::reserve_bytes(out, 1 + blob.len())?;
                let (_, left) = mapval::remove(blob, uk, out);
                if left == 0 {
                    mem.remove(room, tid, h, key, ns)?;
                } else {
                    mem.put(room, tid, h, key, ns, &[out])?;
                }
            }
            MapRef::Nested(nt) => {
                // The head goes too if the map is left empty: reserve for
                // that first, so that the two steps happen together.
                let last = mem.table(nt).live.len() == 1;
                if last {
                    mem.reserve_remove(room, tid, h, key, ns)?;
                }
                mem.remove(room, nt, murmur3_32(uk, 0), uk, &[])?;
                if last {
                    mem.remove(room, tid, h, key, ns)?;
                }
            }
        }
        Ok(())
    }
}
