//! Section bodies: blocks of records, one block per state.
//!
//! ```text
//! block   varint state_id, u32 record_count, record*
//! record  u8 op, fields by op (see `op`), each field a varint length + bytes
//! ```

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

#[inline]
fn field(out: &mut Vec<u8>, b: &[u8]) {
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a record. Fields that the op does not carry are ignored.
#[inline]
pub fn put_record(out: &mut Vec<u8>, op_code: u8, key: &[u8], ns: &[u8], uk: &[u8], value: &[u8]) {
    out.push(op_code);
    field(out, key);
    field(out, ns);
    match op_code {
        op::PUT => field(out, value),
        op::MAP_PUT => {
            field(out, uk);
            field(out, value);
        }
        op::MAP_DELETE => field(out, uk),
        _ => {}
    }
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
        block(state, count)?;
        for _ in 0..count {
            let op_code = r.u8()?;
            let key = r.blob()?;
            let ns = r.blob()?;
            let (uk, value) = match op_code {
                op::PUT => (&[][..], r.blob()?),
                op::DELETE | op::MAP_CLEAR => (&[][..], &[][..]),
                op::MAP_PUT => (r.blob()?, r.blob()?),
                op::MAP_DELETE => (r.blob()?, &[][..]),
                other => return Err(Error::Corrupt(format!("unknown record op {other}"))),
            };
            f(BodyRecord { state, op: op_code, key, ns, uk, value })?;
        }
        total += u64::from(count);
    }
    Ok(total)
}
