//! Mutations of one checkpoint: of its header and its states, of section
//! bodies (blocks, records, ops, keys, lengths), of the list of sections, of
//! the footer's index and totals, of the preamble and the trailer. Each is
//! applied to a [`Wire`], which seals whatever the mutation did not pin.

use crate::model::{self, decode_body, encode_body, fit_key, key_group, Block, Header, Record, State};
use crate::rng::Rng;
use crate::wire::{Footer, IndexEdit, Part, Section, Wire, END_MAGIC, MAGIC, TAG_FOOTER, TAG_SECTION};

/// What a mutation did to the chain links, for the case builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Relinking the chain afterwards is fine.
    Relink,
    /// The mutation set the parent fields on purpose: keep them.
    Keep,
}

/// Mutations and their weights.
pub const PIECE: &[(&str, u32)] = &[
    ("none", 20),
    ("header.kind", 30),
    ("header.ids", 30),
    ("header.store_id", 10),
    ("header.mp", 20),
    ("header.range", 25),
    ("header.state_add", 20),
    ("header.state_remove", 15),
    ("header.state_kind", 35),
    ("header.state_sid", 20),
    ("header.state_name", 15),
    ("header.state_codec", 30),
    ("header.state_ttl", 6),
    ("header.state_flood", 3),
    ("header.state_count", 20),
    ("header.trailing", 6),
    ("header.raw", 20),
    ("block.sid", 20),
    ("block.shuffle", 20),
    ("block.count", 25),
    ("record.op", 45),
    ("record.key", 40),
    ("record.ns", 20),
    ("record.uk_value", 30),
    ("record.shuffle", 20),
    ("record.flags", 15),
    ("record.len", 25),
    ("record.pad", 10),
    ("record.synth", 60),
    ("record.tombstone", 15),
    ("record.run", 30),
    ("body.raw", 30),
    ("body.flood", 2),
    ("section.drop", 15),
    ("section.dup", 15),
    ("section.swap", 15),
    ("section.kg", 30),
    ("section.splice", 20),
    ("section.empty", 10),
    ("section.tag", 15),
    ("section.junk", 15),
    ("section.body_len", 30),
    ("section.sum", 7),
    ("section.flood", 2),
    ("footer.index", 40),
    ("footer.records", 20),
    ("footer.count", 15),
    ("footer.len", 20),
    ("footer.tag", 10),
    ("footer.raw", 20),
    ("footer.sum", 5),
    ("trailer.offset", 20),
    ("trailer.file_sum", 7),
    ("trailer.magic", 10),
    ("trailer.extra", 15),
    ("preamble.magic", 18),
    ("preamble.version", 18),
    ("preamble.flags", 10),
    ("preamble.header_len", 20),
    ("preamble.header_sum", 5),
];

/// Picks an entry of a weight table.
pub fn weighted(rng: &mut Rng, table: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(u64::from(total)) as u32;
    for (name, w) in table {
        if x < *w {
            return name;
        }
        x -= w;
    }
    unreachable!("x < total")
}

