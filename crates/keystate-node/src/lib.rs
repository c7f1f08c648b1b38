//! napi-rs addon of keystate-core for Node (the `native` backend). Translates
//! only: exports (store.rs, restore.rs, inspect.rs, and the hot calls as plain N-API
//! functions, hot.rs), conversions (conv.rs), errors (error.rs), and the
//! buffers it shares with JavaScript (buffers.rs). All
//! logic lives in keystate-core; the hot-path layout is its wire protocol.
//!
//! What the wasm build cannot do, this one does: checkpoints are exported
//! and restores parsed on libuv worker threads while JavaScript goes on, and
//! state is not capped by a 32-bit address space.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use napi_derive::napi;

mod buffers;
mod conv;
mod error;
mod hot;
mod inspect;
mod restore;
mod store;

pub use inspect::NativeInspector;
pub use restore::NativeRestorer;
pub use store::{NativeExport, NativeStore};

/// The system allocator, counting the bytes it holds for this addon: what
/// `memory().backendBytes` reports (the wasm backend reports its memory).
#[derive(Debug)]
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// Safety: forwards to the system allocator, which upholds GlobalAlloc's
// contract; the counter is bookkeeping only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's layout is non-zero-sized (GlobalAlloc contract).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Safety: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: `ptr` was allocated here with `layout` (GlobalAlloc contract).
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Safety: `ptr` was allocated here with `layout` (GlobalAlloc contract).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_add(new_size, Ordering::Relaxed);
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes this addon holds from the system allocator, for all its stores.
#[napi]
pub fn memory_bytes() -> f64 {
    HELD.load(Ordering::Relaxed) as f64
}

/// The crate version, for diagnostics.
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
