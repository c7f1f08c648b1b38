//! The wire protocol between the TypeScript API and a binding: how the hot
//! calls take their byte arguments from an argument buffer and hand their
//! results back, with status codes instead of exceptions.
//!
//! Both bindings (wasm-bindgen, napi) share it, so neither holds a copy of
//! the layout or any logic: a binding keeps one [`Wire`] per store, hands it
//! the argument bytes, and places what a call returns where its TypeScript
//! side reads it (a pointer into linear memory for wasm, a copy into a
//! result buffer for the native addon).
//!
//! Arguments are laid out back to back from the start of the argument
//! buffer: key (`kl` bytes, or [`CURRENT_KEY`] for the keyed context),
//! namespace (`nl`), map user key (`ul`), value (`vl`). Batches follow the
//! namespace; see [`Batch`].
//!
//! Results:
//! - a status: `>= 0` success (a length, a count, 1/0 for removed), or
//!   [`ABSENT`], or [`FAILED`] with the error kept for [`Wire::take_error`];
//! - [`Reply::Value`]: one value's bytes, valid until the next call;
//! - [`Reply::Listed`]: a listing in [`Wire::out`], with an entry count.
//!
//! Listings: map entries are repeated `varint ul, uk, varint vl, value`;
//! state entries repeated `varint kl, key, varint nl, ns, [varint ul, uk,]
//! varint vl, value` (uk only for map state); a read batch is, per key in
//! order, `u32 LE len, value` with `len == NO_VALUE` and no bytes for an
//! absent key.

use crate::error::{Error, Result};
use crate::store::{Key, Store};
use crate::ttl::{TtlConfig, TtlUpdate, TtlVisibility};
use crate::varint;

/// Status: absent (reads) or nothing removed.
pub const ABSENT: i32 = -1;
/// Status: an error; details from [`Wire::take_error`].
pub const FAILED: i32 = -2;
/// Key length meaning "the current key" (Flink's keyed context).
pub const CURRENT_KEY: u32 = u32::MAX;
/// Value length marking a delete in a write batch, and an absent value in a
/// read batch's listing.
pub const NO_VALUE: u32 = u32::MAX;

/// What a call produced, for the binding to place.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    /// A status (see the module docs).
    Status(i32),
    /// A value found; the status is its length.
    Value(&'a [u8]),
    /// A listing in [`Wire::out`] of this many entries.
    Listed(i32),
}

/// The snapshot argument of a `get` that reads a reducing or aggregating
/// state's value to fold into it: a live read that, for a state with TTL,
/// treats an expired value as absent whatever its visibility, and renews
/// nothing (the write that follows stamps the value).
pub const FOR_UPDATE: f64 = -1.0;

/// A snapshot argument from JavaScript: 0 means the live state (epochs start at 1).
#[inline]
pub fn at(snapshot: f64) -> Option<u64> {
    (snapshot > 0.0).then_some(snapshot as u64)
}

/// Hot-path arguments: key (`None`: the current key), namespace, user key, value.
pub type Args<'a> = (Option<&'a [u8]>, &'a [u8], &'a [u8], &'a [u8]);

/// Splits the argument bytes into key, namespace, user key and value, laid
/// out back to back. `None` when the lengths run past the end.
#[inline]
pub fn split(args: &[u8], kl: u32, nl: u32, ul: u32, vl: u32) -> Option<Args<'_>> {
    let kl_n = if kl == CURRENT_KEY { 0 } else { kl as usize };
    let (nl, ul, vl) = (nl as usize, ul as usize, vl as usize);
    let end = kl_n.checked_add(nl)?.checked_add(ul)?.checked_add(vl)?;
    if end > args.len() {
        return None;
    }
    let key = (kl != CURRENT_KEY).then(|| &args[..kl_n]);
    let ns = &args[kl_n..kl_n + nl];
    let uk = &args[kl_n + nl..kl_n + nl + ul];
    let value = &args[kl_n + nl + ul..end];
    Some((key, ns, uk, value))
}