/// Another checkpoint's sections, for splicing.
pub type Donors<'a> = &'a [&'a Wire];

/// Applies mutation `name` to `w`. Mutations that find nothing to change
/// (no section, an undecodable header) leave `w` as it is.
pub fn apply(name: &str, w: &mut Wire, donors: Donors<'_>, rng: &mut Rng) -> Links {
    let mut links = Links::Relink;
    match name {
        "none" => {}
        "header.kind" => header(w, |h| h.kind = if rng.chance(50) { h.kind ^ 1 } else { 2 + rng.below(254) as u8 }),
        "header.ids" => header(w, |h| {
            let near = [h.id, h.parent_id, h.link, 1 << 53];
            let v = rng.interesting(&near);
            match rng.below(4) {
                0 => h.id = v,
                1 => {
                    h.parent_id = v;
                    links = Links::Keep;
                }
                2 => {
                    h.parent_link = if rng.chance(50) { v } else { rng.u64() };
                    links = Links::Keep;
                }
                _ => h.link = if rng.chance(50) { v } else { rng.u64() },
            }
        }),
        "header.store_id" => header(w, |h| {
            let i = rng.index(16);
            h.store_id[i] ^= 1 << rng.below(8);
        }),
        "header.mp" => {
            let mut rehash = false;
            header(w, |h| {
                h.mp = rng.interesting(&[u64::from(h.mp), 32768, u64::from(h.end) + 1]) as u32;
                if rng.chance(60) {
                    h.end = h.end.min(h.mp.saturating_sub(1));
                    h.start = h.start.min(h.end);
                }
                rehash = rng.chance(70);
            });
            if rehash {
                redistribute(w, rng);
            }
        }
        "header.range" => {
            let mut rehash = false;
            header(w, |h| {
                let near = [u64::from(h.start), u64::from(h.end), u64::from(h.mp)];
                match rng.below(4) {
                    0 => h.start = rng.interesting(&near) as u32,
                    1 => h.end = rng.interesting(&near) as u32,
                    2 => std::mem::swap(&mut h.start, &mut h.end),
                    _ => {
                        // A valid range of the same max parallelism.
                        let a = rng.below(u64::from(h.mp.max(1))) as u32;
                        let b = rng.below(u64::from(h.mp.max(1))) as u32;
                        (h.start, h.end) = (a.min(b), a.max(b));
                    }
                }
                rehash = rng.chance(50);
            });
            if rehash {
                redistribute(w, rng);
            }
        }
        "header.state_add" => header(w, |h| {
            let sid = if rng.chance(70) { h.states.iter().map(|s| s.sid.wrapping_add(1)).max().unwrap_or(0) } else { rng.interesting(&[0, 1, u64::from(u32::MAX)]) };
            let kind = if rng.chance(90) { rng.below(5) as u8 } else { rng.u64() as u8 };
            let uk = if kind == 2 { b"key".to_vec() } else { Vec::new() };
            h.states.push(State { sid, kind, name: name_for(rng, h), value_codec: b"bytes".to_vec(), uk_codec: uk, ttl: model::Ttl::None });
        }),
        "header.state_remove" => header(w, |h| {
            if !h.states.is_empty() {
                h.states.remove(rng.index(h.states.len()));
            }
        }),
        "header.state_kind" => header(w, |h| {
            if let Some(s) = pick_mut(rng, &mut h.states) {
                s.kind = if rng.chance(85) { rng.below(5) as u8 } else { rng.u64() as u8 };
                if rng.chance(70) {
                    s.uk_codec = if s.kind == 2 { b"key".to_vec() } else { Vec::new() };
                }
            }
        }),
        "header.state_sid" => header(w, |h| {
            let others: Vec<u64> = h.states.iter().map(|s| s.sid).collect();
            if let Some(s) = pick_mut(rng, &mut h.states) {
                s.sid = if rng.chance(50) { *rng.pick(&others) } else { rng.interesting(&[s.sid, u64::from(u32::MAX)]) };
            }
        }),
        "header.state_name" => header(w, |h| {
            let name = name_for(rng, h);
            if let Some(s) = pick_mut(rng, &mut h.states) {
                s.name = name;
            }
        }),
        "header.state_codec" => header(w, |h| {
            let codec = codec(rng);
            if let Some(s) = pick_mut(rng, &mut h.states) {
                if rng.chance(50) {
                    s.value_codec = codec;
                } else {
                    s.uk_codec = codec;
                }
            }
        }),
        "header.state_ttl" => header(w, |h| {
            if let Some(s) = pick_mut(rng, &mut h.states) {
                s.ttl = ttl_field(rng, &s.ttl);
            }
        }),
        "header.state_flood" => header(w, |h| {
            // Many states: what a store can hold bounds what a header may declare.
            let n = *rng.pick(&[1000u64, 5000, 70_000]);
            let base = h.states.iter().map(|s| s.sid.wrapping_add(1)).max().unwrap_or(0);
            for i in 0..n {
                h.states.push(State { sid: base.wrapping_add(i), kind: 0, name: format!("f{i}").into_bytes(), value_codec: Vec::new(), uk_codec: Vec::new(), ttl: model::Ttl::None });
            }
        }),
        "header.state_count" => header(w, |h| {
            let n = h.states.len() as u64;
            h.state_count = Some(rng.interesting(&[n, n + 1, 1 << 16, (1 << 16) + 1]));
        }),
        "header.trailing" => header(w, |h| h.trailing.extend(rng.bytes(8).into_iter().chain([0]))),
        "header.raw" => raw(&mut w.header, rng),
        "block.sid" => body(w, rng, |blocks, ctx, rng| {
            if let Some(b) = pick_mut(rng, blocks) {
                b.sid = if rng.chance(60) && !ctx.sids.is_empty() { *rng.pick(&ctx.sids) } else { rng.interesting(&[b.sid, u64::from(u32::MAX)]) };
            }
        }),
        "block.shuffle" => body(w, rng, |blocks, _, rng| shuffle(blocks, rng, |b: &mut Block, rng| {
            // Split: the second half becomes a block of its own.
            let at = rng.index(b.records.len() + 1);
            let rest = b.records.split_off(at);
            Block { sid: b.sid, count: None, records: rest }
        })),
        "block.count" => body(w, rng, |blocks, _, rng| {
            if let Some(b) = pick_mut(rng, blocks) {
                let n = b.records.len() as u64;
                b.count = Some(rng.interesting(&[n, n + 1, n.saturating_sub(1), u64::from(u32::MAX)]) as u32);
            }
        }),
        "record.op" => record(w, rng, |r, _, rng| r.op = if rng.chance(50) { rng.below(5) as u8 } else { 5 + rng.below(251) as u8 }),
        "record.key" => record(w, rng, |r, ctx, rng| {
            match rng.below(4) {
                0 => r.key = rng.bytes(24),
                1 => r.key.clear(),
                2 => r.key.push(rng.u64() as u8),
                _ => r.key = rng.bytes(3000),
            }
            if rng.chance(60) {
                fit_key(&mut r.key, ctx.kg, ctx.mp);
            }
        }),
        "record.ns" => record(w, rng, |r, _, rng| match rng.below(3) {
            0 => r.ns = rng.bytes(12),
            1 => r.ns.clear(),
            _ => r.ns_flag = !r.ns_flag,
        }),
        "record.uk_value" => record(w, rng, |r, _, rng| {
            let v = if rng.chance(10) { vec![7u8; 2040 + rng.index(20)] } else { rng.bytes(600) };
            if rng.chance(50) {
                r.value = v;
            } else {
                r.uk = v;
            }
        }),
        "record.shuffle" => body(w, rng, |blocks, _, rng| {
            if let Some(b) = pick_mut(rng, blocks) {
                shuffle(&mut b.records, rng, |r: &mut Record, _| r.clone());
            }
        }),
        "record.flags" => record(w, rng, |r, _, rng| r.flags = (1 + rng.below(3) as u8) << 1),
        "record.len" => record(w, rng, |r, _, rng| {
            let which = rng.below(4) as u8;
            let true_len = [r.key.len(), r.ns.len(), r.uk.len(), r.value.len()][which as usize] as u64;
            r.len_lie = Some((which, rng.interesting(&[true_len, true_len + 1, true_len.saturating_sub(1), 1 << 24, 1 << 30])));
        }),
        "record.pad" => record(w, rng, |r, _, rng| r.pad = 1 + rng.below(9) as u8),
        "record.synth" => synth(w, rng),
        "record.tombstone" => record(w, rng, |r, _, rng| {
            // The deletion of what the record puts (a full checkpoint has none).
            r.op = match r.op {
                model::MAP_PUT => *rng.pick(&[model::MAP_DELETE, model::MAP_CLEAR]),
                _ => model::DELETE,
            };
        }),
        "record.run" => body(w, rng, |blocks, _, rng| {
            // Format version 2's RUN: PUTs side by side under one op, with a
            // true or a false count; or a RUN's records written apart again.
            let Some(b) = pick_mut(rng, blocks) else { return };
            let n = b.records.len();
            if n == 0 {
                return;
            }
            let at = rng.index(n);
            match rng.below(4) {
                0 => {
                    for r in &mut b.records {
                        (r.run, r.in_run) = (None, false);
                    }
                }
                1 => b.records[at].run = Some(rng.interesting(&[0, 1, (n - at) as u64, (n - at + 1) as u64])),
                _ => {
                    let len = 1 + rng.index(n - at);
                    for (i, r) in b.records[at..at + len].iter_mut().enumerate() {
                        r.op = model::PUT;
                        (r.run, r.in_run) = if i == 0 { (Some(len as u64), false) } else { (None, true) };
                    }
                }
            }
        }),
        "body.raw" => {
            if let Some(s) = pick_section(w, rng) {
                raw(&mut s.body, rng);
            }
        }
        "body.flood" => body(w, rng, |blocks, ctx, rng| {
            let Some(sid) = ctx.sids.first().copied() else { return };
            let n = *rng.pick(&[2000usize, 20_000]);
            let records = (0..n as u32)
                .map(|i| {
                    let mut key = i.to_le_bytes().to_vec();
                    fit_key(&mut key, ctx.kg, ctx.mp);
                    Record::new(model::PUT, &key, b"", b"", b"v")
                })
                .collect();
            blocks.push(Block { sid, count: None, records });
        }),
        "section.drop" => {
            if !w.parts.is_empty() {
                w.parts.remove(rng.index(w.parts.len()));
            }
        }
        "section.dup" => {
            if !w.parts.is_empty() {
                let i = rng.index(w.parts.len());
                let p = w.parts[i].clone();
                w.parts.insert(i + usize::from(rng.chance(50)), p);
            }
        }
        "section.swap" => {
            if w.parts.len() >= 2 {
                let (i, j) = (rng.index(w.parts.len()), rng.index(w.parts.len()));
                w.parts.swap(i, j);
            }
        }
        "section.kg" => section_kg(w, rng),
        "section.splice" => {
            let donor = *rng.pick(donors);
            let from: Vec<&Section> = donor.sections().collect();
            if !from.is_empty() {
                let s = (*rng.pick(&from)).clone();
                let at = rng.index(w.parts.len() + 1);
                if rng.chance(50) && at < w.parts.len() {
                    w.parts[at] = Part::Section(s);
                } else {
                    w.parts.insert(at, Part::Section(s));
                }
                if rng.chance(50) {
                    sort_sections(w);
                }
            }
        }
        "section.empty" => {
            let kg = header_of(w).map_or(0, |h| h.start + rng.below(u64::from(h.end.saturating_sub(h.start)) + 1) as u32);
            let at = rng.index(w.parts.len() + 1);
            w.parts.insert(at, Part::Section(Section::new(kg, Vec::new())));
            if rng.chance(50) {
                sort_sections(w);
            }
        }
        "section.tag" => {
            if let Some(s) = pick_section(w, rng) {
                s.tag = if rng.chance(30) { TAG_FOOTER } else { rng.u64() as u8 };
            }
        }
        "section.junk" => {
            let junk = match rng.below(3) {
                0 => rng.bytes(40),
                1 => vec![TAG_FOOTER, 0, 0, 0, 0],
                _ => {
                    let (bytes, _) = w.seal();
                    bytes[bytes.len().saturating_sub(60)..].to_vec()
                }
            };
            let at = rng.index(w.parts.len() + 1);
            w.parts.insert(at, Part::Raw(junk));
        }
        "section.body_len" => {
            if let Some(s) = pick_section(w, rng) {
                let n = s.body.len() as u64;
                s.body_len = Some(rng.interesting(&[n, n + 1, n.saturating_sub(1), n + 8, u64::from(u32::MAX)]) as u32);
            }
        }
        "section.sum" => {
            if let Some(s) = pick_section(w, rng) {
                s.sum = Some(rng.u64());
            }
        }
        "section.flood" => {
            // One tiny section for every key group of the range.
            if let Some(h) = header_of(w) {
                let sid = h.states.first().map_or(0, |s| s.sid);
                let last = h.end.min(h.start.saturating_add(40_000));
                w.parts = (h.start..=last)
                    .map(|kg| {
                        let mut key = kg.to_le_bytes().to_vec();
                        fit_key(&mut key, kg, h.mp);
                        let body = encode_body(&[Block { sid, count: None, records: vec![Record::new(model::PUT, &key, b"", b"", b"v")] }]);
                        Part::Section(Section::new(kg, body))
                    })
                    .collect();
            }
        }
        "footer.index" => {
            let n = w.sections().count().max(1);
            let edit = match rng.below(4) {
                0 => IndexEdit::Drop(rng.index(n)),
                1 => IndexEdit::Dup(rng.index(n)),
                2 => IndexEdit::Swap(rng.index(n), rng.index(n)),
                _ => IndexEdit::Field { entry: rng.index(n), field: rng.below(4) as u8, value: rng.interesting(&[0, 1, 40, 100]) },
            };
            match &mut w.footer {
                Footer::Index(edits) => edits.push(edit),
                Footer::Raw(_) => w.footer = Footer::Index(vec![edit]),
            }
        }
        "footer.records" => w.lies.records = Some(rng.interesting(&[0, 1, 10, 100])),
        "footer.count" => w.lies.index_count = Some(rng.interesting(&[w.sections().count() as u64, 1 << 40])),
        "footer.len" => {
            let n = w.footer_body().len() as u64;
            w.lies.footer_len = Some(rng.interesting(&[n, n + 1, n.saturating_sub(1), 64 << 20, (64 << 20) + 1]) as u32);
        }
        "footer.tag" => w.lies.footer_tag = Some(if rng.chance(40) { TAG_SECTION } else { rng.u64() as u8 }),
        "footer.raw" => {
            let mut b = w.footer_body();
            raw(&mut b, rng);
            w.footer = Footer::Raw(b);
        }
        "footer.sum" => w.lies.footer_sum = Some(rng.u64()),
        "trailer.offset" => {
            let (bytes, _) = w.seal();
            let at = (bytes.len() - 24 - w.extra.len()) as u64;
            let foot = at - 8 - 5 - w.footer_body().len() as u64;
            w.lies.footer_offset = Some(rng.interesting(&[foot, at]));
        }
        "trailer.file_sum" => w.lies.file_sum = Some(rng.u64()),
        "trailer.magic" => {
            w.end_magic = END_MAGIC;
            let i = rng.index(8);
            w.end_magic[i] ^= 1 << rng.below(8);
        }
        "trailer.extra" => w.extra.extend(if rng.chance(50) { vec![0] } else { rng.bytes(64) }),
        "preamble.magic" => {
            w.magic = MAGIC;
            let i = rng.index(8);
            w.magic[i] = w.magic[i].wrapping_add(1 + rng.below(255) as u8);
        }
        "preamble.version" => w.version = rng.interesting(&[1, 2, 3]) as u16,
        "preamble.flags" => w.flags = rng.interesting(&[1]).max(1) as u16,
        "preamble.header_len" => {
            let n = w.header.len() as u64;
            w.lies.header_len = Some(rng.interesting(&[n, n + 1, n.saturating_sub(1), 64 << 20, (64 << 20) + 1]) as u32);
        }
        "preamble.header_sum" => w.lies.header_sum = Some(rng.u64()),
        other => unreachable!("unknown mutation {other}"),
    }
    links
}

/// Edits the decoded header, if it decodes.
fn header(w: &mut Wire, f: impl FnOnce(&mut Header)) {
    if let Some(mut h) = Header::decode(&w.header) {
        f(&mut h);
        w.header = h.encode();
    }
}

pub fn header_of(w: &Wire) -> Option<Header> {
    Header::decode(&w.header)
}

/// What a body mutation may need to know.
#[derive(Debug)]
pub struct Ctx {
    pub kg: u32,
    pub mp: u32,
    pub sids: Vec<u64>,
}

fn pick_section<'a>(w: &'a mut Wire, rng: &mut Rng) -> Option<&'a mut Section> {
    let n = w.sections().count();
    if n == 0 {
        return None;
    }
    w.sections_mut().nth(rng.index(n))
}

