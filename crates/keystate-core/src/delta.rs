//! Delta tracking for incremental checkpoints: per state and key group, the
//! set of distinct entries changed since the last checkpoint was taken. A key
//! written a thousand times is one member; a removed entry stays a member and
//! becomes a tombstone when exported. Members are small records (the key,
//! namespace and, for a map entry, the user key) appended to the storage of
//! their generation ([`Members`]), so the log costs memory in proportion to
//! distinct changed keys, never to operations, and a generation is freed at
//! once (dropping a few chunks) instead of a record at a time: freeing the
//! log of a confirmed checkpoint costs the writer next to nothing.
//!
//! A member of a value-like entry also keeps the entry's last write when it
//! is small ([`Last`]): the writer records it once the write succeeded, so an
//! incremental export of the newest segment copies it from the member
//! instead of looking the key up in the frozen index (a cache miss or two a
//! key). A write that fails records it as unknown, and so does marking by a
//! writer that records nothing (a list append, a batch, a state with TTL):
//! the export then looks the key up as before.
//!
//! Taking a checkpoint seals the current sets into a *segment* and starts new
//! ones. A segment is kept until a later checkpoint is confirmed, so an
//! aborted or never-confirmed checkpoint leaves the next one complete: an
//! incremental checkpoint carries the union of every segment still kept.

use crate::arena::Ref;
use crate::error::Full;
use crate::hash::{entry_hash, murmur3_32};
use crate::index::Index;
use crate::record::{self, Records};
use crate::room::{self, Room};

/// Bytes of the largest chunk of member storage (a member larger than that gets one of its own).
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
/// Chunks a generation may have: refs are `chunk << 16 | offset`.
const MAX_CHUNKS: usize = 1 << (32 - CHUNK_BITS);

/// Append-only storage of one generation's members; freed as a whole.
#[derive(Debug, Default)]
pub struct Members {
    chunks: Vec<Box<[u8]>>,
    /// Bytes used in the last chunk.
    used: usize,
    bytes: u64,
}

impl Members {
    /// Appends a member record; `Ok(None)` when the generation is out of
    /// refs (more than 4 GiB of members, or 65,536 members over 64 KiB
    /// each); an error, with nothing appended, when no chunk can be had.
    fn push(&mut self, key: &[u8], ns: &[u8], value: &[&[u8]], room: &mut Room) -> Result<Option<Ref>, Full> {
        let vlen = value.iter().map(|v| v.len()).sum();
        let len = record::encoded_len(key.len(), ns.len(), vlen, false, false);
        let fits = self.chunks.last().is_some_and(|c| c.len() - self.used >= len);
        if !fits {
            if self.chunks.len() >= MAX_CHUNKS {
                return Ok(None);
            }
            // Chunks grow with the generation (by half of what it holds, up to
            // CHUNK), so a small log holds little more than its members.
            let size = len.max(((self.bytes / 2) as usize).clamp(1024, CHUNK));
            room.take(size as u64)?;
            room::reserve(&mut self.chunks, 1)?;
            let mut chunk = Vec::new();
            room::reserve_bytes(&mut chunk, size)?;
            chunk.resize(size, 0);
            self.chunks.push(chunk.into_boxed_slice());
            self.bytes += size as u64;
            self.used = 0;
        }
        let c = self.chunks.len() - 1;
        let at = self.used;
        record::write(&mut self.chunks[c][at..], key, ns, value, false, None);
        self.used += len;
        // A chunk larger than CHUNK holds one member, at offset 0.
        Ok(Some(((c as u32) << CHUNK_BITS) | at as u32))
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records the last write of the `Change::Entry` member at `r`. A value
    /// longer than the member keeps is recorded as unknown.
    pub fn note(&mut self, r: Ref, last: Last<'_>) {
        let Some(chunk) = self.chunks.get_mut((r >> CHUNK_BITS) as usize) else { return };
        let at = (r & (CHUNK as u32 - 1)) as usize;
        let rec = record::parse(&chunk[at..]);
        let (end, kept) = (at + rec.len, rec.value.len());
        let v = &mut chunk[end - kept..end];
        if v.len() < 2 || v[0] != Change::Entry as u8 {
            return;
        }
        v[1] = match last {
            Last::Put(bytes) if bytes.len() <= v.len() - 2 => {
                v[2..2 + bytes.len()].copy_from_slice(bytes);
                LAST_PUT + bytes.len() as u8
            }
            Last::Removed => LAST_REMOVED,
            Last::Put(_) | Last::Unknown => LAST_UNKNOWN,
        };
    }
}

/// Status byte of a `Change::Entry` member (after its change byte): the last
/// write is unknown, was a removal, or put `status - LAST_PUT` bytes.
const LAST_UNKNOWN: u8 = 0;
const LAST_REMOVED: u8 = 1;
const LAST_PUT: u8 = 2;
/// Most value bytes an entry's member keeps; it keeps at least `KEEP_MIN`
/// (a number's encoding takes 0-8 bytes, so later writes of a number fit).
pub const KEEP_MAX: usize = 16;
const KEEP_MIN: usize = 8;

/// The last write of an entry, as its member kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last<'a> {
    Unknown,
    Removed,
    Put(&'a [u8]),
}

impl Records for Members {
    #[inline]
    fn bytes(&self, r: Ref) -> &[u8] {
        &self.chunks[(r >> CHUNK_BITS) as usize][(r & (CHUNK as u32 - 1)) as usize..]
    }
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Change {
    /// The value of (key, ns) of a value-like or list state.
    Entry = 0,
    /// One user key of the map of (key, ns).
    MapEntry = 1,
    /// The whole map of (key, ns) was removed.
    WholeMap = 2,
}

impl Change {
    fn from_u8(v: u8) -> Change {
        match v {
            0 => Change::Entry,
            1 => Change::MapEntry,
            2 => Change::WholeMap,
            _ => unreachable!("delta records are written by this module"),
        }
    }
}

/// A member of a delta set, read from its record.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub key: &'a [u8],
    pub ns: &'a [u8],
    pub change: Change,
    pub uk: &'a [u8],
    /// For `Change::Entry`: the entry's last write, if the member kept it.
    pub last: Last<'a>,
}

pub fn member(recs: &impl Records, r: Ref) -> Member<'_> {
    let rec = recs.rec(r);
    let change = Change::from_u8(rec.value[0]);
    if change != Change::Entry {
        return Member { key: rec.key, ns: rec.ns, change, uk: &rec.value[1..], last: Last::Unknown };
    }
    // value = [change, status, kept bytes]
    let last = match rec.value[1] {
        LAST_UNKNOWN => Last::Unknown,
        LAST_REMOVED => Last::Removed,
        s => Last::Put(&rec.value[2..2 + (s - LAST_PUT) as usize]),
    };
    Member { key: rec.key, ns: rec.ns, change, uk: &[], last }
}