#[inline]
fn key(k: Option<&[u8]>) -> Key<'_> {
    k.map_or(Key::Current, Key::Bytes)
}

/// A batch laid out after the namespace: repeated `u32 LE kl, key` and, for
/// writes, `u32 LE vl, value` (`vl == NO_VALUE`: no value, delete). Built
/// only over a layout [`Batch::check`] accepted, so iterating cannot fail.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    buf: &'a [u8],
    pos: usize,
    values: bool,
}

#[inline]
fn u32_at(buf: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(pos..pos.checked_add(4)?)?.try_into().ok()?))
}

impl<'a> Batch<'a> {
    /// Checks the whole layout; `None` if a length runs past the end.
    pub fn check(buf: &'a [u8], values: bool) -> Option<Batch<'a>> {
        let mut pos = 0;
        while pos < buf.len() {
            let kl = u32_at(buf, pos)? as usize;
            pos = pos.checked_add(4)?.checked_add(kl).filter(|&p| p <= buf.len())?;
            if values {
                let vl = u32_at(buf, pos)?;
                let n = if vl == NO_VALUE { 0 } else { vl as usize };
                pos = pos.checked_add(4)?.checked_add(n).filter(|&p| p <= buf.len())?;
            }
        }
        Some(Batch { buf, pos: 0, values })
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let n = u32_at(self.buf, self.pos)?;
        self.pos += 4;
        if n == NO_VALUE {
            return None;
        }
        let f = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Some(f)
    }
}

impl<'a> Iterator for Batch<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let key = self.field().unwrap_or_default();
        let value = if self.values { self.field() } else { None };
        Some((key, value))
    }
}

/// The namespace (`nl` bytes) and the batch laid out after it, up to `len`.
pub fn batch(args: &[u8], nl: u32, len: u32, values: bool) -> Option<(&[u8], Batch<'_>)> {
    let (ns, rest) = args.get(..len as usize)?.split_at_checked(nl as usize)?;
    Some((ns, Batch::check(rest, values)?))
}

/// Appends a length-prefixed field to a listing.
#[inline]
fn field(out: &mut Vec<u8>, b: &[u8]) {
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A listing's buffer: each entry makes room for itself first, and the
/// first that cannot stops the listing with `STORE_FULL`. A listing also
/// stops past what a status (an i32 count) and the result slots (a u32
/// length) can describe.
struct Listing<'o> {
    out: &'o mut Vec<u8>,
    n: i32,
    failed: Option<Error>,
}

impl<'o> Listing<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        out.clear();
        Listing { out, n: 0, failed: None }
    }

    /// Makes room for an entry of at most `bytes` bytes; false once the
    /// listing failed.
    #[inline]
    fn room(&mut self, bytes: usize) -> bool {
        if self.failed.is_some() {
            return false;
        }
        let fits = self.n < i32::MAX && self.out.len().saturating_add(bytes) <= u32::MAX as usize;
        if !fits {
            self.failed = Some(Error::TooLarge("a listing of more than 2^31 entries or 4 GiB".into()));
            return false;
        }
        if let Err(e) = crate::room::reserve_bytes(self.out, bytes) {
            self.failed = Some(e.into());
            return false;
        }
        self.n += 1;
        true
    }

    fn finish(self, r: Result<()>) -> Result<i32> {
        r?;
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.n),
        }
    }
}

/// Bytes of a varint-prefixed field, at most.
#[inline]
fn field_len(b: &[u8]) -> usize {
    10 + b.len()
}

/// Protocol state of one store: the listing buffer and the error behind the
/// last [`FAILED`] status.
#[derive(Debug, Default)]
pub struct Wire {
    out: Vec<u8>,
    last_error: Option<Error>,
}

fn bad_layout() -> Error {
    Error::InvalidArgument("arguments exceed the argument buffer".into())
}

impl Wire {
    pub fn new() -> Self {
        Wire::default()
    }

