//! Looking inside one checkpoint without restoring it: its header, its
//! states, and per key group and per state how many records and bytes it
//! holds, every part verified as it streams by (checksums, order, index,
//! trailer: the format's reader) and every record checked against the rules
//! a restore applies to it (a declared state, an op of that state's kind,
//! removals only in an incremental piece, its key in its section's key
//! group). For the `keystate` command line (inspect, verify, ls, diff, dump of
//! a lone incremental piece); optionally it lists the records it reads.
//!
//! The report is JSON text (the bindings hand it to JavaScript as is).

use crate::error::{Error, Result};
use crate::format::body::{self, BodyRecord};
use crate::format::read::{Decoder, Event};
use crate::format::{op, CheckpointKind, Header};
use crate::hash::{key_group_of_hash, murmur3_32};
use crate::room;
use crate::state::StateKind;
use crate::varint;

/// Records and bytes of one state in one section.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    records: u64,
    bytes: u64,
}

#[derive(Debug)]
struct Section {
    key_group: u32,
    /// File offset of the section's tag.
    offset: u64,
    /// Bytes of the whole section.
    bytes: u64,
    records: u64,
}

/// Reads one checkpoint, chunk by chunk.
#[derive(Debug)]
pub struct Inspector {
    decoder: Decoder,
    header: Option<Header>,
    /// Per header state, in header order.
    states: Vec<Counts>,
    sections: Vec<Section>,
    /// Records listed by the last `feed`, when asked for.
    listing: Option<Vec<u8>>,
}

/// Encoded length of a section body record (see `format::body`).
fn record_len(r: &BodyRecord<'_>) -> u64 {
    let h = (r.key.len() as u64) << 3 | u64::from(!r.ns.is_empty());
    let mut n = 1 + varint::len(h) + r.key.len() + r.ns.len() + r.uk.len() + r.value.len();
    if !r.ns.is_empty() {
        n += varint::len(r.ns.len() as u64);
    }
    match r.op {
        op::PUT => n += varint::len(r.value.len() as u64),
        op::MAP_PUT => n += varint::len(r.uk.len() as u64) + varint::len(r.value.len() as u64),
        op::MAP_DELETE => n += varint::len(r.uk.len() as u64),
        _ => {}
    }
    n as u64
}

/// Appends a length-prefixed field (the listing's layout).
fn field(out: &mut Vec<u8>, b: &[u8]) {
    varint::put(out, b.len() as u64);
    out.extend_from_slice(b);
}

impl Inspector {
    /// With `list_records`, each `feed` lists the records it read (see [`Inspector::records`]).
    pub fn new(list_records: bool) -> Self {
        Inspector { decoder: Decoder::new(), header: None, states: Vec::new(), sections: Vec::new(), listing: list_records.then(Vec::new) }
    }

    /// Feeds the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some(l) = self.listing.as_mut() {
            l.clear();
        }
        let Inspector { decoder, header, states, sections, listing } = self;
        let at = decoder.position();
        decoder.feed(chunk, &mut |ev| match ev {
            Event::Header(h) => {
                // Allocations that take input bytes grow fallibly: a
                // WebAssembly instance may be full (STORE_FULL, not a trap).
                room::reserve(states, h.states.len())?;
                states.resize(h.states.len(), Counts::default());
                *header = Some(h.clone());
                Ok(())
            }
            Event::Section { key_group, body } => {
                let h = header.as_ref().expect("the header precedes sections");
                let records = check_section(h, key_group, body, states, listing.as_mut())
                    .map_err(|e| in_section(e, key_group, at))?;
                room::reserve(sections, 1)?;
                sections.push(Section { key_group, offset: 0, bytes: body.len() as u64 + 17, records });
                Ok(())
            }
        })
    }

    /// The records the last `feed` read, when asked for at `new`: repeated
    /// `u8 op, varint state id, varint kl, key, varint nl, ns, varint ul, uk,
    /// varint vl, value` (state ids as the header numbers them).
    pub fn records(&self) -> &[u8] {
        self.listing.as_deref().unwrap_or(&[])
    }

    /// Bytes taken in so far.
    pub fn position(&self) -> u64 {
        self.decoder.position()
    }

    /// Ends the input: the checkpoint must be complete. Returns the report as JSON.
    pub fn finish(self) -> Result<String> {
        let Inspector { decoder, states, mut sections, .. } = self;
        let s = decoder.finish()?;
        for (sec, e) in sections.iter_mut().zip(&s.footer.sections) {
            sec.offset = e.offset;
            sec.bytes = e.len;
        }
        report(&s.header, &states, &sections, s.bytes, s.file_checksum, s.link())
    }
}

