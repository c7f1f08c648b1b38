//! `WasmInspector`: looking inside one checkpoint without restoring it (the
//! `keystate` command line). Translates only: see `keystate_core::Inspector`.

use keystate_core::room::{reserve_buffer, resize_buffer};
use keystate_core::{Error, Inspector};
use wasm_bindgen::prelude::*;

use crate::error::{js, to_js, JsResult};

#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmInspector {
    inner: Option<Inspector>,
    /// Input is copied here (grown fallibly) rather than passed as a
    /// `&[u8]`: wasm-bindgen's own copy of an argument aborts when memory
    /// cannot grow.
    buf: Vec<u8>,
}

#[wasm_bindgen]
impl WasmInspector {
    /// With `listRecords`, each `feed` returns the records it read.
    #[wasm_bindgen(constructor)]
    pub fn new(list_records: bool) -> WasmInspector {
        WasmInspector { inner: Some(Inspector::new(list_records)), buf: Vec::new() }
    }

    /// Where to copy the next `len` bytes of input (an address in linear memory).
    #[wasm_bindgen(js_name = feedBuffer)]
    pub fn feed_buffer(&mut self, len: u32) -> JsResult<u32> {
        if self.buf.len() < len as usize {
            js(resize_buffer(&mut self.buf, len as usize))?;
        }
        Ok(self.buf.as_ptr() as u32)
    }

    /// Feeds the first `len` bytes of the feed buffer; returns the records
    /// they held (a listing, empty unless asked for).
    #[wasm_bindgen(js_name = feedFromBuffer)]
    pub fn feed_from_buffer(&mut self, len: u32) -> JsResult<Vec<u8>> {
        let ins = self.inner.as_mut().ok_or_else(|| to_js(&Error::InvalidArgument("inspection already finished".into())))?;
        let Some(bytes) = self.buf.get(..len as usize) else {
            return Err(to_js(&Error::InvalidArgument("more bytes than the feed buffer holds".into())));
        };
        js(ins.feed(bytes))?;
        let mut out = Vec::new();
        js(reserve_buffer(&mut out, ins.records().len()))?;
        out.extend_from_slice(ins.records());
        Ok(out)
    }

    /// Ends the input; the report, as JSON.
    pub fn finish(&mut self) -> JsResult<String> {
        let ins = self.inner.take().ok_or_else(|| to_js(&Error::InvalidArgument("inspection already finished".into())))?;
        js(ins.finish())
    }
}