    /// The listing the last [`Reply::Listed`] call left.
    pub fn out(&self) -> &[u8] {
        &self.out
    }

    /// The error behind the last [`FAILED`] status, once.
    pub fn take_error(&mut self) -> Option<Error> {
        self.last_error.take()
    }

    /// Gives back the listing buffer's space beyond `len` bytes (after a
    /// large batch).
    pub fn trim(&mut self, len: usize) {
        self.out.truncate(len);
        self.out.shrink_to(len);
    }

    /// Converts a result to a status, keeping the error.
    #[inline]
    fn status(&mut self, r: Result<i32>) -> i32 {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.last_error = Some(e);
                FAILED
            }
        }
    }

    #[inline]
    fn reply<'s>(&mut self, r: Result<Option<&'s [u8]>>) -> Reply<'s> {
        match r {
            Ok(Some(v)) => Reply::Value(v),
            Ok(None) => Reply::Status(ABSENT),
            Err(e) => Reply::Status(self.status(Err(e))),
        }
    }

    #[inline]
    fn listed<'s>(&mut self, r: Result<i32>) -> Reply<'s> {
        match r {
            Ok(n) => Reply::Listed(n),
            Err(e) => Reply::Status(self.status(Err(e))),
        }
    }

    /// Records an error and returns [`FAILED`]: for a binding's own refusals
    /// (a buffer it cannot grow, an argument it cannot convert).
    pub fn fail(&mut self, e: Error) -> i32 {
        self.status(Err(e))
    }

    /// Key group of the key in the first `kl` argument bytes.
    pub fn key_group(store: &Store, args: &[u8], kl: u32) -> u32 {
        store.key_group(&args[..(kl as usize).min(args.len())])
    }

    /// Sets the store's time from the binding's clock (ms; a fraction is
    /// dropped). Refuses what is not a time in 0..=`ttl::MAX_TIME`.
    pub fn set_time(&mut self, store: &mut Store, now: f64) -> i32 {
        let r = if now.is_finite() && now >= 0.0 {
            store.set_time(now as u64).map(|_| 0)
        } else {
            Err(Error::InvalidArgument(format!("the clock returned {now}, not a time in ms")))
        };
        self.status(r)
    }

    pub fn set_current_key(&mut self, store: &mut Store, args: &[u8], kl: u32) -> i32 {
        let r = match args.get(..kl as usize) {
            Some(k) => store.set_current_key(k).map(|_| 0),
            None => Err(bad_layout()),
        };
        self.status(r)
    }

    /// The value of (key, ns) of a value-like or list state.
    pub fn get<'s>(&mut self, store: &'s mut Store, args: &[u8], state: u32, kl: u32, nl: u32, snapshot: f64) -> Reply<'s> {
        let r = match split(args, kl, nl, 0, 0) {
            // The read of a reducing or aggregating `add` (see `FOR_UPDATE`).
            Some((k, ns, _, _)) if snapshot == FOR_UPDATE => store.get_for_update(state, key(k), ns),
            Some((k, ns, _, _)) => store.get(state, key(k), ns, at(snapshot)),
            None => Err(bad_layout()),
        };
        self.reply(r)
    }

    pub fn put(&mut self, store: &mut Store, args: &[u8], state: u32, kl: u32, nl: u32, vl: u32) -> i32 {
        let r = match split(args, kl, nl, 0, vl) {
            Some((k, ns, _, v)) => store.put(state, key(k), ns, v).map(|_| 0),
            None => Err(bad_layout()),
        };
        self.status(r)
    }

    pub fn append(&mut self, store: &mut Store, args: &[u8], state: u32, kl: u32, nl: u32, vl: u32) -> i32 {
        let r = match split(args, kl, nl, 0, vl) {
            Some((k, ns, _, v)) => store.append(state, key(k), ns, v).map(|_| 0),
            None => Err(bad_layout()),
        };
        self.status(r)
    }

    /// Removes (key, ns) of any state kind: 1 removed, 0 absent.
    pub fn remove(&mut self, store: &mut Store, args: &[u8], state: u32, kl: u32, nl: u32) -> i32 {
        let r = match split(args, kl, nl, 0, 0) {
            Some((k, ns, _, _)) => store.remove(state, key(k), ns).map(i32::from),
            None => Err(bad_layout()),
        };
        self.status(r)
    }

    /// Applies a write batch (the namespace, then operations up to `len`) to
    /// value-like state `state`, all or nothing; returns the count.
    pub fn write_many(&mut self, store: &mut Store, args: &[u8], state: u32, nl: u32, len: u32) -> i32 {
        let r = match batch(args, nl, len, true) {
            Some((ns, ops)) => store.write_many(state, ns, ops).map(|n| n as i32),
            None => Err(bad_layout()),
        };
        self.status(r)
    }

    /// Reads a batch of keys (laid out as for `write_many`, without values)
    /// into a listing of `u32 len, value` per key.
    pub fn read_many<'s>(&mut self, store: &mut Store, args: &[u8], state: u32, nl: u32, len: u32, snapshot: f64) -> Reply<'s> {
        let Some((ns, keys)) = batch(args, nl, len, false) else { return Reply::Status(self.fail(bad_layout())) };
        let mut list = Listing::new(&mut self.out);
        let r = store.read_many(state, ns, keys.map(|(k, _)| k), at(snapshot), |v| match v {
            Some(v) => {
                if list.room(4 + v.len()) {
                    list.out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    list.out.extend_from_slice(v);
                }
            }
            None => {
                if list.room(4) {
                    list.out.extend_from_slice(&NO_VALUE.to_le_bytes());
                }
            }
        });
        let r = list.finish(r.map(drop));
        self.listed(r)
    }

    #[allow(clippy::too_many_arguments)] // the call's arguments, as they cross the boundary
    pub fn map_get<'s>(&mut self, store: &'s mut Store, args: &[u8], state: u32, kl: u32, nl: u32, ul: u32, snapshot: f64) -> Reply<'s> {
        let r = match split(args, kl, nl, ul, 0) {
            Some((k, ns, uk, _)) => store.map_get(state, key(k), ns, uk, at(snapshot)),
            None => Err(bad_layout()),
        };
        self.reply(r)
    }

    #[allow(clippy::too_many_arguments)] // the call's arguments, as they cross the boundary
    pub fn map_put(&mut self, store: &mut Store, args: &[u8], state: u32, kl: u32, nl: u32, ul: u32, vl: u32) -> i32 {
        let r = match split(args, kl, nl, ul, vl) {
            Some((k, ns, uk, v)) => store.map_put(state, key(k), ns, uk, v).map(|_| 0),
            None => Err(bad_layout()),
        };
        self.status(r)
    }

    /// Removes a map entry: 1 removed, 0 absent.
    pub fn map_remove(&mut self, store: &mut Store, args: &[u8], state: u32, kl: u32, nl: u32, ul: u32) -> i32 {
        let r = match split(args, kl, nl, ul, 0) {
            Some((k, ns, uk, _)) => store.map_remove(state, key(k), ns, uk).map(i32::from),
            None => Err(bad_layout()),
        };
        self.status(r)
    }

    /// Entries in the map of (key, ns), or [`FAILED`] (as a float: counts may pass i32).
    pub fn map_len(&mut self, store: &mut Store, args: &[u8], state: u32, kl: u32, nl: u32, snapshot: f64) -> f64 {
        let r = match split(args, kl, nl, 0, 0) {
            Some((k, ns, _, _)) => store.map_len(state, key(k), ns, at(snapshot)),
            None => Err(bad_layout()),
        };
        match r {
            Ok(n) => n as f64,
            Err(e) => f64::from(self.fail(e)),
        }
    }

    /// Lists the map of (key, ns).
    pub fn map_list<'s>(&mut self, store: &mut Store, args: &[u8], state: u32, kl: u32, nl: u32, snapshot: f64) -> Reply<'s> {
        let Some((k, ns, _, _)) = split(args, kl, nl, 0, 0) else { return Reply::Status(self.fail(bad_layout())) };
        let mut list = Listing::new(&mut self.out);
        let r = store.map_for_each(state, key(k), ns, at(snapshot), |uk, v| {
            if list.room(field_len(uk) + field_len(v)) {
                field(list.out, uk);
                field(list.out, v);
            }
        });
        let r = list.finish(r);
        self.listed(r)
    }

    /// Lists every entry of a state.
    pub fn state_list<'s>(&mut self, store: &Store, state: u32, snapshot: f64) -> Reply<'s> {
        let mut list = Listing::new(&mut self.out);
        let r = store.for_each_entry(state, at(snapshot), |k, ns, uk, v| {
            if list.room(field_len(k) + field_len(ns) + uk.map_or(0, field_len) + field_len(v)) {
                field(list.out, k);
                field(list.out, ns);
                if let Some(uk) = uk {
                    field(list.out, uk);
                }
                field(list.out, v);
            }
        });
        let r = list.finish(r);
        self.listed(r)
    }
}

