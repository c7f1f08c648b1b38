//! State time-to-live, as Flink's `StateTtlConfig`: the configuration of a
//! state, the timestamps its values carry, and the rules that read them.
//!
//! Every value of a state with TTL carries the time it was last written (or
//! read, with [`TtlUpdate::OnReadAndWrite`]) as [`STAMP_LEN`] bytes in front
//! of it: the value of a value, reducing or aggregating state, each entry of a
//! map, each element of a list. The stamp is part of the record's bytes in
//! the arena and in checkpoints, so it costs those 6 bytes per value and no
//! structure of its own:
//!
//! ```text
//! value-like / map entry   stamp:u48 LE, user value
//! list                     (stamp:u48 LE, varint len, element)*
//! ```
//!
//! Time is the store's clock in milliseconds, handed in by the binding
//! ([`crate::Store::set_time`]). A value stamped `ts` is expired at `now` when
//! `ts + ttl <= now`, the sum saturating instead of overflowing.

mod cleanup;
mod map;
mod ops;
mod runtime;

pub(crate) use runtime::Runtime;

use crate::error::{Error, Result};
use crate::format::Reader;
use crate::varint;

/// Bytes of a timestamp in front of each value.
pub const STAMP_LEN: usize = 6;
/// Largest time a stamp holds (ms; about the year 10,900 from the Unix epoch
/// on, far past any wall clock).
pub const MAX_TIME: u64 = (1 << 48) - 1;
/// Most entries one incremental cleanup step may visit.
pub const MAX_CLEANUP_SIZE: u32 = 1 << 20;
/// Version of the TTL field of a state in a checkpoint header (0: no TTL).
pub const FIELD_VERSION: u8 = 1;

/// When a value's timestamp is renewed (Flink's `StateTtlConfig.UpdateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TtlUpdate {
    /// On every write (creation included).
    OnCreateAndWrite = 0,
    /// On every write and every read.
    OnReadAndWrite = 1,
}

/// Whether an expired value that was not cleaned up yet is returned
/// (Flink's `StateTtlConfig.StateVisibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TtlVisibility {
    NeverReturnExpired = 0,
    /// Returned once: the read that returns it also removes it.
    ReturnExpiredIfNotCleanedUp = 1,
}

/// The TTL configuration of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TtlConfig {
    /// Time to live in ms, at least 1.
    pub ttl_ms: u64,
    pub update: TtlUpdate,
    pub visibility: TtlVisibility,
    /// Incremental cleanup: (key, namespace) entries visited per access of
    /// the state; `None`: off.
    pub incremental: Option<u32>,
    /// Incremental cleanup also runs on every record (each change of the
    /// current key), not only on accesses of the state.
    pub every_record: bool,
    /// Full checkpoints leave expired values out, and snapshots do not show them.
    pub full_snapshot: bool,
}

const C_INCREMENTAL: u8 = 1;
const C_EVERY_RECORD: u8 = 2;
const C_FULL_SNAPSHOT: u8 = 4;

impl TtlConfig {
    /// Flink's defaults for a time to live: renewed on writes, expired never
    /// returned, incremental cleanup of 5 entries per state access.
    pub fn new(ttl_ms: u64) -> Result<TtlConfig> {
        TtlConfig {
            ttl_ms,
            update: TtlUpdate::OnCreateAndWrite,
            visibility: TtlVisibility::NeverReturnExpired,
            incremental: Some(5),
            every_record: false,
            full_snapshot: false,
        }
        .checked()
    }

    /// The configuration if it is valid.
    pub fn checked(self) -> Result<TtlConfig> {
        if self.ttl_ms == 0 {
            return Err(Error::InvalidArgument("a time to live is at least 1 ms".into()));
        }
        if let Some(n) = self.incremental {
            if n == 0 || n > MAX_CLEANUP_SIZE {
                return Err(Error::InvalidArgument(format!("incremental cleanup visits 1..={MAX_CLEANUP_SIZE} entries, not {n}")));
            }
        } else if self.every_record {
            return Err(Error::InvalidArgument("cleanup on every record needs incremental cleanup".into()));
        }
        Ok(self)
    }

    /// Whether a value stamped `ts` is expired at `now`.
    #[inline]
    pub fn expired(&self, ts: u64, now: u64) -> bool {
        expired(ts, self.ttl_ms, now)
    }

    /// Whether a read at time `t` shows a value stamped `ts`: an unexpired
    /// one always; an expired one only with `ReturnExpiredIfNotCleanedUp`,
    /// and at a snapshot not when full-snapshot cleanup leaves it out of
    /// the snapshot's checkpoints.
    #[inline]
    pub fn shows(&self, ts: u64, t: u64, at_snapshot: bool) -> bool {
        !self.expired(ts, t) || (self.visibility == TtlVisibility::ReturnExpiredIfNotCleanedUp && !(at_snapshot && self.full_snapshot))
    }

