//! `WasmStore`: the store's exports. Hot-path methods take their byte
//! arguments from the store's scratch buffer in linear memory (written by the
//! TypeScript side with `encodeInto` and typed-array views, so no allocation
//! per call) and return an i32 status; values are read in place through the
//! result slots. Everything else returns `Result` with a coded JS error.

use keystate_core::{Error, Key, KeyGroupRange, Policy, StateDescriptor, StateKind, Store, StoreConfig};
use wasm_bindgen::prelude::*;

use crate::conv::{self, at, split};
use crate::error::{js, to_js, JsResult};

/// Status: absent (reads) or nothing removed.
const ABSENT: i32 = -1;
/// Status: an error; details from `lastError()`.
const FAILED: i32 = -2;

#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmStore {
    inner: Store,
    scratch: Vec<u8>,
    /// Result slots read by TypeScript: [0] pointer, [1] length.
    res: [u32; 4],
    /// Listings and other variable-size results.
    out: Vec<u8>,
    last_error: Option<Error>,
}

impl WasmStore {
    pub(crate) fn wrap(inner: Store) -> WasmStore {
        WasmStore { inner, scratch: vec![0; 1024], res: [0; 4], out: Vec::new(), last_error: None }
    }

    /// Converts a core result to a status, keeping the error for `lastError`.
    #[inline]
    fn status(&mut self, r: keystate_core::Result<i32>) -> i32 {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.last_error = Some(e);
                FAILED
            }
        }
    }

    #[inline]
    fn bad_layout(&mut self) -> i32 {
        self.last_error = Some(Error::InvalidArgument("arguments exceed the scratch buffer".into()));
        FAILED
    }

    #[inline]
    fn found(&mut self, v: Option<(*const u8, usize)>) -> i32 {
        match v {
            Some((ptr, len)) => {
                self.res[0] = ptr as u32;
                self.res[1] = len as u32;
                len as i32
            }
            None => ABSENT,
        }
    }
}

