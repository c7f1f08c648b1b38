//! Errors across the boundary: a JS `Error` whose `code` property carries the
//! core's stable error code (napi-rs sets `code` from the error's status,
//! which here is that code). The TypeScript side turns it into a typed
//! `KeystateError` subclass.

use keystate_core::Error;
use napi_derive::napi;

/// A core error code as a napi error status.
#[derive(Debug, Clone, Copy)]
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// `Result` with a coded JS error, for methods that are not on the hot path.
// Named `Result`: napi-derive recognises a fallible method by that name.
pub type Result<T> = napi::Result<T, Code>;

pub fn to_js(e: &Error) -> napi::Error<Code> {
    napi::Error::new(Code(e.code()), e.to_string())
}

pub fn js<T>(r: keystate_core::Result<T>) -> Result<T> {
    r.map_err(|e| to_js(&e))
}

/// A buffer of `bytes` that V8 could not allocate: the store is full.
pub fn no_buffer(bytes: usize) -> Error {
    Error::StoreFull(keystate_core::Full::OutOfMemory { need: bytes as u64 })
}

/// A napi failure (creating a value or buffer) as a coded error.
pub fn napi_failed(e: napi::Error) -> napi::Error<Code> {
    napi::Error::new(Code("NATIVE"), format!("the native addon could not {}", e.reason))
}

/// An error as plain data: for a hot-path `-2` status (`lastError`) and for
/// the outcome of work done on another thread.
#[napi(object)]
#[derive(Debug)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        ErrorInfo { code: e.code().to_string(), message: e.to_string() }
    }
}
