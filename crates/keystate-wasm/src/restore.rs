//! `WasmRestorer`: restore exports. Pieces are fed in chunks; the store is
//! handed out by `finish` only after everything verified.

use keystate_core::room::resize_buffer;
use keystate_core::{Error, KeyGroupRange, RestoreOptions, Restorer};
use wasm_bindgen::prelude::*;

use crate::conv;
use crate::error::{js, to_js, JsResult};
use crate::store::WasmStore;

#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmRestorer {
    inner: Option<Restorer>,
    /// Where TypeScript writes the next bytes to feed (`feedBuffer`): copying
    /// them in through wasm-bindgen would allocate infallibly.
    buf: Vec<u8>,
}

impl WasmRestorer {
    fn get(&mut self) -> JsResult<&mut Restorer> {
        self.inner.as_mut().ok_or_else(|| to_js(&Error::InvalidArgument("restore already finished".into())))
    }
}

#[wasm_bindgen]
impl WasmRestorer {
    /// `kgStart < 0`: keep the key groups of the (single) chain.
    #[wasm_bindgen(constructor)]
    pub fn new(kg_start: f64, kg_end: f64, new_store_id: &[u8]) -> JsResult<WasmRestorer> {
        let id: [u8; 16] =
            new_store_id.try_into().map_err(|_| to_js(&Error::InvalidArgument("store id must be 16 bytes".into())))?;
        // Numbers, not i32: a key group of 2^31 or more must reach the core (and be refused there).
        let key_groups = (kg_start >= 0.0).then(|| KeyGroupRange::new(kg_start as u32, kg_end as u32));
        Ok(WasmRestorer { inner: Some(Restorer::new(RestoreOptions { key_groups, new_store_id: id })), buf: Vec::new() })
    }

    /// Holds the restored store to a memory budget in bytes (`maxMemoryBytes`).
    #[wasm_bindgen(js_name = setMaxMemory)]
    pub fn set_max_memory(&mut self, bytes: f64) -> JsResult<()> {
        let b = js(crate::conv::budget(bytes))?;
        js(self.get()?.set_memory_limit(Some(b)))
    }

    /// The address of a buffer of at least `len` bytes for the next bytes to
    /// feed (`feedFromBuffer`); throws `STORE_FULL` when memory cannot grow.
    #[wasm_bindgen(js_name = feedBuffer)]
    pub fn feed_buffer(&mut self, len: u32) -> JsResult<u32> {
        if self.buf.len() < len as usize {
            js(resize_buffer(&mut self.buf, len as usize))?;
        }
        Ok(self.buf.as_ptr() as u32)
    }

    /// Feeds the first `len` bytes of the feed buffer.
    #[wasm_bindgen(js_name = feedFromBuffer)]
    pub fn feed_from_buffer(&mut self, len: u32) -> JsResult<()> {
        let Some(bytes) = self.buf.get(..len as usize) else {
            return Err(to_js(&Error::InvalidArgument("more bytes than the feed buffer holds".into())));
        };
        let r = self.inner.as_mut().ok_or_else(|| Error::InvalidArgument("restore already finished".into()));
        js(r.and_then(|r| r.feed(bytes)))
    }

    #[wasm_bindgen(js_name = beginPiece)]
    pub fn begin_piece(&mut self, new_chain: bool) -> JsResult<()> {
        js(self.get()?.begin_piece(new_chain))
    }

    pub fn feed(&mut self, bytes: &[u8]) -> JsResult<()> {
        js(self.get()?.feed(bytes))
    }

    /// How far the current piece is: `{ keyGroupsDone, keyGroupsTotal, records, bytes }`.
    pub fn progress(&mut self) -> JsResult<JsValue> {
        Ok(conv::restore_progress(&self.get()?.progress()))
    }

    #[wasm_bindgen(js_name = endPiece)]
    pub fn end_piece(&mut self) -> JsResult<JsValue> {
        js(self.get()?.end_piece()).map(|p| conv::piece_info(&p))
    }

    /// Writes the restored chain as one full checkpoint that stands in for it.
    #[wasm_bindgen(js_name = finishCompacted)]
    pub fn finish_compacted(&mut self) -> JsResult<Vec<u8>> {
        let r = self.inner.take().ok_or_else(|| to_js(&Error::InvalidArgument("restore already finished".into())))?;
        let mut store = js(r.finish())?;
        js(store.export_compacted())
    }

    pub fn finish(&mut self) -> JsResult<WasmStore> {
        self.buf = Vec::new();
        let r = self.inner.take().ok_or_else(|| to_js(&Error::InvalidArgument("restore already finished".into())))?;
        Ok(WasmStore::wrap(js(r.finish())?))
    }
}