/// Edits the decoded blocks of a random section, if its body decodes.
fn body(w: &mut Wire, rng: &mut Rng, f: impl FnOnce(&mut Vec<Block>, &Ctx, &mut Rng)) {
    let h = header_of(w);
    let Some(s) = pick_section(w, rng) else { return };
    let Some(mut blocks) = decode_body(&s.body) else { return };
    let ctx = Ctx {
        kg: s.kg,
        mp: h.as_ref().map_or(1, |h| h.mp),
        sids: h.as_ref().map_or_else(Vec::new, |h| h.states.iter().map(|s| s.sid).collect()),
    };
    f(&mut blocks, &ctx, rng);
    s.body = encode_body(&blocks);
}

/// Edits a random record of a random block.
fn record(w: &mut Wire, rng: &mut Rng, f: impl FnOnce(&mut Record, &Ctx, &mut Rng)) {
    body(w, rng, |blocks, ctx, rng| {
        let Some(b) = pick_mut(rng, blocks) else { return };
        if let Some(r) = pick_mut(rng, &mut b.records) {
            f(r, ctx, rng);
        }
    });
}

fn pick_mut<'a, T>(rng: &mut Rng, v: &'a mut [T]) -> Option<&'a mut T> {
    if v.is_empty() {
        None
    } else {
        let i = rng.index(v.len());
        Some(&mut v[i])
    }
}

