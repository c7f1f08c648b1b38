//! The hot calls (get, put, ... : the core's wire protocol), as plain N-API
//! functions bound to one store, taking their arguments from the argument
//! buffer and leaving their status in the result slots.
//!
//! Why not napi-rs methods: a napi-rs class method costs about 370 ns a
//! call here (it registers the borrow of its receiver in a global, locked
//! map), against about 20 ns for an N-API call. A store's hot functions each
//! hold a reference to its [`Core`] as their data, so a call costs one
//! `napi_get_cb_info` and the work.
//!
//! The argument buffer starts with a header the TypeScript side fills before
//! each call: u32 LE at bytes 0..20 (state, key length, namespace length,
//! user-key length, value or batch length), f64 LE at 24 (snapshot, or the
//! time for `setTime`); the
//! scratch (key, namespace, ... bytes) follows at [`SCRATCH_AT`]. The status
//! goes to result slot 2 (an i32); a value or listing to the result buffer
//! after the slots, its offset and length in slots 0 and 1.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use keystate_core::wire::{Reply, Wire};
use keystate_core::{Error, Store};
use napi::bindgen_prelude::sys;
use napi::Env;

use crate::buffers::Shared;

/// Bytes of the call header before the scratch in the argument buffer.
pub const SCRATCH_AT: usize = 32;
/// Bytes of the result slots before a value or listing in the result buffer.
pub const SLOTS: usize = 16;

/// A store and what its hot calls share with JavaScript.
#[derive(Debug)]
pub struct Core {
    /// `None` once freed.
    pub store: Option<Store>,
    pub wire: Wire,
    /// Call header, then the scratch: arguments written by JavaScript.
    pub args: Shared,
    /// Result slots ([0] offset, [1] length, [2] status), then the value or listing.
    pub res: Shared,
}

fn closed() -> Error {
    Error::InvalidArgument("the store is closed".into())
}

/// The call header's fields.
#[derive(Debug, Clone, Copy)]
struct Header {
    state: u32,
    kl: u32,
    nl: u32,
    ul: u32,
    vl: u32,
    snapshot: f64,
}

fn header(args: &[u8]) -> Header {
    let u = |i: usize| u32::from_le_bytes([args[i], args[i + 1], args[i + 2], args[i + 3]]);
    let mut f = [0u8; 8];
    f.copy_from_slice(&args[24..32]);
    Header { state: u(0), kl: u(4), nl: u(8), ul: u(12), vl: u(16), snapshot: f64::from_le_bytes(f) }
}

impl Core {
    fn status(&mut self, status: i32) {
        self.res.bytes_mut()[8..12].copy_from_slice(&status.to_le_bytes());
    }

    /// Copies `bytes` after the slots (growing the buffer, which detaches the
    /// old one) and points slots 0 and 1 at them.
    pub fn place(res: &mut Shared, env: &Env, bytes: &[u8]) -> napi::Result<()> {
        let need = SLOTS + bytes.len();
        if need > res.len() {
            res.replace(env, need.next_power_of_two(), 0)?;
        }
        let b = res.bytes_mut();
        b[SLOTS..need].copy_from_slice(bytes);
        b[0..4].copy_from_slice(&(SLOTS as u32).to_le_bytes());
        b[4..8].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        Ok(())
    }
}

/// What a hot function does with the store, its wire state, the call header
/// and the scratch: a status, or a reply to place.
type Op = for<'s> fn(&'s mut Store, &mut Wire, Header, &[u8]) -> Result<i32, Reply<'s>>;

/// Runs `op` for the store behind `info`'s data.
///
/// Safety: `env` and `info` are those of a call of a function made by
/// [`functions`], whose data is a live `Rc<RefCell<Core>>` (see there).
unsafe fn call(env: sys::napi_env, info: sys::napi_callback_info, op: Op) -> sys::napi_value {
    let mut data = ptr::null_mut();
    // Safety: the contract above; only the data pointer is asked for.
    let ok = unsafe { sys::napi_get_cb_info(env, info, ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), &mut data) };
    if ok != sys::Status::napi_ok || data.is_null() {
        return ptr::null_mut();
    }
    // Safety: `data` is the `RefCell<Core>` of an Rc this function holds a
    // count of (released only by its finalizer, after the last call).
    let cell = unsafe { &*(data as *const RefCell<Core>) };
    // No hot call runs JavaScript, so none can reenter: a borrow always succeeds.
    let Ok(mut core) = cell.try_borrow_mut() else { return ptr::null_mut() };
    let core = &mut *core;
    if core.args.len() < SCRATCH_AT || core.res.len() < SLOTS {
        return ptr::null_mut();
    }
    let Some(store) = core.store.as_mut() else {
        let s = core.wire.fail(closed());
        core.status(s);
        return ptr::null_mut();
    };
    let args = core.args.bytes();
    let h = header(args);
    let status = match op(store, &mut core.wire, h, &args[SCRATCH_AT..]) {
        Ok(s) => s,
        Err(reply) => {
            let (status, bytes) = match reply {
                Reply::Status(s) => (s, None),
                Reply::Value(v) => (v.len() as i32, Some(v)),
                Reply::Listed(n) => (n, Some(core.wire.out())),
            };
            match bytes {
                None => status,
                Some(b) => match Core::place(&mut core.res, &Env::from_raw(env), b) {
                    Ok(()) => status,
                    // V8 could not allocate a result buffer that large.
                    Err(_) => core.wire.fail(crate::error::no_buffer(SLOTS + b.len())),
                },
            }
        }
    };
    core.status(status);
    ptr::null_mut()
}

