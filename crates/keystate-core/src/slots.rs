//! The slot array of an index ([`crate::index::Index`]): like `Arc<[Slot]>`
//! (one allocation with a count in front, shared copy-on-write between a
//! live index and the frozen copies checkpoints take), but allocated
//! fallibly, so that an index that cannot grow or be copied is a
//! `STORE_FULL` error instead of an abort. (Stable Rust has no fallible
//! `Arc` constructor.)

use std::alloc::{self, Layout};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

/// A slot of `N` bytes: the meta byte, then a ref or (in a wide index) an
/// entry inline (see `crate::index`). Plain bytes, all-zero when empty.
pub type Slot<const N: usize> = [u8; N];

/// What sits in front of the slots.
struct Head {
    refs: AtomicUsize,
}

/// Bytes from the start of an allocation to its first slot.
const OFF: usize = std::mem::size_of::<Head>();

/// Layout of an allocation of `len` slots (`len > 0`).
fn layout<const N: usize>(len: usize) -> Option<Layout> {
    let (l, off) = Layout::new::<Head>().extend(Layout::array::<Slot<N>>(len).ok()?).ok()?;
    debug_assert_eq!(off, OFF);
    Some(l.pad_to_align())
}

/// A shared, counted array of slots. Empty arrays allocate nothing.
pub struct Slots<const N: usize> {
    /// The first slot: `OFF` bytes into an allocation of `layout(len)`
    /// whose `Head` counts the `Slots` that share it; dangling when `len == 0`.
    ptr: NonNull<Slot<N>>,
    len: usize,
}

// Safety: the slots are plain bytes, changed only through `get_mut`, which
// requires the one handle (`&mut` and a count of 1); the count is atomic. So
// handles move and share across threads as `Arc<[Slot]>` does.
unsafe impl<const N: usize> Send for Slots<N> {}
// Safety: as for Send: through `&Slots` the bytes are only read.
unsafe impl<const N: usize> Sync for Slots<N> {}

impl<const N: usize> Slots<N> {
    pub const EMPTY: Slots<N> = Slots { ptr: NonNull::dangling(), len: 0 };

    /// `len` empty (zeroed) slots, or `None` when the allocator refuses.
    pub fn zeroed(len: usize) -> Option<Slots<N>> {
        Self::alloc(len, true)
    }

    /// `len` slots, zeroed when `zero` (else their bytes are to be written
    /// before any read), or `None` when the allocator refuses.
    fn alloc(len: usize, zero: bool) -> Option<Slots<N>> {
        if len == 0 {
            return Some(Slots::EMPTY);
        }
        let layout = layout::<N>(len)?;
        // Safety: the layout's size is not zero (it holds a `Head`).
        let base = NonNull::new(crate::room::fallibly(|| unsafe { if zero { alloc::alloc_zeroed(layout) } else { alloc::alloc(layout) } }))?;
        // Safety: `base` is a fresh allocation of `layout`, aligned for a
        // `Head` at its start, and `OFF` bytes in (within its size) start the
        // slots: `len` of them, zeroed (valid empty slots) when `zero`, else
        // written by the caller (`copy`) before this handle is used.
        unsafe {
            base.cast::<Head>().as_ptr().write(Head { refs: AtomicUsize::new(1) });
            Some(Slots { ptr: base.add(OFF).cast::<Slot<N>>(), len })
        }
    }

    fn head(&self) -> &Head {
        debug_assert!(self.len > 0);
        // Safety: `len > 0`, so `ptr` is `OFF` bytes into an allocation made by
        // `zeroed`, which starts with its `Head`; it lives while this handle does.
        unsafe { &*self.ptr.cast::<u8>().sub(OFF).cast::<Head>().as_ptr() }
    }

    /// True when no other handle shares the slots.
    #[inline]
    pub fn is_unique(&self) -> bool {
        self.len == 0 || self.head().refs.load(Ordering::Acquire) == 1
    }

    /// True when both are handles of one array.
    pub fn ptr_eq(&self, other: &Slots<N>) -> bool {
        self.ptr == other.ptr
    }

    /// The slots, mutably, if no other handle shares them.
    #[cfg(test)]
    pub fn get_mut(&mut self) -> Option<&mut [Slot<N>]> {
        if !self.is_unique() {
            return None;
        }
        // Safety: `len` valid slots (see `ptr`), and this is the one handle to
        // them (count 1, and `&mut self`), so nothing else reads or writes them.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) })
    }

