//! What a store keeps for TTL besides its states' records: its clock, the
//! time of each open snapshot, the incremental-cleanup cursor of each state,
//! and the buffers reads build values in.

use crate::error::Full;
use crate::room;

/// Where a state's incremental cleanup goes on: its table of key group
/// `part`, slot `slot` of that table's index.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    pub part: usize,
    pub slot: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Runtime {
    /// The store's time (ms), as the binding last set it.
    pub now: u64,
    /// (snapshot epoch, time it was taken), ascending by epoch.
    snapshots: Vec<(u64, u64)>,
    /// By state id.
    pub cursors: Vec<Cursor>,
    /// By state id: elements held by a list state with TTL (each has a stamp).
    pub list_stamps: Vec<u64>,
    /// By state id: at most the oldest stamp the state's live values carry
    /// (lowered by every write, set exactly by `expire()`). While it has not
    /// expired, nothing of the state has: incremental cleanup skips its step.
    pub floor: Vec<u64>,
    /// States whose incremental cleanup runs on every record.
    pub every_record: Vec<u32>,
    /// A value a read built (a list without its stamps, a copy of a value
    /// it removed); valid until the next call.
    pub out: Vec<u8>,
    /// Scratch for values being stamped or filtered.
    pub tmp: Vec<u8>,
}

impl Runtime {
    /// Room for the time of one more snapshot, taken before the snapshot is.
    pub fn reserve_snapshot(&mut self) -> Result<(), Full> {
        room::reserve(&mut self.snapshots, 1)
    }

    /// After [`Runtime::reserve_snapshot`]: allocates nothing.
    pub fn snapshot_taken(&mut self, epoch: u64) {
        // Epochs only grow: appending keeps the list sorted.
        debug_assert!(self.snapshots.len() < self.snapshots.capacity());
        self.snapshots.push((epoch, self.now));
    }

    pub fn snapshot_released(&mut self, epoch: u64) {
        if let Ok(i) = self.snapshots.binary_search_by_key(&epoch, |s| s.0) {
            self.snapshots.remove(i);
        }
    }

    /// The time snapshot `epoch` was taken (the store's time, for one it does not know).
    pub fn time_of(&self, epoch: u64) -> u64 {
        self.snapshots.binary_search_by_key(&epoch, |s| s.0).map_or(self.now, |i| self.snapshots[i].1)
    }

    /// Makes room for state `state`'s runtime fields.
    pub fn registered(&mut self, state: u32) -> Result<(), Full> {
        let n = state as usize + 1;
        if self.cursors.len() < n {
            room::reserve_capacity(&mut self.cursors, n)?;
            room::reserve_capacity(&mut self.list_stamps, n)?;
            room::reserve_capacity(&mut self.floor, n)?;
            self.cursors.resize(n, Cursor::default());
            self.list_stamps.resize(n, 0);
            self.floor.resize(n, u64::MAX);
        }
        Ok(())
    }

    /// State `state` stamps a value with the store's time (or holds one
    /// stamped `ts`, restored): the floor goes down to it.
    #[inline]
    pub fn stamped(&mut self, state: u32, ts: u64) {
        if let Some(f) = self.floor.get_mut(state as usize) {
            *f = (*f).min(ts);
        }
    }

    /// Bytes held (for `memory()`).
    pub fn bytes(&self) -> u64 {
        (self.snapshots.capacity() * 16
            + self.cursors.capacity() * std::mem::size_of::<Cursor>()
            + self.list_stamps.capacity() * 8
            + self.floor.capacity() * 8
            + self.every_record.capacity() * 4
            + self.out.capacity()
            + self.tmp.capacity()) as u64
    }
}
