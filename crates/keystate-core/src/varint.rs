//! LEB128 unsigned varints, used by records and by the checkpoint format.

/// Appends `v` as LEB128.
#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes `v` at the start of `buf`, returning the number of bytes written.
/// `buf` must have room for `len(v)` bytes.
#[inline]
pub fn write(buf: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

/// Encoded length of `v`.
#[inline]
pub fn len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a varint from `buf[*pos..]`, advancing `pos`. `None` when the input
/// ends inside the varint or the value overflows 64 bits.
#[inline]
pub fn get(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Reads a varint from trusted bytes (records written by this crate).
#[inline]
pub fn get_trusted(buf: &[u8], pos: &mut usize) -> usize {
    let b = buf[*pos];
    *pos += 1;
    if b < 0x80 {
        return b as usize;
    }
    let mut v = (b & 0x7f) as usize;
    let mut shift = 7;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as usize) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lengths() {
        for v in [0u64, 1, 127, 128, 300, 16383, 16384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(out.len(), len(v), "len of {v}");
            let mut pos = 0;
            assert_eq!(get(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
            let mut buf = [0u8; 10];
            assert_eq!(write(&mut buf, v), out.len());
            assert_eq!(&buf[..out.len()], &out[..]);
            if v <= usize::MAX as u64 {
                let mut pos = 0;
                assert_eq!(get_trusted(&out, &mut pos) as u64, v);
            }
        }
    }

    #[test]
    fn rejects_truncated_and_overflow() {
        let mut pos = 0;
        assert_eq!(get(&[0x80, 0x80], &mut pos), None);
        let mut pos = 0;
        assert_eq!(get(&[0xff; 11], &mut pos), None);
        let mut pos = 0;
        assert_eq!(get(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], &mut pos), None);
    }
}
