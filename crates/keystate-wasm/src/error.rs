//! Errors across the boundary: a JS `Error` whose `code` property carries the
//! core's stable error code. The TypeScript side turns it into a typed
//! `KeystateError` subclass.

use keystate_core::Error;
use wasm_bindgen::JsValue;

/// A JS error object with `code` and `message`.
pub fn to_js(e: &Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    // Setting a string property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code().into());
    err.into()
}

/// `Result` with a JS error, for exports that are not on the hot path.
pub type JsResult<T> = Result<T, JsValue>;

pub fn js<T>(r: keystate_core::Result<T>) -> JsResult<T> {
    r.map_err(|e| to_js(&e))
}
