//! Inline entries, measured before they are built (docs/LAYOUT.md, "Inline
//! entries"): what a point read and an overwrite of 1M keys cost with the
//! core's layout against prototypes of the layouts that would replace it.
//!
//! - `core`: the real `Store::get` / `Store::put`.
//! - `refs`: a prototype of the core's layout alone (a 5-byte slot of meta
//!   byte and ref, then the record in a slab every table shares, in the
//!   order the keys were inserted), to tell the layout's cost from the rest
//!   of the core's (state lookup, key checks, accounting).
//! - `wide`: 16-byte slots: the meta byte, then the record inline (a byte of
//!   key and value lengths, the key, the value), so a hit reads one line.
//! - `split`: the meta bytes in an array of their own (one byte a slot, so
//!   a table's stay in cache: 1.2 MB for 1M keys) beside an array of
//!   16-byte entries: a probe reads metas, a hit one entry.
//! - `split-refs`: the metas apart as in `split`, beside an array of refs
//!   into the slab: separating the metas alone, with the records as now.
//!
//! Same keys as the other diagnostics (`user-000000`.., 11 bytes), 2-byte
//! values, 128 key groups each a table, same hash (murmur3), home slot,
//! 4-bit tag and capacity (grown by a quarter at 90%) as `crate::index`.
//! Each round times every layout in turn over the same seeded random order,
//! reads in a plain loop (whose misses the CPU overlaps) and one at a time
//! (see `chained`), then overwrites; the output gives the median of the
//! rounds (the first argument, default 7) and the bytes each layout holds.
use keystate_core::hash::murmur3_32;
use keystate_core::Key;
use keystate_diag::{filled, keys, Rng};
use std::time::Instant;

const GROUPS: u32 = 128;
const DIST: u8 = 0x0f;

#[inline]
fn tag(h: u32) -> u8 {
    (h.wrapping_mul(0x9e37_79b9) >> 24) as u8 & !DIST
}

#[inline]
fn home(h: u32, cap: usize) -> usize {
    ((u64::from(h) * cap as u64) >> 32) as usize
}

fn capacity_for(n: usize) -> usize {
    (n + n / 4 + 1).max(8)
}

/// Where a layout keeps an entry's bytes, given its slot.
trait Layout {
    /// Bytes of a slot (or of a slot's meta byte plus its entry).
    const SLOT: usize;
    fn with_capacity(cap: usize) -> Self;
    fn meta(&self, i: usize) -> u8;
    fn set_meta(&mut self, i: usize, m: u8);
    /// The key and value of the entry at slot `i`.
    fn entry<'a>(&'a self, i: usize, slab: &'a [u8]) -> (&'a [u8], &'a [u8]);
    /// Stores a new entry at slot `i` (the slab takes what the slot does not hold).
    fn put(&mut self, i: usize, key: &[u8], value: &[u8], slab: &mut Vec<u8>);
    /// Overwrites the value of the entry at slot `i` (same length).
    fn overwrite(&mut self, i: usize, value: &[u8], slab: &mut [u8]);
    fn swap_payload(&mut self, i: usize, carry: &mut [u8; 16]);
}

/// Record bytes in the slab: a header byte (klen << 4 | vlen), key, value,
/// in 16-byte slots, as the arena's 14..16-byte class puts them.
fn slab_record(slab: &[u8], r: u32) -> (&[u8], &[u8]) {
    inline(&slab[r as usize * 16..])
}

/// Appends a record to the slab; its ref.
fn slab_push(slab: &mut Vec<u8>, key: &[u8], value: &[u8]) -> u32 {
    let r = (slab.len() / 16) as u32;
    let mut rec = [0u8; 16];
    pack_inline(&mut rec, key, value);
    slab.extend_from_slice(&rec);
    r
}

struct Refs {
    slots: Vec<[u8; 5]>,
}

impl Layout for Refs {
    const SLOT: usize = 5;
    fn with_capacity(cap: usize) -> Self {
        Refs { slots: vec![[0; 5]; cap] }
    }
    #[inline]
    fn meta(&self, i: usize) -> u8 {
        self.slots[i][0]
    }
    fn set_meta(&mut self, i: usize, m: u8) {
        self.slots[i][0] = m;
    }
    #[inline]
    fn entry<'a>(&'a self, i: usize, slab: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        let s = &self.slots[i];
        slab_record(slab, u32::from_le_bytes([s[1], s[2], s[3], s[4]]))
    }
    fn put(&mut self, i: usize, key: &[u8], value: &[u8], slab: &mut Vec<u8>) {
        self.slots[i][1..].copy_from_slice(&slab_push(slab, key, value).to_le_bytes());
    }
    #[inline]
    fn overwrite(&mut self, i: usize, value: &[u8], slab: &mut [u8]) {
        let s = &self.slots[i];
        let at = u32::from_le_bytes([s[1], s[2], s[3], s[4]]) as usize * 16;
        let k = usize::from(slab[at] >> 4);
        slab[at + 1 + k..at + 1 + k + value.len()].copy_from_slice(value);
    }
    fn swap_payload(&mut self, i: usize, carry: &mut [u8; 16]) {
        let mut p = [0u8; 4];
        p.copy_from_slice(&self.slots[i][1..]);
        self.slots[i][1..].copy_from_slice(&carry[..4]);
        carry[..4].copy_from_slice(&p);
    }
}

