//! `NativeInspector`: looking inside one checkpoint without restoring it (the
//! `keystate` command line). Translates only: see `keystate_core::Inspector`.

use keystate_core::{Error, Inspector};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::error::{js, to_js, Result};

#[napi]
#[derive(Debug)]
pub struct NativeInspector {
    inner: Option<Inspector>,
}

fn finished() -> Error {
    Error::InvalidArgument("inspection already finished".into())
}

#[napi]
impl NativeInspector {
    /// With `listRecords`, each `feed` returns the records it read.
    #[napi(constructor)]
    pub fn new(list_records: bool) -> NativeInspector {
        NativeInspector { inner: Some(Inspector::new(list_records)) }
    }

    /// Feeds the next chunk; returns the records it read (a listing, empty unless asked for).
    #[napi]
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Buffer> {
        let ins = self.inner.as_mut().ok_or_else(|| to_js(&finished()))?;
        js(ins.feed(bytes))?;
        Ok(ins.records().to_vec().into())
    }

    /// Ends the input; the report, as JSON.
    #[napi]
    pub fn finish(&mut self) -> Result<String> {
        js(self.inner.take().ok_or_else(finished).and_then(Inspector::finish))
    }
}
