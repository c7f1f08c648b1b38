//! State descriptors: what a named state is and how its bytes are encoded.

use crate::error::{Error, Result};
use crate::ttl::TtlConfig;

/// Largest key, namespace or map user key.
pub const MAX_KEY_LEN: usize = 1 << 24;
/// Largest value.
pub const MAX_VALUE_LEN: usize = 1 << 30;
/// Most states a store holds.
pub const MAX_STATES: usize = 1 << 16;
/// Most (state, owned key group) table slots a store holds: each state has
/// one per key group (4 bytes each), so this caps what a checkpoint header
/// of a few bytes per state can make restore allocate.
pub const MAX_STATE_SLOTS: usize = 1 << 24;

/// The kinds of keyed state, as in Flink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StateKind {
    Value = 0,
    List = 1,
    Map = 2,
    Reducing = 3,
    Aggregating = 4,
}

impl StateKind {
    pub fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            0 => StateKind::Value,
            1 => StateKind::List,
            2 => StateKind::Map,
            3 => StateKind::Reducing,
            4 => StateKind::Aggregating,
            _ => return Err(Error::InvalidArgument(format!("unknown state kind {v}"))),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            StateKind::Value => "value",
            StateKind::List => "list",
            StateKind::Map => "map",
            StateKind::Reducing => "reducing",
            StateKind::Aggregating => "aggregating",
        }
    }

    /// "a value", "an aggregating": the name with its article, for messages.
    pub fn a(self) -> &'static str {
        match self {
            StateKind::Aggregating => "an aggregating",
            StateKind::Value => "a value",
            StateKind::List => "a list",
            StateKind::Map => "a map",
            StateKind::Reducing => "a reducing",
        }
    }

    /// Value, reducing and aggregating state hold one value per (key, namespace).
    pub fn is_value_like(self) -> bool {
        matches!(self, StateKind::Value | StateKind::Reducing | StateKind::Aggregating)
    }
}

/// A registered state. Codec ids are opaque to the core: they are written
/// into checkpoints and compared on registration and restore, so that bytes
/// are never decoded with a codec other than the one that wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDescriptor {
    pub name: String,
    pub kind: StateKind,
    /// Codec of the values (list: of the elements).
    pub value_codec: String,
    /// Codec of map user keys; empty for other kinds.
    pub user_key_codec: String,
    /// Time to live of its values; `None`: they live until removed.
    pub ttl: Option<TtlConfig>,
}

impl StateDescriptor {
    pub fn new(name: &str, kind: StateKind, value_codec: &str, user_key_codec: &str) -> Result<Self> {
        if name.is_empty() || name.len() > 1024 {
            return Err(Error::InvalidArgument("state names are 1 to 1024 bytes".into()));
        }
        if value_codec.len() > 256 || user_key_codec.len() > 256 {
            return Err(Error::InvalidArgument("codec ids are at most 256 bytes".into()));
        }
        if kind != StateKind::Map && !user_key_codec.is_empty() {
            return Err(Error::InvalidArgument("only map state has a user-key codec".into()));
        }
        Ok(StateDescriptor {
            name: name.to_string(),
            kind,
            value_codec: value_codec.to_string(),
            user_key_codec: user_key_codec.to_string(),
            ttl: None,
        })
    }

    /// This descriptor with a time to live (checked) or without one.
    pub fn with_ttl(mut self, ttl: Option<TtlConfig>) -> Result<Self> {
        self.ttl = ttl.map(TtlConfig::checked).transpose()?;
        Ok(self)
    }

    /// Why `other` (same name) cannot share this state's bytes, if it cannot.
    /// A state with TTL stores a timestamp with each value, one without does
    /// not: neither reads the other's bytes (Flink refuses the same). The TTL
    /// parameters themselves may differ (see `Store::register_state`).
    pub fn incompatibility(&self, other: &StateDescriptor) -> Option<String> {
        if self.kind != other.kind {
            return Some(format!("it is {} state, not {} state", self.kind.a(), other.kind.a()));
        }
        if self.value_codec != other.value_codec {
            return Some(format!(
                "its values use codec '{}', not '{}'",
                self.value_codec, other.value_codec
            ));
        }
        if self.user_key_codec != other.user_key_codec {
            return Some(format!(
                "its user keys use codec '{}', not '{}'",
                self.user_key_codec, other.user_key_codec
            ));
        }
        match (self.ttl.is_some(), other.ttl.is_some()) {
            (true, false) => return Some("it has a time to live (TTL), and this declaration has none".into()),
            (false, true) => return Some("it has no time to live (TTL), and this declaration has one".into()),
            _ => {}
        }
        None
    }
}
