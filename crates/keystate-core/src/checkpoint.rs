//! Checkpoints: taken from a snapshot of their moment, exported in chunks
//! (one or more key-group sections each) so writers run between chunks, and
//! counted only when confirmed.

use crate::error::{Error, Result};
use crate::format::write::Writer;
use crate::format::{body, op, CheckpointKind, Header};
use crate::mem::NO_TABLE;
use crate::state::StateKind;
use crate::store::Store;

/// Identity of a checkpoint that a child can name as its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub id: u64,
    pub link: u64,
}

/// What `checkpoint()` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub id: u64,
    pub parent_id: Option<u64>,
    pub kind: CheckpointKind,
    pub snapshot: u64,
}

/// How far an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub key_groups_done: u32,
    pub key_groups_total: u32,
    pub bytes: u64,
    pub records: u64,
    pub finished: bool,
    /// File checksum, once finished.
    pub checksum: u64,
}

#[derive(Debug)]
struct Pending {
    header: Header,
    /// Held until the export finishes (or the checkpoint is aborted).
    snapshot: Option<u64>,
    writer: Writer,
    /// Next key group to export; `None` before the header is written.
    next_kg: Option<u32>,
    finished: bool,
    checksum: u64,
}

/// The store's checkpoint bookkeeping.
#[derive(Debug)]
pub struct Checkpoints {
    next_id: u64,
    pub(crate) last_confirmed: Option<Link>,
    pending: Vec<Pending>,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Checkpoints { next_id: 1, last_confirmed: None, pending: Vec::new() }
    }
}

impl Checkpoints {
    pub(crate) fn holds_snapshot(&self, s: u64) -> bool {
        self.pending.iter().any(|p| p.snapshot == Some(s))
    }

    pub(crate) fn delta_bytes(&self) -> u64 {
        0
    }

    pub(crate) fn continue_chain(&mut self, last: Link) {
        self.last_confirmed = Some(last);
        self.next_id = last.id + 1;
    }

    fn position(&self, id: u64) -> Result<usize> {
        self.pending.iter().position(|p| p.header.id == id).ok_or(Error::UnknownCheckpoint(id))
    }
}

/// Output chunks are cut after the first section that reaches this size.
pub const DEFAULT_CHUNK: usize = 64 * 1024;

impl Store {
    /// Starts a full checkpoint of this moment. The snapshot it reads is
    /// taken now (O(1)); bytes are produced by [`Store::checkpoint_next`].
    pub fn checkpoint(&mut self) -> Result<CheckpointInfo> {
        let snapshot = self.mem.snapshot();
        let id = self.cps.next_id;
        self.cps.next_id += 1;
        let header = Header {
            kind: CheckpointKind::Full,
            id,
            parent_id: 0,
            parent_link: 0,
            link: 0,
            store_id: self.cfg.store_id,
            max_parallelism: self.cfg.max_parallelism,
            key_groups: self.cfg.key_groups,
            states: self.states.iter().enumerate().map(|(i, e)| (i as u32, e.desc.clone())).collect(),
        };
        self.cps.pending.push(Pending {
            header,
            snapshot: Some(snapshot),
            writer: Writer::new(),
            next_kg: None,
            finished: false,
            checksum: 0,
        });
        Ok(CheckpointInfo { id, parent_id: None, kind: CheckpointKind::Full, snapshot })
    }

