//! `NativeStore`: the store's exports. The hot calls (the core's wire
//! protocol) are plain N-API functions over the store's [`Core`], made once
//! per store by `hotFunctions` (see `crate::hot`); here are the rest, as
//! napi-rs methods: buffers, states, snapshots, memory, checkpoints.
//!
//! Checkpoint bytes are produced on a libuv worker thread (`exportJob`, then
//! `NativeExport.pull`, an `AsyncTask`) from the checkpoint's frozen view
//! while JavaScript keeps writing to the store (see keystate_core's export
//! module).

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;

use keystate_core::wire::Wire;
use keystate_core::{Error, ExportJob, KeyGroupRange, Policy, Progress, StateDescriptor, StateKind, Store, StoreConfig};
use napi::bindgen_prelude::{AsyncTask, Buffer, ObjectFinalize, Unknown};
use napi::{Env, Task};
use napi_derive::napi;

use crate::buffers::Shared;
use crate::conv::{CoreBase, CoreCheckpointInfo, CoreMemory, CoreProgress, CoreStateInfo};
use crate::error::{js, napi_failed, no_buffer, to_js, ErrorInfo, Result};
use crate::hot::{self, Core, SCRATCH_AT, SLOTS};

/// Result buffer bytes kept after a large result was handed out.
const RESULT_KEEP: usize = 64 * 1024;

fn closed() -> Error {
    Error::InvalidArgument("the store is closed".into())
}

#[napi(custom_finalize)]
#[derive(Debug)]
pub struct NativeStore {
    /// Shared with the store's hot functions (each holds a count).
    core: Rc<RefCell<Core>>,
}

impl NativeStore {
    pub(crate) fn wrap(env: &Env, inner: Store) -> Result<NativeStore> {
        let args = Shared::new(env, SCRATCH_AT + 1024).map_err(napi_failed)?;
        let res = Shared::new(env, 4096).map_err(napi_failed)?;
        Ok(NativeStore { core: Rc::new(RefCell::new(Core { store: Some(inner), wire: Wire::new(), args, res })) })
    }

    fn core(&self) -> RefMut<'_, Core> {
        // Hot functions and these methods never run while another one does (no call runs JavaScript).
        self.core.borrow_mut()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> keystate_core::Result<T>) -> Result<T> {
        let mut c = self.core();
        js(c.store.as_mut().ok_or_else(closed).and_then(f))
    }
}

#[napi]
impl NativeStore {
    /// A new empty store owning key groups `kgStart..=kgEnd`.
    #[napi(constructor)]
    pub fn new(env: Env, max_parallelism: u32, kg_start: u32, kg_end: u32, store_id: &[u8]) -> Result<NativeStore> {
        let id: [u8; 16] = store_id.try_into().map_err(|_| to_js(&Error::InvalidArgument("store id must be 16 bytes".into())))?;
        let cfg = js(StoreConfig::new(max_parallelism, Some(KeyGroupRange::new(kg_start, kg_end)), id))?;
        NativeStore::wrap(&env, Store::new(cfg))
    }

