//! splitmix64: small, seeded, reproducible. Every case of a run is derived
//! from `(run seed, case number)`, so any case can be replayed alone.

/// A seeded pseudo-random generator; or, for a coverage-guided fuzzer, a
/// tape: draws read its bytes, so that the fuzzer's mutations of them are
/// the generator's decisions.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    tape: Vec<u8>,
    at: usize,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed, tape: Vec::new(), at: 0 }
    }

    /// The generator of case `case` of run `seed`.
    pub fn for_case(seed: u64, case: u64) -> Rng {
        let mut r = Rng::new(seed ^ case.wrapping_mul(0xd6e8_feb8_6659_fd93));
        r.u64();
        r
    }

    /// Draws from `tape`, 8 bytes each, then from a generator seeded by its length.
    pub fn from_tape(tape: &[u8]) -> Rng {
        Rng { state: tape.len() as u64, tape: tape.to_vec(), at: 0 }
    }

    pub fn u64(&mut self) -> u64 {
        if self.at < self.tape.len() {
            let mut b = [0u8; 8];
            let n = (self.tape.len() - self.at).min(8);
            b[..n].copy_from_slice(&self.tape[self.at..self.at + n]);
            self.at += 8;
            return u64::from_le_bytes(b);
        }
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.u64() % n
    }

    /// Uniform index into a collection of `n > 0` elements.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Up to `max` random bytes; short lengths are likelier.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = if self.chance(70) { self.index(max.min(16) + 1) } else { self.index(max + 1) };
        (0..n).map(|_| self.u64() as u8).collect()
    }

    /// A value near the edges of `u64` and of the given reference values:
    /// what length, count and id checks get wrong.
    pub fn interesting(&mut self, near: &[u64]) -> u64 {
        const EDGES: [u64; 12] = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0xffff, u32::MAX as u64, (1 << 53) - 1, u64::MAX];
        match self.below(10) {
            0..=3 if !near.is_empty() => {
                let base = *self.pick(near);
                let d = self.below(17);
                if self.chance(50) { base.wrapping_add(d) } else { base.wrapping_sub(d) }
            }
            4..=7 => *self.pick(&EDGES),
            8 => 1 << self.below(64),
            _ => self.u64() >> self.below(64),
        }
    }
}
