//! The buffers a store shares with its TypeScript side: an `ArrayBuffer`
//! that V8 allocated and this addon keeps alive with a reference, so that
//! both sides read and write the same bytes without a copy per call (the
//! native counterpart of wasm's linear memory).
//!
//! Growing one replaces it: the bytes to keep move to a new buffer and the
//! old one is detached, which zeroes the length of every JS view of it; the
//! TypeScript side sees that and asks for the new one, as it does when wasm
//! memory grows.

use std::ptr;

use napi::bindgen_prelude::sys;
use napi::{Env, Status};

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(Status::from(status), what.to_string()))
    }
}

/// An `ArrayBuffer` shared with JavaScript.
#[derive(Debug)]
pub struct Shared {
    reference: sys::napi_ref,
    data: *mut u8,
    len: usize,
}

impl Shared {
    /// A new zeroed buffer of `len` bytes.
    pub fn new(env: &Env, len: usize) -> napi::Result<Shared> {
        let len = len.max(16);
        let mut data = ptr::null_mut();
        let mut value = ptr::null_mut();
        // Safety: `env` is the live environment of the current call; the out
        // pointers are valid locals.
        check(unsafe { sys::napi_create_arraybuffer(env.raw(), len, &mut data, &mut value) }, "allocate a buffer")?;
        let mut reference = ptr::null_mut();
        // Safety: as above; `value` is the buffer just created.
        check(unsafe { sys::napi_create_reference(env.raw(), value, 1, &mut reference) }, "keep a buffer")?;
        Ok(Shared { reference, data: data.cast(), len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes, during a call from JavaScript.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // Safety: `data` addresses `len` bytes of a backing store V8 keeps in
        // place while our reference holds the buffer (it is never detached
        // while this `Shared` holds it: `replace` and `release` drop the
        // reference first). JavaScript runs on this thread only between calls,
        // so nothing writes the bytes while this borrow lasts.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// The bytes, mutably, during a call from JavaScript.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // Safety: as for `bytes`, and `&mut self` excludes other borrows.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }

    /// The `ArrayBuffer`, for JavaScript to view.
    pub fn value(&self, env: &Env) -> napi::Result<sys::napi_value> {
        let mut value = ptr::null_mut();
        // Safety: the reference is live (held until `release`).
        check(unsafe { sys::napi_get_reference_value(env.raw(), self.reference, &mut value) }, "find a buffer")?;
        Ok(value)
    }

    /// Replaces the buffer by one of `len` bytes holding its first `keep`
    /// bytes, and detaches the old one.
    pub fn replace(&mut self, env: &Env, len: usize, keep: usize) -> napi::Result<()> {
        let mut next = Shared::new(env, len)?;
        let keep = keep.min(self.len).min(next.len);
        next.bytes_mut()[..keep].copy_from_slice(&self.bytes()[..keep]);
        std::mem::swap(self, &mut next);
        next.release(env)
    }

    /// Detaches the buffer and lets it go (views of it read as empty).
    pub fn release(&mut self, env: &Env) -> napi::Result<()> {
        if self.reference.is_null() {
            return Ok(());
        }
        let value = self.value(env)?;
        let reference = std::mem::replace(&mut self.reference, ptr::null_mut());
        self.data = ptr::null_mut();
        self.len = 0;
        // Safety: `reference` was live and is dropped once here; `value` is the
        // buffer it held, detachable (created by napi_create_arraybuffer).
        unsafe {
            check(sys::napi_delete_reference(env.raw(), reference), "let a buffer go")?;
            check(sys::napi_detach_arraybuffer(env.raw(), value), "detach a buffer")
        }
    }
}