    /// A handle to the same slots that is not counted: for a frozen copy
    /// of an index, which reads them while their owner keeps them alive
    /// (see `crate::index::Share`).
    ///
    /// # Safety
    /// The alias is never dropped (it is forgotten: its drop would free
    /// or miscount the slots), and is not read after the owner frees them.
    /// While it is read, nobody writes the slots.
    pub unsafe fn alias(&self) -> Slots<N> {
        Slots { ptr: self.ptr, len: self.len }
    }

    /// A copy no other handle shares, or `None` when the allocator refuses.
    /// (Not zeroed first: the copy writes every byte. A writer's first change
    /// to a chunk a checkpoint shares pays for this copy.)
    pub fn copy(&self) -> Option<Slots<N>> {
        let c = Slots::alloc(self.len, false)?;
        // Safety: `c` is a fresh allocation of `self.len` slots no one else
        // sees yet, and `self` holds `self.len` valid slots: the copy writes
        // each of its bytes before anything reads them.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), c.ptr.as_ptr(), self.len) };
        Some(c)
    }

    /// The slots, mutably, without reading the count (a cache miss when the
    /// chunks are many): for an owner that knows by other means that no
    /// other handle shares them.
    ///
    /// # Safety
    /// No other handle to these slots exists, and the drop of every handle
    /// that did happens-before this call (the owner saw it through an
    /// `Acquire` load, as `is_unique` does).
    #[inline]
    pub unsafe fn get_mut_unchecked(&mut self) -> &mut [Slot<N>] {
        debug_assert!(self.is_unique());
        // Safety: `len` valid slots (see `ptr`), and no other handle reads or
        // writes them (the caller's contract, and `&mut self`).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<const N: usize> Deref for Slots<N> {
    type Target = [Slot<N>];

    #[inline]
    fn deref(&self) -> &[Slot<N>] {
        // Safety: `len` valid slots (dangling and empty when `len == 0`), alive
        // while this handle is; shared slots are never written.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<const N: usize> Default for Slots<N> {
    fn default() -> Self {
        Slots::EMPTY
    }
}

impl<const N: usize> Clone for Slots<N> {
    fn clone(&self) -> Self {
        if self.len > 0 {
            // As `Arc`: a count that could overflow means handles were leaked
            // without end; stop rather than free while in use.
            if self.head().refs.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
                std::process::abort();
            }
        }
        Slots { ptr: self.ptr, len: self.len }
    }
}

impl<const N: usize> Drop for Slots<N> {
    fn drop(&mut self) {
        if self.len == 0 || self.head().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // As `Arc`: see every other handle's last use before freeing.
        fence(Ordering::Acquire);
        let layout = layout::<N>(self.len).expect("the layout it was allocated with");
        // Safety: this was the last handle; the allocation starts `OFF` bytes
        // before `ptr` and was made by `zeroed` with this layout.
        unsafe { alloc::dealloc(self.ptr.cast::<u8>().as_ptr().sub(OFF), layout) };
    }
}

impl<const N: usize> std::fmt::Debug for Slots<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slots({} slots, {})", self.len, if self.is_unique() { "unique" } else { "shared" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_until_copied_freed_with_the_last_handle() {
        let mut a = Slots::<5>::zeroed(10).unwrap();
        assert!(a.iter().all(|s| *s == [0; 5]));
        a.get_mut().unwrap()[3] = [1, 2, 3, 4, 5];
        let b = a.clone();
        assert!(!a.is_unique() && a.ptr_eq(&b));
        assert!(a.get_mut().is_none(), "shared slots are not written");
        let mut c = a.copy().unwrap();
        assert!(c.is_unique() && !c.ptr_eq(&a));
        assert_eq!(&c[..], &a[..], "a copy has every byte, the empty slots' too");
        c.get_mut().unwrap()[3] = [9; 5];
        assert_eq!(b[3], [1, 2, 3, 4, 5]);
        drop(b);
        assert!(a.is_unique());
        let e = Slots::<5>::zeroed(0).unwrap();
        assert!(e.is_empty() && e.is_unique());
        assert!(e.clone().ptr_eq(&Slots::EMPTY));
    }
}
