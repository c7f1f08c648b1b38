//! Reading a checkpoint as a stream of chunks of any size. Each part is
//! handed on only after its checksum matched; the file checksum, the footer's
//! index and the trailer are checked at the end, before [`Decoder::finish`]
//! returns. Callers build into state that is not yet visible and drop it on
//! any error, so bad input never leaves partial state behind.

use super::{
    checksum, FileHash, Footer, Header, IndexEntry, END_MAGIC, MAGIC, MAX_META_LEN, PREAMBLE_LEN, SECTION_HEAD_LEN, TAG_FOOTER,
    TAG_SECTION, TRAILER_LEN, MIN_VERSION, VERSION,
};
use crate::error::{Error, Result};

/// A verified part of a checkpoint.
#[derive(Debug)]
pub enum Event<'a> {
    Header(&'a Header),
    Section { key_group: u32, body: &'a [u8] },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preamble,
    /// Header length, format version.
    Header(usize, u16),
    Item,
    Footer(usize),
    Trailer,
    Done,
}

/// What a complete, verified checkpoint was.
#[derive(Debug, Clone)]
pub struct Summary {
    pub header: Header,
    pub footer: Footer,
    pub file_checksum: u64,
    pub bytes: u64,
}

impl Summary {
    /// The checksum that a child checkpoint names as its parent link.
    pub fn link(&self) -> u64 {
        if self.header.link != 0 {
            self.header.link
        } else {
            self.file_checksum
        }
    }
}

/// Streaming checkpoint decoder.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Consumed bytes at the front of `buf`.
    start: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    phase: Phase,
    header: Option<Header>,
    file: FileHash,
    seen: Vec<IndexEntry>,
    footer_offset: u64,
    footer: Option<Footer>,
    file_checksum: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            offset: 0,
            phase: Phase::Preamble,
            header: None,
            file: FileHash::default(),
            seen: Vec::new(),
            footer_offset: 0,
            footer: None,
            file_checksum: 0,
        }
    }

    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// Bytes accepted so far.
    pub fn position(&self) -> u64 {
        self.offset + (self.buf.len() - self.start) as u64
    }

    /// Feeds the next chunk; `on` receives each verified part.
    pub fn feed(&mut self, chunk: &[u8], on: &mut dyn FnMut(Event<'_>) -> Result<()>) -> Result<()> {
        if self.phase == Phase::Done {
            if chunk.is_empty() {
                return Ok(());
            }
            return Err(Error::Corrupt("bytes after the end of the checkpoint".into()));
        }
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        crate::room::reserve_bytes(&mut self.buf, chunk.len())?;
        self.buf.extend_from_slice(chunk);
        while self.step(on)? {}
        Ok(())
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Parses one part if it is complete; false when more input is needed.
    fn step(&mut self, on: &mut dyn FnMut(Event<'_>) -> Result<()>) -> Result<bool> {
        let a = self.avail();
        match self.phase {
            Phase::Preamble => {
                if a.len() < PREAMBLE_LEN {
                    // Reject wrong magic as soon as the bytes that differ are here.
                    if a[..a.len().min(8)] != MAGIC[..a.len().min(8)] {
                        return Err(Error::BadMagic);
                    }
                    return Ok(false);
                }
                if a[..8] != MAGIC {
                    return Err(Error::BadMagic);
                }
                let version = u16::from_le_bytes([a[8], a[9]]);
                if !(MIN_VERSION..=VERSION).contains(&version) {
                    return Err(Error::UnsupportedVersion(version));
                }
                let flags = u16::from_le_bytes([a[10], a[11]]);
                if flags != 0 {
                    return Err(Error::Corrupt(format!("unknown preamble flags {flags:#x}")));
                }
                let len = u32::from_le_bytes([a[12], a[13], a[14], a[15]]);
                if len > MAX_META_LEN {
                    return Err(Error::Corrupt(format!("header of {len} bytes")));
                }
                self.phase = Phase::Header(len as usize, version);
                Ok(true)
            }
            Phase::Header(len, version) => {
                let total = PREAMBLE_LEN + len + 8;
                if a.len() < total {
                    return Ok(false);
                }
                let want = u64::from_le_bytes(a[total - 8..total].try_into().expect("8 bytes"));
                if checksum(&a[..total - 8]) != want {
                    return Err(Error::ChecksumMismatch("header".into()));
                }
                let header = Header::decode(&a[PREAMBLE_LEN..total - 8], version)?;
                self.file.update(&want.to_le_bytes());
                self.header = Some(header);
                self.consume(total);
                on(Event::Header(self.header.as_ref().expect("set above")))?;
                self.phase = Phase::Item;
                Ok(true)
            }
            Phase::Item => {
                let Some(&tag) = a.first() else { return Ok(false) };
                match tag {
                    TAG_SECTION => self.section(on),
                    TAG_FOOTER => {
                        if a.len() < 5 {
                            return Ok(false);
                        }
                        let len = u32::from_le_bytes([a[1], a[2], a[3], a[4]]);
                        if len > MAX_META_LEN {
                            return Err(Error::Corrupt(format!("footer of {len} bytes")));
                        }
                        self.footer_offset = self.offset;
                        self.phase = Phase::Footer(len as usize);
                        Ok(true)
                    }
                    other => Err(Error::Corrupt(format!("unknown part tag {other:#x} at byte {}", self.offset))),
                }
            }
            Phase::Footer(len) => {
                let total = 5 + len + 8;
                if a.len() < total {
                    return Ok(false);
                }
                let want = u64::from_le_bytes(a[total - 8..total].try_into().expect("8 bytes"));
                if checksum(&a[..total - 8]) != want {
                    return Err(Error::ChecksumMismatch("footer".into()));
                }
                let footer = Footer::decode(&a[5..total - 8])?;
                if footer.sections != self.seen {
                    return Err(Error::Corrupt("the footer's section index does not match the sections".into()));
                }
                self.file.update(&want.to_le_bytes());
                self.footer = Some(footer);
                self.consume(total);
                self.phase = Phase::Trailer;
                Ok(true)
            }
            Phase::Trailer => {
                if a.len() < TRAILER_LEN {
                    return Ok(false);
                }
                let footer_offset = u64::from_le_bytes(a[..8].try_into().expect("8 bytes"));
                let file_sum = u64::from_le_bytes(a[8..16].try_into().expect("8 bytes"));
                if a[16..24] != END_MAGIC {
                    return Err(Error::Corrupt("bad end magic".into()));
                }
                if footer_offset != self.footer_offset {
                    return Err(Error::Corrupt("trailer points to the wrong footer offset".into()));
                }
                if file_sum != self.file.digest() {
                    return Err(Error::ChecksumMismatch("file".into()));
                }
                if a.len() > TRAILER_LEN {
                    return Err(Error::Corrupt("bytes after the end of the checkpoint".into()));
                }
                self.file_checksum = file_sum;
                self.consume(TRAILER_LEN);
                self.phase = Phase::Done;
                Ok(false)
            }
            Phase::Done => Ok(false),
        }
    }

    fn section(&mut self, on: &mut dyn FnMut(Event<'_>) -> Result<()>) -> Result<bool> {
        let a = self.avail();
        if a.len() < SECTION_HEAD_LEN {
            return Ok(false);
        }
        let kg = u32::from_le_bytes([a[1], a[2], a[3], a[4]]);
        let body_len = u32::from_le_bytes([a[5], a[6], a[7], a[8]]);
        let header = self.header.as_ref().expect("header precedes sections");
        if !header.key_groups.contains(kg) {
            return Err(Error::Corrupt(format!("section for key group {kg} outside the checkpoint's range")));
        }
        if self.seen.last().is_some_and(|e| e.key_group >= kg) {
            return Err(Error::Corrupt(format!("section for key group {kg} out of order")));
        }
        // In u64: on wasm32 a body length near 4 GiB would wrap a usize sum.
        let total = SECTION_HEAD_LEN as u64 + u64::from(body_len) + 8;
        if (a.len() as u64) < total {
            return Ok(false);
        }
        let (total, body_len) = (total as usize, body_len as usize);
        let want = u64::from_le_bytes(a[total - 8..total].try_into().expect("8 bytes"));
        if checksum(&a[..total - 8]) != want {
            return Err(Error::ChecksumMismatch(format!("section of key group {kg}")));
        }
        self.file.update(&want.to_le_bytes());
        self.seen.push(IndexEntry { key_group: kg, offset: self.offset, len: total as u64, checksum: want });
        let (s, e) = (self.start + SECTION_HEAD_LEN, self.start + SECTION_HEAD_LEN + body_len);
        on(Event::Section { key_group: kg, body: &self.buf[s..e] })?;
        self.consume(total);
        Ok(true)
    }

    /// Ends the input: the checkpoint must be complete.
    pub fn finish(self) -> Result<Summary> {
        if self.phase != Phase::Done && self.avail().ends_with(&END_MAGIC) {
            // The input is whole (it ends with the trailer), yet a length
            // field asked for more: the length is damaged, not the input short.
            return Err(Error::Corrupt(format!(
                "a length field points past the end of the checkpoint ({} bytes)",
                self.position()
            )));
        }
        if self.phase != Phase::Done {
            let at = match self.phase {
                Phase::Preamble | Phase::Header(..) => "in the header",
                Phase::Item => "before the footer",
                Phase::Footer(_) => "in the footer",
                _ => "in the trailer",
            };
            return Err(Error::Truncated(format!("input ends {at} after {} bytes", self.position())));
        }
        Ok(Summary {
            header: self.header.expect("done implies header"),
            footer: self.footer.expect("done implies footer"),
            file_checksum: self.file_checksum,
            bytes: self.offset,
        })
    }
}

/// Reads the trailer (the last 24 bytes of a file): footer offset and file
/// checksum, for readers that seek to the sections they need.
pub fn read_trailer(t: &[u8]) -> Result<(u64, u64)> {
    if t.len() != TRAILER_LEN || t[16..24] != END_MAGIC {
        return Err(Error::Corrupt("bad trailer".into()));
    }
    Ok((u64::from_le_bytes(t[..8].try_into().expect("8 bytes")), u64::from_le_bytes(t[8..16].try_into().expect("8 bytes"))))
}

/// Verifies and decodes a footer read by offset (tag to checksum).
pub fn read_footer(b: &[u8]) -> Result<Footer> {
    if b.len() < 13 || b[0] != TAG_FOOTER {
        return Err(Error::Corrupt("bad footer".into()));
    }
    let len = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    if b.len() as u64 != 5 + u64::from(len) + 8 {
        return Err(Error::Corrupt("footer length".into()));
    }
    let want = u64::from_le_bytes(b[b.len() - 8..].try_into().expect("8 bytes"));
    if checksum(&b[..b.len() - 8]) != want {
        return Err(Error::ChecksumMismatch("footer".into()));
    }
    Footer::decode(&b[5..b.len() - 8])
}

/// Verifies one section read by offset against its index entry; returns its body.
pub fn read_section<'a>(b: &'a [u8], entry: &IndexEntry) -> Result<&'a [u8]> {
    if b.len() as u64 != entry.len || b.len() < SECTION_HEAD_LEN + 8 || b[0] != TAG_SECTION {
        return Err(Error::Corrupt(format!("section of key group {}", entry.key_group)));
    }
    let kg = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    let body_len = u32::from_le_bytes([b[5], b[6], b[7], b[8]]);
    if kg != entry.key_group || SECTION_HEAD_LEN as u64 + u64::from(body_len) + 8 != b.len() as u64 {
        return Err(Error::Corrupt(format!("section of key group {}", entry.key_group)));
    }
    let sum = checksum(&b[..b.len() - 8]);
    if sum != entry.checksum || b[b.len() - 8..] != sum.to_le_bytes() {
        return Err(Error::ChecksumMismatch(format!("section of key group {kg}")));
    }
    Ok(&b[SECTION_HEAD_LEN..b.len() - 8])
}
