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
}

pub fn member(recs: &impl Records, r: Ref) -> Member<'_> {
    let rec = recs.rec(r);
    Member { key: rec.key, ns: rec.ns, change: Change::from_u8(rec.value[0]), uk: &rec.value[1..] }
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
    v[0] == change as u8 && &v[1..] == uk
}

/// Finds a member in one set.
#[inline]
pub fn find(recs: &impl Records, set: &Index, h: u32, key: &[u8], ns: &[u8], change: Change, uk: &[u8]) -> bool {
    set.find_ref(h, |r| matches(recs, r, key, ns, change, uk)).is_some()
}

/// Adds a member unless present; `Ok(false)` when `members` is out of refs
/// (nothing is added then), an error when memory for it cannot be had
/// (nothing is added either, but the set may have grown).
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
    room: &mut Room,
) -> Result<bool, Full> {
    if find(members, set, h, key, ns, change, uk) {
        return Ok(true);
    }
    set.reserve_refs(1, room, |c| rehash(&*members, c))?;
    let Some(r) = members.push(key, ns, &[&[change as u8], uk], room)? else { return Ok(false) };
    let m = &*members;
    set.insert_ref(h, r, |c| rehash(m, c));
    Ok(true)
}

/// Sets of one state, one per owned key group.
pub type StateSets = Vec<Index>;

/// Sealed delta sets of one checkpoint.
#[derive(Debug)]
pub struct Segment {
    /// The checkpoint whose creation sealed it.
    pub checkpoint: u64,
    /// [state][key group offset]
    pub sets: Vec<StateSets>,
    /// Where their members are (shared with exports that read them).
    pub members: std::sync::Arc<Members>,
    /// Pending checkpoints that read it.
    pub holders: u32,
    /// Still needed by future checkpoints (no later checkpoint confirmed yet).
    pub live: bool,
    pub bytes: u64,
}