    /// The store's hot functions (`get`, `put`, ...: see crates/keystate-node/src/hot.rs).
    #[napi]
    pub fn hot_functions(&self, env: Env) -> Result<Unknown<'static>> {
        let v = hot::functions(&env, &self.core).map_err(napi_failed)?;
        // Safety: `v` is a live object of this env, returned to JS at once.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
    }

    /// Frees the store now (rather than when collected): stops its exports,
    /// drops its state and lets its buffers go.
    #[napi]
    pub fn free(&self, env: Env) -> Result<()> {
        let mut c = self.core();
        c.store = None;
        c.args.release(&env).map_err(napi_failed)?;
        c.res.release(&env).map_err(napi_failed)
    }

    /// The argument buffer (an `ArrayBuffer`: the call header, then the scratch).
    #[napi]
    pub fn arg_buffer(&self, env: Env) -> Result<Unknown<'static>> {
        let v = self.core().args.value(&env).map_err(napi_failed)?;
        // Safety: `v` is a live ArrayBuffer of this env, returned to JS at once.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
    }

    /// The result buffer (an `ArrayBuffer`; the slots start at 0).
    #[napi]
    pub fn result_buffer(&self, env: Env) -> Result<Unknown<'static>> {
        let v = self.core().res.value(&env).map_err(napi_failed)?;
        // Safety: as in `arg_buffer`.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
    }

    /// Makes the scratch at least `len` bytes, contents kept; returns its
    /// offset in the argument buffer (after the call header). Growing
    /// replaces (and detaches) the buffer.
    #[napi]
    pub fn scratch(&self, env: Env, len: u32) -> Result<u32> {
        let mut c = self.core();
        let need = SCRATCH_AT + len as usize;
        if c.args.len() < need {
            let keep = c.args.len();
            // V8 refusing a buffer this large is the store being full.
            if c.args.replace(&env, need.next_power_of_two(), keep).is_err() {
                c.args.replace(&env, need, keep).map_err(|_| to_js(&no_buffer(need)))?;
            }
        }
        Ok(SCRATCH_AT as u32)
    }

    /// Sets the store's memory budget in bytes (`maxMemoryBytes`).
    #[napi]
    pub fn set_max_memory(&self, bytes: f64) -> Result<()> {
        self.with(|s| crate::conv::budget(bytes).and_then(|b| s.set_memory_limit(Some(b))))
    }

    /// Shrinks the scratch and result buffers to `len` bytes (after a large
    /// batch, so their space goes back); returns the scratch's offset.
    #[napi]
    pub fn scratch_trim(&self, env: Env, len: u32) -> Result<u32> {
        let mut c = self.core();
        let len = (len as usize).max(1024);
        if c.args.len() > SCRATCH_AT + len {
            c.args.replace(&env, SCRATCH_AT + len, SCRATCH_AT + len).map_err(napi_failed)?;
        }
        if c.res.len() > RESULT_KEEP.max(len) {
            c.res.replace(&env, RESULT_KEEP.max(len), SLOTS).map_err(napi_failed)?;
        }
        c.wire.trim(len);
        Ok(SCRATCH_AT as u32)
    }

    #[napi]
    pub fn scratch_len(&self) -> u32 {
        self.core().args.len().saturating_sub(SCRATCH_AT) as u32
    }

    /// Offset of the result slots in the result buffer: 0.
    #[napi]
    pub fn result_ptr(&self) -> u32 {
        0
    }

    /// The error behind the last `-2` status, or null.
    #[napi]
    pub fn last_error(&self) -> Option<ErrorInfo> {
        self.core().wire.take_error().as_ref().map(ErrorInfo::from)
    }

    /// Declares a state; `ttlMs` 0 for none, else its TTL as
    /// `keystate_core::wire::ttl_config` reads `ttlFlags` and `cleanupSize`.
    #[napi]
    #[allow(clippy::too_many_arguments)] // the call's arguments, as they cross the boundary
    pub fn register_state(&self, name: String, kind: u8, value_codec: String, user_key_codec: String, ttl_ms: f64, ttl_flags: u32, cleanup_size: u32) -> Result<u32> {
        let kind = js(StateKind::from_u8(kind))?;
        let ttl = js(keystate_core::wire::ttl_config(ttl_ms, ttl_flags, cleanup_size))?;
        let d = js(StateDescriptor::new(&name, kind, &value_codec, &user_key_codec).and_then(|d| d.with_ttl(ttl)))?;
        self.with(|s| s.register_state(d))
    }

    /// Removes every expired value of the states with TTL; returns how many.
    #[napi]
    pub fn expire(&self) -> Result<f64> {
        self.with(|s| s.expire().map(|n| n as f64))
    }

    /// Registered states by id.
    #[napi]
    pub fn states(&self) -> Result<Vec<CoreStateInfo>> {
        self.with(|s| Ok(s.states().map(CoreStateInfo::from).collect()))
    }

    #[napi]
    pub fn max_parallelism(&self) -> Result<u32> {
        self.with(|s| Ok(s.config().max_parallelism))
    }

    #[napi]
    pub fn key_group_start(&self) -> Result<u32> {
        self.with(|s| Ok(s.config().key_groups.start))
    }

    #[napi]
    pub fn key_group_end(&self) -> Result<u32> {
        self.with(|s| Ok(s.config().key_groups.end))
    }

    // ---- snapshots and memory ---------------------------------------------

    /// Takes an O(1) snapshot; returns its id.
    #[napi]
    pub fn snapshot(&self) -> Result<f64> {
        self.with(|s| s.snapshot().map(|id| id as f64))
    }

    #[napi]
    pub fn release(&self, snapshot: f64) -> Result<()> {
        self.with(|s| s.release(snapshot as u64))
    }

    #[napi]
    pub fn memory(&self) -> Result<CoreMemory> {
        self.with(|s| Ok(CoreMemory::from(&s.memory())))
    }

    #[napi]
    pub fn entries(&self, state: u32) -> Result<f64> {
        self.with(|s| s.entries(state).map(|n| n as f64))
    }

    // ---- checkpoints -------------------------------------------------------

    /// Starts a checkpoint: `incremental` -1 per policy, 0 full, 1 incremental.
    #[napi]
    pub fn checkpoint(&self, incremental: i32) -> Result<CoreCheckpointInfo> {
        let want = (incremental >= 0).then_some(incremental == 1);
        self.with(|s| s.checkpoint(want)).map(|i| CoreCheckpointInfo::from(&i))
    }

    #[napi]
    pub fn set_checkpoint_policy(&self, incremental: bool, max_incrementals: u32, max_chain_ratio: f64) -> Result<()> {
        self.with(|s| s.set_checkpoint_policy(Policy { incremental, max_incrementals, max_chain_ratio }))
    }

    #[napi]
    pub fn delta_members(&self) -> Result<f64> {
        self.with(|s| Ok(s.delta_members() as f64))
    }

    /// The next chunk of a checkpoint's bytes, produced on this thread.
    #[napi]
    pub fn checkpoint_next(&self, id: f64, target: u32) -> Result<Buffer> {
        let mut out = Vec::new();
        js(keystate_core::room::reserve_buffer(&mut out, target as usize + 4096))?;
        self.with(|s| s.checkpoint_next(id as u64, &mut out, target as usize))?;
        Ok(out.into())
    }

    /// Checkpoint `id`'s export, to run on worker threads while JavaScript
    /// goes on (see `NativeExport`).
    #[napi]
    pub fn export_job(&self, id: f64) -> Result<NativeExport> {
        let job = self.with(|s| s.checkpoint_job(id as u64))?;
        Ok(NativeExport { job: Arc::new(job) })
    }

    /// Progress of a pending checkpoint (settles one whose export finished).
    #[napi]
    pub fn checkpoint_progress(&self, id: f64) -> Result<CoreProgress> {
        self.with(|s| s.checkpoint_progress(id as u64)).map(|p| CoreProgress::from(&p))
    }

    #[napi]
    pub fn checkpoint_confirm(&self, id: f64) -> Result<()> {
        self.with(|s| s.checkpoint_confirm(id as u64))
    }

    /// Aborts a checkpoint; an export running on a worker thread stops after
    /// the chunk it is on (this waits for that chunk).
    #[napi]
    pub fn checkpoint_abort(&self, id: f64) -> Result<()> {
        self.with(|s| s.checkpoint_abort(id as u64))
    }

    #[napi]
    pub fn last_confirmed(&self) -> Result<Option<CoreBase>> {
        self.with(|s| Ok(s.last_base().map(|b| CoreBase::from(&b))))
    }
}