/// An inline entry: a byte of lengths, the key, the value (15 bytes at most).
fn inline(p: &[u8]) -> (&[u8], &[u8]) {
    let (k, v) = (usize::from(p[0] >> 4), usize::from(p[0] & 15));
    (&p[1..1 + k], &p[1 + k..1 + k + v])
}

fn pack_inline(p: &mut [u8], key: &[u8], value: &[u8]) {
    p[0] = (key.len() as u8) << 4 | value.len() as u8;
    p[1..1 + key.len()].copy_from_slice(key);
    p[1 + key.len()..1 + key.len() + value.len()].copy_from_slice(value);
}

struct Wide {
    slots: Vec<[u8; 16]>,
}

impl Layout for Wide {
    const SLOT: usize = 16;
    fn with_capacity(cap: usize) -> Self {
        Wide { slots: vec![[0; 16]; cap] }
    }
    #[inline]
    fn meta(&self, i: usize) -> u8 {
        self.slots[i][0]
    }
    fn set_meta(&mut self, i: usize, m: u8) {
        self.slots[i][0] = m;
    }
    #[inline]
    fn entry<'a>(&'a self, i: usize, _: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        inline(&self.slots[i][1..])
    }
    fn put(&mut self, i: usize, key: &[u8], value: &[u8], _: &mut Vec<u8>) {
        pack_inline(&mut self.slots[i][1..], key, value);
    }
    #[inline]
    fn overwrite(&mut self, i: usize, value: &[u8], _: &mut [u8]) {
        let p = &mut self.slots[i][1..];
        let k = usize::from(p[0] >> 4);
        p[1 + k..1 + k + value.len()].copy_from_slice(value);
    }
    fn swap_payload(&mut self, i: usize, carry: &mut [u8; 16]) {
        let mut p = [0u8; 15];
        p.copy_from_slice(&self.slots[i][1..]);
        self.slots[i][1..].copy_from_slice(&carry[..15]);
        carry[..15].copy_from_slice(&p);
    }
}

struct Split {
    metas: Vec<u8>,
    entries: Vec<[u8; 15]>,
}

impl Layout for Split {
    const SLOT: usize = 16;
    fn with_capacity(cap: usize) -> Self {
        Split { metas: vec![0; cap], entries: vec![[0; 15]; cap] }
    }
    #[inline]
    fn meta(&self, i: usize) -> u8 {
        self.metas[i]
    }
    fn set_meta(&mut self, i: usize, m: u8) {
        self.metas[i] = m;
    }
    #[inline]
    fn entry<'a>(&'a self, i: usize, _: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        inline(&self.entries[i])
    }
    fn put(&mut self, i: usize, key: &[u8], value: &[u8], _: &mut Vec<u8>) {
        pack_inline(&mut self.entries[i], key, value);
    }
    #[inline]
    fn overwrite(&mut self, i: usize, value: &[u8], _: &mut [u8]) {
        let p = &mut self.entries[i];
        let k = usize::from(p[0] >> 4);
        p[1 + k..1 + k + value.len()].copy_from_slice(value);
    }
    fn swap_payload(&mut self, i: usize, carry: &mut [u8; 16]) {
        let mut p = [0u8; 15];
        p.copy_from_slice(&self.entries[i]);
        self.entries[i].copy_from_slice(&carry[..15]);
        carry[..15].copy_from_slice(&p);
    }
}

/// `split`'s meta array beside an array of refs into the slab: what
/// separating the metas alone would give, with today's records.
struct SplitRefs {
    metas: Vec<u8>,
    refs: Vec<u32>,
}

