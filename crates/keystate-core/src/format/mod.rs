//! Checkpoint format v2 (docs/FORMAT.md is the specification; keep the two
//! in step). Little-endian fixed-width integers, LEB128 varints.
//!
//! ```text
//! preamble  magic "\x89KSTATE\n", u16 version, u16 flags (0), u32 header_len
//! header    kind, ids, lineage, key groups, state descriptors
//!           u64 header checksum = xxh3(preamble || header)
//! section*  u8 0x01, u32 key_group, u32 body_len, body, u64 checksum
//!           (one per non-empty key group, ascending)
//! footer    u8 0x02, u32 footer_len, footer body (section index, totals),
//!           u64 checksum
//! trailer   u64 footer_offset, u64 file_checksum, magic "KSTATEND"
//! ```

pub mod body;
pub mod read;
pub mod write;

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::state::{StateDescriptor, StateKind};
use crate::keygroup::{KeyGroupRange, MAX_PARALLELISM_LIMIT};
use crate::state::MAX_STATES;
use crate::ttl::TtlConfig;
use crate::varint;

pub const MAGIC: [u8; 8] = *b"\x89KSTATE\n";
pub const END_MAGIC: [u8; 8] = *b"KSTATEND";
/// The version a writer writes. Version 2 added the RUN op (`op::RUN`);
/// everything else is version 1's, so a reader takes both.
pub const VERSION: u16 = 2;
/// The oldest version a reader takes.
pub const MIN_VERSION: u16 = 1;
pub const PREAMBLE_LEN: usize = 16;
pub const TRAILER_LEN: usize = 24;
pub const TAG_SECTION: u8 = 0x01;
pub const TAG_FOOTER: u8 = 0x02;
/// Tag, key group, body length.
pub const SECTION_HEAD_LEN: usize = 9;
/// Largest header or footer a reader accepts (guards allocation on bad input).
pub const MAX_META_LEN: u32 = 64 << 20;
/// Largest checkpoint id: ids cross to JavaScript as numbers, and a store
/// restored from checkpoint `id` numbers its next one `id + 1`.
pub const MAX_CHECKPOINT_ID: u64 = (1 << 53) - 1;

/// Record operations inside a section body.
pub mod op {
    /// key, ns, value: the entry's value (value, reducing, aggregating, list).
    pub const PUT: u8 = 0;
    /// key, ns: the entry was removed (incremental only).
    pub const DELETE: u8 = 1;
    /// key, ns, uk, value: one entry of a map.
    pub const MAP_PUT: u8 = 2;
    /// key, ns, uk: one entry of a map was removed (incremental only).
    pub const MAP_DELETE: u8 = 3;
    /// key, ns: the whole map was removed (incremental only).
    pub const MAP_CLEAR: u8 = 4;
    /// varint n, then n PUT records without their op byte: arena records
    /// that lay side by side, copied as one (version 2 on).
    pub const RUN: u8 = 5;
}

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    Full,
    Incremental,
}

impl CheckpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointKind::Full => "full",
            CheckpointKind::Incremental => "incremental",
        }
    }
}

/// The header of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version of the file it was read from; a writer writes
    /// [`VERSION`] whatever this says.
    pub version: u16,
    pub kind: CheckpointKind,
    pub id: u64,
    /// 0 for a full checkpoint.
    pub parent_id: u64,
    /// The parent's link checksum; 0 for a full checkpoint.
    pub parent_link: u64,
    /// The checksum children name as `parent_link`. 0 means "this file's
    /// own file checksum"; a compacted checkpoint carries the link of the
    /// last piece it replaces, so that the chain continues from it.
    pub link: u64,
    pub store_id: [u8; 16],
    pub max_parallelism: u32,
    pub key_groups: KeyGroupRange,
    /// (checkpoint-local state id, descriptor).
    pub states: Vec<(u32, StateDescriptor)>,
}