/// Drops, duplicates, swaps or splits elements.
fn shuffle<T: Clone>(v: &mut Vec<T>, rng: &mut Rng, split: impl FnOnce(&mut T, &mut Rng) -> T) {
    if v.is_empty() {
        return;
    }
    let i = rng.index(v.len());
    match rng.below(4) {
        0 => drop(v.remove(i)),
        1 => v.insert(i, v[i].clone()),
        2 => {
            let j = rng.index(v.len());
            v.swap(i, j);
        }
        _ => {
            let rest = split(&mut v[i], rng);
            v.insert(i + 1, rest);
        }
    }
}

/// Another TTL field: none, a valid configuration, one with a field out of
/// its domain, or another version.
fn ttl_field(rng: &mut Rng, was: &model::Ttl) -> model::Ttl {
    use model::Ttl;
    match rng.below(8) {
        0 if was.is_some() => Ttl::None,
        0..=2 => Ttl::V1 { ms: rng.interesting(&[1, 100, u64::MAX]), update: rng.below(2) as u8, visibility: rng.below(2) as u8, cleanup: [0, 1, 3, 4, 5, 7][rng.index(6)], size: 1 + rng.below(10) },
        3 => Ttl::V1 { ms: 0, update: 0, visibility: 0, cleanup: 0, size: 0 },
        4 => Ttl::V1 { ms: 5, update: rng.interesting(&[2]) as u8, visibility: rng.interesting(&[2]) as u8, cleanup: 0, size: 0 },
        5 => Ttl::V1 { ms: 5, update: 0, visibility: 0, cleanup: *rng.pick(&[1u8, 2, 8, 0x80]), size: rng.interesting(&[0, 1 << 20, (1 << 20) + 1, 1 << 40]) },
        _ => Ttl::Raw(vec![2 + rng.below(254) as u8]),
    }
}