    /// Whether reads renew timestamps.
    #[inline]
    pub fn renews_on_read(&self) -> bool {
        self.update == TtlUpdate::OnReadAndWrite
    }

    /// Encodes the header field (after its version byte, see docs/FORMAT.md):
    /// `varint ttl_ms, u8 update, u8 visibility, u8 cleanup flags, [varint size]`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        varint::put(out, self.ttl_ms);
        out.push(self.update as u8);
        out.push(self.visibility as u8);
        let mut flags = 0;
        if self.incremental.is_some() {
            flags |= C_INCREMENTAL;
        }
        if self.every_record {
            flags |= C_EVERY_RECORD;
        }
        if self.full_snapshot {
            flags |= C_FULL_SNAPSHOT;
        }
        out.push(flags);
        if let Some(n) = self.incremental {
            varint::put(out, u64::from(n));
        }
    }

    /// Decodes a header field of version 1; every field is checked.
    pub fn decode(r: &mut Reader<'_>, state: &str) -> Result<TtlConfig> {
        let bad = |what: String| Error::Corrupt(format!("state '{state}' has an invalid TTL configuration: {what}"));
        let ttl_ms = r.varint()?;
        let update = match r.u8()? {
            0 => TtlUpdate::OnCreateAndWrite,
            1 => TtlUpdate::OnReadAndWrite,
            u => return Err(bad(format!("update type {u}"))),
        };
        let visibility = match r.u8()? {
            0 => TtlVisibility::NeverReturnExpired,
            1 => TtlVisibility::ReturnExpiredIfNotCleanedUp,
            v => return Err(bad(format!("visibility {v}"))),
        };
        let flags = r.u8()?;
        if flags & !(C_INCREMENTAL | C_EVERY_RECORD | C_FULL_SNAPSHOT) != 0 {
            return Err(Error::Corrupt(format!("state '{state}' has unknown TTL flags {flags:#x}")));
        }
        let incremental = if flags & C_INCREMENTAL != 0 {
            Some(u32::try_from(r.varint()?).map_err(|_| bad("cleanup size".into()))?)
        } else {
            None
        };
        TtlConfig { ttl_ms, update, visibility, incremental, every_record: flags & C_EVERY_RECORD != 0, full_snapshot: flags & C_FULL_SNAPSHOT != 0 }
            .checked()
            .map_err(|e| bad(match e {
                Error::InvalidArgument(m) => m,
                e => e.to_string(),
            }))
    }
}

/// `ts + ttl <= now`, without overflow.
#[inline]
pub fn expired(ts: u64, ttl: u64, now: u64) -> bool {
    ts.saturating_add(ttl) <= now
}

/// The stamp bytes of time `t` (`t <= MAX_TIME`).
#[inline]
pub fn stamp(t: u64) -> [u8; STAMP_LEN] {
    debug_assert!(t <= MAX_TIME);
    let b = t.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// The time in the first [`STAMP_LEN`] bytes of `b`; 0 (long expired)
/// for bytes too short to hold one, which restore refuses to store.
#[inline]
pub fn stamp_of(b: &[u8]) -> u64 {
    let mut t = [0u8; 8];
    if let Some(s) = b.get(..STAMP_LEN) {
        t[..STAMP_LEN].copy_from_slice(s);
    }
    u64::from_le_bytes(t)
}

/// How many list frames (varint length, bytes) `frames` holds, or `None`
/// if it is not a sequence of frames.
pub fn count_frames(frames: &[u8]) -> Option<u64> {
    let mut p = 0;
    let mut n = 0;
    while p < frames.len() {
        let len = usize::try_from(varint::get(frames, &mut p)?).ok()?;
        p = p.checked_add(len).filter(|&e| e <= frames.len())?;
        n += 1;
    }
    Some(n)
}

/// One element of a stamped list: its stamp, its frame (varint length and
/// bytes, as the TypeScript list codec writes it), its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    pub stamp: u64,
    pub frame: &'a [u8],
    pub bytes: &'a [u8],
}

/// Iterates the elements of a stamped list value. `None` items mean the
/// bytes are not a stamped list (only unchecked input has those).
pub fn elements(b: &[u8]) -> impl Iterator<Item = Option<Element<'_>>> {
    let mut p = 0;
    std::iter::from_fn(move || {
        if p >= b.len() {
            return None;
        }
        let el = (|| {
            let ts = b.get(p..p + STAMP_LEN)?;
            let at = p + STAMP_LEN;
            let mut q = at;
            let n = usize::try_from(varint::get(b, &mut q)?).ok()?;
            let end = q.checked_add(n).filter(|&e| e <= b.len())?;
            p = end;
            Some(Element { stamp: stamp_of(ts), frame: b.get(at..end)?, bytes: b.get(q..end)? })
        })();
        if el.is_none() {
            p = b.len();
        }
        Some(el)
    })
}

