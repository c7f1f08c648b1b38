//! The tag of a map head's value, which says whether the map is inline or a
//! nested table (the layout is in [`crate::mapval`]). A leaf module, so the
//! memory layer can find a head's nested table without knowing maps.

pub(crate) const INLINE: u8 = 0;
pub(crate) const NESTED: u8 = 1;

/// A map head's value, decoded.
#[derive(Debug, Clone, Copy)]
pub enum MapRef<'a> {
    /// The pairs (without the tag byte).
    Inline(&'a [u8]),
    Nested(u32),
}

/// Decodes a head value (written by [`nested`] or by `crate::mapval`).
#[inline]
pub fn view(value: &[u8]) -> MapRef<'_> {
    match value[0] {
        INLINE => MapRef::Inline(&value[1..]),
        NESTED => MapRef::Nested(u32::from_le_bytes(value[1..5].try_into().expect("a nested head holds a table id"))),
        t => unreachable!("map head tag {t}"),
    }
}

/// The head value of a nested map.
pub fn nested(id: u32) -> [u8; 5] {
    let b = id.to_le_bytes();
    [NESTED, b[0], b[1], b[2], b[3]]
}
