//! A checkpoint as its parts, and sealing: writing the parts back with every
//! length, index entry and checksum recomputed, as any writer of the format
//! could (xxh3 is no MAC). Written from docs/FORMAT.md, not from the core's
//! reader, so that the two can disagree.
//!
//! ```text
//! file     = preamble header header_checksum section* footer trailer
//! preamble = magic[8] version:u16 flags:u16 header_len:u32
//! section  = 0x01 key_group:u32 body_len:u32 body checksum:u64
//! footer   = 0x02 footer_len:u32 count:varint index_entry* records:u64 checksum:u64
//! trailer  = footer_offset:u64 file_checksum:u64 end_magic[8]
//! ```
//!
//! A mutation changes content (bytes of the header, a body, the list of
//! parts), and sealing derives everything else; or it tells a lie, pinning
//! one derived field to a wrong value, and sealing derives the rest around
//! it. Either way every checksum matches what it covers, unless a lie is
//! about a checksum itself.

use crate::model::{count_records, put_varint};

pub const MAGIC: [u8; 8] = *b"\x89KSTATE\n";
pub const END_MAGIC: [u8; 8] = *b"KSTATEND";
pub const TAG_SECTION: u8 = 0x01;
pub const TAG_FOOTER: u8 = 0x02;

/// xxh3-64: every checksum of the format.
pub fn xxh3(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}

/// A section, or bytes where a part should start that are no section.
#[derive(Debug, Clone)]
pub enum Part {
    Section(Section),
    /// Junk, a part with an unknown tag, a second footer.
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Section {
    pub tag: u8,
    pub kg: u32,
    pub body: Vec<u8>,
    /// A lie: the body length written instead of the true one.
    pub body_len: Option<u32>,
    /// A lie: the checksum written instead of the true one.
    pub sum: Option<u64>,
}

impl Section {
    pub fn new(kg: u32, body: Vec<u8>) -> Section {
        Section { tag: TAG_SECTION, kg, body, body_len: None, sum: None }
    }
}

/// The footer body: derived from the sections, then edited; or raw bytes.
#[derive(Debug, Clone)]
pub enum Footer {
    Index(Vec<IndexEdit>),
    Raw(Vec<u8>),
}

/// An edit of the derived section index.
#[derive(Debug, Clone, Copy)]
pub enum IndexEdit {
    Drop(usize),
    Dup(usize),
    Swap(usize, usize),
    /// Field 0 key group, 1 offset, 2 length, 3 checksum.
    Field { entry: usize, field: u8, value: u64 },
}

/// Derived fields pinned to a value (a lie).
#[derive(Debug, Clone, Default)]
pub struct Lies {
    pub header_len: Option<u32>,
    pub header_sum: Option<u64>,
    pub footer_tag: Option<u8>,
    pub footer_len: Option<u32>,
    pub footer_sum: Option<u64>,
    pub footer_offset: Option<u64>,
    pub file_sum: Option<u64>,
    pub records: Option<u64>,
    pub index_count: Option<u64>,
}

/// A checkpoint split into its parts.
#[derive(Debug, Clone)]
pub struct Wire {
    pub magic: [u8; 8],
    pub version: u16,
    pub flags: u16,
    pub header: Vec<u8>,
    pub parts: Vec<Part>,
    pub footer: Footer,
    pub end_magic: [u8; 8],
    /// Bytes after the trailer.
    pub extra: Vec<u8>,
    pub lies: Lies,
}

/// One entry of the section index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kg: u32,
    pub offset: u64,
    pub len: u64,
    pub sum: u64,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Wire {
    /// Splits a well-formed checkpoint (a seed) into parts; `None` if it is not one.
    pub fn parse(b: &[u8]) -> Option<Wire> {
        if b.get(..8)? != MAGIC {
            return None;
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        let flags = u16::from_le_bytes([b[10], b[11]]);
        let hl = u32_at(b, 12)? as usize;
        let header = b.get(16..16 + hl)?.to_vec();
        let mut p = 16 + hl + 8;
        let mut parts = Vec::new();
        while *b.get(p)? == TAG_SECTION {
            let kg = u32_at(b, p + 1)?;
            let bl = u32_at(b, p + 5)? as usize;
            parts.push(Part::Section(Section::new(kg, b.get(p + 9..p + 9 + bl)?.to_vec())));
            p += 9 + bl + 8;
        }
        let fl = u32_at(b, p + 1)? as usize;
        let end = p + 5 + fl + 8 + 24;
        let end_magic: [u8; 8] = b.get(end - 8..end)?.try_into().ok()?;
        let w = Wire {
            magic: MAGIC,
            version,
            flags,
            header,
            parts,
            footer: Footer::Index(Vec::new()),
            end_magic,
            extra: b[end..].to_vec(),
            lies: Lies::default(),
        };
        // Sealing a parsed seed must give its bytes back: the harness agrees with the writer.
        (w.seal().0 == b).then_some(w)
    }

    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.parts.iter().filter_map(|p| match p {
            Part::Section(s) => Some(s),
            Part::Raw(_) => None,
        })
    }

    pub fn sections_mut(&mut self) -> impl Iterator<Item = &mut Section> {
        self.parts.iter_mut().filter_map(|p| match p {
            Part::Section(s) => Some(s),
            Part::Raw(_) => None,
        })
    }

    /// The section index a writer would write for these parts, then edited.
    fn index(&self, edits: &[IndexEdit]) -> Vec<Entry> {
        let mut at = 16 + self.header.len() as u64 + 8;
        let mut entries = Vec::new();
        for p in &self.parts {
            match p {
                Part::Section(s) => {
                    let len = 9 + s.body.len() as u64 + 8;
                    entries.push(Entry { kg: s.kg, offset: at, len, sum: section_sum(s) });
                    at += len;
                }
                Part::Raw(r) => at += r.len() as u64,
            }
        }
        for e in edits {
            let n = entries.len();
            match *e {
                IndexEdit::Drop(i) if n > 0 => drop(entries.remove(i % n)),
                IndexEdit::Dup(i) if n > 0 => entries.insert(i % n, entries[i % n]),
                IndexEdit::Swap(i, j) if n > 0 => entries.swap(i % n, j % n),
                IndexEdit::Field { entry, field, value } if n > 0 => {
                    let e = &mut entries[entry % n];
                    match field % 4 {
                        0 => e.kg = value as u32,
                        1 => e.offset = value,
                        2 => e.len = value,
                        _ => e.sum = value,
                    }
                }
                _ => {}
            }
        }
        entries
    }

    /// The footer body as written.
    pub fn footer_body(&self) -> Vec<u8> {
        let edits = match &self.footer {
            Footer::Raw(b) => return b.clone(),
            Footer::Index(edits) => edits,
        };
        let entries = self.index(edits);
        let mut out = Vec::new();
        put_varint(&mut out, self.lies.index_count.unwrap_or(entries.len() as u64));
        for e in &entries {
            out.extend_from_slice(&e.kg.to_le_bytes());
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.len.to_le_bytes());
            out.extend_from_slice(&e.sum.to_le_bytes());
        }
        let records = self.sections().map(|s| count_records(&s.body)).fold(0u64, u64::wrapping_add);
        out.extend_from_slice(&self.lies.records.unwrap_or(records).to_le_bytes());
        out
    }