/// Elements of a stamped list value, or `None` if it is not one.
pub fn count_elements(b: &[u8]) -> Option<u64> {
    let mut n = 0;
    for e in elements(b) {
        e?;
        n += 1;
    }
    Some(n)
}

/// Appends `frames` (list frames: varint length, bytes) to `out`, each
/// stamped `ts`; returns how many, or `None` if `frames` are not frames.
pub fn stamp_frames(frames: &[u8], ts: u64, out: &mut Vec<u8>) -> Option<u64> {
    let s = stamp(ts);
    let mut p = 0;
    let mut n = 0;
    while p < frames.len() {
        let start = p;
        let len = usize::try_from(varint::get(frames, &mut p)?).ok()?;
        let end = p.checked_add(len).filter(|&e| e <= frames.len())?;
        out.extend_from_slice(&s);
        out.extend_from_slice(frames.get(start..end)?);
        p = end;
        n += 1;
    }
    Some(n)
}

/// Why a stored value of a state with TTL is not one (checkpoint input).
pub fn check_value(is_list: bool, value: &[u8]) -> Option<&'static str> {
    if is_list {
        count_elements(value).is_none().then_some("a list of a state with TTL that is not stamped elements")
    } else {
        (value.len() < STAMP_LEN).then_some("a value of a state with TTL shorter than its timestamp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_exact_and_does_not_overflow() {
        assert!(!expired(0, 100, 99));
        assert!(expired(0, 100, 100), "lastAccess + ttl <= now");
        assert!(!expired(10, u64::MAX, MAX_TIME), "saturates instead of wrapping");
        assert!(!expired(MAX_TIME, u64::MAX - 5, u64::MAX - 1));
        assert_eq!(stamp_of(&stamp(MAX_TIME)), MAX_TIME);
        assert_eq!(stamp_of(&stamp(1_700_000_000_123)), 1_700_000_000_123);
    }

    #[test]
    fn header_field_round_trips_and_refuses_what_it_does_not_know() {
        let all = [
            TtlConfig::new(100).unwrap(),
            TtlConfig { ttl_ms: u64::MAX, update: TtlUpdate::OnReadAndWrite, visibility: TtlVisibility::ReturnExpiredIfNotCleanedUp, incremental: Some(1000), every_record: true, full_snapshot: true },
            TtlConfig { incremental: None, ..TtlConfig::new(1).unwrap() },
        ];
        for c in all {
            let mut out = Vec::new();
            c.encode(&mut out);
            let mut r = Reader::new(&out, "header");
            assert_eq!(TtlConfig::decode(&mut r, "s").unwrap(), c);
            r.end().unwrap();
        }
        for bad in [&[0u8, 0, 0, 0][..], &[1, 2, 0, 0], &[1, 0, 2, 0], &[1, 0, 0, 8], &[1, 0, 0, 2], &[1, 0, 0, 1, 0], &[1, 0, 0]] {
            let mut r = Reader::new(bad, "header");
            assert_eq!(TtlConfig::decode(&mut r, "s").unwrap_err().code(), "CORRUPT", "{bad:?}");
        }
        assert!(TtlConfig { every_record: true, incremental: None, ..TtlConfig::new(5).unwrap() }.checked().is_err());
        assert!(TtlConfig::new(0).is_err());
    }

    #[test]
    fn lists_are_stamped_per_element() {
        let mut out = Vec::new();
        assert_eq!(stamp_frames(&[1, b'a', 2, b'b', b'c', 0], 7, &mut out), Some(3));
        let got: Vec<_> = elements(&out).map(|e| e.unwrap()).map(|e| (e.stamp, e.frame.to_vec(), e.bytes.to_vec())).collect();
        assert_eq!(got, vec![(7, vec![1, b'a'], b"a".to_vec()), (7, vec![2, b'b', b'c'], b"bc".to_vec()), (7, vec![0], vec![])]);
        assert_eq!(count_elements(&out), Some(3));
        assert_eq!(stamp_frames(&[3, b'a'], 7, &mut Vec::new()), None, "a frame past the end");
        assert_eq!(count_elements(&out[..out.len() - 3]), None);
        assert_eq!(count_elements(&[]), Some(0));
        assert!(check_value(false, &[0; 5]).is_some());
        assert!(check_value(false, &[0; 6]).is_none());
    }
}
