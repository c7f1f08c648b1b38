//! The value of a map head: a small map inline, or a nested table.
//!
//! Most maps of map state are small (a user's preferences, a few counters).
//! A nested hash table costs ~150 bytes of structure each, and a write to one
//! while a snapshot is open starts an undo layer in it. So a map starts as an
//! inline list of (user key, value) pairs in its head record, where writes are
//! ordinary copy-on-write value writes; it moves to a nested table once it has
//! more than `MAX_INLINE_ENTRIES` entries or `MAX_INLINE_BYTES` bytes.
//!
//! ```text
//! head value = 0x00 (varint uk_len, uk, varint v_len, v)*     inline
//!            | 0x01 u32 table id                               nested
//! ```

use crate::hash::murmur3_32;
use crate::mem::Mem;
use crate::varint;

pub use crate::maphead::{nested, view, MapRef};
use crate::maphead::INLINE;

pub const MAX_INLINE_ENTRIES: usize = 16;
pub const MAX_INLINE_BYTES: usize = 1024;

/// The (user key, value) pairs of an inline map.
pub fn pairs(blob: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut p = 0;
    std::iter::from_fn(move || {
        if p >= blob.len() {
            return None;
        }
        let ul = varint::get_trusted(blob, &mut p);
        let uk = &blob[p..p + ul];
        p += ul;
        let vl = varint::get_trusted(blob, &mut p);
        let v = &blob[p..p + vl];
        p += vl;
        Some((uk, v))
    })
}

pub fn find<'a>(blob: &'a [u8], uk: &[u8]) -> Option<&'a [u8]> {
    pairs(blob).find(|(k, _)| *k == uk).map(|(_, v)| v)
}

pub fn count(blob: &[u8]) -> usize {
    pairs(blob).count()
}

fn push(out: &mut Vec<u8>, uk: &[u8], v: &[u8]) {
    varint::put(out, uk.len() as u64);
    out.extend_from_slice(uk);
    varint::put(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// Writes into `out` the head value of an inline map holding one pair.
pub fn single(uk: &[u8], v: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(INLINE);
    push(out, uk, v);
}

/// Writes into `out` the head value of `blob` with `uk` set to `v`. Returns
/// (created, entries after, whether it must move to a nested table).
pub fn put(blob: &[u8], uk: &[u8], v: &[u8], out: &mut Vec<u8>) -> (bool, usize, bool) {
    out.clear();
    out.push(INLINE);
    let mut n = 0;
    let mut created = true;
    for (k, old) in pairs(blob) {
        if k == uk {
            push(out, uk, v);
            created = false;
        } else {
            push(out, k, old);
        }
        n += 1;
    }
    if created {
        push(out, uk, v);
        n += 1;
    }
    (created, n, n > MAX_INLINE_ENTRIES || out.len() > MAX_INLINE_BYTES)
}

/// Writes into `out` the head value of `blob` without `uk`. Returns (found,
/// entries after).
pub fn remove(blob: &[u8], uk: &[u8], out: &mut Vec<u8>) -> (bool, usize) {
    out.clear();
    out.push(INLINE);
    let mut n = 0;
    let mut found = false;
    for (k, v) in pairs(blob) {
        if k == uk {
            found = true;
        } else {
            push(out, k, v);
            n += 1;
        }
    }
    (found, n)
}

// ---- reading a head's map, inline or nested ----------------------------------

/// The value of `uk` in the map a head value describes, live or at `at`.
pub fn get<'a>(mem: &'a Mem, head: &'a [u8], uk: &[u8], at: Option<u64>) -> Option<&'a [u8]> {
    match view(head) {
        MapRef::Inline(blob) => find(blob, uk),
        MapRef::Nested(nt) => {
            let h = murmur3_32(uk, 0);
            let r = match at {
                None => mem.get(nt, h, uk, &[]),
                Some(s) => mem.get_at(nt, h, uk, &[], s),
            };
            r.map(|e| mem.entry(e).value)
        }
    }
}

/// Calls `f(uk, value)` for each entry of the map a head value describes.
pub fn for_each(mem: &Mem, head: &[u8], at: Option<u64>, mut f: impl FnMut(&[u8], &[u8])) {
    match view(head) {
        MapRef::Inline(blob) => pairs(blob).for_each(|(k, v)| f(k, v)),
        MapRef::Nested(nt) => mem.for_each_visible(nt, at, |e| f(e.key, e.value)),
    }
}

/// Entries of the map a head value describes.
pub fn len(mem: &Mem, head: &[u8], at: Option<u64>) -> usize {
    match view(head) {
        MapRef::Inline(blob) => count(blob),
        MapRef::Nested(nt) => mem.count_visible(nt, at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_maps_put_replace_remove() {
        let mut a = Vec::new();
        single(b"x", b"1", &mut a);
        let MapRef::Inline(blob) = view(&a) else { panic!() };
        assert_eq!(find(blob, b"x"), Some(&b"1"[..]));
        let mut b = Vec::new();
        assert_eq!(put(blob, b"y", b"22", &mut b), (true, 2, false));
        let MapRef::Inline(blob) = view(&b) else { panic!() };
        let mut c = Vec::new();
        assert_eq!(put(blob, b"x", b"333", &mut c), (false, 2, false));
        let MapRef::Inline(blob) = view(&c) else { panic!() };
        assert_eq!(pairs(blob).collect::<Vec<_>>(), vec![(&b"x"[..], &b"333"[..]), (&b"y"[..], &b"22"[..])]);
        let mut d = Vec::new();
        assert_eq!(remove(blob, b"x", &mut d), (true, 1));
        assert_eq!(remove(blob, b"nope", &mut d), (false, 2));
        match view(&nested(77)) {
            MapRef::Nested(id) => assert_eq!(id, 77),
            MapRef::Inline(_) => panic!(),
        }
    }

    #[test]
    fn a_map_outgrows_inline_by_count_or_size() {
        let mut cur = Vec::new();
        single(b"k0", b"v", &mut cur);
        for i in 1..=MAX_INLINE_ENTRIES {
            let MapRef::Inline(blob) = view(&cur) else { panic!() };
            let mut next = Vec::new();
            let (_, n, grow) = put(blob, format!("k{i}").as_bytes(), b"v", &mut next);
            assert_eq!(grow, n > MAX_INLINE_ENTRIES);
            cur = next;
        }
        let MapRef::Inline(blob) = view(&cur) else { panic!() };
        let big = vec![0u8; MAX_INLINE_BYTES];
        assert!(put(blob, b"big", &big, &mut Vec::new()).2);
    }
}
