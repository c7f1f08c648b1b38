//! Writing a checkpoint, one part at a time, into caller-owned buffers, so
//! that the exporter can hand out chunks while writers run in between.

//!
//! Each part reserves its bytes in the output first (fallibly) and changes
//! the writer's state only once it is complete: a part that fails (no
//! memory, a section over 4 GiB) leaves the writer as it was, for the
//! caller to drop what it appended and try again later.

use super::{checksum, FileHash, Footer, Header, IndexEntry, END_MAGIC, MAGIC, PREAMBLE_LEN, SECTION_HEAD_LEN, TAG_FOOTER, TAG_SECTION, VERSION};
use crate::error::{Error, Result};
use crate::room;

/// Position of an open section inside the output buffer.
#[derive(Debug, Clone, Copy)]
pub struct SectionMark {
    start: usize,
    key_group: u32,
}

/// Streaming checkpoint writer.
#[derive(Debug)]
pub struct Writer {
    /// File offset of the next byte written.
    offset: u64,
    /// Running hash over the checksums of all parts: the file checksum.
    file: FileHash,
    footer: Footer,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        Writer { offset: 0, file: FileHash::default(), footer: Footer::default() }
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes the preamble, header and header checksum.
    pub fn header(&mut self, h: &Header, out: &mut Vec<u8>) -> Result<()> {
        room::reserve_bytes(out, PREAMBLE_LEN + h.encoded_bound() + 8)?;
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        h.encode(out);
        let len = (out.len() - start - PREAMBLE_LEN) as u32;
        out[start + 12..start + 16].copy_from_slice(&len.to_le_bytes());
        let sum = checksum(&out[start..]);
        out.extend_from_slice(&sum.to_le_bytes());
        self.file.update(&sum.to_le_bytes());
        self.offset += (out.len() - start) as u64;
        Ok(())
    }

    /// Starts a section; the body is appended to `out` by the caller.
    pub fn begin_section(&mut self, key_group: u32, out: &mut Vec<u8>) -> Result<SectionMark> {
        room::reserve_bytes(out, SECTION_HEAD_LEN)?;
        let start = out.len();
        out.push(TAG_SECTION);
        out.extend_from_slice(&key_group.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        Ok(SectionMark { start, key_group })
    }

    /// Ends a section holding `records` records. A section with none is
    /// dropped: only non-empty key groups are written. A section's body is
    /// at most 4 GiB (its length is a u32): a key group that holds more is
    /// refused.
    pub fn end_section(&mut self, mark: SectionMark, records: u64, out: &mut Vec<u8>) -> Result<()> {
        if records == 0 {
            out.truncate(mark.start);
            return Ok(());
        }
        let body_len = out.len() - mark.start - SECTION_HEAD_LEN;
        let body_len = u32::try_from(body_len).map_err(|_| {
            Error::TooLarge(format!(
                "key group {} holds {body_len} bytes of records; a checkpoint section holds at most 4 GiB (a larger maxParallelism spreads keys over more key groups)",
                mark.key_group
            ))
        })?;
        room::reserve_bytes(out, 8)?;
        room::reserve(&mut self.footer.sections, 1)?;
        out[mark.start + 5..mark.start + 9].copy_from_slice(&body_len.to_le_bytes());
        let sum = checksum(&out[mark.start..]);
        out.extend_from_slice(&sum.to_le_bytes());
        self.file.update(&sum.to_le_bytes());
        let len = (out.len() - mark.start) as u64;
        self.footer.sections.push(IndexEntry { key_group: mark.key_group, offset: self.offset, len, checksum: sum });
        self.footer.records += records;
        self.offset += len;
        Ok(())
    }

    /// Writes the footer and trailer; returns the file checksum.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<u64> {
        room::reserve_bytes(out, 5 + 10 + self.footer.sections.len() * 28 + 8 + 8 + 24)?;
        let start = out.len();
        let footer_offset = self.offset;
        out.push(TAG_FOOTER);
        out.extend_from_slice(&[0; 4]);
        self.footer.encode(out);
        let len = (out.len() - start - 5) as u32;
        out[start + 1..start + 5].copy_from_slice(&len.to_le_bytes());
        let sum = checksum(&out[start..]);
        out.extend_from_slice(&sum.to_le_bytes());
        self.file.update(&sum.to_le_bytes());
        let file_sum = self.file.digest();
        out.extend_from_slice(&footer_offset.to_le_bytes());
        out.extend_from_slice(&file_sum.to_le_bytes());
        out.extend_from_slice(&END_MAGIC);
        self.offset += (out.len() - start) as u64;
        Ok(file_sum)
    }

    pub fn records(&self) -> u64 {
        self.footer.records
    }
}