/// Names where a record broke a rule.
fn in_section(e: Error, kg: u32, at: u64) -> Error {
    match e {
        Error::Corrupt(m) => Error::Corrupt(format!("in the section of key group {kg} (after byte {at}): {m}")),
        other => other,
    }
}

/// Checks and counts the records of one section.
fn check_section(h: &Header, kg: u32, body: &[u8], states: &mut [Counts], mut listing: Option<&mut Vec<u8>>) -> Result<u64> {
    let incremental = h.kind == CheckpointKind::Incremental;
    body::for_each_record(body, h.version, |r| {
        let i = h.states.iter().position(|(sid, _)| *sid == r.state).ok_or_else(|| Error::Corrupt(format!("a record of state id {}, which the header does not declare", r.state)))?;
        let d = &h.states[i].1;
        let is_map = d.kind == StateKind::Map;
        let ok = match r.op {
            op::PUT => !is_map,
            op::DELETE => !is_map && incremental,
            op::MAP_PUT => is_map,
            op::MAP_DELETE | op::MAP_CLEAR => is_map && incremental,
            _ => false,
        };
        if !ok {
            let what = if incremental { "" } else { " in a full checkpoint" };
            return Err(Error::Corrupt(format!("record op {} does not apply to the {} state '{}'{what}", r.op, d.kind.name(), d.name)));
        }
        if key_group_of_hash(murmur3_32(r.key, 0), h.max_parallelism) != kg {
            return Err(Error::Corrupt(format!("a record of state '{}' belongs to another key group", d.name)));
        }
        states[i].records += 1;
        states[i].bytes += record_len(&r);
        if let Some(out) = listing.as_deref_mut() {
            // op, state id and four length-prefixed fields.
            room::reserve_bytes(out, 1 + 5 + 4 * 10 + r.key.len() + r.ns.len() + r.uk.len() + r.value.len())?;
            out.push(r.op);
            varint::put(out, u64::from(r.state));
            for f in [r.key, r.ns, r.uk, r.value] {
                field(out, f);
            }
        }
        Ok(())
    })
}

// ---- the report ---------------------------------------------------------------

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A state's TTL configuration as the TypeScript option reads it, or null.
fn ttl_json(o: &mut String, ttl: Option<&crate::ttl::TtlConfig>) {
    let Some(c) = ttl else {
        o.push_str("null");
        return;
    };
    let update = if c.renews_on_read() { "onReadAndWrite" } else { "onCreateAndWrite" };
    let visibility = match c.visibility {
        crate::ttl::TtlVisibility::NeverReturnExpired => "neverReturnExpired",
        crate::ttl::TtlVisibility::ReturnExpiredIfNotCleanedUp => "returnExpiredIfNotCleanedUp",
    };
    let incremental = c.incremental.map_or("false".to_string(), |n| format!("{{\"size\":{n},\"everyRecord\":{}}}", c.every_record));
    o.push_str(&format!(
        "{{\"ttlMs\":{},\"update\":\"{update}\",\"visibility\":\"{visibility}\",\"cleanup\":{{\"incremental\":{incremental},\"fullSnapshot\":{}}}}}",
        c.ttl_ms, c.full_snapshot
    ));
}