/// Flags of the TTL arguments of `registerState` (with `ttl_ms`, 0 for no
/// TTL, and `size`, the entries an incremental cleanup step visits).
pub mod ttl_flags {
    pub const ON_READ_AND_WRITE: u32 = 1;
    pub const RETURN_EXPIRED: u32 = 2;
    pub const INCREMENTAL: u32 = 4;
    pub const EVERY_RECORD: u32 = 8;
    pub const FULL_SNAPSHOT: u32 = 16;
}

/// The TTL configuration the arguments of `registerState` describe.
pub fn ttl_config(ttl_ms: f64, flags: u32, size: u32) -> Result<Option<TtlConfig>> {
    use ttl_flags::*;
    if ttl_ms == 0.0 {
        return Ok(None);
    }
    // Any integer of at least 1 ms; past 2^64 (Number.MAX_VALUE) it saturates.
    if ttl_ms.is_nan() || ttl_ms < 1.0 || ttl_ms.fract() != 0.0 {
        return Err(Error::InvalidArgument(format!("ttlMs must be an integer >= 1, not {ttl_ms}")));
    }
    if flags & !(ON_READ_AND_WRITE | RETURN_EXPIRED | INCREMENTAL | EVERY_RECORD | FULL_SNAPSHOT) != 0 {
        return Err(Error::InvalidArgument(format!("unknown TTL flags {flags:#x}")));
    }
    TtlConfig {
        ttl_ms: ttl_ms as u64,
        update: if flags & ON_READ_AND_WRITE != 0 { TtlUpdate::OnReadAndWrite } else { TtlUpdate::OnCreateAndWrite },
        visibility: if flags & RETURN_EXPIRED != 0 { TtlVisibility::ReturnExpiredIfNotCleanedUp } else { TtlVisibility::NeverReturnExpired },
        incremental: (flags & INCREMENTAL != 0).then_some(size),
        every_record: flags & EVERY_RECORD != 0,
        full_snapshot: flags & FULL_SNAPSHOT != 0,
    }
    .checked()
    .map(Some)
}

