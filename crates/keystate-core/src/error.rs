//! The core's one error type. Invalid external input (arguments, checkpoint
//! bytes) returns an `Error`; a broken internal invariant panics.

use std::fmt;

/// Everything that can go wrong with valid code and invalid input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument is out of its domain (empty name, zero parallelism, ...).
    InvalidArgument(String),
    /// A state id that this store never registered.
    UnknownState(u32),
    /// A state was registered again with a different kind, codec or TTL.
    IncompatibleState { name: String, reason: String },
    /// An operation that does not apply to the state's kind.
    WrongStateKind { name: String, expected: &'static str },
    /// The key belongs to a key group this store does not own.
    KeyGroupOutOfRange { key_group: u32, start: u32, end: u32 },
    /// No current key has been set for a keyed-context operation.
    NoCurrentKey,
    /// The snapshot was released or never existed.
    UnknownSnapshot(u64),
    /// The checkpoint handle is not (or no longer) known to the store.
    UnknownCheckpoint(u64),
    /// A checkpoint operation that its state does not allow (confirm after
    /// abort, confirm of a checkpoint older than the last confirmed one, ...).
    CheckpointState(String),
    /// Checkpoint input does not start with keystate's magic bytes.
    BadMagic,
    /// Checkpoint input written in a format version this build cannot read.
    UnsupportedVersion(u16),
    /// A checksum in the checkpoint input does not match its bytes.
    ChecksumMismatch(String),
    /// The checkpoint input ended early.
    Truncated(String),
    /// The checkpoint input is structurally invalid.
    Corrupt(String),
    /// The pieces handed to restore do not form one chain.
    BrokenChain(String),
    /// A value or key is larger than the store can hold.
    TooLarge(String),
    /// A write could not get the memory it needs: nothing of it was applied.
    StoreFull(Full),
}

/// Why a write could not get memory. Holds no heap data, so that reporting
/// it needs no memory either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The store's memory budget would be passed: the write needs `need` more
    /// bytes, and the store holds `used` of its `limit`.
    Budget { need: u64, used: u64, limit: u64 },
    /// The allocator could not provide `need` bytes (WebAssembly memory
    /// cannot grow any more).
    OutOfMemory { need: u64 },
    /// The record arena's addresses are used up (2 GiB of small records,
    /// or 2^31 large ones).
    Arena,
}

impl From<Full> for Error {
    fn from(f: Full) -> Error {
        Error::StoreFull(f)
    }
}

impl Error {
    /// Stable code carried across the binding; the TypeScript side maps it to
    /// a `KeystateError` subclass. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::UnknownState(_) => "UNKNOWN_STATE",
            Error::IncompatibleState { .. } => "INCOMPATIBLE_STATE",
            Error::WrongStateKind { .. } => "WRONG_STATE_KIND",
            Error::KeyGroupOutOfRange { .. } => "KEY_GROUP_OUT_OF_RANGE",
            Error::NoCurrentKey => "NO_CURRENT_KEY",
            Error::UnknownSnapshot(_) => "SNAPSHOT_RELEASED",
            Error::UnknownCheckpoint(_) => "UNKNOWN_CHECKPOINT",
            Error::CheckpointState(_) => "CHECKPOINT_STATE",
            Error::BadMagic => "BAD_MAGIC",
            Error::UnsupportedVersion(_) => "UNSUPPORTED_VERSION",
            Error::ChecksumMismatch(_) => "CHECKSUM_MISMATCH",
            Error::Truncated(_) => "TRUNCATED",
            Error::Corrupt(_) => "CORRUPT",
            Error::BrokenChain(_) => "BROKEN_CHAIN",
            Error::TooLarge(_) => "TOO_LARGE",
            Error::StoreFull(_) => "STORE_FULL",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::UnknownState(id) => write!(f, "unknown state id {id}"),
            Error::IncompatibleState { name, reason } => {
                write!(f, "state '{name}' is incompatible: {reason}")
            }
            Error::WrongStateKind { name, expected } => {
                write!(f, "state '{name}' is not a {expected} state")
            }
            Error::KeyGroupOutOfRange { key_group, start, end } => write!(
                f,
                "key group {key_group} is outside this store's key-group range {start}..={end}"
            ),
            Error::NoCurrentKey => write!(f, "no current key: call setCurrentKey first"),
            Error::UnknownSnapshot(id) => write!(f, "snapshot {id} was released"),
            Error::UnknownCheckpoint(id) => write!(f, "checkpoint {id} is not pending"),
            Error::CheckpointState(m) => write!(f, "{m}"),
            Error::BadMagic => write!(f, "not a keystate checkpoint (bad magic bytes)"),
            Error::UnsupportedVersion(v) => {
                write!(f, "checkpoint format version {v} is not supported by this build")
            }
            Error::ChecksumMismatch(m) => write!(f, "checksum mismatch: {m}"),
            Error::Truncated(m) => write!(f, "checkpoint is truncated: {m}"),
            Error::Corrupt(m) => write!(f, "checkpoint is corrupt: {m}"),
            Error::BrokenChain(m) => write!(f, "checkpoints do not form a chain: {m}"),
            Error::TooLarge(m) => write!(f, "too large: {m}"),
            Error::StoreFull(Full::Budget { need, used, limit }) => write!(
                f,
                "the store is full: this write needs {need} more bytes, and the store holds {used} of its maxMemoryBytes budget of {limit}"
            ),
            Error::StoreFull(Full::OutOfMemory { need }) => {
                write!(f, "the store is full: out of memory (could not allocate {need} bytes)")
            }
            Error::StoreFull(Full::Arena) => {
                write!(f, "the store is full: its record arena holds all it can address (2 GiB of small records)")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