#[inline]
fn key(k: Option<&[u8]>) -> Key<'_> {
    k.map_or(Key::Current, Key::Bytes)
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
    /// (it moves when it grows, and memory may grow: refresh views).
    pub fn scratch(&mut self, len: u32) -> u32 {
        if self.scratch.len() < len as usize {
            self.scratch.resize((len as usize).next_power_of_two(), 0);
        }
        self.scratch.as_ptr() as u32
    }

    /// Shrinks the scratch and output buffers to `len` bytes (after a large
    /// batch, so their space goes back to the allocator); returns the
    /// scratch's new address.
    #[wasm_bindgen(js_name = scratchTrim)]
    pub fn scratch_trim(&mut self, len: u32) -> u32 {
        let len = (len as usize).max(1024);
        self.scratch.truncate(len);
        self.scratch.shrink_to_fit();
        self.out.truncate(len);
        self.out.shrink_to(len);
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
        match self.last_error.take() {
            Some(e) => to_js(&e),
            None => JsValue::NULL,
        }
    }

    #[wasm_bindgen(js_name = registerState)]
    pub fn register_state(&mut self, name: &str, kind: u8, value_codec: &str, user_key_codec: &str) -> JsResult<u32> {
        let kind = js(StateKind::from_u8(kind))?;
        let d = js(StateDescriptor::new(name, kind, value_codec, user_key_codec))?;
        js(self.inner.register_state(d))
    }

    /// Registered states: `[{ name, kind, valueCodec, userKeyCodec }]` by id.
    pub fn states(&self) -> js_sys::Array {
        self.inner
            .states()
            .map(|d| {
                conv::object(&[
                    ("name", d.name.as_str().into()),
                    ("kind", (d.kind as u8).into()),
                    ("valueCodec", d.value_codec.as_str().into()),
                    ("userKeyCodec", d.user_key_codec.as_str().into()),
                ])
            })
            .collect()
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
        self.inner.key_group(&self.scratch[..(kl as usize).min(self.scratch.len())])
    }

    // ---- hot path: arguments in scratch --------------------------------

    #[wasm_bindgen(js_name = setCurrentKey)]
    pub fn set_current_key(&mut self, kl: u32) -> i32 {
        let Some(k) = self.scratch.get(..kl as usize) else { return self.bad_layout() };
        let r = self.inner.set_current_key(k).map(|_| 0);
        self.status(r)
    }

    /// Value of (key, ns): length (pointer in result slot 0), -1 absent, -2 error.
    pub fn get(&mut self, state: u32, kl: u32, nl: u32, snapshot: f64) -> i32 {
        let Some((k, ns, _, _)) = split(&self.scratch, kl, nl, 0, 0) else { return self.bad_layout() };
        let r = self.inner.get(state, key(k), ns, at(snapshot)).map(|v| v.map(|v| (v.as_ptr(), v.len())));
        match r {
            Ok(v) => self.found(v),
            Err(e) => self.status(Err(e)),
        }
    }

    pub fn put(&mut self, state: u32, kl: u32, nl: u32, vl: u32) -> i32 {
        let Some((k, ns, _, v)) = split(&self.scratch, kl, nl, 0, vl) else { return self.bad_layout() };
        let r = self.inner.put(state, key(k), ns, v).map(|_| 0);
        self.status(r)
    }

    pub fn append(&mut self, state: u32, kl: u32, nl: u32, vl: u32) -> i32 {
        let Some((k, ns, _, v)) = split(&self.scratch, kl, nl, 0, vl) else { return self.bad_layout() };
        let r = self.inner.append(state, key(k), ns, v).map(|_| 0);
        self.status(r)
    }

    /// Writes a batch to value-like state `state`: the namespace (`nl`
    /// bytes), then the operations (see `conv::Batch`) up to `len`. All or
    /// nothing for what the core refuses. Returns the count, or -2.
    #[wasm_bindgen(js_name = writeMany)]
    pub fn write_many(&mut self, state: u32, nl: u32, len: u32) -> i32 {
        let Some((ns, ops)) = conv::batch(&self.scratch, nl, len, true) else { return self.bad_layout() };
        let r = self.inner.write_many(state, ns, ops).map(|n| n as i32);
        self.status(r)
    }

    /// Reads a batch of keys (laid out as for `writeMany`, without values)
    /// from value-like state `state`. Leaves `u32 ptr, u32 len` per key in
    /// the output buffer (`len == u32::MAX`: absent), its address in result
    /// slot 0; returns the count, or -2.
    #[wasm_bindgen(js_name = readMany)]
    pub fn read_many(&mut self, state: u32, nl: u32, len: u32, snapshot: f64) -> i32 {
        let Some((ns, keys)) = conv::batch(&self.scratch, nl, len, false) else { return self.bad_layout() };
        let out = &mut self.out;
        out.clear();
        let r = self.inner.read_many(state, ns, keys.map(|(k, _)| k), at(snapshot), |v| {
            let (ptr, len) = v.map_or((0, conv::DELETE), |v| (v.as_ptr() as u32, v.len() as u32));
            out.extend_from_slice(&ptr.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        });
        self.listed(r.map(|n| n as i32))
    }

    /// Removes (key, ns) of any state kind: 1 removed, 0 absent, -2 error.
    pub fn remove(&mut self, state: u32, kl: u32, nl: u32) -> i32 {
        let Some((k, ns, _, _)) = split(&self.scratch, kl, nl, 0, 0) else { return self.bad_layout() };
        let r = self.inner.remove(state, key(k), ns).map(i32::from);
        self.status(r)
    }

    #[wasm_bindgen(js_name = mapGet)]
    pub fn map_get(&mut self, state: u32, kl: u32, nl: u32, ul: u32, snapshot: f64) -> i32 {
        let Some((k, ns, uk, _)) = split(&self.scratch, kl, nl, ul, 0) else { return self.bad_layout() };
        let r = self.inner.map_get(state, key(k), ns, uk, at(snapshot)).map(|v| v.map(|v| (v.as_ptr(), v.len())));
        match r {
            Ok(v) => self.found(v),
            Err(e) => self.status(Err(e)),
        }
    }

    #[wasm_bindgen(js_name = mapPut)]
    pub fn map_put(&mut self, state: u32, kl: u32, nl: u32, ul: u32, vl: u32) -> i32 {
        let Some((k, ns, uk, v)) = split(&self.scratch, kl, nl, ul, vl) else { return self.bad_layout() };
        let r = self.inner.map_put(state, key(k), ns, uk, v).map(|_| 0);
        self.status(r)
    }

    #[wasm_bindgen(js_name = mapRemove)]
    pub fn map_remove(&mut self, state: u32, kl: u32, nl: u32, ul: u32) -> i32 {
        let Some((k, ns, uk, _)) = split(&self.scratch, kl, nl, ul, 0) else { return self.bad_layout() };
        let r = self.inner.map_remove(state, key(k), ns, uk).map(i32::from);
        self.status(r)
    }

    /// Entries in the map of (key, ns), or -2.
    #[wasm_bindgen(js_name = mapLen)]
    pub fn map_len(&mut self, state: u32, kl: u32, nl: u32, snapshot: f64) -> f64 {
        let Some((k, ns, _, _)) = split(&self.scratch, kl, nl, 0, 0) else { return f64::from(self.bad_layout()) };
        match self.inner.map_len(state, key(k), ns, at(snapshot)) {
            Ok(n) => n as f64,
            Err(e) => f64::from(self.status(Err(e))),
        }
    }

    /// Lists the map of (key, ns) into the output buffer as repeated
    /// `varint ul, uk, varint vl, value`; returns the entry count (pointer and
    /// length of the listing in result slots 0 and 1), or -2.
    #[wasm_bindgen(js_name = mapList)]
    pub fn map_list(&mut self, state: u32, kl: u32, nl: u32, snapshot: f64) -> i32 {
        let Some((k, ns, _, _)) = split(&self.scratch, kl, nl, 0, 0) else { return self.bad_layout() };
        let out = &mut self.out;
        out.clear();
        let mut n = 0;
        let r = self.inner.map_for_each(state, key(k), ns, at(snapshot), |uk, v| {
            conv::field(out, uk);
            conv::field(out, v);
            n += 1;
        });
        self.listed(r.map(|_| n))
    }

    /// Lists every entry of a state as repeated `key, ns, [uk,] value` fields
    /// (uk only for maps); returns the count, or -2.
    #[wasm_bindgen(js_name = stateList)]
    pub fn state_list(&mut self, state: u32, snapshot: f64) -> i32 {
        let out = &mut self.out;
        out.clear();
        let mut n = 0;
        let r = self.inner.for_each_entry(state, at(snapshot), |k, ns, uk, v| {
            conv::field(out, k);
            conv::field(out, ns);
            if let Some(uk) = uk {
                conv::field(out, uk);
            }
            conv::field(out, v);
            n += 1;
        });
        self.listed(r.map(|_| n))
    }

    fn listed(&mut self, r: keystate_core::Result<i32>) -> i32 {
        self.res[0] = self.out.as_ptr() as u32;
        self.res[1] = self.out.len() as u32;
        self.status(r)
    }

    // ---- snapshots ------------------------------------------------------

    /// Takes an O(1) snapshot; returns its id.
    pub fn snapshot(&mut self) -> f64 {
        self.inner.snapshot() as f64
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
        let mut out = Vec::with_capacity(target as usize + 4096);
        js(self.inner.checkpoint_next(id as u64, &mut out, target as usize))?;
        Ok(out)
    }

    #[wasm_bindgen(js_name = checkpointProgress)]
    pub fn checkpoint_progress(&self, id: f64) -> JsResult<JsValue> {
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