/// The bytes of the member at `r` when it is the common case an export
/// copies without parsing (with [`crate::format::body::put_kept`]): an
/// entry's member with a key under 16 bytes and no namespace that kept a
/// put. Its bytes are
/// `[key_len << 3][2 + room][key][Change::Entry][LAST_PUT + n][value]`,
/// returned up to the end of the value's `n` bytes.
#[inline(always)]
pub fn kept_put(recs: &Members, r: Ref) -> Option<&[u8]> {
    let b = Records::bytes(recs, r);
    let (h, v) = (b[0], b[1]);
    if h >= 0x80 || h & 7 != 0 || !(2..=2 + KEEP_MAX as u8).contains(&v) {
        return None;
    }
    let k = usize::from(h >> 3);
    let (change, status) = (b[2 + k], b[3 + k]);
    if change != Change::Entry as u8 || status < LAST_PUT || usize::from(status - LAST_PUT) > usize::from(v) - 2 {
        return None;
    }
    Some(&b[..4 + k + usize::from(status - LAST_PUT)])
}

/// Hash of a member; `entry` is the entry hash of (key, ns).
#[inline]
pub fn member_hash(entry: u32, change: Change, uk: &[u8]) -> u32 {
    match change {
        Change::Entry => entry,
        Change::MapEntry => murmur3_32(uk, entry),
        Change::WholeMap => entry ^ 0x9e37_79b9,
    }
}

fn rehash(recs: &impl Records, r: Ref) -> u32 {
    let m = member(recs, r);
    member_hash(entry_hash(murmur3_32(m.key, 0), m.ns), m.change, m.uk)
}

#[inline]
fn matches(recs: &impl Records, r: Ref, key: &[u8], ns: &[u8], change: Change, uk: &[u8]) -> bool {
    let b = recs.bytes(r);
    if !record::matches(b, key, ns) {
        return false;
    }
    let v = record::parse(b).value;
    // An entry's member has no user key; what follows its change byte is its last write.
    v[0] == change as u8 && (change == Change::Entry || &v[1..] == uk)
}

/// Finds a member in one set.
#[inline]
pub fn find(recs: &impl Records, set: &Index, h: u32, key: &[u8], ns: &[u8], change: Change, uk: &[u8]) -> bool {
    find_member(recs, set, h, key, ns, change, uk).is_some()
}

#[inline]
fn find_member(recs: &impl Records, set: &Index, h: u32, key: &[u8], ns: &[u8], change: Change, uk: &[u8]) -> Option<Ref> {
    let mut found = None;
    set.find_ref(h, |r| {
        let hit = matches(recs, r, key, ns, change, uk);
        if hit {
            found = Some(r);
        }
        hit
    });
    found
}

