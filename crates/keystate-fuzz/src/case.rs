//! A fuzz case: one or more chains of checkpoint pieces, built from seeds by
//! mutations of pieces and of chains, relinked (each piece's parent link set
//! to what the piece before it now is, so that chain checks pass and the
//! checks behind them run), sealed, and sometimes cut or joined as bytes;
//! and what to do with it.

use crate::model::Header;
use crate::mutate::{self, header_of, weighted, Links};
use crate::rng::Rng;
use crate::seeds::Corpus;
use crate::wire::Wire;

/// How a case feeds its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Each piece in one call.
    Whole,
    /// Chunks of random sizes (from this seed).
    Chunks(u64),
    /// Chunks, and after an error: go on feeding, ending and beginning
    /// pieces, then finish; finish must refuse.
    Misuse(u64),
}

/// What a case does with its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Restore, keeping `range` (None: the chain's own).
    Restore { range: Option<(u32, u32)>, feed: Feed },
    /// `compact` the (single) chain.
    Compact,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub chains: Vec<Vec<Vec<u8>>>,
    pub op: Op,
    /// Mutations applied, in order.
    pub mutations: Vec<&'static str>,
}

impl Case {
    pub fn bytes(&self) -> usize {
        self.chains.iter().flatten().map(Vec::len).sum()
    }
}

/// Mutations of a chain, and their weights.
const CHAIN: &[(&str, u32)] = &[
    ("chain.drop", 10),
    ("chain.dup", 8),
    ("chain.swap", 10),
    ("chain.foreign", 10),
    ("chain.compacted", 12),
    ("chain.link", 15),
    ("chain.truncate", 15),
    ("chain.concat", 5),
    ("chain.empty", 4),
    ("chain.flip", 6),
];

/// Byte-level chain mutations, applied after sealing.
#[derive(Debug, Clone, Copy)]
enum After {
    Truncate(usize, usize),
    Concat(usize),
    Empty(usize),
    Flip(usize, usize),
}