impl Header {
    /// At least the bytes `encode` appends.
    pub fn encoded_bound(&self) -> usize {
        let states: usize = self.states.iter().map(|(_, d)| 10 + 1 + 30 + 1 + d.name.len() + d.value_codec.len() + d.user_key_codec.len()).sum();
        1 + 4 * 8 + 16 + 3 * 4 + 10 + states
    }

    /// Encodes the header body (what `header_len` counts).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self.kind {
            CheckpointKind::Full => 0,
            CheckpointKind::Incremental => 1,
        });
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.parent_id.to_le_bytes());
        out.extend_from_slice(&self.parent_link.to_le_bytes());
        out.extend_from_slice(&self.link.to_le_bytes());
        out.extend_from_slice(&self.store_id);
        out.extend_from_slice(&self.max_parallelism.to_le_bytes());
        out.extend_from_slice(&self.key_groups.start.to_le_bytes());
        out.extend_from_slice(&self.key_groups.end.to_le_bytes());
        varint::put(out, self.states.len() as u64);
        for (id, d) in &self.states {
            varint::put(out, u64::from(*id));
            out.push(d.kind as u8);
            put_str(out, &d.name);
            put_str(out, &d.value_codec);
            put_str(out, &d.user_key_codec);
            // The TTL field: 0 for none (a state without TTL encodes as
            // before TTL existed), else its version and configuration.
            match &d.ttl {
                None => out.push(0),
                Some(ttl) => {
                    out.push(crate::ttl::FIELD_VERSION);
                    ttl.encode(out);
                }
            }
        }
    }

    /// Decodes the header body of a file of format `version`; every field
    /// is checked.
    pub fn decode(b: &[u8], version: u16) -> Result<Header> {
        let mut r = Reader::new(b, "header");
        let kind = match r.u8()? {
            0 => CheckpointKind::Full,
            1 => CheckpointKind::Incremental,
            k => return Err(Error::Corrupt(format!("unknown checkpoint kind {k}"))),
        };
        let id = r.u64()?;
        let parent_id = r.u64()?;
        let parent_link = r.u64()?;
        let link = r.u64()?;
        let store_id: [u8; 16] = r.bytes(16)?.try_into().expect("16 bytes");
        let max_parallelism = r.u32()?;
        let start = r.u32()?;
        let end = r.u32()?;
        if max_parallelism == 0 || max_parallelism > MAX_PARALLELISM_LIMIT || start > end || end >= max_parallelism {
            return Err(Error::Corrupt(format!(
                "key-group range {start}..={end} of max parallelism {max_parallelism}"
            )));
        }
        if id == 0 || id > MAX_CHECKPOINT_ID || (kind == CheckpointKind::Incremental && parent_id >= id) {
            return Err(Error::Corrupt(format!(
                "checkpoint id {id} with parent {parent_id} (ids are 1..={MAX_CHECKPOINT_ID}, above the parent's)"
            )));
        }
        let n = r.varint()?;
        if n > MAX_STATES as u64 {
            return Err(Error::Corrupt(format!("the header declares {n} states (a store holds at most {MAX_STATES})")));
        }
        let mut states = Vec::new();
        let (mut sids, mut names) = (HashSet::new(), HashSet::new());
        for _ in 0..n {
            let sid = u32::try_from(r.varint()?).map_err(|_| Error::Corrupt("state id".into()))?;
            let skind = StateKind::from_u8(r.u8()?).map_err(|e| Error::Corrupt(e.to_string()))?;
            let name = r.str()?;
            let value_codec = r.str()?;
            let user_key_codec = r.str()?;
            let ttl = match r.u8()? {
                0 => None,
                crate::ttl::FIELD_VERSION => Some(TtlConfig::decode(&mut r, &name)?),
                v => return Err(Error::Corrupt(format!("state '{name}' has unknown TTL flags {v} (a TTL field of another version)"))),
            };
            let d = StateDescriptor::new(&name, skind, &value_codec, &user_key_codec)
                .and_then(|d| d.with_ttl(ttl))
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            if !sids.insert(sid) || !names.insert(d.name.clone()) {
                return Err(Error::Corrupt(format!("state '{name}' (id {sid}) appears twice")));
            }
            crate::room::reserve(&mut states, 1)?;
            states.push((sid, d));
        }
        if kind == CheckpointKind::Full && (parent_id != 0 || parent_link != 0) {
            return Err(Error::Corrupt("a full checkpoint has no parent".into()));
        }
        if kind == CheckpointKind::Incremental && parent_id == 0 {
            return Err(Error::Corrupt("an incremental checkpoint needs a parent".into()));
        }
        r.end()?;
        Ok(Header {
            version,
            kind,
            id,
            parent_id,
            parent_link,
            link,
            store_id,
            max_parallelism,
            key_groups: KeyGroupRange::new(start, end),
            states,
        })
    }
}