fn name_for(rng: &mut Rng, h: &Header) -> Vec<u8> {
    match rng.below(6) {
        0 if !h.states.is_empty() => rng.pick(&h.states).name.clone(),
        1 => Vec::new(),
        2 => vec![b'n'; 1024 + rng.index(2)],
        3 => vec![0xff, 0xfe],
        _ => format!("s{}", rng.below(1000)).into_bytes(),
    }
}

fn codec(rng: &mut Rng) -> Vec<u8> {
    match rng.below(5) {
        0 => Vec::new(),
        1 => vec![b'c'; 256 + rng.index(2)],
        2 => vec![0xc3, 0x28],
        _ => rng.pick(&[&b"number"[..], b"string", b"bytes", b"key", b"cbor"]).to_vec(),
    }
}

/// Byte-level damage inside one part.
pub fn raw(b: &mut Vec<u8>, rng: &mut Rng) {
    let n = b.len();
    match rng.below(7) {
        0 if n > 0 => {
            let i = rng.index(n);
            b[i] ^= 1 << rng.below(8);
        }
        1 if n > 0 => {
            let i = rng.index(n);
            b[i] = *rng.pick(&[0, 1, 0x7f, 0x80, 0xff, 5, 6]);
        }
        2 => {
            let i = rng.index(n + 1);
            let ins = rng.bytes(8);
            b.splice(i..i, ins);
        }
        3 if n > 0 => {
            let i = rng.index(n);
            let j = (i + 1 + rng.index(8)).min(n);
            b.drain(i..j);
        }
        4 if n > 0 => {
            let i = rng.index(n);
            let j = (i + 1 + rng.index(32)).min(n);
            let dup = b[i..j].to_vec();
            b.splice(j..j, dup);
        }
        5 if n >= 4 => {
            let i = rng.index(n - 3);
            let v = rng.interesting(&[0, 1]) as u32;
            b[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        _ => b.truncate(rng.index(n + 1)),
    }
}

/// Sorts sections by key group, as a writer orders them.
fn sort_sections(w: &mut Wire) {
    w.parts.sort_by_key(|p| match p {
        Part::Section(s) => s.kg,
        Part::Raw(_) => u32::MAX,
    });
}

/// Moves a section to another key group, often with its keys made to fit.
fn section_kg(w: &mut Wire, rng: &mut Rng) {
    let h = header_of(w);
    let mp = h.as_ref().map_or(1, |h| h.mp);
    let near = h.as_ref().map_or_else(Vec::new, |h| vec![u64::from(h.start), u64::from(h.end), u64::from(h.mp)]);
    let rekey = rng.chance(60);
    let Some(s) = pick_section(w, rng) else { return };
    s.kg = if rng.chance(50) { (rng.below(u64::from(mp.max(1)))) as u32 } else { rng.interesting(&near) as u32 };
    if rekey {
        if let Some(mut blocks) = decode_body(&s.body) {
            for r in blocks.iter_mut().flat_map(|b| b.records.iter_mut()) {
                fit_key(&mut r.key, s.kg, mp);
            }
            s.body = encode_body(&blocks);
        }
    }
    if rng.chance(60) {
        sort_sections(w);
    }
}

/// After a change of max parallelism or range: every record goes to the
/// section of its key's group, as a writer would place it; records outside
/// the range are mostly dropped.
fn redistribute(w: &mut Wire, rng: &mut Rng) {
    let Some(h) = header_of(w) else { return };
    let keep_outside = rng.chance(15);
    let mut by_kg: std::collections::BTreeMap<u32, Vec<Block>> = Default::default();
    let mut raw_parts = Vec::new();
    for p in std::mem::take(&mut w.parts) {
        let blocks = match &p {
            Part::Section(s) => decode_body(&s.body),
            Part::Raw(_) => None,
        };
        let Some(blocks) = blocks else {
            raw_parts.push(p);
            continue;
        };
        for b in blocks {
            for r in b.records {
                let kg = key_group(&r.key, h.mp);
                if !keep_outside && (kg < h.start || kg > h.end) {
                    continue;
                }
                let into = by_kg.entry(kg).or_default();
                match into.iter_mut().find(|x| x.sid == b.sid) {
                    Some(x) => x.records.push(r),
                    None => into.push(Block { sid: b.sid, count: None, records: vec![r] }),
                }
            }
        }
    }
    w.parts = by_kg.into_iter().map(|(kg, blocks)| Part::Section(Section::new(kg, encode_body(&blocks)))).collect();
    w.parts.extend(raw_parts);
}

/// Adds well-formed records that fit their section and their state's kind:
/// overwrites, new keys, maps that outgrow the inline form, and every kind
/// of tombstone, so that restore gets past the checks and builds.
fn synth(w: &mut Wire, rng: &mut Rng) {
    let Some(h) = header_of(w) else { return };
    if h.states.is_empty() || h.mp == 0 || h.start > h.end {
        return;
    }
    let state = rng.pick(&h.states).clone();
    let kg = if w.sections().count() > 0 && rng.chance(70) {
        let n = w.sections().count();
        w.sections().nth(rng.index(n)).map_or(h.start, |s| s.kg)
    } else {
        h.start + rng.below(u64::from(h.end - h.start) + 1) as u32
    };
    let existing: Vec<Record> = w
        .sections()
        .filter(|s| s.kg == kg)
        .filter_map(|s| decode_body(&s.body))
        .flatten()
        .flat_map(|b| b.records)
        .collect();
    let mut key = if !existing.is_empty() && rng.chance(50) { rng.pick(&existing).key.clone() } else { rng.bytes(16) };
    fit_key(&mut key, kg, h.mp);
    let ns: &[u8] = if rng.chance(20) { b"w1" } else { b"" };
    let tombstones = h.is_incremental() || rng.chance(30);
    let mut records = Vec::new();
    if state.kind == 2 {
        match rng.below(if tombstones { 5 } else { 2 }) {
            0 => {
                // Outgrows the inline form: more than 16 entries.
                for i in 0..(17 + rng.below(8)) {
                    records.push(Record::new(model::MAP_PUT, &key, ns, format!("u{i}").as_bytes(), &rng.bytes(40)));
                }
            }
            1 => records.push(Record::new(model::MAP_PUT, &key, ns, &rng.bytes(6), &rng.bytes(2200))),
            2 => records.push(Record::new(model::MAP_DELETE, &key, ns, b"u1", b"")),
            3 => records.push(Record::new(model::MAP_CLEAR, &key, ns, b"", b"")),
            _ => {
                records.push(Record::new(model::MAP_CLEAR, &key, ns, b"", b""));
                records.push(Record::new(model::MAP_PUT, &key, ns, b"u1", b"again"));
            }
        }
    } else if tombstones && rng.chance(40) {
        records.push(Record::new(model::DELETE, &key, ns, b"", b""));
    } else {
        let v = if rng.chance(10) { vec![1u8; 2100] } else { rng.bytes(30) };
        records.push(Record::new(model::PUT, &key, ns, b"", &v));
    }
    let section = w.sections_mut().find(|s| s.kg == kg);
    match section {
        Some(s) => {
            let Some(mut blocks) = decode_body(&s.body) else { return };
            match blocks.iter_mut().find(|b| b.sid == state.sid) {
                Some(b) => {
                    let at = rng.index(b.records.len() + 1);
                    b.records.splice(at..at, records);
                }
                None => blocks.push(Block { sid: state.sid, count: None, records }),
            }
            s.body = encode_body(&blocks);
        }
        None => {
            let body = encode_body(&[Block { sid: state.sid, count: None, records }]);
            w.parts.push(Part::Section(Section::new(kg, body)));
            sort_sections(w);
        }
    }
}