/// Builds case number `n` of a run from its generator.
pub fn build(corpus: &Corpus, rng: &mut Rng) -> Case {
    let mut mutations = Vec::new();
    let multi = rng.chance(10) && !corpus.pairs.is_empty();
    let mut chains: Vec<Vec<Wire>> = if multi {
        let &(a, b) = rng.pick(&corpus.pairs);
        let pick = |l: usize, rng: &mut Rng| {
            let pieces = &corpus.lineages[l].pieces;
            pieces[..1 + rng.index(pieces.len())].iter().map(|(_, w)| w.clone()).collect::<Vec<_>>()
        };
        let mut c = vec![pick(a, rng), pick(b, rng)];
        match rng.below(10) {
            0 => c.swap(0, 1),
            1 => c[1] = c[0].clone(),
            _ => {}
        }
        c
    } else {
        let l = &corpus.lineages[rng.index(corpus.lineages.len())];
        let len = if rng.chance(60) { l.pieces.len() } else { 1 + rng.index(l.pieces.len()) };
        let mut chain: Vec<Wire> = l.pieces[..len].iter().map(|(_, w)| w.clone()).collect();
        if len >= 2 && rng.chance(15) {
            // Start from a compaction of a prefix instead of the full checkpoint.
            let k = rng.index(len - 1);
            chain.splice(..k + 2, [l.compacted[k].1.clone()]);
            mutations.push("chain.from_compacted");
        }
        vec![chain]
    };
    let donors: Vec<&Wire> = corpus.lineages.iter().flat_map(|l| l.pieces.iter().chain(&l.compacted)).map(|(_, w)| w).collect();
    let n = match rng.below(8) {
        0..=3 => 1,
        4 | 5 => 2,
        6 => 3,
        _ => 4 + rng.below(4),
    };
    let mut keep_links = vec![vec![false; 0]; chains.len()];
    for (c, k) in chains.iter().zip(&mut keep_links) {
        k.resize(c.len(), false);
    }
    let mut after = Vec::new();
    let mut break_link = None;
    for _ in 0..n {
        let ci = rng.index(chains.len());
        let chain = &mut chains[ci];
        if rng.chance(85) {
            let pi = piece_index(rng, chain.len());
            let name = weighted(rng, mutate::PIECE);
            if mutate::apply(name, &mut chain[pi], &donors, rng) == Links::Keep {
                keep_links[ci][pi] = true;
            }
            mutations.push(name);
            continue;
        }
        let name = weighted(rng, CHAIN);
        mutations.push(name);
        let len = chain.len();
        match name {
            "chain.drop" if len > 1 => {
                let i = rng.index(len);
                chain.remove(i);
                keep_links[ci].remove(i);
            }
            "chain.dup" => {
                let i = rng.index(len);
                chain.insert(i, chain[i].clone());
                keep_links[ci].insert(i, false);
            }
            "chain.swap" if len > 1 => {
                let (i, j) = (rng.index(len), rng.index(len));
                chain.swap(i, j);
                keep_links[ci].swap(i, j);
            }
            "chain.foreign" => {
                let w = (*rng.pick(&donors)).clone();
                let i = rng.index(len + 1);
                chain.insert(i, w);
                keep_links[ci].insert(i, false);
            }
            "chain.compacted" => {
                let l = rng.pick(&corpus.lineages);
                if let Some((_, w)) = l.compacted.first() {
                    let i = rng.index(len);
                    chain[i] = w.clone();
                }
            }
            "chain.link" => break_link = Some((ci, rng.index(len))),
            "chain.truncate" => after.push((ci, After::Truncate(rng.index(len), rng.u64() as usize))),
            "chain.concat" if len > 1 => after.push((ci, After::Concat(rng.index(len - 1)))),
            "chain.empty" => after.push((ci, After::Empty(rng.index(len)))),
            "chain.flip" => after.push((ci, After::Flip(rng.index(len), rng.u64() as usize))),
            _ => {}
        }
    }
    let relink = rng.chance(85);
    let mut sealed: Vec<Vec<Vec<u8>>> = Vec::new();
    for (ci, chain) in chains.iter_mut().enumerate() {
        let mut out = Vec::new();
        let mut prev: Option<(u64, u64)> = None;
        for (pi, w) in chain.iter_mut().enumerate() {
            if let (true, Some((id, link)), false) = (relink, prev, keep_links[ci][pi]) {
                set_parent(w, id, link);
            }
            if break_link == Some((ci, pi)) {
                set_parent(w, rng.interesting(&[1, 2, 3]), if rng.chance(50) { rng.u64() } else { 0 });
            }
            let (bytes, file_sum) = w.seal();
            prev = header_of(w).map(|h| (h.id, if h.link != 0 { h.link } else { file_sum }));
            out.push(bytes);
        }
        sealed.push(out);
    }
    for (ci, a) in after {
        let c = &mut sealed[ci];
        match a {
            After::Truncate(i, at) if i < c.len() => {
                let n = c[i].len();
                c[i].truncate(if n > 0 { at % n } else { 0 });
            }
            After::Concat(i) if i + 1 < c.len() => {
                let next = c.remove(i + 1);
                c[i].extend_from_slice(&next);
            }
            After::Empty(i) if i < c.len() => c[i].clear(),
            After::Flip(i, at) if i < c.len() && !c[i].is_empty() => {
                let n = c[i].len();
                c[i][at % n] ^= 1 << (at % 8);
            }
            _ => {}
        }
    }
    let op = choose_op(rng, &chains, multi);
    Case { chains: sealed, op, mutations }
}

/// Mostly the last piece (what a restore reads last), often the first.
fn piece_index(rng: &mut Rng, len: usize) -> usize {
    match rng.below(10) {
        0..=4 => len - 1,
        5..=6 => 0,
        _ => rng.index(len),
    }
}

fn set_parent(w: &mut Wire, id: u64, link: u64) {
    if let Some(mut h) = Header::decode(&w.header) {
        if h.is_incremental() {
            h.parent_id = id;
            h.parent_link = link;
            w.header = h.encode();
        }
    }
}

fn choose_op(rng: &mut Rng, chains: &[Vec<Wire>], multi: bool) -> Op {
    let feed = match rng.below(20) {
        0..=12 => Feed::Whole,
        13..=18 => Feed::Chunks(rng.u64()),
        _ => Feed::Misuse(rng.u64()),
    };
    if !multi && rng.chance(20) {
        return Op::Compact;
    }
    let h = chains.first().and_then(|c| c.first()).and_then(header_of);
    let range = if multi || rng.chance(15) {
        match (rng.below(10), h) {
            (0, _) if multi => None,
            (1, _) => Some((rng.interesting(&[0, 8]) as u32, rng.interesting(&[0, 8]) as u32)),
            (_, Some(h)) if multi => {
                let top = h.mp.saturating_sub(1);
                let a = rng.below(u64::from(top) + 1) as u32;
                Some(if rng.chance(50) { (0, top) } else { (a.min(top), top) })
            }
            (_, Some(h)) if h.start <= h.end => {
                let a = h.start + rng.below(u64::from(h.end - h.start) + 1) as u32;
                let b = h.start + rng.below(u64::from(h.end - h.start) + 1) as u32;
                Some((a.min(b), a.max(b)))
            }
            _ => Some((0, 0)),
        }
    } else {
        None
    };
    Op::Restore { range, feed }
}
