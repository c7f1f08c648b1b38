//! Conversions between core values and what crosses to JavaScript: plain
//! objects for reports, flat byte listings for iteration, and the scratch
//! layout of hot-path arguments.

use js_sys::{Object, Reflect};
use keystate_core::{varint, Base, CheckpointInfo, MemoryReport, PieceInfo, Progress};
use wasm_bindgen::JsValue;

/// Key length meaning "the current key" (Flink's keyed context).
pub const CURRENT_KEY: u32 = u32::MAX;

/// Builds a plain JS object from (name, value) pairs.
pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        // Defining a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &(*k).into(), v);
    }
    o.into()
}

fn num(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

pub fn checkpoint_info(i: &CheckpointInfo) -> JsValue {
    object(&[
        ("id", num(i.id)),
        ("parentId", i.parent_id.map_or(JsValue::NULL, num)),
        ("kind", i.kind.as_str().into()),
        ("snapshot", num(i.snapshot)),
    ])
}

pub fn base(b: &Base) -> JsValue {
    object(&[
        ("id", num(b.link.id)),
        ("chainLength", b.chain_len.into()),
        ("chainBytes", num(b.chain_bytes)),
        ("fullBytes", num(b.full_bytes)),
    ])
}

pub fn progress(p: &Progress) -> JsValue {
    object(&[
        ("keyGroupsDone", p.key_groups_done.into()),
        ("keyGroupsTotal", p.key_groups_total.into()),
        ("bytes", num(p.bytes)),
        ("records", num(p.records)),
        ("finished", p.finished.into()),
        // Hex: u64 does not fit a JS number.
        ("checksum", format!("{:016x}", p.checksum).into()),
    ])
}

pub fn piece_info(p: &PieceInfo) -> JsValue {
    object(&[
        ("id", num(p.id)),
        ("parentId", if p.parent_id == 0 { JsValue::NULL } else { num(p.parent_id) }),
        ("kind", p.kind.as_str().into()),
        ("bytes", num(p.bytes)),
        ("records", num(p.records)),
        ("checksum", format!("{:016x}", p.checksum).into()),
    ])
}

pub fn memory(m: &MemoryReport) -> JsValue {
    let states = js_sys::Array::new();
    for s in &m.states {
        states.push(&object(&[
            ("name", s.name.as_str().into()),
            ("entries", num(s.entries)),
            ("liveBytes", num(s.live_bytes)),
        ]));
    }
    object(&[
        ("liveBytes", num(m.live_bytes)),
        ("pinnedBytes", num(m.pinned_bytes)),
        ("deltaLogBytes", num(m.delta_log_bytes)),
        ("freeBytes", num(m.free_bytes)),
        ("arenaBytes", num(m.arena_bytes)),
        ("entries", num(m.entries)),
        ("openSnapshots", num(m.open_snapshots)),
        ("states", states.into()),
    ])
}

/// Appends a length-prefixed field to a listing.
#[inline]
pub fn field(out: &mut Vec<u8>, b: &[u8]) {
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Snapshot argument: 0 means the live state (epochs start at 1).
#[inline]
pub fn at(snapshot: f64) -> Option<u64> {
    (snapshot > 0.0).then_some(snapshot as u64)
}

/// Hot-path arguments: key (`None`: the current key), namespace, user key, value.
pub type Args<'a> = (Option<&'a [u8]>, &'a [u8], &'a [u8], &'a [u8]);

/// Splits the scratch buffer into the hot-path arguments, laid out back to
/// back: key, namespace, user key, value.
#[inline]
pub fn split(scratch: &[u8], kl: u32, nl: u32, ul: u32, vl: u32) -> Option<Args<'_>> {
    let kl_n = if kl == CURRENT_KEY { 0 } else { kl as usize };
    let (nl, ul, vl) = (nl as usize, ul as usize, vl as usize);
    let end = kl_n.checked_add(nl)?.checked_add(ul)?.checked_add(vl)?;
    if end > scratch.len() {
        return None;
    }
    let key = (kl != CURRENT_KEY).then(|| &scratch[..kl_n]);
    let ns = &scratch[kl_n..kl_n + nl];
    let uk = &scratch[kl_n + nl..kl_n + nl + ul];
    let value = &scratch[kl_n + nl + ul..end];
    Some((key, ns, uk, value))
}

/// Value length marking a delete in a write batch.
pub const DELETE: u32 = u32::MAX;

/// A batch laid out in scratch after the namespace: repeated `u32 LE kl, key`
/// and, for writes, `u32 LE vl, value` (`vl == DELETE`: no value, delete).
/// Built only over a layout `Batch::check` accepted, so iterating cannot fail.
#[derive(Clone)]
pub struct Batch<'a> {
    buf: &'a [u8],
    pos: usize,
    values: bool,
}

