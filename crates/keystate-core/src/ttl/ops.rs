//! The operations of value, reducing, aggregating and list states with TTL,
//! over the store's raw operations (which store bytes as they are given).
//!
//! As Flink's TTL state decorators: a write stamps the value with the
//! store's time; a live read of an expired value removes it (cleanup on
//! read) and returns it only with `ReturnExpiredIfNotCleanedUp`; with
//! `OnReadAndWrite` a read renews the stamps it returns. Lists expire per
//! element. Every access of a state with incremental cleanup first runs one
//! cleanup step (see `cleanup`). Reads at a snapshot use the snapshot's
//! time and change nothing.

use std::mem::take;

use super::{count_elements, elements, stamp, stamp_frames, stamp_of, TtlConfig, MAX_TIME, STAMP_LEN};
use crate::arena::Ref;
use crate::error::{Error, Result};
use crate::hash::entry_hash;
use crate::index::Entry;
use crate::mem::NO_TABLE;
use crate::record::Rec;
use crate::state::StateKind;
use crate::store::{check_len, Key, Store, MAX_KEY_LEN, MAX_VALUE_LEN};

/// Scratch capacity kept between writes (as the arena's, see write.rs).
const TMP_KEEP: usize = 64 * 1024;

fn not_frames() -> Error {
    Error::InvalidArgument("a list value is a sequence of frames (varint length, bytes)".into())
}

impl Store {
    /// The TTL configuration of `state`, if it has one.
    #[inline]
    pub(crate) fn ttl_of(&self, state: u32) -> Option<&TtlConfig> {
        self.states.get(state as usize).and_then(|e| e.desc.ttl.as_ref())
    }

    /// Sets the store's time (ms since any epoch the caller keeps to; the
    /// binding passes its clock's). States with TTL stamp values with it and
    /// expire them against it; snapshots and checkpoints keep the time they
    /// were taken at.
    pub fn set_time(&mut self, now: u64) -> Result<()> {
        if now > MAX_TIME {
            return Err(Error::InvalidArgument(format!("times are 0..={MAX_TIME} ms, not {now}")));
        }
        self.ttl.now = now;
        Ok(())
    }

    /// The store's time (see [`Store::set_time`]).
    pub fn time(&self) -> u64 {
        self.ttl.now
    }

    /// Sets the TTL configuration of state `id` (registration, or the first
    /// declaration of a restored state).
    pub(crate) fn set_ttl(&mut self, id: u32, ttl: Option<TtlConfig>) -> Result<()> {
        crate::room::reserve(&mut self.ttl.every_record, 1)?;
        self.states[id as usize].desc.ttl = ttl;
        self.ttl.every_record.retain(|s| *s != id);
        if ttl.is_some_and(|c| c.every_record) {
            self.ttl.every_record.push(id);
        }
        Ok(())
    }

    /// Timestamps state `state` holds.
    pub(crate) fn stamps(&self, state: u32) -> u64 {
        let e = &self.states[state as usize];
        match (e.desc.ttl, e.desc.kind) {
            (None, _) => 0,
            (Some(_), StateKind::List) => self.ttl.list_stamps[state as usize],
            (Some(_), _) => e.entries,
        }
    }

    /// An access of a state with TTL: one incremental cleanup step, if it has those.
    #[inline]
    pub(crate) fn ttl_access(&mut self, state: u32) {
        let Some(c) = self.ttl_of(state) else { return };
        let Some(n) = c.incremental else { return };
        // Nothing of the state can have expired yet: no step.
        let floor = self.ttl.floor.get(state as usize).copied().unwrap_or(0);
        if !c.expired(floor, self.ttl.now) {
            return;
        }
        self.clean_step(state, n as usize);
    }

    /// Cleanup on every record: a step for each state that asks for it.
    pub(crate) fn clean_every_record(&mut self) {
        for i in 0..self.ttl.every_record.len() {
            let state = self.ttl.every_record[i];
            self.ttl_access(state);
        }
    }

    /// The record of (key, ns), live or at snapshot `at`.
    pub(crate) fn ref_at(&self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>) -> Result<Option<Ref>> {
        let e = self.entry(state)?;
        let loc = Self::locate(&self.cfg, &self.current, key)?;
        let tid = e.parts[loc.part];
        if tid == NO_TABLE {
            return Ok(None);
        }
        let h = entry_hash(loc.hash, ns);
        let e = match at {
            None => self.mem.get(tid, h, loc.key, ns),
            Some(s) => self.mem.get_at(tid, h, loc.key, ns, s),
        };
        // The tables of TTL states are narrow (docs/LAYOUT.md): every entry
        // is a record's ref.
        Ok(e.and_then(Entry::record))
    }

