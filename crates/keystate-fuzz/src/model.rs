//! Decoded headers and section bodies, for mutations that keep the bytes
//! well-formed and change what they mean (docs/FORMAT.md, "Header" and
//! "Sections"). Encoding derives every length and count unless a record or
//! block carries a lie.

/// Appends `v` as LEB128.
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    put_varint_padded(out, v, 0);
}

/// LEB128 with `pad` needless continuation bytes (an overlong encoding).
pub fn put_varint_padded(out: &mut Vec<u8>, mut v: u64, pad: u8) {
    let mut left = pad;
    loop {
        let more = v >= 0x80 || left > 0;
        out.push((v as u8 & 0x7f) | if more { 0x80 } else { 0 });
        if v < 0x80 {
            if left == 0 {
                return;
            }
            left -= 1;
        }
        v >>= 7;
        if !more {
            return;
        }
    }
}

/// A bounds-checked reader (`None` on any short or overlong field).
struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f).checked_shl(7 * i)?;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn field(&mut self) -> Option<Vec<u8>> {
        let n = usize::try_from(self.varint()?).ok()?;
        Some(self.take(n)?.to_vec())
    }
    fn done(&self) -> bool {
        self.p == self.b.len()
    }
}

/// One state of a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub sid: u64,
    pub kind: u8,
    pub name: Vec<u8>,
    pub value_codec: Vec<u8>,
    pub uk_codec: Vec<u8>,
    pub ttl: Ttl,
}

/// A state's TTL field (docs/FORMAT.md, "Header"): version 0 (none), or 1
/// with its configuration, or bytes written as the field (a lie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ttl {
    None,
    V1 { ms: u64, update: u8, visibility: u8, cleanup: u8, size: u64 },
    Raw(Vec<u8>),
}

impl Ttl {
    fn decode(c: &mut Cursor<'_>) -> Option<Ttl> {
        match c.u8()? {
            0 => Some(Ttl::None),
            1 => {
                let (ms, update, visibility, cleanup) = (c.varint()?, c.u8()?, c.u8()?, c.u8()?);
                let size = if cleanup & 1 != 0 { c.varint()? } else { 0 };
                Some(Ttl::V1 { ms, update, visibility, cleanup, size })
            }
            // Another version: its length is unknown here.
            _ => None,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ttl::None => out.push(0),
            Ttl::V1 { ms, update, visibility, cleanup, size } => {
                out.push(1);
                put_varint(out, *ms);
                out.extend_from_slice(&[*update, *visibility, *cleanup]);
                if cleanup & 1 != 0 {
                    put_varint(out, *size);
                }
            }
            Ttl::Raw(b) => out.extend_from_slice(b),
        }
    }

    pub fn is_some(&self) -> bool {
        !matches!(self, Ttl::None)
    }
}

/// A header body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub id: u64,
    pub parent_id: u64,
    pub parent_link: u64,
    pub link: u64,
    pub store_id: [u8; 16],
    pub mp: u32,
    pub start: u32,
    pub end: u32,
    pub states: Vec<State>,
    /// A lie: the state count written instead of the true one.
    pub state_count: Option<u64>,
    /// Bytes after the last state (a writer writes none).
    pub trailing: Vec<u8>,
}

impl Header {
    pub fn decode(b: &[u8]) -> Option<Header> {
        let mut c = Cursor { b, p: 0 };
        let kind = c.u8()?;
        let (id, parent_id, parent_link, link) = (c.u64()?, c.u64()?, c.u64()?, c.u64()?);
        let store_id = c.take(16)?.try_into().ok()?;
        let (mp, start, end) = (c.u32()?, c.u32()?, c.u32()?);
        let n = c.varint()?;
        let mut states = Vec::new();
        for _ in 0..n {
            states.push(State {
                sid: c.varint()?,
                kind: c.u8()?,
                name: c.field()?,
                value_codec: c.field()?,
                uk_codec: c.field()?,
                ttl: Ttl::decode(&mut c)?,
            });
        }
        let trailing = b[c.p..].to_vec();
        Some(Header { kind, id, parent_id, parent_link, link, store_id, mp, start, end, states, state_count: None, trailing })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.kind];
        for v in [self.id, self.parent_id, self.parent_link, self.link] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.store_id);
        for v in [self.mp, self.start, self.end] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_varint(&mut out, self.state_count.unwrap_or(self.states.len() as u64));
        for s in &self.states {
            put_varint(&mut out, s.sid);
            out.push(s.kind);
            for f in [&s.name, &s.value_codec, &s.uk_codec] {
                put_varint(&mut out, f.len() as u64);
                out.extend_from_slice(f);
            }
            s.ttl.encode(&mut out);
        }
        out.extend_from_slice(&self.trailing);
        out
    }

    /// The header of a checkpoint file, as far as its preamble's length says.
    pub fn of_file(b: &[u8]) -> Option<Header> {
        let hl = u32::from_le_bytes(b.get(12..16)?.try_into().ok()?) as usize;
        Header::decode(b.get(16..16usize.checked_add(hl)?)?)
    }

    pub fn is_incremental(&self) -> bool {
        self.kind == 1
    }
}