#[inline]
fn u32_at(buf: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(pos..pos.checked_add(4)?)?.try_into().ok()?))
}

impl<'a> Batch<'a> {
    /// Checks the whole layout; None if a length runs past the end.
    pub fn check(buf: &'a [u8], values: bool) -> Option<Batch<'a>> {
        let mut pos = 0;
        while pos < buf.len() {
            let kl = u32_at(buf, pos)? as usize;
            pos = pos.checked_add(4)?.checked_add(kl).filter(|&p| p <= buf.len())?;
            if values {
                let vl = u32_at(buf, pos)?;
                let n = if vl == DELETE { 0 } else { vl as usize };
                pos = pos.checked_add(4)?.checked_add(n).filter(|&p| p <= buf.len())?;
            }
        }
        Some(Batch { buf, pos: 0, values })
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let n = u32_at(self.buf, self.pos)?;
        self.pos += 4;
        if n == DELETE {
            return None;
        }
        let f = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Some(f)
    }
}

impl<'a> Iterator for Batch<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let key = self.field().unwrap_or_default();
        let value = if self.values { self.field() } else { None };
        Some((key, value))
    }
}

/// The namespace (`nl` bytes) and the batch laid out after it, up to `len`.
pub fn batch(scratch: &[u8], nl: u32, len: u32, values: bool) -> Option<(&[u8], Batch<'_>)> {
    let (ns, rest) = scratch.get(..len as usize)?.split_at_checked(nl as usize)?;
    Some((ns, Batch::check(rest, values)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(out: &mut Vec<u8>, k: &[u8], v: Option<&[u8]>) {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        match v {
            Some(v) => {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&DELETE.to_le_bytes()),
        }
    }

    #[test]
    fn batch_layout_round_trips() {
        let mut b = b"ns".to_vec();
        op(&mut b, b"k1", Some(b"v1"));
        op(&mut b, b"", None);
        op(&mut b, b"k3", Some(b""));
        let (ns, ops) = batch(&b, 2, b.len() as u32, true).unwrap();
        assert_eq!(ns, b"ns");
        let got: Vec<_> = ops.collect();
        assert_eq!(got, vec![(&b"k1"[..], Some(&b"v1"[..])), (&b""[..], None), (&b"k3"[..], Some(&b""[..]))]);
    }

    #[test]
    fn batch_layout_refuses_lengths_past_the_end() {
        let mut b = Vec::new();
        op(&mut b, b"key", Some(b"value"));
        for cut in 1..b.len() {
            assert!(Batch::check(&b[..cut], true).is_none(), "cut at {cut}");
        }
        // A length that would wrap a 32-bit address.
        let mut wrap = u32::MAX.to_le_bytes().to_vec();
        wrap.extend_from_slice(&[0; 8]);
        assert!(Batch::check(&wrap, false).is_none());
        assert!(batch(&b, 100, b.len() as u32, true).is_none(), "namespace longer than the batch");
        assert!(batch(&b, 0, b.len() as u32 + 1, true).is_none(), "batch longer than scratch");
    }
}
