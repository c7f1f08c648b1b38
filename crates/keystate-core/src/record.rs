//! Record layout in the arena. One record is one entry of a table:
//!
//! ```text
//! varint (klen << 3 | flags)      flags: NS = 1, CAP = 2, MARK = 4
//! [NS]   varint nslen
//! [!MARK] varint vlen
//! [CAP]  u8 class                 slot class, when the slot has room to grow
//! key bytes, namespace bytes, value bytes
//! ```
//!
//! A MARK record has no value: in an undo layer it says "absent at this
//! snapshot". With no namespace and a short key and value, the header is two
//! bytes, which is most of keystate's per-entry overhead.

use crate::arena::{self, Arena, Pointers, Ref, Runs};
use crate::index::Entry;
use crate::varint;

/// Where records are read: the arena, or copies of its pointers (an export
/// on another thread, see `crate::export`).
pub(crate) trait Records {
    fn bytes(&self, r: Ref) -> &[u8];

    /// The `len` bytes from small record `r` on, which records (pinned
    /// ones, for an export's pointers) tile side by side in its page (see
    /// `arena::follows`).
    #[inline]
    fn span(&self, r: Ref, len: usize) -> &[u8] {
        &self.bytes(r)[..len]
    }

    /// The bytes from small record `r` to the end of its page, where all of
    /// them may be read; `None` where only pinned records may be (an
    /// export's pointers, which writers share) and for large records.
    #[inline]
    fn page_tail(&self, _r: Ref) -> Option<&[u8]> {
        None
    }

    #[inline]
    fn rec(&self, r: Ref) -> Rec<'_> {
        parse(self.bytes(r))
    }
}

/// An entry's record: parsed from the arena for a ref, from the slot for an
/// inline entry.
pub(crate) trait EntryRecords: Records {
    #[inline]
    fn entry<'s>(&'s self, e: Entry<'s>) -> Rec<'s> {
        match e {
            Entry::Ref(r) => self.rec(r),
            Entry::Inline(b) => parse_inline(b),
        }
    }

    /// True when entry `e` has this key and namespace ([`matches`]).
    #[inline]
    fn entry_matches(&self, e: Entry<'_>, key: &[u8], ns: &[u8]) -> bool {
        match e {
            Entry::Ref(r) => matches(self.bytes(r), key, ns),
            Entry::Inline(b) => inline_matches(b, key, ns),
        }
    }
}

impl<T: Records + ?Sized> EntryRecords for T {}

impl Records for Arena {
    #[inline]
    fn bytes(&self, r: Ref) -> &[u8] {
        Arena::bytes(self, r)
    }

    #[inline]
    fn page_tail(&self, r: Ref) -> Option<&[u8]> {
        (!Arena::is_large(r)).then(|| Arena::bytes(self, r))
    }
}

impl Records for Pointers {
    #[inline]
    fn bytes(&self, r: Ref) -> &[u8] {
        Pointers::bytes(self, r)
    }

    #[inline]
    fn span(&self, r: Ref, len: usize) -> &[u8] {
        Pointers::span(self, r, len)
    }
}

const F_NS: usize = 1;
const F_CAP: usize = 2;
const F_MARK: usize = 4;

/// A parsed record.
#[derive(Debug, Clone, Copy)]
pub struct Rec<'a> {
    pub key: &'a [u8],
    pub ns: &'a [u8],
    pub value: &'a [u8],
    pub mark: bool,
    /// Slot class when the record was given room to grow.
    pub cap: Option<u8>,
    /// Encoded length of the whole record.
    pub len: usize,
}

/// Parses the record at the start of `b` (bytes written by [`write`]).
#[inline]
pub fn parse(b: &[u8]) -> Rec<'_> {
    // Most records: a key under 16 bytes, no flags, a value under 128 bytes:
    // two single-byte headers.
    let (h, v) = (b[0], b[1]);
    if h < 0x80 && h & 7 == 0 && v < 0x80 {
        let k = 2 + (h >> 3) as usize;
        let end = k + v as usize;
        return Rec { key: &b[2..k], ns: &[], value: &b[k..end], mark: false, cap: None, len: end };
    }
    parse_general(b)
}