impl Layout for SplitRefs {
    const SLOT: usize = 5;
    fn with_capacity(cap: usize) -> Self {
        SplitRefs { metas: vec![0; cap], refs: vec![0; cap] }
    }
    #[inline]
    fn meta(&self, i: usize) -> u8 {
        self.metas[i]
    }
    fn set_meta(&mut self, i: usize, m: u8) {
        self.metas[i] = m;
    }
    #[inline]
    fn entry<'a>(&'a self, i: usize, slab: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        slab_record(slab, self.refs[i])
    }
    fn put(&mut self, i: usize, key: &[u8], value: &[u8], slab: &mut Vec<u8>) {
        self.refs[i] = slab_push(slab, key, value);
    }
    #[inline]
    fn overwrite(&mut self, i: usize, value: &[u8], slab: &mut [u8]) {
        let at = self.refs[i] as usize * 16;
        let k = usize::from(slab[at] >> 4);
        slab[at + 1 + k..at + 1 + k + value.len()].copy_from_slice(value);
    }
    fn swap_payload(&mut self, i: usize, carry: &mut [u8; 16]) {
        let mut p = [0u8; 4];
        p.copy_from_slice(&carry[..4]);
        carry[..4].copy_from_slice(&self.refs[i].to_le_bytes());
        self.refs[i] = u32::from_le_bytes(p);
    }
}

/// A Robin Hood table over layout `L`, built at the capacity the core's
/// growth reaches for its entries (no growing, no removals, no saturation:
/// the measurement needs lookups and overwrites only).
struct Table<L: Layout> {
    l: L,
    cap: usize,
    len: usize,
}

impl<L: Layout> Table<L> {
    #[inline]
    fn find(&self, h: u32, key: &[u8], slab: &[u8]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mut i = home(h, self.cap);
        let t = tag(h);
        let mut d = 1u8;
        loop {
            let m = self.l.meta(i);
            if m & DIST < d {
                return None;
            }
            if m == t | d && self.l.entry(i, slab).0 == key {
                return Some(i);
            }
            i += 1;
            if i == self.cap {
                i = 0;
            }
            d += u8::from(d < DIST);
        }
    }

    fn place(&mut self, h: u32, key: &[u8], value: &[u8], slab: &mut Vec<u8>) {
        self.len += 1;
        let mut i = home(h, self.cap);
        // Put the new entry's payload in a scratch slot first, then carry it.
        let mut carry_meta = tag(h) | 1;
        let mut carry = [0u8; 16];
        {
            let mut tmp = L::with_capacity(1);
            tmp.put(0, key, value, slab);
            tmp.swap_payload(0, &mut carry);
        }
        let mut dist = 0usize;
        loop {
            let m = self.l.meta(i);
            if m == 0 {
                self.l.set_meta(i, carry_meta);
                self.l.swap_payload(i, &mut carry);
                return;
            }
            let theirs = usize::from(m & DIST) - 1;
            if theirs < dist {
                self.l.set_meta(i, carry_meta);
                self.l.swap_payload(i, &mut carry);
                carry_meta = m;
                dist = theirs;
            }
            i += 1;
            if i == self.cap {
                i = 0;
            }
            dist += 1;
            carry_meta = (carry_meta & !DIST) | (dist + 1).min(15) as u8;
        }
    }
}

struct Proto<L: Layout> {
    tables: Vec<Table<L>>,
    slab: Vec<u8>,
}

impl<L: Layout> Proto<L> {
    fn new(keys: &[Vec<u8>]) -> Self {
        let hashes: Vec<u32> = keys.iter().map(|k| murmur3_32(k, 0)).collect();
        let mut counts = vec![0usize; GROUPS as usize];
        for h in &hashes {
            counts[(h % GROUPS) as usize] += 1;
        }
        let tables = counts
            .iter()
            .map(|&n| {
                // The core's growth: by a quarter whenever the next entry would pass 90%.
                let mut cap = 0;
                for len in 0..n {
                    if (len + 1) * 10 > cap * 9 {
                        cap = capacity_for(len + 1).max(cap * 5 / 4);
                    }
                }
                Table { l: L::with_capacity(cap), cap, len: 0 }
            })
            .collect();
        let mut p = Proto { tables, slab: Vec::new() };
        for (i, k) in keys.iter().enumerate() {
            let t = &mut p.tables[(hashes[i] % GROUPS) as usize];
            t.place(hashes[i], k, &(i as u32 % 1000).to_le_bytes()[..2], &mut p.slab);
        }
        p
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let h = murmur3_32(key, 0);
        let t = &self.tables[(h % GROUPS) as usize];
        t.find(h, key, &self.slab).map(|i| t.l.entry(i, &self.slab).1)
    }

    #[inline]
    fn put(&mut self, key: &[u8], value: &[u8]) {
        let h = murmur3_32(key, 0);
        let t = &mut self.tables[(h % GROUPS) as usize];
        let i = t.find(h, key, &self.slab).expect("a present key");
        t.l.overwrite(i, value, &mut self.slab);
    }

    fn bytes(&self) -> usize {
        self.tables.iter().map(|t| t.cap * L::SLOT).sum::<usize>() + self.slab.len()
    }
}

