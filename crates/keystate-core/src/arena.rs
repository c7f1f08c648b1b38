//! Record arena: size-classed slabs in fixed 16 KiB pages, plus one heap
//! allocation per large record. Records are addressed by a 32-bit `Ref`.
//!
//! WebAssembly memory never shrinks, so the arena's job is reuse. It is a slab
//! allocator: a page holds slots of one size class and keeps its own free
//! list; a class allocates from its pages that have room (most recently freed
//! first); a page whose last slot is freed goes back to a pool that any class
//! takes pages from. So freed space is reused by records of the same size
//! at once, and by records of any size once whole pages empty.
//! Small classes are exact to the byte up to 64 bytes (most records are keys of
//! a few bytes plus small values), so a live record wastes almost nothing.

/// Address of a record: `page << PAGE_BITS | offset` for small records, or
/// `LARGE_BIT | index` for records with their own allocation.
pub type Ref = u32;

const PAGE_BITS: u32 = 14;
/// Bytes per slab page.
pub const PAGE_SIZE: usize = 1 << PAGE_BITS;
const OFFSET_MASK: u32 = (PAGE_SIZE as u32) - 1;
const LARGE_BIT: u32 = 1 << 31;
const MAX_PAGES: usize = 1 << (31 - PAGE_BITS);
/// Largest record kept in a slab; larger ones get their own allocation.
pub const MAX_SMALL: usize = 2048;
/// Smallest slot (a free slot holds the next free slot's index).
const MIN_SLOT: usize = 4;
const NONE: Ref = u32::MAX;

const NCLASS: usize = 101;

const fn build_classes() -> [u16; NCLASS] {
    let mut c = [0u16; NCLASS];
    let mut i = 0;
    let mut s = 4;
    while s <= 64 {
        c[i] = s;
        i += 1;
        s += 1;
    }
    s = 72;
    while s <= 256 {
        c[i] = s;
        i += 1;
        s += 8;
    }
    let tail = [288u16, 320, 352, 384, 448, 512, 576, 640, 768, 896, 1024, 1152, 1280, 1536, 1792, 2048];
    let mut t = 0;
    while t < tail.len() {
        c[i] = tail[t];
        i += 1;
        t += 1;
    }
    c
}

/// Slot size of each class, ascending.
pub const CLASSES: [u16; NCLASS] = build_classes();

const fn build_class_of() -> [u8; MAX_SMALL + 1] {
    let mut t = [0u8; MAX_SMALL + 1];
    let mut len = 0;
    let mut c = 0;
    while len <= MAX_SMALL {
        while (CLASSES[c] as usize) < len {
            c += 1;
        }
        t[len] = c as u8;
        len += 1;
    }
    t
}

static CLASS_OF: [u8; MAX_SMALL + 1] = build_class_of();

/// The smallest class that holds `len` bytes (`len <= MAX_SMALL`).
#[inline]
pub fn class_of(len: usize) -> u8 {
    CLASS_OF[len]
}

/// Slot size of the smallest class that holds `len` bytes, or `len` itself
/// for large records.
#[inline]
pub fn slot_size_for(len: usize) -> usize {
    if len <= MAX_SMALL {
        CLASSES[CLASS_OF[len] as usize] as usize
    } else {
        len
    }
}

/// Bookkeeping of one page.
#[derive(Clone, Copy, Debug)]
struct Page {
    /// Size class, or `FREE_PAGE` while in the pool.
    class: u8,
    /// Slots handed out and not freed.
    used: u16,
    /// Slots ever bumped from the page's start (free ones are on `free`).
    bumped: u16,
    /// Slot index + 1 of the first free slot; 0 for none. A free slot holds
    /// the next one as a u16.
    free: u16,
    /// Neighbours in its class's list of pages with room.
    prev: u32,
    next: u32,
}

const FREE_PAGE: u8 = u8::MAX;

/// The record arena.
#[derive(Debug)]
pub struct Arena {
    pages: Vec<Box<[u8]>>,
    meta: Vec<Page>,
    /// Per class: head of the list of its pages that have a free slot.
    room: [u32; NCLASS],
    /// Empty pages, for any class.
    pool: Vec<u32>,
    large: Vec<Option<Box<[u8]>>>,
    large_free: Vec<u32>,
    used: u64,
    large_bytes: u64,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    pub fn new() -> Self {
        Arena {
            pages: Vec::new(),
            meta: Vec::new(),
            room: [NONE; NCLASS],
            pool: Vec::new(),
            large: Vec::new(),
            large_free: Vec::new(),
            used: 0,
            large_bytes: 0,
        }
    }

    #[inline]
    pub fn is_large(r: Ref) -> bool {
        r & LARGE_BIT != 0
    }