    /// Appends the next chunk of checkpoint `id` to `out` (at least one part,
    /// cut once `out` grows by `target` bytes). Returns true when the
    /// checkpoint is complete; its snapshot is then released.
    pub fn checkpoint_next(&mut self, id: u64, out: &mut Vec<u8>, target: usize) -> Result<bool> {
        let i = self.cps.position(id)?;
        if self.cps.pending[i].finished {
            return Ok(true);
        }
        // Take the pending checkpoint out so the store can be read while it writes.
        let mut p = self.cps.pending.swap_remove(i);
        let start = out.len();
        let range = p.header.key_groups;
        let mut kg = match p.next_kg {
            None => {
                p.writer.header(&p.header, out);
                range.start
            }
            Some(kg) => kg,
        };
        let snapshot = p.snapshot.expect("unfinished checkpoints hold their snapshot");
        while kg <= range.end && out.len() - start < target {
            self.write_section(&mut p, kg, snapshot, out);
            kg += 1;
        }
        p.next_kg = Some(kg);
        if kg > range.end {
            p.checksum = p.writer.finish(out);
            p.finished = true;
            p.snapshot = None;
            self.release_internal(snapshot);
        }
        let finished = p.finished;
        self.cps.pending.push(p);
        Ok(finished)
    }

    fn write_section(&self, p: &mut Pending, kg: u32, snapshot: u64, out: &mut Vec<u8>) {
        let part = (kg - self.cfg.key_groups.start) as usize;
        let mark = p.writer.begin_section(kg, out);
        let mut records = 0u64;
        for (sid, _) in &p.header.states {
            let e = &self.states[*sid as usize];
            let tid = e.parts[part];
            if tid == NO_TABLE {
                continue;
            }
            let block = out.len();
            let count_at = body::begin_block(out, *sid);
            let mut count = 0u32;
            let is_map = e.desc.kind == StateKind::Map;
            self.for_each_in_table(tid, is_map, Some(snapshot), &mut |key, ns, uk, value| {
                match uk {
                    Some(uk) => body::put_record(out, op::MAP_PUT, key, ns, uk, value),
                    None => body::put_record(out, op::PUT, key, ns, &[], value),
                }
                count += 1;
            });
            body::end_block(out, count_at, block, count);
            records += u64::from(count);
        }
        p.writer.end_section(mark, records, out);
    }

    /// Export progress of a pending checkpoint.
    pub fn checkpoint_progress(&self, id: u64) -> Result<Progress> {
        let p = &self.cps.pending[self.cps.position(id)?];
        let range = p.header.key_groups;
        let done = p.next_kg.map_or(0, |kg| kg - range.start);
        Ok(Progress {
            key_groups_done: done,
            key_groups_total: range.len() as u32,
            bytes: p.writer.offset(),
            records: p.writer.records(),
            finished: p.finished,
            checksum: p.checksum,
        })
    }

    /// Confirms that checkpoint `id` is stored durably: it becomes the parent
    /// of the next incremental checkpoint. Confirming a checkpoint older than
    /// the last confirmed one is refused.
    pub fn checkpoint_confirm(&mut self, id: u64) -> Result<()> {
        let i = self.cps.position(id)?;
        let p = &self.cps.pending[i];
        if !p.finished {
            return Err(Error::CheckpointState(format!(
                "checkpoint {id} cannot be confirmed before its stream has been read to the end"
            )));
        }
        if let Some(last) = self.cps.last_confirmed {
            if last.id > id {
                return Err(Error::CheckpointState(format!(
                    "checkpoint {id} is older than the last confirmed checkpoint {}",
                    last.id
                )));
            }
        }
        let link = if p.header.link != 0 { p.header.link } else { p.checksum };
        self.cps.last_confirmed = Some(Link { id, link });
        self.cps.pending.swap_remove(i);
        Ok(())
    }

    /// Abandons checkpoint `id`; nothing is lost: the next checkpoint still
    /// carries everything since the last confirmed one.
    pub fn checkpoint_abort(&mut self, id: u64) -> Result<()> {
        let i = self.cps.position(id)?;
        let p = self.cps.pending.swap_remove(i);
        if let Some(s) = p.snapshot {
            self.release_internal(s);
        }
        Ok(())
    }

    /// The last confirmed checkpoint.
    pub fn last_confirmed(&self) -> Option<Link> {
        self.cps.last_confirmed
    }
}
