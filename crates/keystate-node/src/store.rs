//! `NativeStore`: the store's exports. As in the wasm binding, hot-path
//! methods take their byte arguments from the store's argument buffer and
//! return an i32 status (the core's wire protocol, `keystate_core::wire`);
//! here the buffers are `ArrayBuffer`s this addon shares with JavaScript
//! (`crate::buffers`), and a value is copied into the result buffer (after
//! the four u32 result slots at its start) instead of read in place.
//!
//! Checkpoint bytes are produced on a libuv worker thread (`exportJob`, then
//! `NativeExport.pull`, an `AsyncTask`) from the checkpoint's frozen view
//! while JavaScript keeps writing to the store (see keystate_core's export
//! module).

use std::sync::Arc;

use keystate_core::wire::{Reply, Wire};
use keystate_core::{Error, ExportJob, KeyGroupRange, Policy, Progress, StateDescriptor, StateKind, Store, StoreConfig};
use napi::bindgen_prelude::{AsyncTask, Buffer, ObjectFinalize, Unknown};
use napi::{Env, Task};
use napi_derive::napi;

use crate::buffers::Shared;
use crate::conv::{CoreBase, CoreCheckpointInfo, CoreMemory, CoreProgress, CoreStateInfo};
use crate::error::{js, napi_failed, to_js, ErrorInfo, Result};

/// Bytes before the values in the result buffer: the four u32 result slots.
const SLOTS: usize = 16;
/// Result buffer bytes kept after a large result was handed out.
const RESULT_KEEP: usize = 64 * 1024;

fn closed() -> Error {
    Error::InvalidArgument("the store is closed".into())
}

#[napi(custom_finalize)]
#[derive(Debug)]
pub struct NativeStore {
    inner: Option<Store>,
    wire: Wire,
    /// The scratch: arguments written by JavaScript.
    args: Shared,
    /// Result slots ([0] offset, [1] length), then the value or listing.
    res: Shared,
}

impl NativeStore {
    pub(crate) fn wrap(env: &Env, inner: Store) -> Result<NativeStore> {
        let args = Shared::new(env, 1024).map_err(napi_failed)?;
        let res = Shared::new(env, 4096).map_err(napi_failed)?;
        Ok(NativeStore { inner: Some(inner), wire: Wire::new(), args, res })
    }

    fn store(&self) -> Result<&Store> {
        self.inner.as_ref().ok_or_else(|| to_js(&closed()))
    }

    fn store_mut(&mut self) -> Result<&mut Store> {
        self.inner.as_mut().ok_or_else(|| to_js(&closed()))
    }

    /// Copies `bytes` into the result buffer after the slots (growing it,
    /// which detaches the old one) and points the slots at them.
    fn place_bytes(res: &mut Shared, env: &Env, bytes: &[u8]) -> napi::Result<()> {
        let need = SLOTS + bytes.len();
        if need > res.len() {
            res.replace(env, need.next_power_of_two(), 0)?;
        }
        let b = res.bytes_mut();
        b[SLOTS..need].copy_from_slice(bytes);
        b[0..4].copy_from_slice(&(SLOTS as u32).to_le_bytes());
        b[4..8].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        Ok(())
    }
}

/// Runs a hot call that takes the argument bytes, or fails it when closed.
macro_rules! call {
    ($self:ident, |$store:ident, $args:ident| $body:expr) => {{
        match $self.inner.as_mut() {
            Some($store) => {
                let $args = $self.args.bytes();
                let wire = &mut $self.wire;
                $body(wire)
            }
            None => $self.wire.fail(closed()),
        }
    }};
}

