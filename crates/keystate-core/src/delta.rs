//! Delta tracking for incremental checkpoints: per state and key group, the
//! set of distinct entries changed since the last checkpoint was taken. A key
//! written a thousand times is one member; a removed entry stays a member and
//! becomes a tombstone when exported. Members are small records in the arena
//! (the key, namespace and, for a map entry, the user key), so the log costs
//! memory in proportion to distinct changed keys, never to operations.
//!
//! Taking a checkpoint seals the current sets into a *segment* and starts new
//! ones. A segment is kept until a later checkpoint is confirmed, so an
//! aborted or never-confirmed checkpoint leaves the next one complete: an
//! incremental checkpoint carries the union of every segment still kept.

use crate::arena::{Arena, Ref};
use crate::record::Records;
use crate::hash::{entry_hash, murmur3_32};
use crate::index::Index;
use crate::record;

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
    set.find(h, |r| matches(recs, r, key, ns, change, uk)).is_some()
}

/// Adds a member unless present; returns the bytes it now takes.
#[inline]
pub fn add(arena: &mut Arena, set: &mut Index, h: u32, key: &[u8], ns: &[u8], change: Change, uk: &[u8]) -> u64 {
    if find(arena, set, h, key, ns, change, uk) {
        return 0;
    }
    let (r, size) = record::alloc(arena, key, ns, &[&[change as u8], uk], false, false);
    let before = set.bytes();
    let a = &*arena;
    set.insert(h, r, |c| rehash(a, c));
    (size + set.bytes() - before) as u64
}

/// Frees a set's members.
pub fn free(arena: &mut Arena, set: Index) {
    for r in set.refs() {
        let rec = record::parse(arena.bytes(r));
        let size = record::slot_size(arena, r, &rec);
        arena.free(r, size);
    }
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
    /// Pending checkpoints that read it.
    pub holders: u32,
    /// Still needed by future checkpoints (no later checkpoint confirmed yet).
    pub live: bool,
    pub bytes: u64,
}
