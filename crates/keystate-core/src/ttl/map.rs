//! Map state with TTL: each entry carries its own stamp and expires alone,
//! as Flink's `TtlMapState`. A live `get` of an expired entry removes it;
//! `len` and listings remove the expired entries they pass (and listings
//! renew the ones they return with `OnReadAndWrite`).

use std::mem::take;

use super::{stamp, stamp_of, TtlConfig, TtlVisibility, STAMP_LEN};
use crate::arena::Ref;
use super::ops::fill;
use crate::error::{Error, Result};
use crate::hash::{entry_hash, murmur3_32};
use crate::index::Entry;
use crate::mapval::{self, MapRef};
use crate::mem::NO_TABLE;
use crate::state::StateKind;
use crate::store::{check_len, Key, Store, MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::varint;

fn is_map(k: StateKind) -> bool {
    k == StateKind::Map
}

impl Store {
    fn map_cfg(&self, state: u32, key: Key<'_>, at: Option<u64>) -> Result<TtlConfig> {
        let cfg = self.entry_of_kind(state, is_map, "map")?.desc.ttl.ok_or_else(|| Error::InvalidArgument("not a state with TTL".into()))?;
        Self::locate(&self.cfg, &self.current, key)?;
        self.check_snapshot(at)?;
        Ok(cfg)
    }

    /// Where the live stored value of `uk` is: the record holding it, and
    /// its range in that record's bytes.
    fn map_value_at(&self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8]) -> Result<Option<(Ref, usize, usize)>> {
        let e = self.entry(state)?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        let tid = e.parts[loc.part];
        if tid == NO_TABLE {
            return Ok(None);
        }
        // The tables of TTL states are narrow (docs/LAYOUT.md): every entry
        // is a record's ref.
        let Some(head) = self.mem.get(tid, entry_hash(loc.hash, ns), loc.key, ns).and_then(Entry::record) else { return Ok(None) };
        let (r, v) = match mapval::view(self.mem.rec(head).value) {
            MapRef::Inline(blob) => match mapval::find(blob, uk) {
                Some(v) => (head, v),
                None => return Ok(None),
            },
            MapRef::Nested(nt) => match self.mem.get(nt, murmur3_32(uk, 0), uk, &[]).and_then(Entry::record) {
                Some(r) => (r, self.mem.rec(r).value),
                None => return Ok(None),
            },
        };
        let at = v.as_ptr() as usize - self.mem.arena.bytes(r).as_ptr() as usize;
        Ok(Some((r, at, at + v.len())))
    }

    pub(crate) fn ttl_map_put(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8], value: &[u8]) -> Result<()> {
        self.map_cfg(state, key, None)?;
        check_len("value", value.len(), MAX_VALUE_LEN)?;
        check_len("namespace", ns.len(), MAX_KEY_LEN)?;
        check_len("map key", uk.len(), MAX_KEY_LEN)?;
        self.ttl.stamped(state, self.ttl.now);
        let mut tmp = take(&mut self.ttl.tmp);
        tmp.clear();
        let done = fill(&mut tmp, &[&stamp(self.ttl.now), value]).and_then(|()| self.map_put_raw(state, key, ns, uk, &tmp));
        self.keep_tmp(tmp);
        done?;
        // After the write, as for the other kinds (see `ttl_put`).
        self.ttl_access(state);
        Ok(())
    }

    pub(crate) fn ttl_map_get(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8], at: Option<u64>) -> Result<Option<&[u8]>> {
        let cfg = self.map_cfg(state, key, at)?;
        if let Some(s) = at {
            let t = self.ttl.time_of(s);
            let v = self.map_get_raw(state, key, ns, uk, at)?;
            return Ok(v.filter(|v| cfg.shows(stamp_of(v), t, true)).map(|v| v.get(STAMP_LEN..).unwrap_or_default()));
        }
        self.ttl_access(state);
        let now = self.ttl.now;
        self.ttl.stamped(state, now);
        let Some((r, from, to)) = self.map_value_at(state, key, ns, uk)? else { return Ok(None) };
        let ts = stamp_of(self.mem.arena.bytes(r).get(from..to).unwrap_or_default());
        if cfg.expired(ts, now) {
            let show = cfg.shows(ts, now, false);
            self.ttl.out.clear();
            if show {
                fill(&mut self.ttl.out, &[value_of(&self.mem, r, from, to)])?;
            }
            // Best effort, as for a value (see `ttl_get`).
            let _ = self.map_remove_raw(state, key, ns, uk);
            return Ok(show.then_some(&self.ttl.out[..]));
        }
        if cfg.renews_on_read() && ts != now {
            let mut tmp = take(&mut self.ttl.tmp);
            tmp.clear();
            let done = fill(&mut tmp, &[&stamp(now), value_of(&self.mem, r, from, to)]).and_then(|()| self.map_put_raw(state, key, ns, uk, &tmp));
            self.keep_tmp(tmp);
            done?;
            let Some((r, from, to)) = self.map_value_at(state, key, ns, uk)? else { return Ok(None) };
            return Ok(Some(value_of(&self.mem, r, from, to)));
        }
        Ok(Some(value_of(&self.mem, r, from, to)))
    }

    /// The live entries of the map of (key, ns) into `buf`: repeated
    /// `u64 stamp, varint uk_len, uk, varint v_len, value` (without stamp).
    fn map_collect(&self, state: u32, key: Key<'_>, ns: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        // Sized first (a listing grows fallibly), then written.
        let mut need = 0usize;
        self.map_for_each_raw(state, key, ns, None, |uk, v| need = need.saturating_add(8 + 20 + uk.len() + v.len()))?;
        crate::room::reserve_bytes(buf, need)?;
        self.map_for_each_raw(state, key, ns, None, |uk, v| {
            let ts = stamp_of(v);
            let v = v.get(STAMP_LEN..).unwrap_or_default();
            buf.extend_from_slice(&ts.to_le_bytes());
            varint::put(buf, uk.len() as u64);
            buf.extend_from_slice(uk);
            varint::put(buf, v.len() as u64);
            buf.extend_from_slice(v);
        })
    }

    /// A live pass over the map of (key, ns): removes the expired entries,
    /// renews the others when `renew`; calls `f(uk, value, expired)` for
    /// each entry, after the changes.
    fn map_pass(&mut self, state: u32, cfg: TtlConfig, key: Key<'_>, ns: &[u8], renew: bool, mut f: impl FnMut(&[u8], &[u8], bool)) -> Result<()> {
        self.ttl_access(state);
        let now = self.ttl.now;
        self.ttl.stamped(state, now);
        let mut buf = take(&mut self.ttl.out);
        let mut tmp = take(&mut self.ttl.tmp);
        let r = (|| {
            self.map_collect(state, key, ns, &mut buf)?;
            let mut p = 0;
            while p < buf.len() {
                let ts = u64::from_le_bytes(buf[p..p + 8].try_into().expect("8 bytes"));
                p += 8;
                let ul = varint::get_trusted(&buf, &mut p);
                let uk = &buf[p..p + ul];
                p += ul;
                let vl = varint::get_trusted(&buf, &mut p);
                let v = &buf[p..p + vl];
                p += vl;
                let dead = cfg.expired(ts, now);
                if dead {
                    // Best effort, as for a value (see `ttl_get`).
                    let _ = self.map_remove_raw(state, key, ns, uk);
                } else if renew && ts != now {
                    tmp.clear();
                    fill(&mut tmp, &[&stamp(now), v])?;
                    self.map_put_raw(state, key, ns, uk, &tmp)?;
                }
                f(uk, v, dead);
            }
            Ok(())
        })();
        self.ttl.out = buf;
        self.keep_tmp(tmp);
        r
    }

    pub(crate) fn ttl_map_len(&mut self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>) -> Result<usize> {
        let cfg = self.map_cfg(state, key, at)?;
        let mut n = 0;
        if let Some(s) = at {
            let t = self.ttl.time_of(s);
            self.map_for_each_raw(state, key, ns, at, |_, v| n += usize::from(cfg.shows(stamp_of(v), t, true)))?;
            return Ok(n);
        }
        self.map_pass(state, cfg, key, ns, false, |_, _, dead| n += usize::from(!dead || cfg.visibility == TtlVisibility::ReturnExpiredIfNotCleanedUp))?;
        Ok(n)
    }

    pub(crate) fn ttl_map_for_each(&mut self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>, mut f: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let cfg = self.map_cfg(state, key, at)?;
        if let Some(s) = at {
            let t = self.ttl.time_of(s);
            return self.map_for_each_raw(state, key, ns, at, |uk, v| {
                if cfg.shows(stamp_of(v), t, true) {
                    f(uk, v.get(STAMP_LEN..).unwrap_or_default());
                }
            });
        }
        self.map_pass(state, cfg, key, ns, cfg.renews_on_read(), |uk, v, dead| {
            if !dead || cfg.visibility == TtlVisibility::ReturnExpiredIfNotCleanedUp {
                f(uk, v);
            }
        })
    }
}

/// The user value of a stored map value at `from..to` of record `r` (after its stamp).
fn value_of(mem: &crate::mem::Mem, r: Ref, from: usize, to: usize) -> &[u8] {
    mem.arena.bytes(r).get(from + STAMP_LEN..to).unwrap_or_default()
}