/// Adds a member unless present and returns its ref; `Ok(None)` when
/// `members` is out of refs (nothing is added then), an error when memory
/// for it cannot be had (nothing is added either, but the set may have
/// grown). With `note_len`, the writer of an entry (`Change::Entry`) will
/// [`Members::note`] its write of that many bytes, or `Last::Unknown` if the
/// write fails, and a new member gets room to keep it; without, the
/// member forgets its last write here.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn add(
    members: &mut Members,
    set: &mut Index,
    h: u32,
    key: &[u8],
    ns: &[u8],
    change: Change,
    uk: &[u8],
    note_len: Option<usize>,
    room: &mut Room,
) -> Result<Option<Ref>, Full> {
    if let Some(r) = find_member(members, set, h, key, ns, change, uk) {
        if change == Change::Entry && note_len.is_none() {
            members.note(r, Last::Unknown);
        }
        return Ok(Some(r));
    }
    set.reserve_refs(1, room, |c| rehash(&*members, c))?;
    let pushed = if change == Change::Entry {
        // [change, status, room for the last write]
        let keep = note_len.filter(|&n| n <= KEEP_MAX).map_or(0, |n| n.max(KEEP_MIN));
        members.push(key, ns, &[&[change as u8, LAST_UNKNOWN], &[0; KEEP_MAX][..keep]], room)?
    } else {
        members.push(key, ns, &[&[change as u8], uk], room)?
    };
    let Some(r) = pushed else { return Ok(None) };
    let m = &*members;
    set.insert_ref(h, r, |c| rehash(m, c));
    Ok(Some(r))
}

/// Sets of one state, one per owned key group.
pub type StateSets = Vec<Index>;

/// Sealed delta sets of one checkpoint.
#[derive(Debug)]
pub struct Segment {
    /// The checkpoint whose creation sealed it.
    pub checkpoint: u64,
    /// [state][key group offset]; never changed once sealed, so exports
    /// share them instead of copying.
    pub sets: std::sync::Arc<Vec<StateSets>>,
    /// Where their members are (shared with exports that read them).
    pub members: std::sync::Arc<Members>,
    /// Pending checkpoints that read it.
    pub holders: u32,
    /// Still needed by future checkpoints (no later checkpoint confirmed yet).
    pub live: bool,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_member<'a>(members: &'a Members, set: &Index, key: &[u8]) -> Member<'a> {
        let h = entry_hash(murmur3_32(key, 0), &[]);
        let r = find_member(members, set, h, key, &[], Change::Entry, &[]).expect("a member");
        member(members, r)
    }

    #[test]
    fn an_entry_member_keeps_its_last_write_until_marked_again() {
        let (mut members, mut set, mut room) = (Members::default(), Index::new(), Room::UNLIMITED);
        let add = |members: &mut Members, set: &mut Index, key: &[u8], note_len, room: &mut Room| {
            let h = entry_hash(murmur3_32(key, 0), &[]);
            add(members, set, h, key, &[], Change::Entry, &[], note_len, room).unwrap().expect("refs left")
        };
        let a = add(&mut members, &mut set, b"a", Some(3), &mut room);
        assert_eq!(entry_member(&members, &set, b"a").last, Last::Unknown, "unknown until noted");
        members.note(a, Last::Put(b"xyz"));
        assert_eq!(entry_member(&members, &set, b"a").last, Last::Put(b"xyz"));
        // Room for KEEP_MIN bytes at least: a longer number fits later.
        members.note(a, Last::Put(&[7; KEEP_MIN]));
        assert_eq!(entry_member(&members, &set, b"a").last, Last::Put(&[7; KEEP_MIN]));
        // Longer than the member keeps: unknown, not cut.
        members.note(a, Last::Put(&[7; KEEP_MIN + 1]));
        assert_eq!(entry_member(&members, &set, b"a").last, Last::Unknown);
        members.note(a, Last::Removed);
        assert_eq!(entry_member(&members, &set, b"a").last, Last::Removed);
        // Found again by a writer that will not note (a list append, a
        // batch): forgotten. One that will note keeps it until it does.
        assert_eq!(add(&mut members, &mut set, b"a", Some(1), &mut room), a);
        assert_eq!(entry_member(&members, &set, b"a").last, Last::Removed);
        assert_eq!(add(&mut members, &mut set, b"a", None, &mut room), a);
        assert_eq!(entry_member(&members, &set, b"a").last, Last::Unknown);
        // A value too long to keep gets no room; a removal still fits.
        let b = add(&mut members, &mut set, b"b", Some(KEEP_MAX + 1), &mut room);
        members.note(b, Last::Put(b"v"));
        assert_eq!(entry_member(&members, &set, b"b").last, Last::Unknown);
        members.note(b, Last::Removed);
        assert_eq!(entry_member(&members, &set, b"b").last, Last::Removed);
        // Other changes have no last write, and their user key is theirs.
        let h = member_hash(entry_hash(murmur3_32(b"a", 0), &[]), Change::MapEntry, b"uk");
        let m = add_map(&mut members, &mut set, h, &mut room);
        members.note(m, Last::Put(b"v"));
        let got = member(&members, m);
        assert_eq!((got.change, got.uk, got.last), (Change::MapEntry, &b"uk"[..], Last::Unknown));
        assert_eq!(entry_member(&members, &set, b"a").uk, &[] as &[u8]);
    }

    fn add_map(members: &mut Members, set: &mut Index, h: u32, room: &mut Room) -> Ref {
        add(members, set, h, b"a", &[], Change::MapEntry, b"uk", None, room).unwrap().expect("refs left")
    }
}