/// A checkpoint's export on worker threads. (Its own object: napi-rs keeps a
/// method's receiver borrowed until the promise it returns settles, and the
/// store must stay writable meanwhile.)
#[napi]
#[derive(Debug)]
pub struct NativeExport {
    job: Arc<ExportJob>,
}

#[napi]
impl NativeExport {
    /// Produces the next chunks on a libuv worker thread (about `target`
    /// bytes each, up to `budget` bytes); resolves to them (Buffers over the
    /// produced bytes, not copies) with the progress after each.
    #[napi(ts_return_type = "Promise<ExportPull>")]
    pub fn pull(&self, target: u32, budget: u32) -> AsyncTask<Pull> {
        AsyncTask::new(Pull { job: Arc::clone(&self.job), target: target as usize, budget: budget as usize })
    }
}

/// What one `pull` produced: chunks, and the progress after each.
#[napi(object)]
#[allow(missing_debug_implementations)] // napi's Buffer has no Debug
pub struct ExportPull {
    pub chunks: Vec<Buffer>,
    pub progress: Vec<CoreProgress>,
    pub finished: bool,
    /// Why the export stopped, if it failed (aborted, store closed).
    pub error: Option<ErrorInfo>,
}

/// An export's next chunks, produced on a libuv worker thread.
#[derive(Debug)]
pub struct Pull {
    job: Arc<ExportJob>,
    target: usize,
    budget: usize,
}

impl Task for Pull {
    type Output = (Vec<(Vec<u8>, Progress)>, keystate_core::Result<bool>);
    type JsValue = ExportPull;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let mut chunks = Vec::new();
        let r = self.job.run(&mut chunks, self.target, self.budget);
        Ok((chunks, r))
    }

    fn resolve(&mut self, _env: Env, (chunks, r): Self::Output) -> napi::Result<ExportPull> {
        let (finished, error) = match r {
            Ok(f) => (f, None),
            Err(e) => (false, Some(ErrorInfo::from(&e))),
        };
        let progress = chunks.iter().map(|(_, p)| CoreProgress::from(p)).collect();
        Ok(ExportPull { chunks: chunks.into_iter().map(|(c, _)| Buffer::from(c)).collect(), progress, finished, error })
    }
}

impl ObjectFinalize for NativeStore {
    /// A store collected without `free()`: stop its exports, drop its state,
    /// let its buffers go (hot functions still alive then find it closed).
    fn finalize(self, env: Env) -> napi::Result<()> {
        let mut c = self.core();
        c.store = None;
        c.args.release(&env)?;
        c.res.release(&env)
    }
}
