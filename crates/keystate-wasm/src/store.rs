//! `WasmStore`: the store's exports. Hot-path methods take their byte
//! arguments from the store's scratch buffer in linear memory (written by the
//! TypeScript side with `encodeInto` and typed-array views, so no allocation
//! per call) and return an i32 status, as the core's wire protocol
//! (`keystate_core::wire`) says; values are read in place through the result
//! slots. Everything else returns `Result` with a coded JS error.

use keystate_core::room::{reserve_buffer, resize_buffer};
use keystate_core::wire::{self, Reply, Wire};
use keystate_core::{Error, KeyGroupRange, Policy, StateDescriptor, StateKind, Store, StoreConfig};
use wasm_bindgen::prelude::*;

use crate::conv;
use crate::error::{js, to_js, JsResult};

#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmStore {
    inner: Store,
    wire: Wire,
    scratch: Vec<u8>,
    /// Result slots read by TypeScript: [0] address, [1] length.
    res: [u32; 4],
}

impl WasmStore {
    pub(crate) fn wrap(inner: Store) -> WasmStore {
        WasmStore { inner, wire: Wire::new(), scratch: vec![0; 1024], res: [0; 4] }
    }

    /// Places a reply where TypeScript reads it: zero-copy, as addresses in
    /// linear memory (a value stays put until the next call into the store).
    #[inline]
    fn place(res: &mut [u32; 4], out: &[u8], r: Reply<'_>) -> i32 {
        match r {
            Reply::Status(s) => s,
            Reply::Value(v) => {
                res[0] = v.as_ptr() as u32;
                res[1] = v.len() as u32;
                v.len() as i32
            }
            Reply::Listed(n) => {
                res[0] = out.as_ptr() as u32;
                res[1] = out.len() as u32;
                n
            }
        }
    }
}

#[wasm_bindgen]
impl WasmStore {
    /// A new empty store owning key groups `kgStart..=kgEnd`.
    #[wasm_bindgen(constructor)]
    pub fn new(max_parallelism: u32, kg_start: u32, kg_end: u32, store_id: &[u8]) -> JsResult<WasmStore> {
        let id: [u8; 16] = store_id.try_into().map_err(|_| to_js(&Error::InvalidArgument("store id must be 16 bytes".into())))?;
        let cfg = js(StoreConfig::new(max_parallelism, Some(KeyGroupRange::new(kg_start, kg_end)), id))?;
        Ok(WasmStore::wrap(Store::new(cfg)))
    }

    /// Makes the scratch buffer at least `len` bytes; returns its address
    /// (it moves when it grows, and memory may grow: refresh views). Throws
    /// `STORE_FULL` when memory cannot grow (the scratch is then unchanged).
    pub fn scratch(&mut self, len: u32) -> JsResult<u32> {
        let len = len as usize;
        if self.scratch.len() < len {
            let want = len.checked_next_power_of_two().unwrap_or(len);
            if resize_buffer(&mut self.scratch, want).is_err() {
                js(resize_buffer(&mut self.scratch, len))?;
            }
        }
        Ok(self.scratch.as_ptr() as u32)
    }

    /// Sets the store's memory budget in bytes (`maxMemoryBytes`).
    #[wasm_bindgen(js_name = setMaxMemory)]
    pub fn set_max_memory(&mut self, bytes: f64) -> JsResult<()> {
        js(crate::conv::budget(bytes).and_then(|b| self.inner.set_memory_limit(Some(b))))
    }

    /// Shrinks the scratch and output buffers to `len` bytes (after a large
    /// batch, so their space goes back to the allocator); returns the
    /// scratch's new address.
    #[wasm_bindgen(js_name = scratchTrim)]
    pub fn scratch_trim(&mut self, len: u32) -> u32 {
        let len = (len as usize).max(1024);
        self.scratch.truncate(len);
        self.scratch.shrink_to_fit();
        self.wire.trim(len);
        self.scratch.as_ptr() as u32
    }

    #[wasm_bindgen(js_name = scratchLen)]
    pub fn scratch_len(&self) -> u32 {
        self.scratch.len() as u32
    }

    /// Address of the result slots (`u32[4]`), fixed for the store's life.
    #[wasm_bindgen(js_name = resultPtr)]
    pub fn result_ptr(&self) -> u32 {
        self.res.as_ptr() as u32
    }

    /// The error behind the last `-2` status, as a coded JS error.
    #[wasm_bindgen(js_name = lastError)]
    pub fn last_error(&mut self) -> JsValue {
        match self.wire.take_error() {
            Some(e) => to_js(&e),
            None => JsValue::NULL,
        }
    }