/// Runs a hot call that replies (a value or a listing), then places the reply.
macro_rules! reply {
    ($self:ident, $env:ident, |$wire:ident, $store:ident, $args:ident| $body:expr) => {{
        let Some($store) = $self.inner.as_ref() else { return $self.wire.fail(closed()) };
        let $args = $self.args.bytes();
        let $wire = &mut $self.wire;
        let (status, bytes): (i32, Option<&[u8]>) = match $body {
            Reply::Status(s) => (s, None),
            Reply::Value(v) => (v.len() as i32, Some(v)),
            Reply::Listed(n) => (n, Some($wire.out())),
        };
        match bytes {
            None => status,
            Some(b) => match NativeStore::place_bytes(&mut $self.res, &$env, b) {
                Ok(()) => status,
                Err(e) => {
                    let msg = format!("cannot hand out a result of {} bytes: {}", b.len(), e.reason);
                    $self.wire.fail(Error::TooLarge(msg))
                }
            },
        }
    }};
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

    /// Frees the store now (rather than when collected): stops its exports,
    /// drops its state and lets its buffers go.
    #[napi]
    pub fn free(&mut self, env: Env) -> Result<()> {
        self.inner = None;
        self.args.release(&env).map_err(napi_failed)?;
        self.res.release(&env).map_err(napi_failed)
    }

    /// The argument buffer (an `ArrayBuffer`; the scratch starts at 0).
    #[napi]
    pub fn arg_buffer(&self, env: Env) -> Result<Unknown<'static>> {
        let v = self.args.value(&env).map_err(napi_failed)?;
        // Safety: `v` is a live ArrayBuffer of this env, returned to JS at once.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
    }

    /// The result buffer (an `ArrayBuffer`; the slots start at 0).
    #[napi]
    pub fn result_buffer(&self, env: Env) -> Result<Unknown<'static>> {
        let v = self.res.value(&env).map_err(napi_failed)?;
        // Safety: as in `arg_buffer`.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
    }

    /// Makes the scratch at least `len` bytes, contents kept; returns its
    /// offset (always 0). Growing replaces (and detaches) the buffer.
    #[napi]
    pub fn scratch(&mut self, env: Env, len: u32) -> Result<u32> {
        let len = len as usize;
        if self.args.len() < len {
            let keep = self.args.len();
            self.args.replace(&env, len.next_power_of_two(), keep).map_err(napi_failed)?;
        }
        Ok(0)
    }

    /// Shrinks the scratch and result buffers to `len` bytes (after a large
    /// batch, so their space goes back); returns the scratch's offset.
    #[napi]
    pub fn scratch_trim(&mut self, env: Env, len: u32) -> Result<u32> {
        let len = (len as usize).max(1024);
        if self.args.len() > len {
            self.args.replace(&env, len, len).map_err(napi_failed)?;
        }
        if self.res.len() > RESULT_KEEP.max(len) {
            self.res.replace(&env, RESULT_KEEP.max(len), SLOTS).map_err(napi_failed)?;
        }
        self.wire.trim(len);
        Ok(0)
    }

    #[napi]
    pub fn scratch_len(&self) -> u32 {
        self.args.len() as u32
    }

    /// Offset of the result slots in the result buffer: 0.
    #[napi]
    pub fn result_ptr(&self) -> u32 {
        0
    }

    /// The error behind the last `-2` status, or null.
    #[napi]
    pub fn last_error(&mut self) -> Option<ErrorInfo> {
        self.wire.take_error().as_ref().map(ErrorInfo::from)
    }

    #[napi]
    pub fn register_state(&mut self, name: String, kind: u8, value_codec: String, user_key_codec: String) -> Result<u32> {
        let kind = js(StateKind::from_u8(kind))?;
        let d = js(StateDescriptor::new(&name, kind, &value_codec, &user_key_codec))?;
        js(self.store_mut()?.register_state(d))
    }

    /// Registered states by id.
    #[napi]
    pub fn states(&self) -> Result<Vec<CoreStateInfo>> {
        Ok(self.store()?.states().map(CoreStateInfo::from).collect())
    }

    #[napi]
    pub fn max_parallelism(&self) -> Result<u32> {
        Ok(self.store()?.config().max_parallelism)
    }

    #[napi]
    pub fn key_group_start(&self) -> Result<u32> {
        Ok(self.store()?.config().key_groups.start)
    }

    #[napi]
    pub fn key_group_end(&self) -> Result<u32> {
        Ok(self.store()?.config().key_groups.end)
    }

    /// Key group of the key in the scratch.
    #[napi]
    pub fn key_group(&self, kl: u32) -> Result<u32> {
        Ok(Wire::key_group(self.store()?, self.args.bytes(), kl))
    }

    // ---- hot path: arguments in the scratch (see keystate_core::wire) ----

    #[napi]
    pub fn set_current_key(&mut self, kl: u32) -> i32 {
        call!(self, |store, args| |w: &mut Wire| w.set_current_key(store, args, kl))
    }

    /// Value of (key, ns): length (copied after the slots), -1 absent, -2 error.
    #[napi]
    pub fn get(&mut self, env: Env, state: u32, kl: u32, nl: u32, snapshot: f64) -> i32 {
        reply!(self, env, |w, store, args| w.get(store, args, state, kl, nl, snapshot))
    }

    #[napi]
    pub fn put(&mut self, state: u32, kl: u32, nl: u32, vl: u32) -> i32 {
        call!(self, |store, args| |w: &mut Wire| w.put(store, args, state, kl, nl, vl))
    }

    #[napi]
    pub fn append(&mut self, state: u32, kl: u32, nl: u32, vl: u32) -> i32 {
        call!(self, |store, args| |w: &mut Wire| w.append(store, args, state, kl, nl, vl))
    }

    #[napi]
    pub fn remove(&mut self, state: u32, kl: u32, nl: u32) -> i32 {
        call!(self, |store, args| |w: &mut Wire| w.remove(store, args, state, kl, nl))
    }

    #[napi]
    pub fn write_many(&mut self, state: u32, nl: u32, len: u32) -> i32 {
        call!(self, |store, args| |w: &mut Wire| w.write_many(store, args, state, nl, len))
    }

    #[napi]
    pub fn read_many(&mut self, env: Env, state: u32, nl: u32, len: u32, snapshot: f64) -> i32 {
        reply!(self, env, |w, store, args| w.read_many(store, args, state, nl, len, snapshot))
    }

    #[napi]
    pub fn map_get(&mut self, env: Env, state: u32, kl: u32, nl: u32, ul: u32, snapshot: f64) -> i32 {
        reply!(self, env, |w, store, args| w.map_get(store, args, state, kl, nl, ul, snapshot))
    }

    #[napi]
    pub fn map_put(&mut self, state: u32, kl: u32, nl: u32, ul: u32, vl: u32) -> i32 {
        call!(self, |store, args| |w: &mut Wire| w.map_put(store, args, state, kl, nl, ul, vl))
    }

    #[napi]
    pub fn map_remove(&mut self, state: u32, kl: u32, nl: u32, ul: u32) -> i32 {
        call!(self, |store, args| |w: &mut Wire| w.map_remove(store, args, state, kl, nl, ul))
    }

    #[napi]
    pub fn map_len(&mut self, state: u32, kl: u32, nl: u32, snapshot: f64) -> f64 {
        match self.inner.as_ref() {
            Some(store) => self.wire.map_len(store, self.args.bytes(), state, kl, nl, snapshot),
            None => f64::from(self.wire.fail(closed())),
        }
    }

    #[napi]
    pub fn map_list(&mut self, env: Env, state: u32, kl: u32, nl: u32, snapshot: f64) -> i32 {
        reply!(self, env, |w, store, args| w.map_list(store, args, state, kl, nl, snapshot))
    }

    #[napi]
    pub fn state_list(&mut self, env: Env, state: u32, snapshot: f64) -> i32 {
        reply!(self, env, |w, store, _args| w.state_list(store, state, snapshot))
    }

    // ---- snapshots and memory ---------------------------------------------

    /// Takes an O(1) snapshot; returns its id.
    #[napi]
    pub fn snapshot(&mut self) -> Result<f64> {
        Ok(self.store_mut()?.snapshot() as f64)
    }

    #[napi]
    pub fn release(&mut self, snapshot: f64) -> Result<()> {
        js(self.store_mut()?.release(snapshot as u64))
    }

    #[napi]
    pub fn memory(&self) -> Result<CoreMemory> {
        Ok(CoreMemory::from(&self.store()?.memory()))
    }

    #[napi]
    pub fn entries(&self, state: u32) -> Result<f64> {
        js(self.store()?.entries(state)).map(|n| n as f64)
    }

    // ---- checkpoints -------------------------------------------------------

    /// Starts a checkpoint: `incremental` -1 per policy, 0 full, 1 incremental.
    #[napi]
    pub fn checkpoint(&mut self, incremental: i32) -> Result<CoreCheckpointInfo> {
        let want = (incremental >= 0).then_some(incremental == 1);
        js(self.store_mut()?.checkpoint(want)).map(|i| CoreCheckpointInfo::from(&i))
    }

    #[napi]
    pub fn set_checkpoint_policy(&mut self, incremental: bool, max_incrementals: u32, max_chain_ratio: f64) -> Result<()> {
        js(self.store_mut()?.set_checkpoint_policy(Policy { incremental, max_incrementals, max_chain_ratio }))
    }

    #[napi]
    pub fn delta_members(&self) -> Result<f64> {
        Ok(self.store()?.delta_members() as f64)
    }

    /// The next chunk of a checkpoint's bytes, produced on this thread.
    #[napi]
    pub fn checkpoint_next(&mut self, id: f64, target: u32) -> Result<Buffer> {
        let mut out = Vec::with_capacity(target as usize + 4096);
        js(self.store_mut()?.checkpoint_next(id as u64, &mut out, target as usize))?;
        Ok(out.into())
    }

    /// Checkpoint `id`'s export, to run on worker threads while JavaScript
    /// goes on (see `NativeExport`).
    #[napi]
    pub fn export_job(&mut self, id: f64) -> Result<NativeExport> {
        let job = js(self.store_mut()?.checkpoint_job(id as u64))?;
        Ok(NativeExport { job: Arc::new(job) })
    }

    /// Progress of a pending checkpoint (settles one whose export finished).
    #[napi]
    pub fn checkpoint_progress(&mut self, id: f64) -> Result<CoreProgress> {
        js(self.store_mut()?.checkpoint_progress(id as u64)).map(|p| CoreProgress::from(&p))
    }

    #[napi]
    pub fn checkpoint_confirm(&mut self, id: f64) -> Result<()> {
        js(self.store_mut()?.checkpoint_confirm(id as u64))
    }

    /// Aborts a checkpoint; an export running on a worker thread stops after
    /// the chunk it is on (this waits for that chunk).
    #[napi]
    pub fn checkpoint_abort(&mut self, id: f64) -> Result<()> {
        js(self.store_mut()?.checkpoint_abort(id as u64))
    }

    #[napi]
    pub fn last_confirmed(&self) -> Result<Option<CoreBase>> {
        Ok(self.store()?.last_base().map(|b| CoreBase::from(&b)))
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
    /// let its buffers go.
    fn finalize(mut self, env: Env) -> napi::Result<()> {
        self.inner = None;
        self.args.release(&env)?;
        self.res.release(&env)
    }
}