    /// Allocates a slot of at least `len` bytes. With `class`, the slot is of
    /// that (larger) class: used for records that keep room to grow in place.
    /// Returns the ref and the slot size.
    pub fn alloc(&mut self, len: usize, class: Option<u8>) -> (Ref, usize) {
        let len = len.max(MIN_SLOT);
        if len > MAX_SMALL {
            return self.alloc_large(len);
        }
        let c = class.map_or_else(|| class_of(len), |c| c.max(class_of(len))) as usize;
        let size = CLASSES[c] as usize;
        let per_page = (PAGE_SIZE / size) as u16;
        let mut p = self.room[c];
        if p == NONE {
            p = self.new_page(c as u8);
        }
        let m = &mut self.meta[p as usize];
        let slot = if m.free != 0 {
            let slot = m.free - 1;
            let at = slot as usize * size;
            let b = &self.pages[p as usize][at..at + 2];
            m.free = u16::from_le_bytes([b[0], b[1]]);
            slot
        } else {
            m.bumped += 1;
            m.bumped - 1
        };
        m.used += 1;
        if m.free == 0 && m.bumped == per_page {
            self.unlink(p, c);
        }
        self.used += size as u64;
        ((p << PAGE_BITS) | (u32::from(slot) * size as u32), size)
    }

    /// A page for class `c` (from the pool, or new), at the head of its room list.
    fn new_page(&mut self, c: u8) -> u32 {
        let p = match self.pool.pop() {
            Some(p) => p,
            None => {
                assert!(self.pages.len() < MAX_PAGES, "record arena exhausted (2 GiB of small records)");
                self.pages.push(vec![0u8; PAGE_SIZE].into_boxed_slice());
                self.meta.push(Page { class: FREE_PAGE, used: 0, bumped: 0, free: 0, prev: NONE, next: NONE });
                (self.pages.len() - 1) as u32
            }
        };
        self.meta[p as usize] = Page { class: c, used: 0, bumped: 0, free: 0, prev: NONE, next: NONE };
        self.link(p, c as usize);
        p
    }

    fn link(&mut self, p: u32, c: usize) {
        let head = self.room[c];
        self.meta[p as usize].prev = NONE;
        self.meta[p as usize].next = head;
        if head != NONE {
            self.meta[head as usize].prev = p;
        }
        self.room[c] = p;
    }

    fn unlink(&mut self, p: u32, c: usize) {
        let Page { prev, next, .. } = self.meta[p as usize];
        if prev == NONE {
            self.room[c] = next;
        } else {
            self.meta[prev as usize].next = next;
        }
        if next != NONE {
            self.meta[next as usize].prev = prev;
        }
        self.meta[p as usize].prev = NONE;
        self.meta[p as usize].next = NONE;
    }

    fn alloc_large(&mut self, len: usize) -> (Ref, usize) {
        let buf = vec![0u8; len].into_boxed_slice();
        self.large_bytes += len as u64;
        self.used += len as u64;
        let idx = match self.large_free.pop() {
            Some(i) => {
                self.large[i as usize] = Some(buf);
                i
            }
            None => {
                self.large.push(Some(buf));
                (self.large.len() - 1) as u32
            }
        };
        (LARGE_BIT | idx, len)
    }

    /// Returns a slot to the arena. `slot_size` must be what `alloc` returned.
    pub fn free(&mut self, r: Ref, slot_size: usize) {
        if Self::is_large(r) {
            let idx = (r & !LARGE_BIT) as usize;
            let buf = self.large[idx].take().expect("double free of a large record");
            self.large_bytes -= buf.len() as u64;
            self.used -= buf.len() as u64;
            self.large_free.push(idx as u32);
            return;
        }
        let p = r >> PAGE_BITS;
        let c = self.meta[p as usize].class as usize;
        assert_eq!(CLASSES[c] as usize, slot_size, "free with a size that is not the page's slot size");
        self.used -= slot_size as u64;
        let per_page = (PAGE_SIZE / slot_size) as u16;
        let slot = ((r & OFFSET_MASK) as usize / slot_size) as u16;
        let m = self.meta[p as usize];
        let had_room = m.free != 0 || m.bumped < per_page;
        if m.used == 1 {
            // Last slot: the page goes back to the pool, for any class.
            if had_room {
                self.unlink(p, c);
            }
            self.meta[p as usize] = Page { class: FREE_PAGE, used: 0, bumped: 0, free: 0, prev: NONE, next: NONE };
            self.pool.push(p);
            return;
        }
        let at = (r & OFFSET_MASK) as usize;
        self.pages[p as usize][at..at + 2].copy_from_slice(&m.free.to_le_bytes());
        let m = &mut self.meta[p as usize];
        m.free = slot + 1;
        m.used -= 1;
        if !had_room {
            self.link(p, c);
        }
    }

