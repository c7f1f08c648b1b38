//! Section bodies: blocks of records, one block per state.
//!
//! ```text
//! block   varint state_id, u32 record_count, record*
//! record  u8 op, varint (key_len << 3 | ns_flag), [varint ns_len],
//!         lengths by op: PUT vlen; MAP_PUT uk_len vlen; MAP_DELETE uk_len
//!         then the bytes: key, ns, [uk], [value]
//!       | u8 RUN, varint n, n PUT records without their op byte (v2 on)
//! ```
//!
//! After its op byte, a PUT record is laid out like a record in the arena
//! (crates/keystate-core/src/record.rs) without room to grow, so a full
//! export copies records as they are, and records that lie side by side
//! in the arena as one RUN.

use std::mem::MaybeUninit;

use super::{op, Reader};
use crate::error::{Error, Full, Result};
use crate::{room, varint};

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
#[inline(always)]
pub fn put_record(out: &mut Vec<u8>, op_code: u8, key: &[u8], ns: &[u8], uk: &[u8], value: &[u8]) {
    let (k, v) = (key.len(), value.len());
    if op_code == op::PUT && ns.is_empty() && k < 16 && v <= 32 && out.capacity() - out.len() >= 3 + k + v {
        // Most PUTs (an incremental export's): single-byte header and
        // length, the bytes moved short. Same bytes as below.
        let at = out.len();
        let spare = &mut out.spare_capacity_mut()[..3 + k + v];
        spare[0].write(op::PUT);
        spare[1].write((k << 3) as u8);
        spare[2].write(v as u8);
        let (sk, sv) = spare[3..].split_at_mut(k);
        move_short(sk, key);
        move_short(sv, value);
        // Safety: the `3 + k + v` bytes after `at` were written just above,
        // within `out`'s capacity (checked).
        unsafe { out.set_len(at + 3 + k + v) };
        return;
    }
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
    append(out, key);
    append(out, ns);
    if with_uk {
        append(out, uk);
    }
    if with_value {
        append(out, value);
    }
}

/// Appends the PUT record of an entry's member that kept a put
/// (`delta::kept_put`): `[h][vlen][key][change][status][value]` becomes
/// `[PUT][h][n][key][value]`, the bytes `put_record` writes for it. Refuses,
/// appending nothing, when `out` cannot grow.
#[inline(always)]
pub fn put_kept(out: &mut Vec<u8>, m: &[u8]) -> Result<(), Full> {
    let k = usize::from(m[0] >> 3);
    let n = m.len() - 4 - k;
    room::reserve_bytes(out, 3 + k + n)?;
    let at = out.len();
    let spare = &mut out.spare_capacity_mut()[..3 + k + n];
    spare[0].write(op::PUT);
    spare[1].write(m[0]);
    spare[2].write(n as u8);
    let (sk, sv) = spare[3..].split_at_mut(k);
    move_short(sk, &m[2..2 + k]);
    move_short(sv, &m[4 + k..]);
    // Safety: the `3 + k + n` bytes after `at` were written just above,
    // within `out`'s capacity (reserved).
    unsafe { out.set_len(at + 3 + k + n) };
    Ok(())
}

/// Appends a PUT record whose bytes after the op are `entry`, an arena
/// record without flags other than the namespace flag (see `record`), or
/// refuses, appending nothing, when `out` cannot grow.
#[inline(always)]
pub fn put_entry(out: &mut Vec<u8>, entry: &[u8]) -> Result<(), Full> {
    let n = entry.len();
    room::reserve_bytes(out, 1 + n)?;
    if n > 32 {
        out.push(op::PUT);
        out.extend_from_slice(entry);
        return Ok(());
    }
    let at = out.len();
    let spare = &mut out.spare_capacity_mut()[..1 + n];
    spare[0].write(op::PUT);
    move_short(&mut spare[1..], entry);
    // Safety: the `1 + n` bytes after `at` were written just above, and lie
    // within `out`'s capacity (reserved first).
    unsafe { out.set_len(at + 1 + n) };
    Ok(())
}

/// At least the bytes `put_run` appends besides the records.
const RUN_HEAD: usize = 1 + 10;

/// Appends a RUN of `n` records whose bytes are `records` (arena records
/// without flags other than the namespace flag, side by side), or refuses,
/// appending nothing, when `out` cannot grow.
#[inline]
pub fn put_run(out: &mut Vec<u8>, n: u32, records: &[u8]) -> Result<(), Full> {
    room::reserve_bytes(out, RUN_HEAD + records.len())?;
    out.push(op::RUN);
    varint::put(out, u64::from(n));
    out.extend_from_slice(records);
    Ok(())
}