pub const PUT: u8 = 0;
pub const DELETE: u8 = 1;
pub const MAP_PUT: u8 = 2;
pub const MAP_DELETE: u8 = 3;
pub const MAP_CLEAR: u8 = 4;
/// Format version 2: `n` PUT records without their op bytes follow.
pub const RUN: u8 = 5;

/// Which lengths follow the head, by op: (user key, value).
fn lengths(op: u8) -> (bool, bool) {
    match op {
        PUT => (false, true),
        MAP_PUT => (true, true),
        MAP_DELETE => (true, false),
        _ => (false, false),
    }
}

/// One record of a block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub op: u8,
    /// Head bits 1 and 2 (a writer sets neither).
    pub flags: u8,
    /// Head bit 0 with an empty namespace (a writer sets it only with one).
    pub ns_flag: bool,
    pub key: Vec<u8>,
    pub ns: Vec<u8>,
    pub uk: Vec<u8>,
    pub value: Vec<u8>,
    /// A lie: (which length: 0 key, 1 ns, 2 user key, 3 value; the value written).
    pub len_lie: Option<(u8, u64)>,
    /// Needless continuation bytes in every varint of the record.
    pub pad: u8,
    /// Written as the first record of a RUN that claims this many.
    pub run: Option<u64>,
    /// Written without its op, as a later record of a RUN.
    pub in_run: bool,
}

impl Record {
    pub fn new(op: u8, key: &[u8], ns: &[u8], uk: &[u8], value: &[u8]) -> Record {
        Record { op, key: key.to_vec(), ns: ns.to_vec(), uk: uk.to_vec(), value: value.to_vec(), ..Record::default() }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let lie = |which: u8, v: usize| match self.len_lie {
            Some((w, l)) if w == which => l,
            _ => v as u64,
        };
        let with_ns = self.ns_flag || !self.ns.is_empty();
        if let Some(n) = self.run {
            out.push(RUN);
            put_varint_padded(out, n, self.pad);
        } else if !self.in_run {
            out.push(self.op);
        }
        let head = (lie(0, self.key.len()) << 3) | u64::from(self.flags & 0b110) | u64::from(with_ns);
        put_varint_padded(out, head, self.pad);
        if with_ns {
            put_varint_padded(out, lie(1, self.ns.len()), self.pad);
        }
        let (with_uk, with_value) = lengths(self.op);
        if with_uk {
            put_varint_padded(out, lie(2, self.uk.len()), self.pad);
        }
        if with_value {
            put_varint_padded(out, lie(3, self.value.len()), self.pad);
        }
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.ns);
        if with_uk {
            out.extend_from_slice(&self.uk);
        }
        if with_value {
            out.extend_from_slice(&self.value);
        }
    }
}

/// A block: one state's records in one section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub sid: u64,
    /// A lie: the record count written instead of the true one.
    pub count: Option<u32>,
    pub records: Vec<Record>,
}