    /// Declares a state; `ttlMs` 0 for none, else its TTL as
    /// `keystate_core::wire::ttl_config` reads `ttlFlags` and `cleanupSize`.
    #[wasm_bindgen(js_name = registerState)]
    #[allow(clippy::too_many_arguments)] // the call's arguments, as they cross the boundary
    pub fn register_state(&mut self, name: &str, kind: u8, value_codec: &str, user_key_codec: &str, ttl_ms: f64, ttl_flags: u32, cleanup_size: u32) -> JsResult<u32> {
        let kind = js(StateKind::from_u8(kind))?;
        let ttl = js(wire::ttl_config(ttl_ms, ttl_flags, cleanup_size))?;
        let d = js(StateDescriptor::new(name, kind, value_codec, user_key_codec).and_then(|d| d.with_ttl(ttl)))?;
        js(self.inner.register_state(d))
    }

    /// Registered states: `[{ name, kind, valueCodec, userKeyCodec, ttlMs, ttlFlags, cleanupSize }]` by id.
    pub fn states(&self) -> js_sys::Array {
        self.inner
            .states()
            .map(|d| {
                let (ttl_ms, flags, size) = wire::ttl_args(d.ttl.as_ref());
                conv::object(&[
                    ("name", d.name.as_str().into()),
                    ("kind", (d.kind as u8).into()),
                    ("valueCodec", d.value_codec.as_str().into()),
                    ("userKeyCodec", d.user_key_codec.as_str().into()),
                    ("ttlMs", ttl_ms.into()),
                    ("ttlFlags", flags.into()),
                    ("cleanupSize", size.into()),
                ])
            })
            .collect()
    }

    /// Sets the store's time (ms) from the TypeScript side's clock; 0 or -2.
    #[wasm_bindgen(js_name = setTime)]
    pub fn set_time(&mut self, now: f64) -> i32 {
        self.wire.set_time(&mut self.inner, now)
    }

    /// Removes every expired value of the states with TTL; returns how many.
    pub fn expire(&mut self) -> JsResult<f64> {
        js(self.inner.expire().map(|n| n as f64))
    }

    #[wasm_bindgen(js_name = maxParallelism)]
    pub fn max_parallelism(&self) -> u32 {
        self.inner.config().max_parallelism
    }

    #[wasm_bindgen(js_name = keyGroupStart)]
    pub fn key_group_start(&self) -> u32 {
        self.inner.config().key_groups.start
    }

    #[wasm_bindgen(js_name = keyGroupEnd)]
    pub fn key_group_end(&self) -> u32 {
        self.inner.config().key_groups.end
    }

    /// Key group of the key in scratch.
    #[wasm_bindgen(js_name = keyGroup)]
    pub fn key_group(&self, kl: u32) -> u32 {
        Wire::key_group(&self.inner, &self.scratch, kl)
    }

    // ---- hot path: arguments in scratch (see keystate_core::wire) --------

    /// Does nothing: what one call into the binding costs (the benchmarks).
    pub fn ping(&self) -> i32 {
        0
    }

    #[wasm_bindgen(js_name = setCurrentKey)]
    pub fn set_current_key(&mut self, kl: u32) -> i32 {
        self.wire.set_current_key(&mut self.inner, &self.scratch, kl)
    }

    /// Value of (key, ns): length (address in result slot 0), -1 absent, -2 error.
    pub fn get(&mut self, state: u32, kl: u32, nl: u32, snapshot: f64) -> i32 {
        let r = self.wire.get(&mut self.inner, &self.scratch, state, kl, nl, snapshot);
        Self::place(&mut self.res, &[], r)
    }

    pub fn put(&mut self, state: u32, kl: u32, nl: u32, vl: u32) -> i32 {
        self.wire.put(&mut self.inner, &self.scratch, state, kl, nl, vl)
    }

    pub fn append(&mut self, state: u32, kl: u32, nl: u32, vl: u32) -> i32 {
        self.wire.append(&mut self.inner, &self.scratch, state, kl, nl, vl)
    }

    /// Writes a batch to value-like state `state`; returns the count, or -2.
    #[wasm_bindgen(js_name = writeMany)]
    pub fn write_many(&mut self, state: u32, nl: u32, len: u32) -> i32 {
        self.wire.write_many(&mut self.inner, &self.scratch, state, nl, len)
    }

    /// Reads a batch of keys into a listing (address and length in result
    /// slots 0 and 1); returns the count, or -2.
    #[wasm_bindgen(js_name = readMany)]
    pub fn read_many(&mut self, state: u32, nl: u32, len: u32, snapshot: f64) -> i32 {
        let r = self.wire.read_many(&mut self.inner, &self.scratch, state, nl, len, snapshot);
        Self::place(&mut self.res, self.wire.out(), r)
    }

    /// Removes (key, ns) of any state kind: 1 removed, 0 absent, -2 error.
    pub fn remove(&mut self, state: u32, kl: u32, nl: u32) -> i32 {
        self.wire.remove(&mut self.inner, &self.scratch, state, kl, nl)
    }

    #[wasm_bindgen(js_name = mapGet)]
    pub fn map_get(&mut self, state: u32, kl: u32, nl: u32, ul: u32, snapshot: f64) -> i32 {
        let r = self.wire.map_get(&mut self.inner, &self.scratch, state, kl, nl, ul, snapshot);
        Self::place(&mut self.res, &[], r)
    }

