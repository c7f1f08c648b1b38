//! Sorting a table's record refs into address order (a full export writes
//! records in the order they lie in the arena, see `crate::export`).
//!
//! Refs of one table are many (thousands) and their high bits mostly agree,
//! so a least-significant-digit radix sort over only the bits in which they
//! differ does two passes of at most 11 bits while the table's records lie
//! within 16 MiB of pages (about 1M records of 16 bytes), three beyond: a
//! few loads and a store per ref per pass, against about log2(n) compares
//! for a comparison sort.

use crate::error::Full;
use crate::room;

/// Below this many refs a comparison sort is cheaper than the histograms.
const SMALL: usize = 256;
/// Bits of one digit at most (2,048 counters, 8 KB: stays in cache).
const DIGIT: u32 = 11;
const COUNTERS: usize = 1 << DIGIT;

/// Sorts the record refs `v` by address: small refs (`page << 14 | offset`)
/// ascending, which is their order in memory within a page. `tmp` is
/// scratch, grown to `v.len()` and never shrunk (so a table after the first
/// costs no clearing). Refused, with `v` as it was, when `tmp` cannot grow.
///
/// Sorted by `r >> 2`: two records of one page are at least `MIN_SLOT` (4)
/// bytes apart, so that keeps their order and saves a digit. Refs that tie
/// (large records, whose order does not matter) come out in an order fixed
/// by their input: as they came in the radix passes (which are stable), by
/// value in the comparison sort of small tables.
pub fn sort_refs(v: &mut [u32], tmp: &mut Vec<u32>) -> Result<(), Full> {
    let n = v.len();
    if n < SMALL {
        v.sort_unstable_by_key(|&r| (r >> 2, r));
        return Ok(());
    }
    let first = v[0] >> 2;
    let differ = v.iter().fold(0, |a, &x| a | ((x >> 2) ^ first));
    if differ == 0 {
        return Ok(());
    }
    let bits = 32 - differ.leading_zeros();
    let passes = bits.div_ceil(DIGIT);
    let width = bits.div_ceil(passes);
    let mask = (1u32 << width) - 1;
    if tmp.len() < n {
        room::reserve(tmp, n - tmp.len())?;
        tmp.resize(n, 0);
    }
    let tmp = &mut tmp[..n];
    let mut counts = [[0u32; COUNTERS]; 3];
    {
        let [c0, c1, c2] = &mut counts;
        let (w1, w2) = (width + 2, (2 * width + 2).min(31));
        let m = mask as usize & (COUNTERS - 1);
        if passes < 3 {
            for &x in v.iter() {
                c0[(x >> 2) as usize & m] += 1;
                c1[(x >> w1) as usize & m] += 1;
            }
        } else {
            for &x in v.iter() {
                c0[(x >> 2) as usize & m] += 1;
                c1[(x >> w1) as usize & m] += 1;
                c2[(x >> w2) as usize & m] += 1;
            }
        }
    }
    for (p, c) in counts.iter_mut().enumerate().take(passes as usize) {
        let mut at = 0u32;
        for slot in c[..=mask as usize].iter_mut() {
            let k = *slot;
            *slot = at;
            at += k;
        }
        let shift = p as u32 * width + 2;
        let (src, dst): (&[u32], &mut [u32]) = if p % 2 == 0 { (&*v, &mut *tmp) } else { (&*tmp, &mut *v) };
        for &x in src {
            let d = ((x >> shift) & mask) as usize & (COUNTERS - 1);
            dst[c[d] as usize] = x;
            c[d] += 1;
        }
    }
    if passes % 2 == 1 {
        v.copy_from_slice(tmp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 32) as u32
    }

    #[test]
    fn sorts_like_a_comparison_sort() {
        let mut seed = 7u64;
        let mut tmp = Vec::new();
        for n in [0usize, 1, 2, 511, 512, 513, 4096, 20_000] {
            for spread in [0u32, 1, 0xff, 0x3fff, 0x00ff_ffff, u32::MAX] {
                let base = lcg(&mut seed) & !spread;
                // Refs of small records are 4 bytes apart at least.
                let mut v: Vec<u32> = (0..n).map(|_| (base | (lcg(&mut seed) & spread)) & !3).collect();
                let mut want = v.clone();
                want.sort_unstable();
                sort_refs(&mut v, &mut tmp).expect("room");
                assert_eq!(v, want, "n {n}, spread {spread:#x}");
            }
        }
    }

    #[test]
    fn ties_keep_their_order() {
        // Large refs (bit 31 and an index) may tie in `r >> 2`: the stable
        // passes keep them as they came, so the order is deterministic.
        let mut tmp = Vec::new();
        let mut v: Vec<u32> = (0..1000u32).map(|i| if i % 2 == 0 { (1 << 31) | (3 - i % 4) } else { i << 4 }).collect();
        let mut want = v.clone();
        want.sort_by_key(|&r| r >> 2);
        sort_refs(&mut v, &mut tmp).expect("room");
        assert_eq!(v, want);
    }
}
