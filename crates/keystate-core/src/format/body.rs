//! Section bodies: blocks of records, one block per state.
//!
//! ```text
//! block   varint state_id, u32 record_count, record*
//! record  u8 op, varint (key_len << 3 | ns_flag), [varint ns_len],
//!         lengths by op: PUT vlen; MAP_PUT uk_len vlen; MAP_DELETE uk_len
//!         then the bytes: key, ns, [uk], [value]
//! ```
//!
//! After its op byte, a PUT record is laid out like a record in the arena
//! (crates/keystate-core/src/record.rs) without room to grow, so a full
//! export copies most records as they are.

use super::{op, Reader};
use crate::error::{Error, Result};
use crate::varint;

/// A decoded record.
#[derive(Debug, Clone, Copy)]
pub struct BodyRecord<'a> {
    pub state: u32,
    pub op: u8,
    pub key: &'a [u8],
    pub ns: &'a [u8],
    pub uk: &'a [u8],
    pub value: &'a [u8],
}

/// At least the bytes `put_record` appends for these fields.
#[inline]
pub fn record_bound(key: &[u8], ns: &[u8], uk: &[u8], value: &[u8]) -> usize {
    // Op, and four varints of at most ten bytes.
    1 + 40 + key.len() + ns.len() + uk.len() + value.len()
}

/// At least the bytes `begin_block` appends.
pub const BLOCK_HEAD: usize = 10 + 4;

/// Opens a block; returns the position of its count to patch.
pub fn begin_block(out: &mut Vec<u8>, state: u32) -> usize {
    varint::put(out, u64::from(state));
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Closes a block with `count` records, or removes it when empty.
pub fn end_block(out: &mut Vec<u8>, count_at: usize, block_start: usize, count: u32) {
    if count == 0 {
        out.truncate(block_start);
    } else {
        out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    }
}

/// Appends a record. Fields that the op does not carry are ignored.
#[inline]
pub fn put_record(out: &mut Vec<u8>, op_code: u8, key: &[u8], ns: &[u8], uk: &[u8], value: &[u8]) {
    out.push(op_code);
    let mut h = (key.len() as u64) << 3;
    if !ns.is_empty() {
        h |= 1;
    }
    varint::put(out, h);
    if !ns.is_empty() {
        varint::put(out, ns.len() as u64);
    }
    let (with_uk, with_value) = match op_code {
        op::PUT => (false, true),
        op::MAP_PUT => (true, true),
        op::MAP_DELETE => (true, false),
        _ => (false, false),
    };
    if with_uk {
        varint::put(out, uk.len() as u64);
    }
    if with_value {
        varint::put(out, value.len() as u64);
    }
    out.extend_from_slice(key);
    out.extend_from_slice(ns);
    if with_uk {
        out.extend_from_slice(uk);
    }
    if with_value {
        out.extend_from_slice(value);
    }
}

/// Appends a PUT record whose bytes after the op are `entry`, an arena
/// record without flags other than the namespace flag (see `record`).
#[inline]
pub fn put_entry(out: &mut Vec<u8>, entry: &[u8]) {
    out.push(op::PUT);
    out.extend_from_slice(entry);
}

/// Calls `f` for each record of a (checksum-verified) body; every length is
/// still bounds-checked. Returns the number of records.
pub fn for_each_record<'a>(body: &'a [u8], f: impl FnMut(BodyRecord<'a>) -> Result<()>) -> Result<u64> {
    for_each_block(body, |_, _| Ok(()), f)
}

/// Like [`for_each_record`], with `block(state, count)` called before each
/// block's records (restore presizes tables with it).
pub fn for_each_block<'a>(
    body: &'a [u8],
    mut block: impl FnMut(u32, u32) -> Result<()>,
    mut f: impl FnMut(BodyRecord<'a>) -> Result<()>,
) -> Result<u64> {
    let mut r = Reader::new(body, "section body");
    let mut total = 0u64;
    while r.remaining() > 0 {
        let state = u32::try_from(r.varint()?).map_err(|_| Error::Corrupt("state id out of range".into()))?;
        let count = r.u32()?;
        if count == 0 {
            return Err(Error::Corrupt("empty block".into()));
        }
        // A record takes two bytes at least (op, head): a count the rest of
        // the body cannot hold is false, and must size nothing (restore
        // presizes tables with it).
        if count as usize > r.remaining() / 2 {
            return Err(Error::Corrupt(format!("a block claims {count} records in {} bytes", r.remaining())));
        }
        block(state, count)?;
        for _ in 0..count {
            let op_code = r.u8()?;
            let h = r.varint()?;
            if h & 0b110 != 0 {
                return Err(Error::Corrupt(format!("record flags {:#x}", h & 7)));
            }
            let len = |v: u64| usize::try_from(v).map_err(|_| Error::Corrupt("record length".into()));
            let kl = len(h >> 3)?;
            let nl = if h & 1 != 0 { len(r.varint()?)? } else { 0 };
            let (ul, vl) = match op_code {
                op::PUT => (0, len(r.varint()?)?),
                op::DELETE | op::MAP_CLEAR => (0, 0),
                op::MAP_PUT => (len(r.varint()?)?, len(r.varint()?)?),
                op::MAP_DELETE => (len(r.varint()?)?, 0),
                other => return Err(Error::Corrupt(format!("unknown record op {other}"))),
            };
            let key = r.bytes(kl)?;
            let ns = r.bytes(nl)?;
            let uk = r.bytes(ul)?;
            let value = r.bytes(vl)?;
            f(BodyRecord { state, op: op_code, key, ns, uk, value })?;
        }
        total += u64::from(count);
    }
    Ok(total)
}
