//! Conversions between core values and plain JS objects (reports), shaped as
//! the TypeScript side's `Core*` interfaces (ts/backend/types.ts). u64
//! figures travel as numbers (exact up to 2^53); checksums as hex strings.

use keystate_core::{Base, CheckpointInfo, MemoryReport, PieceInfo, Progress, RestoreProgress, StateDescriptor};
use napi_derive::napi;

#[napi(object)]
#[derive(Debug)]
pub struct CoreCheckpointInfo {
    pub id: f64,
    pub parent_id: Option<f64>,
    pub kind: String,
    pub snapshot: f64,
}

impl From<&CheckpointInfo> for CoreCheckpointInfo {
    fn from(i: &CheckpointInfo) -> Self {
        CoreCheckpointInfo { id: i.id as f64, parent_id: i.parent_id.map(|p| p as f64), kind: i.kind.as_str().into(), snapshot: i.snapshot as f64 }
    }
}

#[napi(object)]
#[derive(Debug)]
pub struct CoreBase {
    pub id: f64,
    pub chain_length: u32,
    pub chain_bytes: f64,
    pub full_bytes: f64,
}

impl From<&Base> for CoreBase {
    fn from(b: &Base) -> Self {
        CoreBase { id: b.link.id as f64, chain_length: b.chain_len, chain_bytes: b.chain_bytes as f64, full_bytes: b.full_bytes as f64 }
    }
}

#[napi(object)]
#[derive(Debug)]
pub struct CoreProgress {
    pub key_groups_done: u32,
    pub key_groups_total: u32,
    pub bytes: f64,
    pub records: f64,
    pub finished: bool,
    pub checksum: String,
}

impl From<&Progress> for CoreProgress {
    fn from(p: &Progress) -> Self {
        CoreProgress {
            key_groups_done: p.key_groups_done,
            key_groups_total: p.key_groups_total,
            bytes: p.bytes as f64,
            records: p.records as f64,
            finished: p.finished,
            checksum: format!("{:016x}", p.checksum),
        }
    }
}

#[napi(object)]
#[derive(Debug)]
pub struct CorePieceInfo {
    pub id: f64,
    pub parent_id: Option<f64>,
    pub kind: String,
    pub bytes: f64,
    pub records: f64,
    pub checksum: String,
}

impl From<&PieceInfo> for CorePieceInfo {
    fn from(p: &PieceInfo) -> Self {
        CorePieceInfo {
            id: p.id as f64,
            parent_id: (p.parent_id != 0).then_some(p.parent_id as f64),
            kind: p.kind.as_str().into(),
            bytes: p.bytes as f64,
            records: p.records as f64,
            checksum: format!("{:016x}", p.checksum),
        }
    }
}

#[napi(object)]
#[derive(Debug)]
pub struct CoreRestoreProgress {
    pub key_groups_done: u32,
    pub key_groups_total: u32,
    pub records: f64,
    pub bytes: f64,
}

impl From<&RestoreProgress> for CoreRestoreProgress {
    fn from(p: &RestoreProgress) -> Self {
        CoreRestoreProgress { key_groups_done: p.key_groups_done, key_groups_total: p.key_groups_total, records: p.records as f64, bytes: p.bytes as f64 }
    }
}

#[napi(object)]
#[derive(Debug)]
pub struct CoreStateMemory {
    pub name: String,
    pub entries: f64,
    pub live_bytes: f64,
    pub ttl_bytes: f64,
}

#[napi(object)]
#[derive(Debug)]
pub struct CoreMemory {
    pub live_bytes: f64,
    pub pinned_bytes: f64,
    pub delta_log_bytes: f64,
    pub free_bytes: f64,
    pub arena_bytes: f64,
    pub total_bytes: f64,
    pub entries: f64,
    pub open_snapshots: f64,
    pub ttl_bytes: f64,
    pub states: Vec<CoreStateMemory>,
}

impl From<&MemoryReport> for CoreMemory {
    fn from(m: &MemoryReport) -> Self {
        CoreMemory {
            live_bytes: m.live_bytes as f64,
            pinned_bytes: m.pinned_bytes as f64,
            delta_log_bytes: m.delta_log_bytes as f64,
            free_bytes: m.free_bytes as f64,
            arena_bytes: m.arena_bytes as f64,
            total_bytes: m.total_bytes as f64,
            entries: m.entries as f64,
            open_snapshots: m.open_snapshots as f64,
            ttl_bytes: m.ttl_bytes as f64,
            states: m
                .states
                .iter()
                .map(|s| CoreStateMemory { name: s.name.clone(), entries: s.entries as f64, live_bytes: s.live_bytes as f64, ttl_bytes: s.ttl_bytes as f64 })
                .collect(),
        }
    }
}

#[napi(object)]
#[derive(Debug)]
pub struct CoreStateInfo {
    pub name: String,
    pub kind: u32,
    pub value_codec: String,
    pub user_key_codec: String,
    /// TTL as `registerState` takes it (`keystate_core::wire::ttl_args`); 0 for none.
    pub ttl_ms: f64,
    pub ttl_flags: u32,
    pub cleanup_size: u32,
}

impl From<&StateDescriptor> for CoreStateInfo {
    fn from(d: &StateDescriptor) -> Self {
        let (ttl_ms, ttl_flags, cleanup_size) = keystate_core::wire::ttl_args(d.ttl.as_ref());
        CoreStateInfo {
            name: d.name.clone(),
            kind: d.kind as u32,
            value_codec: d.value_codec.clone(),
            user_key_codec: d.user_key_codec.clone(),
            ttl_ms,
            ttl_flags,
            cleanup_size,
        }
    }
}

/// A memory budget from JavaScript: a whole number of bytes, at least 1.
pub fn budget(bytes: f64) -> keystate_core::Result<u64> {
    if bytes.is_finite() && bytes >= 1.0 {
        Ok(bytes as u64)
    } else {
        Err(keystate_core::Error::InvalidArgument(format!("maxMemoryBytes must be a number of bytes >= 1, not {bytes}")))
    }
}