    /// Elements of the stored list of (key, ns).
    fn list_count(&self, state: u32, key: Key<'_>, ns: &[u8]) -> Result<u64> {
        Ok(self.ref_at(state, key, ns, None)?.map_or(0, |r| elements(self.mem.rec(r).value).flatten().count() as u64))
    }

    pub(crate) fn add_list_stamps(&mut self, state: u32, added: u64, removed: u64) {
        let n = &mut self.ttl.list_stamps[state as usize];
        *n = (*n + added).saturating_sub(removed);
    }

    /// Refuses what a raw write would refuse, before an access runs a cleanup step.
    fn check_write(&self, state: u32, key: Key<'_>, ns: &[u8], value: &[u8]) -> Result<()> {
        check_len("value", value.len(), MAX_VALUE_LEN)?;
        check_len("namespace", ns.len(), MAX_KEY_LEN)?;
        Self::locate(&self.cfg, &self.current, key)?;
        self.entry(state).map(drop)
    }

    /// The live value of (key, ns) as a reducing or aggregating `add` reads
    /// it to fold into: for a state with TTL an expired value is absent
    /// whatever the visibility (as Flink's TTL merge functions), and the
    /// read renews nothing (the write that follows stamps the value).
    pub fn get_for_update(&mut self, state: u32, key: Key<'_>, ns: &[u8]) -> Result<Option<&[u8]>> {
        if self.ttl_of(state).is_some() {
            return self.ttl_get(state, key, ns, None, true);
        }
        self.get_raw(state, key, ns, None)
    }

    /// A live or snapshot read (see the module docs). `for_update`: the read
    /// of a reducing or aggregating `add`, which folds into an unexpired
    /// value only (Flink's TTL merge functions) and renews nothing.
    pub(crate) fn ttl_get(&mut self, state: u32, key: Key<'_>, ns: &[u8], at: Option<u64>, for_update: bool) -> Result<Option<&[u8]>> {
        let e = self.entry_of_kind(state, |k| k != StateKind::Map, "value or list")?;
        let Some(cfg) = e.desc.ttl else { return self.get_raw(state, key, ns, at) };
        let is_list = e.desc.kind == StateKind::List;
        Self::locate(&self.cfg, &self.current, key)?;
        self.check_snapshot(at)?;
        if let Some(s) = at {
            let t = self.ttl.time_of(s);
            let Some(r) = self.ref_at(state, key, ns, at)? else { return Ok(None) };
            let stored = self.mem.rec(r).value;
            if is_list {
                let out = &mut self.ttl.out;
                let shown = shown_elements(&cfg, stored, t, true, out)?;
                return Ok(shown.then_some(&out[..]));
            }
            return Ok(cfg.shows(stamp_of(stored), t, true).then(|| stored.get(STAMP_LEN..).unwrap_or_default()));
        }
        self.ttl_access(state);
        let now = self.ttl.now;
        // A renewal below stamps `now`.
        self.ttl.stamped(state, now);
        let Some(r) = self.ref_at(state, key, ns, None)? else { return Ok(None) };
        if is_list {
            return self.list_read(state, cfg, key, ns, r, for_update);
        }
        let stored = self.mem.rec(r).value;
        let ts = stamp_of(stored);
        if cfg.expired(ts, now) {
            let show = !for_update && cfg.shows(ts, now, false);
            self.ttl.out.clear();
            if show {
                fill(&mut self.ttl.out, &[stored.get(STAMP_LEN..).unwrap_or_default()])?;
            }
            // Cleanup on read is best effort: a removal that cannot get
            // memory (an open snapshot's undo layer) leaves the value for a
            // later cleanup, and the read answers as if it went.
            let _ = self.remove_raw(state, key, ns);
            return Ok(show.then_some(&self.ttl.out[..]));
        }
        if cfg.renews_on_read() && !for_update && ts != now {
            // A renewal is a write: it reserves first, and a renewal that
            // cannot get memory fails the read with STORE_FULL, changing nothing.
            let mut tmp = take(&mut self.ttl.tmp);
            tmp.clear();
            let done = fill(&mut tmp, &[&stamp(now), self.mem.rec(r).value.get(STAMP_LEN..).unwrap_or_default()]).and_then(|()| self.put_raw(state, key, ns, &tmp));
            self.keep_tmp(tmp);
            done?;
            let Some(r) = self.ref_at(state, key, ns, None)? else { return Ok(None) };
            return Ok(Some(self.mem.rec(r).value.get(STAMP_LEN..).unwrap_or_default()));
        }
        Ok(Some(self.mem.rec(r).value.get(STAMP_LEN..).unwrap_or_default()))
    }