/// `out.extend_from_slice(src)`, with copies of at most 32 bytes done by
/// `move_short`.
#[inline(always)]
pub fn append(out: &mut Vec<u8>, src: &[u8]) {
    let n = src.len();
    if n > 32 || out.capacity() - out.len() < n {
        out.extend_from_slice(src);
        return;
    }
    let at = out.len();
    move_short(&mut out.spare_capacity_mut()[..n], src);
    // Safety: the `n` bytes after `at` were written by `move_short`, and lie
    // within `out`'s capacity (checked above).
    unsafe { out.set_len(at + n) };
}

/// Copies `src` (at most 32 bytes) into `dst` of the same length: from 4
/// bytes on, as two overlapping fixed-size moves instead of a call to
/// `memcpy`. Most records are that short, and in WebAssembly `memcpy` is
/// `memory.copy`, a call into the engine that costs more than the copy.
#[inline(always)]
fn move_short(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    let n = src.len();
    assert!(n == dst.len() && n <= 32, "move_short takes equal lengths of at most 32 bytes");
    if n < 4 {
        // Three byte moves that cover 1 to 3 bytes (a loop here compiles to
        // a `memcpy` call).
        if n > 0 {
            dst[0].write(src[0]);
            dst[n / 2].write(src[n / 2]);
            dst[n - 1].write(src[n - 1]);
        }
        return;
    }
    let w = if n >= 16 {
        16
    } else if n >= 8 {
        8
    } else {
        4
    };
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr().cast::<u8>());
    // Safety: `dst` and `src` are `n` bytes long (asserted) and do not
    // overlap (one is borrowed mutably). With `w <= n < 2 * w + 1`, the moves
    // of `w` bytes at offsets 0 and `n - w` stay within both and together
    // write all `n` bytes of `dst`.
    unsafe {
        match w {
            16 => {
                std::ptr::copy_nonoverlapping(s, d, 16);
                std::ptr::copy_nonoverlapping(s.add(n - 16), d.add(n - 16), 16);
            }
            8 => {
                std::ptr::copy_nonoverlapping(s, d, 8);
                std::ptr::copy_nonoverlapping(s.add(n - 8), d.add(n - 8), 8);
            }
            _ => {
                std::ptr::copy_nonoverlapping(s, d, 4);
                std::ptr::copy_nonoverlapping(s.add(n - 4), d.add(n - 4), 4);
            }
        }
    }
}

/// Calls `f` for each record of a (checksum-verified) body of a file of
/// format `version`; every length is still bounds-checked. Returns the
/// number of records (a RUN's records each count, as its PUTs would).
pub fn for_each_record<'a>(body: &'a [u8], version: u16, f: impl FnMut(BodyRecord<'a>) -> Result<()>) -> Result<u64> {
    for_each_block(body, version, |_, _| Ok(()), f)
}