/// One entry of the footer's section index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub key_group: u32,
    /// Offset of the section's tag byte from the start of the file.
    pub offset: u64,
    /// Length of the whole section (tag to checksum).
    pub len: u64,
    pub checksum: u64,
}

/// The footer: where each section is, and totals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Footer {
    pub sections: Vec<IndexEntry>,
    pub records: u64,
}

impl Footer {
    pub fn encode(&self, out: &mut Vec<u8>) {
        varint::put(out, self.sections.len() as u64);
        for e in &self.sections {
            out.extend_from_slice(&e.key_group.to_le_bytes());
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.len.to_le_bytes());
            out.extend_from_slice(&e.checksum.to_le_bytes());
        }
        out.extend_from_slice(&self.records.to_le_bytes());
    }

    pub fn decode(b: &[u8]) -> Result<Footer> {
        let mut r = Reader::new(b, "footer");
        let n = r.varint()?;
        if n > b.len() as u64 / 28 {
            return Err(Error::Corrupt(format!("footer claims {n} sections")));
        }
        // At most the footer's own size again (28 bytes each), and fallible:
        // a WebAssembly memory may be full.
        let mut sections = Vec::new();
        crate::room::reserve(&mut sections, n as usize)?;
        for _ in 0..n {
            sections.push(IndexEntry { key_group: r.u32()?, offset: r.u64()?, len: r.u64()?, checksum: r.u64()? });
        }
        let records = r.u64()?;
        r.end()?;
        Ok(Footer { sections, records })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    varint::put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Bounds-checked reader over untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    pub pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Reader { b, pos: 0, what }
    }

    fn short(&self) -> Error {
        Error::Corrupt(format!("{} ends inside a field at byte {}", self.what, self.pos))
    }

    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.short());
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().expect("4 bytes")))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().expect("8 bytes")))
    }

    pub fn varint(&mut self) -> Result<u64> {
        varint::get(self.b, &mut self.pos).ok_or_else(|| self.short())
    }

    /// A varint length followed by that many bytes.
    pub fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.varint()?;
        if n > self.remaining() as u64 {
            return Err(self.short());
        }
        self.bytes(n as usize)
    }

    pub fn str(&mut self) -> Result<String> {
        let b = self.blob()?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::Corrupt(format!("{} holds a string that is not UTF-8", self.what)))
    }

    pub fn end(&self) -> Result<()> {
        if self.pos != self.b.len() {
            return Err(Error::Corrupt(format!("{} has {} unexpected trailing bytes", self.what, self.remaining())));
        }
        Ok(())
    }
}

/// The file checksum: xxh3-64 over the checksums of all parts, in order
/// (header, each section, footer). Every byte of the file is under exactly one
/// part checksum, so this covers the whole file, and a reader verifies it
/// without hashing the bytes twice.
#[derive(Debug, Default, Clone)]
pub struct FileHash(Vec<u8>);

impl FileHash {
    pub fn update(&mut self, part_checksum: &[u8; 8]) {
        self.0.extend_from_slice(part_checksum);
    }

    pub fn digest(&self) -> u64 {
        checksum(&self.0)
    }
}

/// xxh3-64, the checksum of every part of the format.
#[inline]
pub fn checksum(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}