    /// A live read of the list in record `r`: expired elements are removed
    /// (returned with `ReturnExpiredIfNotCleanedUp`), the others renewed
    /// with `OnReadAndWrite`; the elements go out without their stamps.
    fn list_read(&mut self, state: u32, cfg: TtlConfig, key: Key<'_>, ns: &[u8], r: Ref, for_update: bool) -> Result<Option<&[u8]>> {
        let now = self.ttl.now;
        let renew = cfg.renews_on_read() && !for_update;
        let stored = self.mem.rec(r).value;
        let (out, tmp) = (&mut self.ttl.out, &mut self.ttl.tmp);
        out.clear();
        tmp.clear();
        // Both are at most the stored bytes: reserved first, nothing below allocates.
        crate::room::reserve_bytes(out, stored.len())?;
        crate::room::reserve_bytes(tmp, stored.len())?;
        let (mut total, mut expired, mut stale) = (0u64, 0u64, false);
        for el in elements(stored).flatten() {
            total += 1;
            let dead = cfg.expired(el.stamp, now);
            if !dead || (!for_update && cfg.shows(el.stamp, now, false)) {
                out.extend_from_slice(el.frame);
            }
            if dead {
                expired += 1;
                continue;
            }
            stale |= renew && el.stamp != now;
            tmp.extend_from_slice(&stamp(if renew { now } else { el.stamp }));
            tmp.extend_from_slice(el.frame);
        }
        let shown = total == 0 || !out.is_empty() || expired < total;
        if expired == total && total > 0 {
            // Best effort, as for a value (see `ttl_get`).
            if self.remove_raw(state, key, ns).is_ok() {
                self.add_list_stamps(state, 0, total);
            }
        } else if stale {
            // A renewal is a write (see `ttl_get`).
            let tmp = take(&mut self.ttl.tmp);
            let done = self.put_raw(state, key, ns, &tmp);
            self.keep_tmp(tmp);
            done?;
            self.add_list_stamps(state, 0, expired);
        } else if expired > 0 {
            let tmp = take(&mut self.ttl.tmp);
            if self.put_raw(state, key, ns, &tmp).is_ok() {
                self.add_list_stamps(state, 0, expired);
            }
            self.keep_tmp(tmp);
        }
        Ok(shown.then_some(&self.ttl.out[..]))
    }

    /// Gives the scratch buffer back, unless a large value grew it (then its memory goes).
    pub(crate) fn keep_tmp(&mut self, tmp: Vec<u8>) {
        if tmp.capacity() <= TMP_KEEP {
            self.ttl.tmp = tmp;
        }
    }

    pub(crate) fn ttl_put(&mut self, state: u32, key: Key<'_>, ns: &[u8], value: &[u8]) -> Result<()> {
        let is_list = self.entry_of_kind(state, |k| k != StateKind::Map, "value or list")?.desc.kind == StateKind::List;
        self.check_write(state, key, ns, value)?;
        let now = self.ttl.now;
        self.ttl.stamped(state, now);
        let mut tmp = take(&mut self.ttl.tmp);
        tmp.clear();
        let built = if is_list {
            stamped_list(value, now, &mut tmp)
        } else {
            fill(&mut tmp, &[&stamp(now), value]).map(|()| 0)
        };
        let done = built.and_then(|n| {
            let old = if is_list { self.list_count(state, key, ns)? } else { 0 };
            self.put_raw(state, key, ns, &tmp)?;
            Ok((n, old))
        });
        self.keep_tmp(tmp);
        let (n, old) = done?;
        if is_list {
            self.add_list_stamps(state, n, old);
        }
        // After the write: a cleanup step never makes it fail, and a write
        // that fails has not cleaned anything either.
        self.ttl_access(state);
        Ok(())
    }