/// The length of the record at the start of `b` when it has no room to grow
/// (its bytes are then a checkpoint's PUT record without the op, see
/// `format::body`), else `None`. What a full export asks of most records,
/// without the slices `parse` makes.
#[inline(always)]
pub fn plain_len(b: &[u8]) -> Option<usize> {
    // A record has two bytes at least (header, value length). Both single
    // bytes (bit 7 clear) and no flags (bits 0-2 of the header): one test.
    let hv = u16::from_le_bytes([b[0], b[1]]);
    if hv & 0x8087 == 0 {
        return Some(2 + (hv as u8 >> 3) as usize + (hv >> 8) as usize);
    }
    let r = parse_general(b);
    r.cap.is_none().then_some(r.len)
}

#[inline(never)]
fn parse_general(b: &[u8]) -> Rec<'_> {
    let mut p = 0;
    let h = varint::get_trusted(b, &mut p);
    let klen = h >> 3;
    let nslen = if h & F_NS != 0 { varint::get_trusted(b, &mut p) } else { 0 };
    let mark = h & F_MARK != 0;
    let vlen = if mark { 0 } else { varint::get_trusted(b, &mut p) };
    let cap = if h & F_CAP != 0 {
        p += 1;
        Some(b[p - 1])
    } else {
        None
    };
    let k = p;
    let n = k + klen;
    let v = n + nslen;
    let end = v + vlen;
    Rec { key: &b[k..n], ns: &b[n..v], value: &b[v..end], mark, cap, len: end }
}

/// An inline entry's value nibble when it is an absence mark (no value).
const INLINE_MARK: u8 = 0xF;
/// Bytes of an inline entry (a wide slot after its meta byte).
pub const INLINE: usize = 15;

/// The inline form of an entry with no namespace (see `index::Entry`):
/// `None` when it does not fit (key and value above 14 bytes together).
/// `value` `None` is an absence mark.
pub fn inline(key: &[u8], value: Option<&[u8]>) -> Option<[u8; INLINE]> {
    let Some(v) = value else {
        let mut b = inline_parts(key, &[], 0)?;
        b[0] |= INLINE_MARK;
        return Some(b);
    };
    inline_parts(key, &[v], v.len())
}

/// The inline form of a value whose `vlen` bytes are the concatenation of
/// `parts`, as [`inline`].
pub fn inline_parts(key: &[u8], parts: &[&[u8]], vlen: usize) -> Option<[u8; INLINE]> {
    if key.len() + vlen > INLINE - 1 {
        return None;
    }
    let mut b = [0u8; INLINE];
    b[0] = (key.len() as u8) << 4 | vlen as u8;
    b[1..=key.len()].copy_from_slice(key);
    let mut p = 1 + key.len();
    for part in parts {
        b[p..p + part.len()].copy_from_slice(part);
        p += part.len();
    }
    Some(b)
}

/// The inline form of a live record, if it has one (no namespace, no room
/// to grow, key and value within 14 bytes).
pub fn inline_of(rec: &Rec<'_>) -> Option<[u8; INLINE]> {
    if !rec.ns.is_empty() || rec.mark || rec.cap.is_some() {
        return None;
    }
    inline(rec.key, Some(rec.value))
}

/// Parses an inline entry. Its `len` is the length of its record in the
/// arena's layout (what a checkpoint's PUT record holds after the op).
#[inline]
pub fn parse_inline(b: &[u8]) -> Rec<'_> {
    let (k, v) = (usize::from(b[0] >> 4), b[0] & 0xF);
    let mark = v == INLINE_MARK;
    let vlen = if mark { 0 } else { usize::from(v) };
    let value = &b[1 + k..1 + k + vlen];
    Rec { key: &b[1..1 + k], ns: &[], value, mark, cap: None, len: encoded_len(k, 0, vlen, mark, false) }
}

/// True when inline entry `b` has this key and namespace.
#[inline]
fn inline_matches(b: &[u8], key: &[u8], ns: &[u8]) -> bool {
    ns.is_empty() && usize::from(b[0] >> 4) == key.len() && eq_short(&b[1..1 + key.len()], key)
}

/// True when the record at the start of `b` has this key and namespace.
#[inline]
pub fn matches(b: &[u8], key: &[u8], ns: &[u8]) -> bool {
    let h = b[0];
    if h < 0x80 && h & 7 == 0 && b[1] < 0x80 {
        // The common two-byte header (see `parse`).
        return ns.is_empty() && (h >> 3) as usize == key.len() && eq_short(&b[2..2 + key.len()], key);
    }
    matches_general(b, key, ns)
}

