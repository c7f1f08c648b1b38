//! `WasmInspector`: looking inside one checkpoint without restoring it (the
//! `keystate` command line). Translates only: see `keystate_core::Inspector`.

use keystate_core::{Error, Inspector};
use wasm_bindgen::prelude::*;

use crate::error::{js, to_js, JsResult};

#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmInspector {
    inner: Option<Inspector>,
}

#[wasm_bindgen]
impl WasmInspector {
    /// With `listRecords`, each `feed` returns the records it read.
    #[wasm_bindgen(constructor)]
    pub fn new(list_records: bool) -> WasmInspector {
        WasmInspector { inner: Some(Inspector::new(list_records)) }
    }

    /// Feeds the next chunk; returns the records it read (a listing, empty unless asked for).
    pub fn feed(&mut self, bytes: &[u8]) -> JsResult<Vec<u8>> {
        let ins = self.inner.as_mut().ok_or_else(|| to_js(&Error::InvalidArgument("inspection already finished".into())))?;
        js(ins.feed(bytes))?;
        Ok(ins.records().to_vec())
    }

    /// Ends the input; the report, as JSON.
    pub fn finish(&mut self) -> JsResult<String> {
        let ins = self.inner.take().ok_or_else(|| to_js(&Error::InvalidArgument("inspection already finished".into())))?;
        js(ins.finish())
    }
}
