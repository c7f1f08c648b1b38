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
//!
//! When memory cannot grow any more, the core's fallible allocations fail
//! (and become `STORE_FULL` errors), but a few allocations that cannot fail
//! remain on the paths that report and recover: an error's message,
//! wasm-bindgen's copies of string arguments, the small bookkeeping of a
//! snapshot or a `memory()` report. For those, a second dlmalloc keeps a
//! reserve of [`RESERVE`] bytes in static memory and serves requests of up to
//! [`RESERVE_MAX`] bytes that the main heap refused, unless the core marked
//! the request as one whose failure it handles (`keystate_core::room::fallible`):
//! so data never takes the reserve, and what takes it is given back soon
//! (freed, or moved to the main heap when it is reallocated).

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use dlmalloc::{Allocator, Dlmalloc};

/// Bytes kept back for allocations that cannot fail.
const RESERVE: usize = 256 * 1024;
/// Largest request the reserve serves.
const RESERVE_MAX: usize = 16 * 1024;

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

/// The reserve's bytes: static, zeroed, handed to the reserve's dlmalloc once.
#[repr(C, align(16))]
struct Region(UnsafeCell<[u8; RESERVE]>);

// Safety: only the reserve's dlmalloc touches the bytes, and this crate runs
// one thread (see `Global`).
unsafe impl Sync for Region {}

static REGION: Region = Region(UnsafeCell::new([0; RESERVE]));

fn in_region(p: *mut u8) -> bool {
    let start = REGION.0.get() as usize;
    (start..start + RESERVE).contains(&(p as usize))
}

/// The reserve's system layer: [`REGION`], once.
pub struct Reserve(AtomicBool);

// Safety: the one region handed out is static, zeroed, owned by nothing else,
// and handed out once; nothing is ever returned.
unsafe impl Allocator for Reserve {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        if size > RESERVE || self.0.swap(true, Ordering::Relaxed) {
            return (ptr::null_mut(), 0, 0);
        }
        (REGION.0.get().cast::<u8>(), RESERVE, 0)
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

/// Whether the reserve may serve a request of `size` bytes the main heap refused.
fn may_take_reserve(size: usize) -> bool {
    size <= RESERVE_MAX && !keystate_core::room::fallible()
}

/// The main heap and the reserve, behind cells: wasm32-unknown-unknown runs one thread.
pub struct Global {
    main: UnsafeCell<Dlmalloc<Grow>>,
    reserve: UnsafeCell<Dlmalloc<Reserve>>,
}

// Safety: this crate targets wasm32-unknown-unknown without threads (no
// shared memory, no atomics feature), so the allocator is never entered from
// two threads, and dlmalloc never calls back into the global allocator.
unsafe impl Sync for Global {}

impl Global {
    #[allow(clippy::mut_from_ref)]
    fn main(&self) -> &mut Dlmalloc<Grow> {
        // Safety: single-threaded (see the Sync impl) and not reentrant, so
        // no other reference to the allocator is alive during a call.
        unsafe { &mut *self.main.get() }
    }

    #[allow(clippy::mut_from_ref)]
    fn reserve(&self) -> &mut Dlmalloc<Reserve> {
        // Safety: as for `main`.
        unsafe { &mut *self.reserve.get() }
    }
}

// Safety: forwards to the two dlmallocs, which uphold GlobalAlloc's contract;
// every block is freed or reallocated by the one that allocated it (told
// apart by address: the reserve's blocks lie in `REGION`).
unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's layout is non-zero-sized (GlobalAlloc contract).
        let p = unsafe { self.main().malloc(layout.size(), layout.align()) };
        if !p.is_null() || !may_take_reserve(layout.size()) {
            return p;
        }
        // Safety: as above.
        unsafe { self.reserve().malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Safety: as for `alloc`.
        let p = unsafe { self.main().calloc(layout.size(), layout.align()) };
        if !p.is_null() || !may_take_reserve(layout.size()) {
            return p;
        }
        // Safety: as for `alloc`.
        unsafe { self.reserve().calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_region(ptr) {
            // Safety: `ptr` was allocated by the reserve with `layout` (GlobalAlloc contract).
            unsafe { self.reserve().free(ptr, layout.size(), layout.align()) }
        } else {
            // Safety: `ptr` was allocated by the main heap with `layout`.
            unsafe { self.main().free(ptr, layout.size(), layout.align()) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if in_region(ptr) {
            // Back to the main heap when it has room again, so the reserve refills.
            // Safety: a fresh block of `new_size` bytes, `align`ed (a valid layout:
            // GlobalAlloc's realloc contract).
            let q = unsafe { self.main().malloc(new_size, align) };
            if !q.is_null() {
                // Safety: both blocks are live and distinct, each at least the
                // bytes copied; `ptr` is the reserve's, freed once.
                unsafe {
                    ptr::copy_nonoverlapping(ptr, q, size.min(new_size));
                    self.reserve().free(ptr, size, align);
                }
                return q;
            }
            if !may_take_reserve(new_size) {
                return ptr::null_mut();
            }
            // Safety: `ptr` was allocated by the reserve with `layout`.
            return unsafe { self.reserve().realloc(ptr, size, align, new_size) };
        }
        // Safety: `ptr` was allocated by the main heap with `layout`.
        let q = unsafe { self.main().realloc(ptr, size, align, new_size) };
        if !q.is_null() || !may_take_reserve(new_size) {
            return q;
        }
        // Safety: a fresh block from the reserve, then as above with the roles
        // swapped; on failure `ptr` stays valid (GlobalAlloc's contract).
        unsafe {
            let q = self.reserve().malloc(new_size, align);
            if !q.is_null() {
                ptr::copy_nonoverlapping(ptr, q, size.min(new_size));
                self.main().free(ptr, size, align);
            }
            q
        }
    }
}

#[global_allocator]
static ALLOCATOR: Global = Global {
    main: UnsafeCell::new(Dlmalloc::new_with_allocator(Grow)),
    reserve: UnsafeCell::new(Dlmalloc::new_with_allocator(Reserve(AtomicBool::new(false)))),
};