/// `a == b` for slices of one length below 16 bytes (a short key), with two
/// overlapping word loads a side instead of a call to `memcmp` (which in
/// WebAssembly is a byte loop: 5% of a `get`).
#[inline(always)]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() || n >= 16 {
        return a == b;
    }
    if n >= 8 {
        let w = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
        w(a, 0) == w(b, 0) && w(a, n - 8) == w(b, n - 8)
    } else if n >= 4 {
        let w = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
        w(a, 0) == w(b, 0) && w(a, n - 4) == w(b, n - 4)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

#[inline(never)]
fn matches_general(b: &[u8], key: &[u8], ns: &[u8]) -> bool {
    let mut p = 0;
    let h = varint::get_trusted(b, &mut p);
    if h >> 3 != key.len() || (h & F_NS != 0) == ns.is_empty() {
        return false;
    }
    let nslen = if h & F_NS != 0 { varint::get_trusted(b, &mut p) } else { 0 };
    if nslen != ns.len() {
        return false;
    }
    if h & F_MARK == 0 {
        varint::get_trusted(b, &mut p);
    }
    if h & F_CAP != 0 {
        p += 1;
    }
    b[p..p + key.len()] == *key && b[p + key.len()..p + key.len() + ns.len()] == *ns
}

/// Encoded length of a record.
#[inline]
pub fn encoded_len(klen: usize, nslen: usize, vlen: usize, mark: bool, cap: bool) -> usize {
    let mut h = (klen << 3) as u64;
    if nslen > 0 {
        h |= F_NS as u64;
    }
    let mut n = varint::len(h) + klen + nslen;
    if nslen > 0 {
        n += varint::len(nslen as u64);
    }
    if !mark {
        n += varint::len(vlen as u64) + vlen;
    }
    if cap {
        n += 1;
    }
    n
}

/// Writes a record whose value is the concatenation of `value`; returns its
/// length. `dst` must hold `encoded_len(..)` bytes.
pub fn write(dst: &mut [u8], key: &[u8], ns: &[u8], value: &[&[u8]], mark: bool, cap: Option<u8>) -> usize {
    let vlen: usize = value.iter().map(|v| v.len()).sum();
    let mut h = (key.len() << 3) as u64;
    if !ns.is_empty() {
        h |= F_NS as u64;
    }
    if mark {
        h |= F_MARK as u64;
    }
    if cap.is_some() {
        h |= F_CAP as u64;
    }
    let mut p = varint::write(dst, h);
    if !ns.is_empty() {
        p += varint::write(&mut dst[p..], ns.len() as u64);
    }
    if !mark {
        p += varint::write(&mut dst[p..], vlen as u64);
    }
    if let Some(c) = cap {
        dst[p] = c;
        p += 1;
    }
    dst[p..p + key.len()].copy_from_slice(key);
    p += key.len();
    dst[p..p + ns.len()].copy_from_slice(ns);
    p += ns.len();
    for part in value {
        dst[p..p + part.len()].copy_from_slice(part);
        p += part.len();
    }
    p
}

/// Size of the slot that holds the record `r`.
#[inline]
pub fn slot_size(arena: &Arena, r: Ref, rec: &Rec<'_>) -> usize {
    if Arena::is_large(r) {
        arena.large_len(r)
    } else {
        small_slot_size(rec)
    }
}

/// Size of the slot that holds small record `rec` (not a large one).
#[inline]
pub fn small_slot_size(rec: &Rec<'_>) -> usize {
    match rec.cap {
        Some(c) => arena::CLASSES[c as usize] as usize,
        None => arena::slot_size_for(rec.len),
    }
}

/// The length and slot class to allocate for a record (see [`alloc`]); the
/// class is `None` for an exact fit (or a large record).
#[inline]
pub fn alloc_size(klen: usize, nslen: usize, vlen: usize, mark: bool, grow: bool) -> (usize, Option<u8>) {
    if !grow {
        return (encoded_len(klen, nslen, vlen, mark, false), None);
    }
    let want = encoded_len(klen, nslen, vlen + vlen / 2 + 8, mark, true);
    if want <= arena::MAX_SMALL {
        (want, Some(arena::class_of(want)))
    } else {
        (want, None)
    }
}

/// Allocates and writes a record; with `grow`, the slot gets room for about
/// half as much again, for values that are appended to (lists). The caller
/// reserved the slot (`Arena::reserve_slots` or `reserve_large` for
/// `alloc_size`).
pub fn alloc(arena: &mut Arena, key: &[u8], ns: &[u8], value: &[&[u8]], mark: bool, grow: bool) -> (Ref, usize) {
    alloc_with(arena, key, ns, value, mark, grow, None)
}

/// As [`alloc`] (not a mark), in one of a table's runs (see
/// `Arena::alloc_in`).
pub fn alloc_in(arena: &mut Arena, key: &[u8], ns: &[u8], value: &[&[u8]], grow: bool, runs: &mut Runs) -> (Ref, usize) {
    alloc_with(arena, key, ns, value, false, grow, Some(runs))
}

fn alloc_with(arena: &mut Arena, key: &[u8], ns: &[u8], value: &[&[u8]], mark: bool, grow: bool, runs: Option<&mut Runs>) -> (Ref, usize) {
    let vlen: usize = value.iter().map(|v| v.len()).sum();
    let (want, cap) = alloc_size(key.len(), ns.len(), vlen, mark, grow);
    let (r, size) = match runs {
        Some(runs) => arena.alloc_in(want, cap, runs),
        None => arena.alloc(want, cap),
    };
    let n = write(arena.bytes_mut(r), key, ns, value, mark, cap);
    debug_assert!(n <= size);
    (r, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_entries_parse_and_match_as_their_records() {
        let key = b"user-1234";
        for value in [Some(&b""[..]), Some(b"ab"), Some(b"abcde"), None] {
            let b = inline(key, value).expect("fits");
            let rec = parse_inline(&b);
            assert_eq!((rec.key, rec.ns, rec.mark), (&key[..], &b""[..], value.is_none()));
            assert_eq!(rec.value, value.unwrap_or(b""));
            let mut arena_form = [0u8; 32];
            let n = write(&mut arena_form, key, b"", &[value.unwrap_or(b"")], value.is_none(), None);
            assert_eq!(rec.len, n, "the length of its record");
            assert!(inline_matches(&b, key, b"") && !inline_matches(&b, b"user-1235", b"") && !inline_matches(&b, key, b"n"));
            assert_ne!(b[0], 0xFF, "never a wide slot's ref marker");
        }
        assert!(inline(b"0123456789", Some(b"abcd")).is_some());
        assert!(inline(b"0123456789", Some(b"abcde")).is_none(), "15 bytes do not fit");
        assert!(inline(b"0123456789abcde", None).is_none());
        assert!(inline(b"", None).is_some_and(|b| parse_inline(&b).mark));
    }

    #[test]
    fn eq_short_is_slice_equality() {
        let a: Vec<u8> = (0..20u8).collect();
        for n in 0..=20 {
            for flip in 0..n {
                let mut b = a[..n].to_vec();
                assert!(eq_short(&a[..n], &b), "n {n}");
                b[flip] ^= 0x40;
                assert!(!eq_short(&a[..n], &b), "n {n}, byte {flip}");
            }
        }
        assert!(!eq_short(b"abc", b"ab"));
    }

    #[test]
    fn layout_round_trips() {
        let mut buf = vec![0u8; 300];
        for (key, ns, val, mark, cap) in [
            (&b"user-1"[..], &b""[..], &b"\x05"[..], false, None),
            (b"k", b"window-7", b"value", false, Some(9u8)),
            (b"", b"", b"", false, None),
            (b"gone", b"", b"", true, None),
        ] {
            let n = write(&mut buf, key, ns, &[val], mark, cap);
            assert_eq!(n, encoded_len(key.len(), ns.len(), val.len(), mark, cap.is_some()));
            let r = parse(&buf);
            assert_eq!((r.key, r.ns, r.value, r.mark, r.cap, r.len), (key, ns, val, mark, cap, n));
            assert!(matches(&buf, key, ns));
            assert!(!matches(&buf, b"other", ns));
        }
        // The two-byte header promised above.
        assert_eq!(encoded_len(11, 0, 1, false, false), 14);
        // A key that is a prefix of key+namespace must not match.
        write(&mut buf, b"ab", b"", &[b"v"], false, None);
        assert!(!matches(&buf, b"a", b"b"));
    }
}
