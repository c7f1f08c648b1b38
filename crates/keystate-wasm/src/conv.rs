//! Conversions between core values and what crosses to JavaScript: plain
//! objects for reports. (The hot path's argument and result layout is the
//! core's wire protocol, `keystate_core::wire`.)

use js_sys::{Object, Reflect};
use keystate_core::{Base, CheckpointInfo, Error, MemoryReport, PieceInfo, Progress, RestoreProgress};
use wasm_bindgen::JsValue;

/// A memory budget from JavaScript: a whole number of bytes, at least 1.
pub fn budget(bytes: f64) -> keystate_core::Result<u64> {
    if bytes.is_finite() && bytes >= 1.0 {
        Ok(bytes as u64)
    } else {
        Err(Error::InvalidArgument(format!("maxMemoryBytes must be a number of bytes >= 1, not {bytes}")))
    }
}

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

pub fn restore_progress(p: &RestoreProgress) -> JsValue {
    object(&[
        ("keyGroupsDone", p.key_groups_done.into()),
        ("keyGroupsTotal", p.key_groups_total.into()),
        ("records", num(p.records)),
        ("bytes", num(p.bytes)),
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
            ("ttlBytes", num(s.ttl_bytes)),
        ]));
    }
    object(&[
        ("liveBytes", num(m.live_bytes)),
        ("pinnedBytes", num(m.pinned_bytes)),
        ("deltaLogBytes", num(m.delta_log_bytes)),
        ("freeBytes", num(m.free_bytes)),
        ("arenaBytes", num(m.arena_bytes)),
        ("totalBytes", num(m.total_bytes)),
        ("entries", num(m.entries)),
        ("openSnapshots", num(m.open_snapshots)),
        ("ttlBytes", num(m.ttl_bytes)),
        ("states", states.into()),
    ])
}
