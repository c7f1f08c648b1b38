//! Key groups: the unit of keyed state that moves between stores when a job
//! is rescaled, and the ranges of them a store owns (Flink's
//! `KeyGroupRange`). A leaf module: the store, checkpoints and the format
//! all use it, and it uses none of them.

/// Flink's default when nothing else is known.
pub const DEFAULT_MAX_PARALLELISM: u32 = 128;
/// Flink's upper bound for max parallelism.
pub const MAX_PARALLELISM_LIMIT: u32 = 1 << 15;

/// An inclusive range of key groups, as Flink's `KeyGroupRange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGroupRange {
    pub start: u32,
    pub end: u32,
}

impl KeyGroupRange {
    pub fn new(start: u32, end: u32) -> Self {
        KeyGroupRange { start, end }
    }

    #[inline]
    pub fn contains(&self, kg: u32) -> bool {
        kg >= self.start && kg <= self.end
    }

    pub fn len(&self) -> usize {
        (self.end - self.start) as usize + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn iter(&self) -> std::ops::RangeInclusive<u32> {
        self.start..=self.end
    }
}