macro_rules! hot {
    ($name:ident, |$store:ident, $wire:ident, $h:ident, $args:ident| $body:expr) => {
        unsafe extern "C" fn $name(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
            fn op<'s>($store: &'s mut Store, $wire: &mut Wire, $h: Header, $args: &[u8]) -> Result<i32, Reply<'s>> {
                $body
            }
            // Safety: N-API calls this with its own env and info, for a
            // function `functions` made.
            unsafe { call(env, info, op) }
        }
    };
}

hot!(ping, |_s, _w, _h, _a| Ok(0));
hot!(set_time, |s, w, h, _a| Ok(w.set_time(s, h.snapshot)));
hot!(set_current_key, |s, w, h, a| Ok(w.set_current_key(s, a, h.kl)));
hot!(key_group, |s, _w, h, a| Ok(Wire::key_group(s, a, h.kl) as i32));
hot!(get, |s, w, h, a| Err(w.get(s, a, h.state, h.kl, h.nl, h.snapshot)));
hot!(put, |s, w, h, a| Ok(w.put(s, a, h.state, h.kl, h.nl, h.vl)));
hot!(append, |s, w, h, a| Ok(w.append(s, a, h.state, h.kl, h.nl, h.vl)));
hot!(remove, |s, w, h, a| Ok(w.remove(s, a, h.state, h.kl, h.nl)));
hot!(write_many, |s, w, h, a| Ok(w.write_many(s, a, h.state, h.nl, h.vl)));
hot!(read_many, |s, w, h, a| Err(w.read_many(s, a, h.state, h.nl, h.vl, h.snapshot)));
hot!(map_get, |s, w, h, a| Err(w.map_get(s, a, h.state, h.kl, h.nl, h.ul, h.snapshot)));
hot!(map_put, |s, w, h, a| Ok(w.map_put(s, a, h.state, h.kl, h.nl, h.ul, h.vl)));
hot!(map_remove, |s, w, h, a| Ok(w.map_remove(s, a, h.state, h.kl, h.nl, h.ul)));
hot!(map_len, |s, w, h, a| {
    let n = w.map_len(s, a, h.state, h.kl, h.nl, h.snapshot);
    Ok(if n > f64::from(i32::MAX) { w.fail(Error::TooLarge("a map of more than 2^31 entries".into())) } else { n as i32 })
});
hot!(map_list, |s, w, h, a| Err(w.map_list(s, a, h.state, h.kl, h.nl, h.snapshot)));
hot!(state_list, |s, w, h, _a| Err(w.state_list(s, h.state, h.snapshot)));

/// Drops the function's count of its store's core.
///
/// Safety: N-API calls it once, when the function is collected, with the
/// data `functions` gave it.
unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // Safety: `data` came from `Rc::into_raw` in `functions`, and this is its
    // one release.
    drop(unsafe { Rc::from_raw(data as *const RefCell<Core>) });
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

const FUNCTIONS: [(&str, Callback); 16] = [
    ("ping", ping),
    ("setTime", set_time),
    ("setCurrentKey", set_current_key),
    ("keyGroup", key_group),
    ("get", get),
    ("put", put),
    ("append", append),
    ("remove", remove),
    ("writeMany", write_many),
    ("readMany", read_many),
    ("mapGet", map_get),
    ("mapPut", map_put),
    ("mapRemove", map_remove),
    ("mapLen", map_len),
    ("mapList", map_list),
    ("stateList", state_list),
];

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(napi::Status::from(status), what.to_string()))
    }
}

/// An object of the hot functions of `core`'s store, each holding a count
/// of `core` until it is collected.
pub fn functions(env: &Env, core: &Rc<RefCell<Core>>) -> napi::Result<sys::napi_value> {
    let env = env.raw();
    let mut obj = ptr::null_mut();
    // Safety: `env` is the live environment of the current call.
    check(unsafe { sys::napi_create_object(env, &mut obj) }, "make an object")?;
    for (name, cb) in FUNCTIONS {
        let data = Rc::into_raw(Rc::clone(core)) as *mut c_void;
        let mut f = ptr::null_mut();
        // Safety: `name` is valid UTF-8 of the given length; `data` stays valid
        // until `release` runs for this function (registered just below; if
        // registering fails, the count is dropped here instead).
        let made = unsafe {
            check(sys::napi_create_function(env, name.as_ptr().cast(), name.len() as isize, Some(cb), data, &mut f), "make a function")
                .and_then(|()| check(sys::napi_add_finalizer(env, f, data, Some(release), ptr::null_mut(), ptr::null_mut()), "watch a function"))
        };
        if let Err(e) = made {
            // Safety: the finalizer was not registered, so this is the count's one release.
            drop(unsafe { Rc::from_raw(data as *const RefCell<Core>) });
            return Err(e);
        }
        let mut key = ptr::null_mut();
        // Safety: `env` is live; `name` is valid UTF-8 of the given length; `obj` and `f` are live values.
        unsafe {
            check(sys::napi_create_string_utf8(env, name.as_ptr().cast(), name.len() as isize, &mut key), "name a function")?;
            check(sys::napi_set_property(env, obj, key, f), "set a function")?;
        }
    }
    Ok(obj)
}
