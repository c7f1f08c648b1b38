//! Errors across the boundary: a JS `Error` whose `code` property carries the
//! core's stable error code. The TypeScript side turns it into a typed
//! `KeystateError` subclass.

use std::fmt::{self, Write};

use keystate_core::Error;
use wasm_bindgen::JsValue;

/// A message that grows only while memory can be had (an error reported
/// because memory is exhausted must not need much of it itself).
struct Message(String);

impl Write for Message {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.try_reserve(s.len()).map_err(|_| fmt::Error)?;
        self.0.push_str(s);
        Ok(())
    }
}

/// A JS error object with `code` and `message`.
pub fn to_js(e: &Error) -> JsValue {
    let mut m = Message(String::new());
    let err = match write!(m, "{e}") {
        Ok(()) => js_sys::Error::new(&m.0),
        Err(_) => js_sys::Error::new("out of memory (the message of this error did not fit)"),
    };
    // Setting a string property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code().into());
    err.into()
}

/// `Result` with a JS error, for exports that are not on the hot path.
pub type JsResult<T> = Result<T, JsValue>;

pub fn js<T>(r: keystate_core::Result<T>) -> JsResult<T> {
    r.map_err(|e| to_js(&e))
}