    /// The checkpoint's bytes, every derived field recomputed unless pinned
    /// by a lie; and the file checksum written.
    pub fn seal(&self) -> (Vec<u8>, u64) {
        let l = &self.lies;
        let mut out = Vec::with_capacity(self.header.len() + 64);
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&l.header_len.unwrap_or(self.header.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.header);
        let header_sum = l.header_sum.unwrap_or_else(|| xxh3(&out));
        out.extend_from_slice(&header_sum.to_le_bytes());
        let mut sums = header_sum.to_le_bytes().to_vec();
        for p in &self.parts {
            match p {
                Part::Section(s) => {
                    let start = out.len();
                    write_section_head(s, &mut out);
                    out.extend_from_slice(&s.body);
                    let sum = s.sum.unwrap_or_else(|| xxh3(&out[start..]));
                    out.extend_from_slice(&sum.to_le_bytes());
                    if s.tag == TAG_SECTION {
                        sums.extend_from_slice(&sum.to_le_bytes());
                    }
                }
                Part::Raw(r) => out.extend_from_slice(r),
            }
        }
        let footer_offset = out.len() as u64;
        let body = self.footer_body();
        let start = out.len();
        out.push(l.footer_tag.unwrap_or(TAG_FOOTER));
        out.extend_from_slice(&l.footer_len.unwrap_or(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let footer_sum = l.footer_sum.unwrap_or_else(|| xxh3(&out[start..]));
        out.extend_from_slice(&footer_sum.to_le_bytes());
        sums.extend_from_slice(&footer_sum.to_le_bytes());
        let file_sum = l.file_sum.unwrap_or_else(|| xxh3(&sums));
        out.extend_from_slice(&l.footer_offset.unwrap_or(footer_offset).to_le_bytes());
        out.extend_from_slice(&file_sum.to_le_bytes());
        out.extend_from_slice(&self.end_magic);
        out.extend_from_slice(&self.extra);
        (out, file_sum)
    }
}

fn write_section_head(s: &Section, out: &mut Vec<u8>) {
    out.push(s.tag);
    out.extend_from_slice(&s.kg.to_le_bytes());
    out.extend_from_slice(&s.body_len.unwrap_or(s.body.len() as u32).to_le_bytes());
}

/// The checksum a section carries (its lie, or the true one).
pub fn section_sum(s: &Section) -> u64 {
    s.sum.unwrap_or_else(|| {
        let mut b = Vec::with_capacity(9 + s.body.len());
        write_section_head(s, &mut b);
        b.extend_from_slice(&s.body);
        xxh3(&b)
    })
}
