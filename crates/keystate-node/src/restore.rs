//! `NativeRestorer`: restore exports. Pieces are fed in chunks, each parsed,
//! verified and applied on a libuv worker thread (`feed` resolves when it
//! is), so a large restore never blocks JavaScript; the store is handed out
//! by `finish` only after everything verified.

use std::sync::{Arc, Mutex, PoisonError};

use keystate_core::{Error, KeyGroupRange, RestoreOptions, Restorer};
use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};
use napi_derive::napi;

use crate::conv::{CorePieceInfo, CoreRestoreProgress};
use crate::error::{js, to_js, ErrorInfo, Result};
use crate::store::NativeStore;

type Shared = Arc<Mutex<Option<Restorer>>>;

fn finished() -> Error {
    Error::InvalidArgument("restore already finished".into())
}

#[napi]
#[derive(Debug)]
pub struct NativeRestorer {
    /// Shared with a feed running on a worker thread; `None` once finished.
    inner: Shared,
}

impl NativeRestorer {
    fn with<T>(&self, f: impl FnOnce(&mut Restorer) -> keystate_core::Result<T>) -> Result<T> {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        js(g.as_mut().ok_or_else(finished).and_then(f))
    }

    fn take(&self) -> Result<Restorer> {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.take().ok_or_else(|| to_js(&finished()))
    }
}

#[napi]
impl NativeRestorer {
    /// `kgStart < 0`: keep the key groups of the (single) chain.
    #[napi(constructor)]
    pub fn new(kg_start: f64, kg_end: f64, new_store_id: &[u8]) -> Result<NativeRestorer> {
        let id: [u8; 16] = new_store_id.try_into().map_err(|_| to_js(&Error::InvalidArgument("store id must be 16 bytes".into())))?;
        // Numbers, not i32: a key group of 2^31 or more must reach the core (and be refused there).
        let key_groups = (kg_start >= 0.0).then(|| KeyGroupRange::new(kg_start as u32, kg_end as u32));
        let r = Restorer::new(RestoreOptions { key_groups, new_store_id: id });
        Ok(NativeRestorer { inner: Arc::new(Mutex::new(Some(r))) })
    }

    /// Holds the restored store to a memory budget in bytes (`maxMemoryBytes`).
    #[napi]
    pub fn set_max_memory(&self, bytes: f64) -> Result<()> {
        self.with(|r| crate::conv::budget(bytes).and_then(|b| r.set_memory_limit(Some(b))))
    }

    #[napi]
    pub fn begin_piece(&self, new_chain: bool) -> Result<()> {
        self.with(|r| r.begin_piece(new_chain))
    }

    /// Feeds a chunk (copied now) on a worker thread; resolves to an error
    /// description, or null.
    #[napi(ts_return_type = "Promise<ErrorInfo | null>")]
    pub fn feed(&self, bytes: &[u8]) -> AsyncTask<Feed> {
        AsyncTask::new(Feed { restorer: Arc::clone(&self.inner), work: Work::Feed(bytes.to_vec()) })
    }

    /// How far the current piece is.
    #[napi]
    pub fn progress(&self) -> Result<CoreRestoreProgress> {
        self.with(|r| Ok(r.progress())).map(|p| CoreRestoreProgress::from(&p))
    }

    #[napi]
    pub fn end_piece(&self) -> Result<CorePieceInfo> {
        self.with(|r| r.end_piece()).map(|p| CorePieceInfo::from(&p))
    }

    /// Writes the restored chain as one full checkpoint that stands in for
    /// it, on a worker thread.
    #[napi(ts_return_type = "Promise<Buffer | ErrorInfo>")]
    pub fn finish_compacted(&self) -> AsyncTask<Feed> {
        AsyncTask::new(Feed { restorer: Arc::clone(&self.inner), work: Work::Compact })
    }

    /// The restored store, once every piece verified.
    #[napi]
    pub fn finish(&self, env: Env) -> Result<NativeStore> {
        let store = js(self.take()?.finish())?;
        NativeStore::wrap(&env, store)
    }

    #[napi]
    pub fn free(&self) {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

#[derive(Debug)]
enum Work {
    Feed(Vec<u8>),
    Compact,
}

/// Restore work on a libuv worker thread.
#[derive(Debug)]
pub struct Feed {
    restorer: Shared,
    work: Work,
}

/// What restore work on a worker thread resolves to.
#[derive(Debug)]
pub enum Fed {
    Done,
    Compacted(Vec<u8>),
    Failed(Error),
}

impl Task for Feed {
    type Output = Fed;
    type JsValue = napi::Either<Option<ErrorInfo>, Buffer>;

    fn compute(&mut self) -> napi::Result<Fed> {
        let mut g = self.restorer.lock().unwrap_or_else(PoisonError::into_inner);
        let r = match &self.work {
            Work::Feed(bytes) => match g.as_mut() {
                Some(r) => r.feed(bytes).map(|_| Fed::Done),
                None => Err(finished()),
            },
            Work::Compact => match g.take() {
                Some(r) => r.finish().and_then(|mut s| s.export_compacted()).map(Fed::Compacted),
                None => Err(finished()),
            },
        };
        Ok(r.unwrap_or_else(Fed::Failed))
    }

    fn resolve(&mut self, _env: Env, out: Fed) -> napi::Result<Self::JsValue> {
        Ok(match out {
            Fed::Done => napi::Either::A(None),
            Fed::Compacted(bytes) => napi::Either::B(bytes.into()),
            Fed::Failed(e) => napi::Either::A(Some(ErrorInfo::from(&e))),
        })
    }
}