    #[wasm_bindgen(js_name = mapPut)]
    pub fn map_put(&mut self, state: u32, kl: u32, nl: u32, ul: u32, vl: u32) -> i32 {
        self.wire.map_put(&mut self.inner, &self.scratch, state, kl, nl, ul, vl)
    }

    #[wasm_bindgen(js_name = mapRemove)]
    pub fn map_remove(&mut self, state: u32, kl: u32, nl: u32, ul: u32) -> i32 {
        self.wire.map_remove(&mut self.inner, &self.scratch, state, kl, nl, ul)
    }

    /// Entries in the map of (key, ns), or -2.
    #[wasm_bindgen(js_name = mapLen)]
    pub fn map_len(&mut self, state: u32, kl: u32, nl: u32, snapshot: f64) -> f64 {
        self.wire.map_len(&mut self.inner, &self.scratch, state, kl, nl, snapshot)
    }

    /// Lists the map of (key, ns); returns the entry count (address and
    /// length of the listing in result slots 0 and 1), or -2.
    #[wasm_bindgen(js_name = mapList)]
    pub fn map_list(&mut self, state: u32, kl: u32, nl: u32, snapshot: f64) -> i32 {
        let r = self.wire.map_list(&mut self.inner, &self.scratch, state, kl, nl, snapshot);
        Self::place(&mut self.res, self.wire.out(), r)
    }

    /// Lists every entry of a state; returns the count, or -2.
    #[wasm_bindgen(js_name = stateList)]
    pub fn state_list(&mut self, state: u32, snapshot: f64) -> i32 {
        let r = self.wire.state_list(&self.inner, state, snapshot);
        Self::place(&mut self.res, self.wire.out(), r)
    }

    // ---- snapshots ------------------------------------------------------

    /// Takes an O(1) snapshot; returns its id.
    pub fn snapshot(&mut self) -> JsResult<f64> {
        js(self.inner.snapshot()).map(|s| s as f64)
    }

    pub fn release(&mut self, snapshot: f64) -> JsResult<()> {
        js(self.inner.release(snapshot as u64))
    }

    pub fn memory(&self) -> JsValue {
        conv::memory(&self.inner.memory())
    }

    /// Entries of one state.
    pub fn entries(&self, state: u32) -> JsResult<f64> {
        js(self.inner.entries(state)).map(|n| n as f64)
    }

    // ---- checkpoints ----------------------------------------------------

    /// Starts a checkpoint: `incremental` -1 per policy, 0 full, 1 incremental
    /// (full when there is no confirmed base, or the policy materializes).
    pub fn checkpoint(&mut self, incremental: i32) -> JsResult<JsValue> {
        let want = (incremental >= 0).then_some(incremental == 1);
        js(self.inner.checkpoint(want)).map(|i| conv::checkpoint_info(&i))
    }

    /// Sets the checkpoint policy (see keystate_core::Policy).
    #[wasm_bindgen(js_name = setCheckpointPolicy)]
    pub fn set_checkpoint_policy(&mut self, incremental: bool, max_incrementals: u32, max_chain_ratio: f64) -> JsResult<()> {
        js(self.inner.set_checkpoint_policy(Policy { incremental, max_incrementals, max_chain_ratio }))
    }

    /// Distinct entries changed since the last checkpoint was taken.
    #[wasm_bindgen(js_name = deltaMembers)]
    pub fn delta_members(&self) -> f64 {
        self.inner.delta_members() as f64
    }

    /// The next chunk of a checkpoint's bytes (empty once complete).
    #[wasm_bindgen(js_name = checkpointNext)]
    pub fn checkpoint_next(&mut self, id: f64, target: u32) -> JsResult<Vec<u8>> {
        let mut out = Vec::new();
        js(reserve_buffer(&mut out, (target as usize).saturating_add(4096)))?;
        js(self.inner.checkpoint_next(id as u64, &mut out, target as usize))?;
        Ok(out)
    }

    #[wasm_bindgen(js_name = checkpointProgress)]
    pub fn checkpoint_progress(&mut self, id: f64) -> JsResult<JsValue> {
        js(self.inner.checkpoint_progress(id as u64)).map(|p| conv::progress(&p))
    }

    #[wasm_bindgen(js_name = checkpointConfirm)]
    pub fn checkpoint_confirm(&mut self, id: f64) -> JsResult<()> {
        js(self.inner.checkpoint_confirm(id as u64))
    }

    #[wasm_bindgen(js_name = checkpointAbort)]
    pub fn checkpoint_abort(&mut self, id: f64) -> JsResult<()> {
        js(self.inner.checkpoint_abort(id as u64))
    }

    /// The last confirmed checkpoint `{ id, chainLength, chainBytes, fullBytes }`, or null.
    #[wasm_bindgen(js_name = lastConfirmed)]
    pub fn last_confirmed(&self) -> JsValue {
        self.inner.last_base().map_or(JsValue::NULL, |b| conv::base(&b))
    }
}
