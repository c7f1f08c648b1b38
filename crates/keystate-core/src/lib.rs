//! keystate-core: the keyed state store behind keystate.
//!
//! All logic lives here: the record arena, hash tables with copy-on-write
//! snapshots, key groups, checkpoints and their format, restore. Bindings
//! (wasm, napi) only translate, through the small public API below and the
//! wire protocol in [`wire`]; the record arena, tables and delta log are
//! private.

mod arena;
mod batch;
mod checkpoint;
mod compact;
mod delta;
mod error;
mod export;
pub mod format;
pub mod hash;
mod index;
mod keygroup;
mod inspect;
mod mapstate;
mod maphead;
mod mapval;
mod mem;
mod radix;
mod record;
mod restore;
pub mod room;
mod slots;
mod state;
mod store;
pub mod ttl;
pub mod varint;
pub mod wire;
mod write;

pub use checkpoint::{Base, CheckpointInfo, Link, Policy, Progress, DEFAULT_CHUNK};
pub use error::{Error, Full, Result};
pub use export::ExportJob;
pub use inspect::Inspector;
pub use format::CheckpointKind;
pub use restore::{PieceInfo, RestoreOptions, RestoreProgress, Restorer};
pub use state::{StateDescriptor, StateKind};
pub use ttl::{TtlConfig, TtlUpdate, TtlVisibility};
pub use store::{Key, KeyGroupRange, MemoryReport, StateMemory, Store, StoreConfig, DEFAULT_MAX_PARALLELISM, MAX_KEY_LEN, MAX_VALUE_LEN};

/// Restores one chain of whole checkpoints held in memory.
pub fn restore_chain(pieces: &[&[u8]], opts: RestoreOptions) -> Result<Store> {
    let mut r = Restorer::new(opts);
    for p in pieces {
        r.begin_piece(false)?;
        r.feed(p)?;
        r.end_piece()?;
    }
    r.finish()
}

/// Merges a chain `[full, delta1, ...]` into one full checkpoint that
/// stands in for it (same id and link as the last piece), without a live
/// store: the chain is restored into a temporary store and written out.
pub fn compact(pieces: &[&[u8]]) -> Result<Vec<u8>> {
    let mut store = restore_chain(pieces, RestoreOptions { key_groups: None, new_store_id: [0; 16] })?;
    store.export_compacted()
}

/// Exports a whole checkpoint into one buffer (tests, tools, compaction).
pub fn export_all(store: &mut Store, id: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while !store.checkpoint_next(id, &mut out, DEFAULT_CHUNK)? {}
    Ok(out)
}