/// Decodes a section body; `None` unless it is well-formed with known ops.
pub fn decode_body(b: &[u8]) -> Option<Vec<Block>> {
    let mut c = Cursor { b, p: 0 };
    let mut blocks = Vec::new();
    while !c.done() {
        let sid = c.varint()?;
        let n = c.u32()?;
        // A well-formed record takes two bytes at least.
        if n as usize > (b.len() - c.p) / 2 {
            return None;
        }
        let mut records = Vec::with_capacity(n as usize);
        let mut in_run = 0u64;
        for left in (1..=u64::from(n)).rev() {
            let cont = in_run > 0;
            let (op, run) = read_op(&mut c, &mut in_run)?;
            if op > MAP_CLEAR || run.is_some_and(|k| k > left) {
                return None;
            }
            let head = c.varint()?;
            let ns_flag = head & 1 != 0;
            let nl = if ns_flag { c.varint()? } else { 0 };
            let (with_uk, with_value) = lengths(op);
            let ul = if with_uk { c.varint()? } else { 0 };
            let vl = if with_value { c.varint()? } else { 0 };
            let mut take = |n: u64| Some(c.take(usize::try_from(n).ok()?)?.to_vec());
            let key = take(head >> 3)?;
            let (ns, uk, value) = (take(nl)?, take(ul)?, take(vl)?);
            records.push(Record { op, flags: head as u8 & 0b110, ns_flag: ns_flag && ns.is_empty(), key, ns, uk, value, len_lie: None, pad: 0, run, in_run: cont });
        }
        blocks.push(Block { sid, count: None, records });
    }
    Some(blocks)
}

pub fn encode_body(blocks: &[Block]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in blocks {
        put_varint(&mut out, b.sid);
        out.extend_from_slice(&b.count.unwrap_or(b.records.len() as u32).to_le_bytes());
        for r in &b.records {
            r.encode(&mut out);
        }
    }
    out
}

/// Records a footer counts for a body: the counts of its blocks, as far as
/// the blocks can be read (a body that cannot be read fails restore anyway).
pub fn count_records(b: &[u8]) -> u64 {
    let mut c = Cursor { b, p: 0 };
    let mut total = 0u64;
    while !c.done() {
        let (Some(_), Some(n)) = (c.varint(), c.u32()) else { break };
        total = total.wrapping_add(u64::from(n));
        let mut in_run = 0u64;
        for _ in 0..n {
            if skip_record(&mut c, &mut in_run).is_none() {
                return total;
            }
        }
    }
    total
}

/// The op of the next record, and the count of a RUN it opens; `in_run`
/// counts the records of a RUN still to come (they have no op byte). `None`
/// for a RUN of no records, or at the end of the input.
fn read_op(c: &mut Cursor<'_>, in_run: &mut u64) -> Option<(u8, Option<u64>)> {
    if *in_run > 0 {
        *in_run -= 1;
        return Some((PUT, None));
    }
    match c.u8()? {
        RUN => {
            let k = c.varint()?;
            *in_run = k.checked_sub(1)?;
            Some((PUT, Some(k)))
        }
        op => Some((op, None)),
    }
}

/// Skips one record; `in_run` counts the records of a RUN still to come.
fn skip_record(c: &mut Cursor<'_>, in_run: &mut u64) -> Option<()> {
    let (op, _) = read_op(c, in_run)?;
    let head = c.varint()?;
    let nl = if head & 1 != 0 { c.varint()? } else { 0 };
    let (with_uk, with_value) = lengths(op);
    let ul = if with_uk { c.varint()? } else { 0 };
    let vl = if with_value { c.varint()? } else { 0 };
    let total = (head >> 3).checked_add(nl)?.checked_add(ul)?.checked_add(vl)?;
    c.take(usize::try_from(total).ok()?)?;
    Some(())
}

/// MurmurHash3_x86_32 with seed 0 (docs/FORMAT.md, "Key groups").
pub fn murmur3(data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    let mut h = 0u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        h ^= mix(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        h ^= mix(tail.iter().enumerate().fold(0u32, |k, (i, b)| k | (u32::from(*b) << (8 * i))));
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

pub fn key_group(key: &[u8], mp: u32) -> u32 {
    if mp == 0 {
        0
    } else {
        murmur3(key) % mp
    }
}

/// Extends `key` until it hashes into key group `kg` of `mp` (a record that
/// passes the reader's key-group check); gives up after a bounded search.
pub fn fit_key(key: &mut Vec<u8>, kg: u32, mp: u32) {
    if mp == 0 || key_group(key, mp) == kg {
        return;
    }
    let base = key.len();
    // About 4 * mp tries find one for a small mp; a large one is not worth
    // the time (the record then lands in the wrong group: also a case).
    for i in 0u32..(mp.saturating_mul(4).min(4096)) {
        key.truncate(base);
        key.extend_from_slice(&i.to_le_bytes()[..if i < 256 { 1 } else if i < 65536 { 2 } else { 3 }]);
        if key_group(key, mp) == kg {
            return;
        }
    }
}