fn report(h: &Header, states: &[Counts], sections: &[Section], bytes: u64, checksum: u64, link: u64) -> Result<String> {
    // Reserved whole and fallibly (the pushes below stay within it): a state
    // line is at most 400 bytes besides its strings (its TTL field included), each char of which
    // escapes to at most 6; a section line at most 100.
    let strings: usize = h.states.iter().map(|(_, d)| d.name.len() + d.value_codec.len() + d.user_key_codec.len()).sum();
    let need = 512 + h.states.len() * 400 + strings * 6 + sections.len() * 100;
    let mut o = String::new();
    room::fallibly(|| o.try_reserve(need)).map_err(|_| room::oom(need))?;
    o.push_str(&format!("{{\"version\":{},\"kind\":\"{}\",\"id\":{},", h.version, h.kind.as_str(), h.id));
    if h.kind == CheckpointKind::Incremental {
        o.push_str(&format!("\"parentId\":{},\"parentLink\":\"{:016x}\",", h.parent_id, h.parent_link));
    } else {
        o.push_str("\"parentId\":null,\"parentLink\":null,");
    }
    o.push_str(&format!(
        "\"link\":\"{link:016x}\",\"checksum\":\"{checksum:016x}\",\"storeId\":\"{}\",\"maxParallelism\":{},\"keyGroups\":{{\"start\":{},\"end\":{}}},\"bytes\":{bytes},",
        hex(&h.store_id),
        h.max_parallelism,
        h.key_groups.start,
        h.key_groups.end
    ));
    o.push_str("\"states\":[");
    for (i, ((sid, d), c)) in h.states.iter().zip(states).enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str(&format!("{{\"id\":{sid},\"name\":"));
        json_str(&mut o, &d.name);
        o.push_str(&format!(",\"kind\":\"{}\",\"valueCodec\":", d.kind.name()));
        json_str(&mut o, &d.value_codec);
        o.push_str(",\"userKeyCodec\":");
        json_str(&mut o, &d.user_key_codec);
        o.push_str(",\"ttl\":");
        ttl_json(&mut o, d.ttl.as_ref());
        o.push_str(&format!(",\"records\":{},\"bytes\":{}}}", c.records, c.bytes));
    }
    o.push_str("],\"sections\":[");
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str(&format!("{{\"keyGroup\":{},\"offset\":{},\"bytes\":{},\"records\":{}}}", s.key_group, s.offset, s.bytes, s.records));
    }
    let records: u64 = sections.iter().map(|s| s.records).sum();
    o.push_str(&format!("],\"records\":{records}}}"));
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{export_all, Key, StateDescriptor, Store, StoreConfig};

    fn checkpoint() -> Vec<u8> {
        let mut s = Store::new(StoreConfig::new(8, None, [3; 16]).unwrap());
        let v = s.register_state(StateDescriptor::new("count \"quoted\"", StateKind::Value, "number", "").unwrap()).unwrap();
        let m = s.register_state(StateDescriptor::new("prefs", StateKind::Map, "boolean", "string").unwrap()).unwrap();
        for i in 0..100u32 {
            s.put(v, Key::Bytes(format!("k{i}").as_bytes()), b"", &[i as u8]).unwrap();
        }
        s.map_put(m, Key::Bytes(b"ada"), b"", b"dark", &[1]).unwrap();
        let cp = s.checkpoint(None).unwrap();
        export_all(&mut s, cp.id).unwrap()
    }

    #[test]
    fn reports_states_sections_and_records_in_any_chunking() {
        let bytes = checkpoint();
        for chunk in [1, 7, 100, bytes.len()] {
            let mut ins = Inspector::new(true);
            let mut listed = 0;
            for c in bytes.chunks(chunk) {
                ins.feed(c).unwrap();
                let mut p = 0;
                let r = ins.records();
                while p < r.len() {
                    p += 1;
                    varint::get(r, &mut p).unwrap();
                    for _ in 0..4 {
                        let n = varint::get(r, &mut p).unwrap() as usize;
                        p += n;
                    }
                    listed += 1;
                }
            }
            let json = ins.finish().unwrap();
            assert_eq!(listed, 101, "chunks of {chunk}");
            assert!(json.contains("\"name\":\"count \\\"quoted\\\"\",\"kind\":\"value\""), "{json}");
            assert!(json.contains("\"records\":100,"), "{json}");
            assert!(json.contains(&format!("\"bytes\":{},", bytes.len())), "{json}");
            assert!(json.ends_with("\"records\":101}"), "{json}");
        }
    }

    #[test]
    fn names_the_section_and_rule_a_record_breaks() {
        // A truncated checkpoint and a flipped byte fail as the reader says.
        let bytes = checkpoint();
        let mut ins = Inspector::new(false);
        ins.feed(&bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(ins.finish().unwrap_err().code(), "TRUNCATED");
        let mut bad = bytes.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x40;
        let mut ins = Inspector::new(false);
        let r = ins.feed(&bad).and_then(|_| ins.finish().map(drop));
        assert!(r.is_err());
    }
}