fn time(f: impl FnOnce() -> usize, n: usize) -> (f64, usize) {
    let t = Instant::now();
    let sum = f();
    (t.elapsed().as_nanos() as f64 / n as f64, sum)
}

/// Reads of `keys` in `order`, each key chosen only once the read before it
/// has returned (its index depends on that read's result through a zero the
/// compiler cannot see), as a JavaScript caller's reads are: no two overlap,
/// so every cache miss is paid in full.
fn chained(order: &[usize], keys: &[Vec<u8>], mut get: impl FnMut(&[u8]) -> usize) -> usize {
    let zero = std::hint::black_box(0usize);
    let (mut sum, mut last) = (0, 0);
    for &i in order {
        last = get(&keys[i ^ (last & zero)]);
        sum += last;
    }
    sum
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = 1_000_000;
    let rounds = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(7);
    let keys = keys(n);
    let (mut core, st) = filled(&keys);
    // The refs prototype's slab in insertion order: records of one table
    // one in every 128 slots, as the shared arena has them.
    let mut refs = Proto::<Refs>::new(&keys);
    let mut wide = Proto::<Wide>::new(&keys);
    let mut split = Proto::<Split>::new(&keys);
    let mut split_refs = Proto::<SplitRefs>::new(&keys);
    let live = core.memory().live_bytes as f64 / n as f64;
    println!("bytes an entry: core {live:.1} (live), refs {:.1}, wide {:.1}, split {:.1}, split-refs {:.1}", refs.bytes() as f64 / n as f64, wide.bytes() as f64 / n as f64, split.bytes() as f64 / n as f64, split_refs.bytes() as f64 / n as f64);
    let mut order: Vec<usize> = (0..n).collect();
    let mut r = Rng(99);
    for i in (1..n).rev() {
        order.swap(i, r.below(i + 1));
    }
    let names = ["core", "refs", "wide", "split", "split-refs"];
    let mut gets = vec![Vec::new(); names.len()];
    let mut puts = vec![Vec::new(); names.len()];
    let mut chains = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        let v = (round as u32).to_le_bytes();
        let v = &v[..2];
        let sums = [
            time(|| order.iter().map(|&i| core.get(st, Key::Bytes(&keys[i]), &[], None).expect("a read").map_or(0, <[u8]>::len)).sum(), n),
            time(|| order.iter().map(|&i| refs.get(&keys[i]).map_or(0, <[u8]>::len)).sum(), n),
            time(|| order.iter().map(|&i| wide.get(&keys[i]).map_or(0, <[u8]>::len)).sum(), n),
            time(|| order.iter().map(|&i| split.get(&keys[i]).map_or(0, <[u8]>::len)).sum(), n),
            time(|| order.iter().map(|&i| split_refs.get(&keys[i]).map_or(0, <[u8]>::len)).sum(), n),
        ];
        let chain = [
            time(|| chained(&order, &keys, |k| core.get(st, Key::Bytes(k), &[], None).expect("a read").map_or(0, <[u8]>::len)), n),
            time(|| chained(&order, &keys, |k| refs.get(k).map_or(0, <[u8]>::len)), n),
            time(|| chained(&order, &keys, |k| wide.get(k).map_or(0, <[u8]>::len)), n),
            time(|| chained(&order, &keys, |k| split.get(k).map_or(0, <[u8]>::len)), n),
            time(|| chained(&order, &keys, |k| split_refs.get(k).map_or(0, <[u8]>::len)), n),
        ];
        for (j, (ns, sum)) in chain.iter().enumerate() {
            assert_eq!(*sum, 2 * n, "{} read every key", names[j]);
            chains[j].push(*ns);
        }
        for (j, (ns, sum)) in sums.iter().enumerate() {
            assert_eq!(*sum, 2 * n, "{} read every key", names[j]);
            gets[j].push(*ns);
        }
        puts[0].push(time(|| order.iter().map(|&i| core.put(st, Key::Bytes(&keys[i]), &[], v).map(|_| 1).expect("a write")).sum(), n).0);
        puts[1].push(time(|| order.iter().map(|&i| refs.put(&keys[i], v)).count(), n).0);
        puts[2].push(time(|| order.iter().map(|&i| wide.put(&keys[i], v)).count(), n).0);
        puts[3].push(time(|| order.iter().map(|&i| split.put(&keys[i], v)).count(), n).0);
        puts[4].push(time(|| order.iter().map(|&i| split_refs.put(&keys[i], v)).count(), n).0);
    }
    for j in 0..names.len() {
        println!(
            "{:>10}: get {:4.0} ns, get one at a time {:4.0} ns, overwrite {:4.0} ns (median of {rounds})",
            names[j],
            median(&mut gets[j]),
            median(&mut chains[j]),
            median(&mut puts[j])
        );
    }
}
