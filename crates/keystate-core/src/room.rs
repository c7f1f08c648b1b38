//! Memory for writes: fallible allocation, and the store's budget.
//!
//! Rust aborts when an allocation fails (in WebAssembly, a trap that takes
//! the whole instance down), so a write that may need memory gets all of it
//! first, through the fallible calls here, and changes nothing before it has
//! it: allocate first, then commit (docs/MEMORY.md). What a reservation gets
//! and the write does not use stays as spare capacity (free pages, index
//! room), never as data.
//!
//! While the core makes an allocation whose failure it handles, [`fallible`]
//! is true on that thread, so an allocator can refuse such a request at once
//! instead of handing out the reserve it keeps for allocations that cannot
//! fail (the wasm binding's allocator does; see its alloc.rs).

use std::cell::Cell;

use crate::error::Full;

thread_local! {
    static FALLIBLE: Cell<bool> = const { Cell::new(false) };
}

/// True while the core makes, on this thread, an allocation whose failure it
/// handles (and reports as `STORE_FULL`).
pub fn fallible() -> bool {
    FALLIBLE.try_with(Cell::get).unwrap_or(false)
}

/// Runs `f`, an allocation whose failure the caller handles, with
/// [`fallible`] true.
#[inline]
pub(crate) fn fallibly<T>(f: impl FnOnce() -> T) -> T {
    let before = FALLIBLE.try_with(|c| c.replace(true)).unwrap_or(false);
    let r = f();
    let _ = FALLIBLE.try_with(|c| c.set(before));
    r
}

/// The error for an allocation of `bytes` that failed.
#[cold]
pub(crate) fn oom(bytes: usize) -> Full {
    Full::OutOfMemory { need: bytes as u64 }
}

/// What one operation may still take from its store's budget: the bytes the
/// store holds (as `memory()` counts them, when the operation began) plus
/// those taken since, against the limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Room {
    used: u64,
    limit: u64,
}

impl Room {
    /// No budget: every allocation the allocator grants is taken.
    pub const UNLIMITED: Room = Room { used: 0, limit: u64::MAX };

    pub fn new(used: u64, limit: u64) -> Room {
        Room { used, limit }
    }

    /// Takes `n` bytes, or refuses when they would pass the budget.
    #[inline]
    pub fn take(&mut self, n: u64) -> Result<(), Full> {
        match self.used.checked_add(n) {
            Some(u) if u <= self.limit => {
                self.used = u;
                Ok(())
            }
            _ => Err(Full::Budget { need: n, used: self.used, limit: self.limit }),
        }
    }
}

/// Makes room in `v` for `n` more items (bookkeeping outside the budget).
#[inline]
pub(crate) fn reserve<T>(v: &mut Vec<T>, n: usize) -> Result<(), Full> {
    if v.capacity() - v.len() >= n {
        return Ok(());
    }
    fallibly(|| v.try_reserve(n)).map_err(|_| oom(n.saturating_mul(std::mem::size_of::<T>())))
}

/// Makes `v`'s capacity at least `cap` items (bookkeeping outside the
/// budget: a list that must take any item without allocating).
#[inline]
pub(crate) fn reserve_capacity<T>(v: &mut Vec<T>, cap: usize) -> Result<(), Full> {
    let n = cap.saturating_sub(v.len());
    reserve(v, n)
}

/// Makes room in `v` for `n` more bytes (buffers whose size the
/// caller knows: values, listings, chunks).
#[inline]
pub(crate) fn reserve_bytes(v: &mut Vec<u8>, n: usize) -> Result<(), Full> {
    if v.capacity() - v.len() >= n {
        return Ok(());
    }
    fallibly(|| v.try_reserve(n)).map_err(|_| oom(n))
}

/// Makes room in `v` for `n` more items, charging the growth to `room`
/// (structures that `memory()` counts by capacity).
pub(crate) fn reserve_counted<T>(v: &mut Vec<T>, n: usize, room: &mut Room) -> Result<(), Full> {
    if v.capacity() - v.len() >= n {
        return Ok(());
    }
    // Grow as Vec would (doubling), but exactly, so the budget sees the bytes.
    let cap = v.capacity().saturating_mul(2).max(v.len().saturating_add(n)).max(4);
    let bytes = (cap - v.capacity()).saturating_mul(std::mem::size_of::<T>());
    room.take(bytes as u64)?;
    fallibly(|| v.try_reserve_exact(cap - v.len())).map_err(|_| oom(bytes))
}

/// Makes room in `v` for `n` more items (bookkeeping outside the budget).
pub(crate) fn reserve_deque<T>(v: &mut std::collections::VecDeque<T>, n: usize) -> Result<(), Full> {
    if v.capacity() - v.len() >= n {
        return Ok(());
    }
    fallibly(|| v.try_reserve(n)).map_err(|_| oom(n.saturating_mul(std::mem::size_of::<T>())))
}

/// Resizes a binding's byte buffer (a scratch, a listing) to `len` bytes,
/// new bytes zeroed; `STORE_FULL` when the memory cannot be had (the buffer
/// is then unchanged).
pub fn resize_buffer(v: &mut Vec<u8>, len: usize) -> Result<(), crate::Error> {
    if len > v.len() {
        reserve_bytes(v, len - v.len())?;
    }
    v.resize(len, 0);
    Ok(())
}

/// Makes room for `n` more bytes in a binding's byte buffer (an output
/// chunk); `STORE_FULL` when the memory cannot be had.
pub fn reserve_buffer(v: &mut Vec<u8>, n: usize) -> Result<(), crate::Error> {
    Ok(reserve_bytes(v, n)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_takes_up_to_its_limit() {
        let mut r = Room::new(90, 100);
        assert!(r.take(10).is_ok());
        assert_eq!(r.take(1), Err(Full::Budget { need: 1, used: 100, limit: 100 }));
        let mut u = Room::UNLIMITED;
        assert!(u.take(u64::MAX / 2).is_ok());
    }

    #[test]
    fn the_fallible_flag_is_set_only_inside() {
        assert!(!fallible());
        assert!(fallibly(fallible));
        assert!(fallibly(|| fallibly(fallible) && fallible()));
        assert!(!fallible());
    }
}