/// Like [`for_each_record`], with `block(state, count)` called before each
/// block's records (restore presizes tables with it). The records of a RUN
/// come out as the PUTs they stand for.
pub fn for_each_block<'a>(
    body: &'a [u8],
    version: u16,
    mut block: impl FnMut(u32, u32) -> Result<()>,
    mut f: impl FnMut(BodyRecord<'a>) -> Result<()>,
) -> Result<u64> {
    let runs = version >= 2;
    let mut r = Reader::new(body, "section body");
    let mut total = 0u64;
    while r.remaining() > 0 {
        let state = u32::try_from(r.varint()?).map_err(|_| Error::Corrupt("state id out of range".into()))?;
        let count = r.u32()?;
        if count == 0 {
            return Err(Error::Corrupt("empty block".into()));
        }
        // A record takes two bytes at least (op, head; in a RUN, head and
        // value length): a count the rest of the body cannot hold is false,
        // and must size nothing (restore presizes tables with it).
        if count as usize > r.remaining() / 2 {
            return Err(Error::Corrupt(format!("a block claims {count} records in {} bytes", r.remaining())));
        }
        block(state, count)?;
        // Records of the block still to come, and of the RUN being read (a
        // RUN claims no more than `left`, so it ends inside its block).
        let (mut left, mut in_run) = (count, 0u64);
        while left > 0 {
            let op_code = if in_run > 0 {
                in_run -= 1;
                op::PUT
            } else {
                match r.u8()? {
                    op::RUN if runs => {
                        let n = r.varint()?;
                        if n == 0 || n > u64::from(left) {
                            return Err(Error::Corrupt(format!("a RUN of {n} records where the block claims {left} more")));
                        }
                        in_run = n - 1;
                        op::PUT
                    }
                    other if other <= op::MAP_CLEAR => other,
                    other => return Err(Error::Corrupt(format!("unknown record op {other}"))),
                }
            };
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
                _ => (len(r.varint()?)?, 0), // MAP_DELETE
            };
            let key = r.bytes(kl)?;
            let ns = r.bytes(nl)?;
            let uk = r.bytes(ul)?;
            let value = r.bytes(vl)?;
            f(BodyRecord { state, op: op_code, key, ns, uk, value })?;
            left -= 1;
        }
        total += u64::from(count);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of `state` holding `count` and then `records` (raw bytes).
    fn block(state: u32, count: u32, records: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let at = begin_block(&mut b, state);
        b.extend_from_slice(records);
        end_block(&mut b, at, 0, count);
        b
    }

    /// An arena record of key `k` and value `v` (the bytes after a PUT's op).
    fn entry(k: &[u8], v: &[u8]) -> Vec<u8> {
        let mut e = vec![(k.len() as u8) << 3, v.len() as u8];
        e.extend_from_slice(k);
        e.extend_from_slice(v);
        e
    }

    /// Op, key and value of each record.
    type Got = Vec<(u8, Vec<u8>, Vec<u8>)>;

    fn read(body: &[u8], version: u16) -> Result<Got> {
        let mut got = Vec::new();
        for_each_record(body, version, |r| {
            got.push((r.op, r.key.to_vec(), r.value.to_vec()));
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn a_run_reads_as_its_puts_from_version_2_on() {
        let (a, b, c) = (entry(b"ka", b"1"), entry(b"kb", b"22"), entry(b"kc", b""));
        let mut recs = Vec::new();
        put_run(&mut recs, 2, &[a.clone(), b.clone()].concat()).unwrap();
        put_entry(&mut recs, &c).unwrap();
        put_record(&mut recs, op::PUT, b"kd", b"", b"", b"4");
        let body = block(3, 4, &recs);
        let want: Got =
            [(b"ka", &b"1"[..]), (b"kb", b"22"), (b"kc", b""), (b"kd", b"4")].iter().map(|(k, v)| (op::PUT, k.to_vec(), v.to_vec())).collect();
        assert_eq!(read(&body, 2).unwrap(), want);
        // Version 1 has no RUN op.
        let e = read(&body, 1).unwrap_err();
        assert!(e.to_string().contains("unknown record op 5"), "{e}");
    }

    #[test]
    fn a_run_that_breaks_its_block_is_refused() {
        let two = [entry(b"ka", b"1"), entry(b"kb", b"2")].concat();
        let run = |n: u64| {
            let mut r = vec![op::RUN];
            varint::put(&mut r, n);
            r.extend_from_slice(&two);
            r
        };
        // No records; more than the block claims; fewer than it holds (the
        // rest of its bytes then read as records of their own).
        for (n, count, says) in [(0, 2, "RUN of 0"), (3, 2, "RUN of 3"), (2, 3, "ends inside")] {
            let e = read(&block(0, count, &run(n)), 2).unwrap_err();
            let text = format!("{} {e}", e.code());
            assert!(text.contains(says), "n {n}, count {count}: {text}");
        }
        // A RUN that claims records the block's count does not cover.
        let e = read(&[block(0, 1, &run(2)), block(1, 1, &entry(b"kc", b"3"))].concat(), 2).unwrap_err();
        assert_eq!(e.code(), "CORRUPT", "{e}");
        // Records of a RUN carry no flags but the namespace's.
        let mut capped = run(2);
        capped[2] |= 0b10;
        assert!(read(&block(0, 2, &capped), 2).unwrap_err().to_string().contains("record flags"));
    }

    #[test]
    fn short_moves_copy_exactly() {
        let src: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37).wrapping_add(1)).collect();
        for n in 0..=40usize {
            for spare in [0, 1, n.saturating_sub(1), n, n + 1, 64] {
                for at in [0, 3] {
                    let mut out = vec![0xAAu8; at];
                    out.reserve_exact(spare);
                    let cap = out.capacity();
                    append(&mut out, &src[5..5 + n]);
                    let mut want = vec![0xAAu8; at];
                    want.extend_from_slice(&src[5..5 + n]);
                    assert_eq!(out, want, "n {n}, spare {spare}, at {at}");
                    if cap - at >= n {
                        assert_eq!(out.capacity(), cap, "no growth when it fits");
                    }
                    let mut rec = vec![0xAAu8; at];
                    rec.reserve_exact(spare);
                    put_entry(&mut rec, &src[5..5 + n]).expect("room");
                    want.truncate(at);
                    want.push(op::PUT);
                    want.extend_from_slice(&src[5..5 + n]);
                    assert_eq!(rec, want, "put_entry: n {n}, spare {spare}, at {at}");
                }
            }
        }
    }
}
