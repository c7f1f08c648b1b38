//! Hashing of key bytes: MurmurHash3 (x86, 32-bit) decides the key group,
//! as Flink's `KeyGroupRangeAssignment` does with a murmur hash; the same
//! hash, seeded with the key's hash, mixes in a namespace for the table index.

/// MurmurHash3_x86_32 of `data` with `seed` (Austin Appleby's reference).
#[inline]
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    fmix32(h)
}

#[inline]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The key group of a key: `murmur3_32(key, 0) % max_parallelism`.
#[inline]
pub fn key_group_of_hash(key_hash: u32, max_parallelism: u32) -> u32 {
    key_hash % max_parallelism
}

/// The key group of `key` (its encoded bytes).
pub fn key_group(key: &[u8], max_parallelism: u32) -> u32 {
    key_group_of_hash(murmur3_32(key, 0), max_parallelism)
}

/// Index hash of an entry: the key hash, with the namespace mixed in when
/// there is one. Nested tables (map user keys) use `entry_hash(uk_hash, &[])`.
#[inline]
pub fn entry_hash(key_hash: u32, ns: &[u8]) -> u32 {
    if ns.is_empty() {
        key_hash
    } else {
        murmur3_32(ns, key_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_reference_vectors() {
        // Published MurmurHash3_x86_32 test vectors.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514E_28B7);
        assert_eq!(murmur3_32(b"", 0xffff_ffff), 0x81F1_6F39);
        assert_eq!(murmur3_32(&[0, 0, 0, 0], 0), 0x2362_F9DE);
        assert_eq!(murmur3_32(&[0x21, 0x43, 0x65, 0x87], 0), 0xF55B_516B);
        assert_eq!(murmur3_32(&[0x21, 0x43, 0x65, 0x87], 0x5082_EDEE), 0x2362_F9DE);
        assert_eq!(murmur3_32(&[0x21, 0x43, 0x65], 0), 0x7E4A_8634);
        assert_eq!(murmur3_32(&[0x21, 0x43], 0), 0xA0F7_B07A);
        assert_eq!(murmur3_32(&[0x21], 0), 0x7266_1CF4);
        assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xFAF6_CDB3);
        assert_eq!(murmur3_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c), 0x2FA8_26CD);
    }

    #[test]
    fn key_groups_cover_range_evenly() {
        let mp = 128;
        let mut counts = vec![0u32; mp as usize];
        for i in 0..128_000u32 {
            let key = format!("user-{i}");
            let kg = key_group(key.as_bytes(), mp);
            assert!(kg < mp);
            counts[kg as usize] += 1;
        }
        // 1000 expected per group; a fair hash stays well within +-25%.
        for (kg, c) in counts.iter().enumerate() {
            assert!((750..1250).contains(c), "key group {kg} got {c} keys");
        }
        assert_eq!(key_group(b"", 128), 0);
        assert_eq!(key_group(b"abc", 1), 0);
    }
}
