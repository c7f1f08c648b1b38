//! The global allocator on wasm32: dlmalloc (what std uses there), over a
//! system layer that grows linear memory in large steps.
//!
//! std's own layer grows memory by exactly what dlmalloc asks for, 64 KiB at a
//! time. Each `memory.grow` is a runtime call that detaches the JS views of
//! the memory and reports external memory to V8's GC: filling a store with a
//! million entries spent about as long growing memory (and collecting garbage
//! after it) as storing. Here each growth takes at least a sixteenth of the
//! current memory (1 to 8 MiB), so growth costs O(log size) calls, and at
//! most about 6% of memory waits unused (it never shrinks: the memory bench
//! counts all of it).

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;

use dlmalloc::{Allocator, Dlmalloc};

const PAGE: usize = 64 * 1024;

/// dlmalloc's system layer: fresh regions from `memory.grow`, never returned.
pub struct Grow;

fn grow(pages: usize) -> Option<usize> {
    let prev = wasm32::memory_grow(0, pages);
    (prev != usize::MAX).then_some(prev * PAGE)
}

// Safety: every region handed out comes from `memory.grow`: fresh, zeroed,
// owned by nobody else, and never handed out twice; nothing is ever freed.
unsafe impl Allocator for Grow {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let current = wasm32::memory_size(0) * PAGE;
        let step = (current / 16).clamp(1 << 20, 8 << 20);
        for want in [size.max(step), size] {
            let pages = want.div_ceil(PAGE);
            if let Some(base) = grow(pages) {
                // The top of the 32-bit address space cannot be handed out whole.
                let len = pages * PAGE;
                let len = if base.wrapping_add(len) == 0 { len - 16 } else { len };
                return (base as *mut u8, len, 0);
            }
        }
        (ptr::null_mut(), 0, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// dlmalloc behind a cell: wasm32-unknown-unknown runs one thread.
pub struct Global(UnsafeCell<Dlmalloc<Grow>>);

// Safety: this crate targets wasm32-unknown-unknown without threads (no
// shared memory, no atomics feature), so the allocator is never entered from
// two threads, and dlmalloc never calls back into the global allocator.
unsafe impl Sync for Global {}

impl Global {
    #[allow(clippy::mut_from_ref)]
    fn get(&self) -> &mut Dlmalloc<Grow> {
        // Safety: single-threaded (see the Sync impl) and not reentrant, so
        // no other reference to the allocator is alive during a call.
        unsafe { &mut *self.0.get() }
    }
}

// Safety: forwards to dlmalloc, which upholds GlobalAlloc's contract.
unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's layout is non-zero-sized (GlobalAlloc contract).
        unsafe { self.get().malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Safety: as for `alloc`.
        unsafe { self.get().calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: `ptr` was allocated here with `layout` (GlobalAlloc contract).
        unsafe { self.get().free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Safety: `ptr` was allocated here with `layout` (GlobalAlloc contract).
        unsafe { self.get().realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Global = Global(UnsafeCell::new(Dlmalloc::new_with_allocator(Grow)));