    /// A write batch of a value-like state with TTL: each value stamped with
    /// the store's time, then the batch as `write_many_raw` applies it (all
    /// or nothing), then a cleanup step per write, as that many `put`s take.
    pub(crate) fn ttl_write_many<'a, I>(&mut self, state: u32, ns: &[u8], ops: I) -> Result<usize>
    where
        I: Iterator<Item = crate::batch::Write<'a>> + Clone,
    {
        self.entry_of_kind(state, crate::batch::is_value_like, "value, reducing or aggregating")?;
        let now = self.ttl.now;
        // Where each stamped value is in `stamped` (`None`: a delete).
        let mut stamped = Vec::new();
        let mut spans: Vec<Option<(usize, usize)>> = Vec::new();
        for (_, value) in ops.clone() {
            crate::room::reserve(&mut spans, 1)?;
            spans.push(match value {
                Some(v) => {
                    check_len("value", v.len(), MAX_VALUE_LEN)?;
                    let at = stamped.len();
                    fill(&mut stamped, &[&stamp(now), v])?;
                    Some((at, stamped.len()))
                }
                None => None,
            });
        }
        self.ttl.stamped(state, now);
        let with_stamps = ops.zip(&spans).map(|((key, _), span)| (key, span.map(|(a, b)| &stamped[a..b])));
        let n = self.write_many_raw(state, ns, with_stamps)?;
        for _ in 0..n {
            self.ttl_access(state);
        }
        Ok(n)
    }

    pub(crate) fn ttl_append(&mut self, state: u32, key: Key<'_>, ns: &[u8], tail: &[u8]) -> Result<()> {
        self.entry_of_kind(state, |k| k == StateKind::List, "list")?;
        self.check_write(state, key, ns, tail)?;
        self.ttl.stamped(state, self.ttl.now);
        let mut tmp = take(&mut self.ttl.tmp);
        tmp.clear();
        let done = stamped_list(tail, self.ttl.now, &mut tmp).and_then(|n| self.append_raw(state, key, ns, &tmp).map(|()| n));
        self.keep_tmp(tmp);
        self.add_list_stamps(state, done?, 0);
        self.ttl_access(state);
        Ok(())
    }

    pub(crate) fn ttl_remove(&mut self, state: u32, key: Key<'_>, ns: &[u8]) -> Result<bool> {
        Self::locate(&self.cfg, &self.current, key)?;
        let is_list = self.entry(state)?.desc.kind == StateKind::List;
        let old = if is_list { self.list_count(state, key, ns)? } else { 0 };
        let removed = self.remove_raw(state, key, ns)?;
        if is_list {
            self.add_list_stamps(state, 0, old);
        }
        self.ttl_access(state);
        Ok(removed)
    }

    /// Restore's write of a record's bytes as they are (stamps included).
    pub(crate) fn restore_put(&mut self, state: u32, key: Key<'_>, ns: &[u8], value: &[u8]) -> Result<()> {
        let stamped_list = self.ttl_of(state).is_some() && self.entry(state)?.desc.kind == StateKind::List;
        if self.ttl_of(state).is_some() {
            let oldest = if stamped_list { elements(value).flatten().map(|e| e.stamp).min().unwrap_or(u64::MAX) } else { stamp_of(value) };
            self.ttl.stamped(state, oldest);
        }
        if !stamped_list {
            return self.put_raw(state, key, ns, value);
        }
        let old = self.list_count(state, key, ns)?;
        let new = count_elements(value).ok_or_else(|| Error::Corrupt("a list of a state with TTL that is not stamped elements".into()))?;
        self.put_raw(state, key, ns, value)?;
        self.add_list_stamps(state, new, old);
        Ok(())
    }

    /// Restore's write of a map entry's bytes as they are.
    pub(crate) fn restore_map_put(&mut self, state: u32, key: Key<'_>, ns: &[u8], uk: &[u8], value: &[u8]) -> Result<()> {
        if self.ttl_of(state).is_some() {
            self.ttl.stamped(state, stamp_of(value));
        }
        self.map_put_raw(state, key, ns, uk, value)
    }

    /// Restore's removal of (key, ns).
    pub(crate) fn restore_remove(&mut self, state: u32, key: Key<'_>, ns: &[u8]) -> Result<bool> {
        let stamped_list = self.ttl_of(state).is_some() && self.entry(state)?.desc.kind == StateKind::List;
        let old = if stamped_list { self.list_count(state, key, ns)? } else { 0 };
        let removed = self.remove_raw(state, key, ns)?;
        if stamped_list {
            self.add_list_stamps(state, 0, old);
        }
        Ok(removed)
    }

