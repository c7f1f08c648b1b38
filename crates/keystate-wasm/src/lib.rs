//! wasm-bindgen binding of keystate-core for `wasm32-unknown-unknown`.
//! Translates only: exports (store.rs, restore.rs, inspect.rs), conversions (conv.rs),
//! errors (error.rs), and the allocator policy for linear memory (alloc.rs).
//! All logic lives in keystate-core.

#[cfg(target_arch = "wasm32")]
mod alloc;
mod conv;
mod error;
mod inspect;
mod restore;
mod store;

pub use inspect::WasmInspector;
pub use restore::WasmRestorer;
pub use store::WasmStore;

use wasm_bindgen::prelude::*;

/// The crate version, for diagnostics.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
