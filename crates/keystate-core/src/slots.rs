//! The slot array of an index chunk ([`crate::index::Index`]): like
//! `Box<[Slot]>`, but allocated fallibly, so that an index that cannot grow
//! or be copied is a `STORE_FULL` error instead of an abort (stable Rust has
//! no fallible `Box` constructor), and with uncounted aliases for the frozen
//! copies checkpoints take (see `crate::index::Share`, which decides when the
//! owner may write or free what an alias reads).

use std::alloc::{self, Layout};
use std::ops::Deref;
use std::ptr::NonNull;

/// A slot of `N` bytes: the meta byte, then a ref or (in a wide index) an
/// entry inline (see `crate::index`). Plain bytes, all-zero when empty.
pub type Slot<const N: usize> = [u8; N];

/// Layout of an allocation of `len` slots.
fn layout<const N: usize>(len: usize) -> Option<Layout> {
    Layout::array::<Slot<N>>(len).ok()
}

/// An owned array of slots, or an alias of one (`alias`). Empty arrays
/// allocate nothing.
pub struct Slots<const N: usize> {
    /// The first of `len` slots, an allocation of `layout(len)`; dangling
    /// when `len == 0`.
    ptr: NonNull<Slot<N>>,
    len: usize,
}

// Safety: the slots are plain bytes. They are written only through
// `get_mut_unchecked` (`&mut`, and its caller's promise that no alias reads
// them meanwhile) and freed only by the owning handle's drop, so handles
// move between threads as `Box<[Slot]>` does.
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
        if len == 0 || N == 0 {
            return Some(Slots { ptr: NonNull::dangling(), len });
        }
        let layout = layout::<N>(len)?;
        // Safety: the layout's size is not zero (`len` and `N` are not).
        let ptr = NonNull::new(crate::room::fallibly(|| unsafe { if zero { alloc::alloc_zeroed(layout) } else { alloc::alloc(layout) } }))?;
        // `len` slots, zeroed (valid empty slots) when `zero`, else written by
        // the caller (`copy`) before this handle is used.
        Some(Slots { ptr: ptr.cast::<Slot<N>>(), len })
    }

    /// True when both are handles of one array.
    pub fn ptr_eq(&self, other: &Slots<N>) -> bool {
        self.ptr == other.ptr
    }

    /// A handle to the same slots that does not own them: for a frozen copy
    /// of an index, which reads them while their owner keeps them alive
    /// (see `crate::index::Share`).
    ///
    /// # Safety
    /// The alias is never dropped (it is forgotten: its drop would free the
    /// slots), and is not read after the owner frees them. While it is read,
    /// nobody writes the slots.
    pub unsafe fn alias(&self) -> Slots<N> {
        Slots { ptr: self.ptr, len: self.len }
    }

    /// A copy of the slots, or `None` when the allocator refuses. (Not
    /// zeroed first: the copy writes every byte. A writer's first change to
    /// a chunk a checkpoint reads pays for this copy.)
    pub fn copy(&self) -> Option<Slots<N>> {
        let c = Slots::alloc(self.len, false)?;
        // Safety: `c` is a fresh allocation of `self.len` slots no one else
        // sees yet, and `self` holds `self.len` valid slots: the copy writes
        // each of its bytes before anything reads them.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), c.ptr.as_ptr(), self.len) };
        Some(c)
    }

    /// The slots, mutably.
    ///
    /// # Safety
    /// This is the owning handle, and no alias of it is read while the
    /// borrow lives; every read through an alias before it happens-before
    /// this call (the owner saw it through an `Acquire`, see
    /// `crate::index::Share`).
    #[inline]
    pub unsafe fn get_mut_unchecked(&mut self) -> &mut [Slot<N>] {
        // Safety: `len` valid slots (see `ptr`), and nothing else reads or
        // writes them meanwhile (the caller's contract, and `&mut self`).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<const N: usize> Deref for Slots<N> {
    type Target = [Slot<N>];

    #[inline]
    fn deref(&self) -> &[Slot<N>] {
        // Safety: `len` valid slots (dangling and empty when `len == 0`), alive
        // while the owning handle is (an alias is read only then); slots an
        // alias reads are not written.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<const N: usize> Default for Slots<N> {
    fn default() -> Self {
        Slots::EMPTY
    }
}

impl<const N: usize> Drop for Slots<N> {
    fn drop(&mut self) {
        if self.len == 0 || N == 0 {
            return;
        }
        let layout = layout::<N>(self.len).expect("the layout it was allocated with");
        // Safety: this is the owning handle (aliases are forgotten, never
        // dropped), and `ptr` was allocated by `alloc` with this layout.
        unsafe { alloc::dealloc(self.ptr.cast::<u8>().as_ptr(), layout) };
    }
}

impl<const N: usize> std::fmt::Debug for Slots<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slots({} slots)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_copied_and_aliased() {
        let mut a = Slots::<5>::zeroed(10).unwrap();
        assert!(a.iter().all(|s| *s == [0; 5]));
        // Safety: `a` is the owner and has no alias yet.
        (unsafe { a.get_mut_unchecked() })[3] = [1, 2, 3, 4, 5];
        let mut c = a.copy().unwrap();
        assert!(!c.ptr_eq(&a));
        assert_eq!(&c[..], &a[..], "a copy has every byte, the empty slots' too");
        // Safety: `c` is the owner and has no alias.
        (unsafe { c.get_mut_unchecked() })[3] = [9; 5];
        assert_eq!(a[3], [1, 2, 3, 4, 5]);
        // Safety: forgotten below, while `a` lives.
        let b = unsafe { a.alias() };
        assert!(b.ptr_eq(&a) && b[3] == [1, 2, 3, 4, 5]);
        std::mem::forget(b);
        let e = Slots::<5>::zeroed(0).unwrap();
        assert!(e.is_empty() && e.ptr_eq(&Slots::EMPTY));
    }
}