    /// Every entry of a state with TTL, as a read at time `t` (the
    /// snapshot's, or the store's) shows it, without stamps; changes nothing.
    pub(crate) fn ttl_for_each_entry(
        &self,
        state: u32,
        cfg: TtlConfig,
        at: Option<u64>,
        mut f: impl FnMut(&[u8], &[u8], Option<&[u8]>, &[u8]),
    ) -> Result<()> {
        let e = self.entry(state)?;
        let t = at.map_or(self.ttl.now, |s| self.ttl.time_of(s));
        let snap = at.is_some();
        let mut buf = Vec::new();
        let mut failed = None;
        for &tid in e.parts.iter().filter(|t| **t != NO_TABLE) {
            self.mem.for_each_visible(tid, at, |rec: &Rec<'_>| match e.desc.kind {
                StateKind::Map => crate::mapval::for_each(&self.mem, rec.value, at, |uk, v| {
                    if cfg.shows(stamp_of(v), t, snap) {
                        f(rec.key, rec.ns, Some(uk), v.get(STAMP_LEN..).unwrap_or_default());
                    }
                }),
                StateKind::List => match shown_elements(&cfg, rec.value, t, snap, &mut buf) {
                    Ok(true) => f(rec.key, rec.ns, None, &buf),
                    Ok(false) => {}
                    Err(e) => failed = Some(e),
                },
                _ => {
                    if cfg.shows(stamp_of(rec.value), t, snap) {
                        f(rec.key, rec.ns, None, rec.value.get(STAMP_LEN..).unwrap_or_default());
                    }
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Checks that the stamp counts match the records (tests).
    pub(crate) fn check_ttl_invariants(&self) {
        // The floor is at most every live stamp (else cleanup would skip steps it needs).
        for (id, e) in self.states.iter().enumerate() {
            let Some(_) = e.desc.ttl else { continue };
            let floor = self.ttl.floor[id];
            for &tid in e.parts.iter().filter(|t| **t != NO_TABLE) {
                self.mem.for_each_visible(tid, None, |rec| {
                    let oldest = match e.desc.kind {
                        StateKind::List => elements(rec.value).flatten().map(|el| el.stamp).min().unwrap_or(u64::MAX),
                        StateKind::Map => {
                            let mut m = u64::MAX;
                            crate::mapval::for_each(&self.mem, rec.value, None, |_, v| m = m.min(stamp_of(v)));
                            m
                        }
                        _ => stamp_of(rec.value),
                    };
                    assert!(floor <= oldest, "state '{}': floor {floor} above a live stamp {oldest}", e.desc.name);
                });
            }
        }
        for (id, e) in self.states.iter().enumerate() {
            if e.desc.ttl.is_none() || e.desc.kind != StateKind::List {
                continue;
            }
            let mut n = 0;
            for &tid in e.parts.iter().filter(|t| **t != NO_TABLE) {
                self.mem.for_each_visible(tid, None, |rec| n += count_elements(rec.value).expect("stored lists are stamped"));
            }
            assert_eq!(n, self.ttl.list_stamps[id], "stamps of list state '{}'", e.desc.name);
        }
    }
}

/// Writes into `out` the frames of the elements of stamped list `stored`
/// that a read at `t` shows; false when it shows none of a list that has
/// some (an empty list is shown as empty).
fn shown_elements(cfg: &TtlConfig, stored: &[u8], t: u64, at_snapshot: bool, out: &mut Vec<u8>) -> Result<bool> {
    out.clear();
    crate::room::reserve_bytes(out, stored.len())?;
    let mut any = false;
    for el in elements(stored).flatten() {
        any = true;
        if cfg.shows(el.stamp, t, at_snapshot) {
            out.extend_from_slice(el.frame);
        }
    }
    Ok(!any || !out.is_empty())
}

/// Clears nothing: appends `parts` to `buf`, reserving first.
pub(crate) fn fill(buf: &mut Vec<u8>, parts: &[&[u8]]) -> Result<()> {
    crate::room::reserve_bytes(buf, parts.iter().map(|p| p.len()).sum())?;
    for p in parts {
        buf.extend_from_slice(p);
    }
    Ok(())
}

/// Appends the list frames `frames`, each stamped `ts`, to `out` (reserving
/// first); returns how many.
fn stamped_list(frames: &[u8], ts: u64, out: &mut Vec<u8>) -> Result<u64> {
    let Some(n) = super::count_frames(frames) else { return Err(not_frames()) };
    let extra = usize::try_from(n).ok().and_then(|n| n.checked_mul(STAMP_LEN)).ok_or_else(not_frames)?;
    crate::room::reserve_bytes(out, frames.len().saturating_add(extra))?;
    stamp_frames(frames, ts, out).ok_or_else(not_frames)
}