    /// The bytes from `r` to the end of its page (small) or allocation (large).
    #[inline]
    pub fn bytes(&self, r: Ref) -> &[u8] {
        if r & LARGE_BIT != 0 {
            self.large[(r & !LARGE_BIT) as usize].as_deref().expect("dangling large ref")
        } else {
            &self.pages[(r >> PAGE_BITS) as usize][(r & OFFSET_MASK) as usize..]
        }
    }

    /// Mutable form of [`Arena::bytes`].
    #[inline]
    pub fn bytes_mut(&mut self, r: Ref) -> &mut [u8] {
        if r & LARGE_BIT != 0 {
            self.large[(r & !LARGE_BIT) as usize].as_deref_mut().expect("dangling large ref")
        } else {
            &mut self.pages[(r >> PAGE_BITS) as usize][(r & OFFSET_MASK) as usize..]
        }
    }

    /// Size of the slot behind a large ref.
    pub fn large_len(&self, r: Ref) -> usize {
        self.bytes(r).len()
    }

    /// Bytes held in slots that records occupy.
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    /// Bytes the arena holds from the allocator (pages plus large records).
    pub fn reserved_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE_SIZE as u64 + self.large_bytes
    }

    /// Empty pages waiting in the pool.
    #[cfg(test)]
    pub fn pooled_pages(&self) -> usize {
        self.pool.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_ascending_and_cover_every_length() {
        for w in CLASSES.windows(2) {
            assert!(w[0] < w[1]);
        }
        assert_eq!(*CLASSES.last().unwrap() as usize, MAX_SMALL);
        for len in 0..=MAX_SMALL {
            let c = CLASSES[class_of(len) as usize] as usize;
            assert!(c >= len.max(MIN_SLOT));
            if class_of(len) > 0 {
                assert!((CLASSES[class_of(len) as usize - 1] as usize) < len);
            }
        }
        // Exact to the byte for small records.
        for len in 4..=64 {
            assert_eq!(slot_size_for(len), len);
        }
    }

    #[test]
    fn freed_slots_are_reused_before_new_pages() {
        let mut a = Arena::new();
        let mut refs = Vec::new();
        for i in 0..10_000 {
            let (r, s) = a.alloc(20, None);
            assert_eq!(s, 20);
            a.bytes_mut(r)[..4].copy_from_slice(&(i as u32).to_le_bytes());
            refs.push(r);
        }
        let reserved = a.reserved_bytes();
        for (i, r) in refs.iter().enumerate() {
            assert_eq!(&a.bytes(*r)[..4], &(i as u32).to_le_bytes());
        }
        for r in refs.drain(..) {
            a.free(r, 20);
        }
        assert_eq!(a.used_bytes(), 0);
        for _ in 0..10_000 {
            refs.push(a.alloc(20, None).0);
        }
        assert_eq!(a.reserved_bytes(), reserved, "reuse must not grow the arena");
        let (big, s) = a.alloc(10_000, None);
        assert_eq!(s, 10_000);
        assert!(Arena::is_large(big));
        a.free(big, s);
        let (big2, _) = a.alloc(5_000, None);
        assert_eq!(big, big2, "large slots are reused too");
    }

    #[test]
    fn emptied_pages_are_reused_by_other_sizes() {
        // Values that grow from round to round: each round frees every slot of
        // one size and allocates another. The arena must stay about one
        // round's size, not grow by one round's worth each time.
        let mut a = Arena::new();
        let mut refs: Vec<(Ref, usize)> = (0..5000).map(|_| a.alloc(100, None)).collect();
        let one_round = a.reserved_bytes();
        for round in 1..30usize {
            for (r, s) in refs.drain(..) {
                a.free(r, s);
            }
            assert_eq!(a.used_bytes(), 0);
            refs = (0..5000).map(|_| a.alloc(100 + round * 8, None)).collect();
        }
        assert!(a.reserved_bytes() < one_round * 4, "{} bytes after 30 rounds, one round {}", a.reserved_bytes(), one_round);
        // A page of mixed live and free slots keeps its class; the rest is pooled.
        for (r, s) in refs.drain(..).skip(1) {
            a.free(r, s);
        }
        assert!(a.pooled_pages() > 0);
    }

    #[test]
    fn a_class_that_fills_its_page_exactly_starts_a_new_page() {
        // 2048 divides the page size: the ninth slot must not run into the
        // next page, which may belong to another class.
        let mut a = Arena::new();
        let mut refs = Vec::new();
        for i in 0..20u8 {
            let (r, _) = a.alloc(2048, None);
            let (q, _) = a.alloc(8, None);
            a.bytes_mut(r)[..2048].fill(i);
            a.bytes_mut(q)[..8].fill(100 + i);
            refs.push((r, q, i));
        }
        for (r, q, i) in refs {
            assert!(a.bytes(r)[..2048].iter().all(|b| *b == i));
            assert!(a.bytes(q)[..8].iter().all(|b| *b == 100 + i));
        }
    }
}