/// The arguments `ttl_config` takes for a configuration: (ttl_ms, flags, size).
pub fn ttl_args(ttl: Option<&TtlConfig>) -> (f64, u32, u32) {
    use ttl_flags::*;
    let Some(c) = ttl else { return (0.0, 0, 0) };
    let mut flags = 0;
    if c.update == TtlUpdate::OnReadAndWrite {
        flags |= ON_READ_AND_WRITE;
    }
    if c.visibility == TtlVisibility::ReturnExpiredIfNotCleanedUp {
        flags |= RETURN_EXPIRED;
    }
    if c.incremental.is_some() {
        flags |= INCREMENTAL;
    }
    if c.every_record {
        flags |= EVERY_RECORD;
    }
    if c.full_snapshot {
        flags |= FULL_SNAPSHOT;
    }
    (c.ttl_ms as f64, flags, c.incremental.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StateDescriptor, StateKind, StoreConfig};

    fn op(out: &mut Vec<u8>, k: &[u8], v: Option<&[u8]>) {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        match v {
            Some(v) => {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&NO_VALUE.to_le_bytes()),
        }
    }

    #[test]
    fn batch_layout_round_trips() {
        let mut b = b"ns".to_vec();
        op(&mut b, b"k1", Some(b"v1"));
        op(&mut b, b"", None);
        op(&mut b, b"k3", Some(b""));
        let (ns, ops) = batch(&b, 2, b.len() as u32, true).unwrap();
        assert_eq!(ns, b"ns");
        let got: Vec<_> = ops.collect();
        assert_eq!(got, vec![(&b"k1"[..], Some(&b"v1"[..])), (&b""[..], None), (&b"k3"[..], Some(&b""[..]))]);
    }

    #[test]
    fn batch_layout_refuses_lengths_past_the_end() {
        let mut b = Vec::new();
        op(&mut b, b"key", Some(b"value"));
        for cut in 1..b.len() {
            assert!(Batch::check(&b[..cut], true).is_none(), "cut at {cut}");
        }
        // A length that would wrap a 32-bit address.
        let mut wrap = u32::MAX.to_le_bytes().to_vec();
        wrap.extend_from_slice(&[0; 8]);
        assert!(Batch::check(&wrap, false).is_none());
        assert!(batch(&b, 100, b.len() as u32, true).is_none(), "namespace longer than the batch");
        assert!(batch(&b, 0, b.len() as u32 + 1, true).is_none(), "batch longer than the arguments");
    }

    #[test]
    fn calls_take_arguments_and_report_statuses() {
        let mut s = Store::new(StoreConfig::new(16, None, [1; 16]).unwrap());
        let v = s.register_state(StateDescriptor::new("v", StateKind::Value, "bytes", "").unwrap()).unwrap();
        let mut w = Wire::new();
        let args = b"keyvalue";
        assert_eq!(w.put(&mut s, args, v, 3, 0, 5), 0);
        assert!(matches!(w.get(&mut s, args, v, 3, 0, 0.0), Reply::Value(b"value")));
        assert!(matches!(w.get(&mut s, b"nope", v, 4, 0, 0.0), Reply::Status(ABSENT)));
        // The current key, then lengths past the end of the arguments.
        assert_eq!(w.set_current_key(&mut s, args, 3), 0);
        assert!(matches!(w.get(&mut s, args, v, CURRENT_KEY, 0, 0.0), Reply::Value(b"value")));
        assert_eq!(w.put(&mut s, args, v, 3, 0, 6), FAILED);
        assert_eq!(w.take_error().map(|e| e.code()), Some("INVALID_ARGUMENT"));
        assert!(w.take_error().is_none(), "an error is taken once");
        assert_eq!(w.put(&mut s, args, 99, 3, 0, 5), FAILED);
        assert_eq!(w.take_error().map(|e| e.code()), Some("UNKNOWN_STATE"));
        // A read batch lists each key's value, or NO_VALUE.
        let mut keys = Vec::new();
        for k in [&b"key"[..], b"gone"] {
            keys.extend_from_slice(&(k.len() as u32).to_le_bytes());
            keys.extend_from_slice(k);
        }
        assert!(matches!(w.read_many(&mut s, &keys, v, 0, keys.len() as u32, 0.0), Reply::Listed(2)));
        let mut want = 5u32.to_le_bytes().to_vec();
        want.extend_from_slice(b"value");
        want.extend_from_slice(&NO_VALUE.to_le_bytes());
        assert_eq!(w.out(), &want[..]);
        assert_eq!(w.remove(&mut s, args, v, 3, 0), 1);
        assert_eq!(w.remove(&mut s, args, v, 3, 0), 0);
    }
}
