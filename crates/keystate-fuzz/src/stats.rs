//! Counting what the cases hit: every outcome by error code and message
//! (numbers and names blanked), mapped onto the checks docs/FORMAT.md
//! promises in "Reading" and "Chains", so a run shows which checks it
//! reached and how often.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use keystate_core::Error;

use crate::oracle::Outcome;

/// A check the format promises: its name, the code it refuses with, and
/// fragments of the messages that come from it.
#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub code: &'static str,
    pub messages: &'static [&'static str],
}

/// The checks of docs/FORMAT.md, "Reading" and "Chains" (a run must reach
/// each of them thousands of times), then the other checks behind them.
pub const CHECKS: &[Check] = &[
    Check { name: "wrong magic", code: "BAD_MAGIC", messages: &[""] },
    Check { name: "another version", code: "UNSUPPORTED_VERSION", messages: &[""] },
    Check { name: "checksum mismatch", code: "CHECKSUM_MISMATCH", messages: &[""] },
    Check { name: "input ends early", code: "TRUNCATED", messages: &[""] },
    Check { name: "unknown tag", code: "CORRUPT", messages: &["unknown part tag"] },
    Check { name: "unknown kind", code: "CORRUPT", messages: &["unknown checkpoint kind", "unknown state kind"] },
    Check { name: "unknown op", code: "CORRUPT", messages: &["unknown record op"] },
    Check { name: "unknown flags", code: "CORRUPT", messages: &["preamble flags", "record flags", "TTL flags"] },
    Check { name: "sections out of order", code: "CORRUPT", messages: &["out of order"] },
    Check { name: "section outside the range", code: "CORRUPT", messages: &["outside the checkpoint's range"] },
    Check { name: "index does not match", code: "CORRUPT", messages: &["section index does not match"] },
    Check { name: "record counts do not match", code: "CORRUPT", messages: &["footer counts", "block claims", "empty block", "a RUN of"] },
    Check { name: "record in the wrong key group", code: "CORRUPT", messages: &["belongs to another"] },
    Check { name: "bytes after the trailer", code: "CORRUPT", messages: &["bytes after the end"] },
    Check { name: "op of another state kind", code: "CORRUPT", messages: &["does not apply to a"] },
    Check { name: "deletion in a full checkpoint", code: "CORRUPT", messages: &["in a full checkpoint"] },
    Check { name: "checkpoint id out of range", code: "CORRUPT", messages: &["checkpoint id"] },
    Check { name: "more states than a store holds", code: "CORRUPT", messages: &["states (a store holds"] },
    Check { name: "broken chain", code: "BROKEN_CHAIN", messages: &[""] },
    Check { name: "incompatible state", code: "INCOMPATIBLE_STATE", messages: &[""] },
    Check { name: "header field", code: "CORRUPT", messages: &["key-group range", "appears twice", "state names", "codec ids", "user-key codec", "has no parent", "needs a parent", "state id", "header "] },
    Check { name: "footer field", code: "CORRUPT", messages: &["footer claims", "footer has", "footer ends", "footer of"] },
    Check { name: "trailer", code: "CORRUPT", messages: &["end magic", "wrong footer offset"] },
    Check { name: "length past the end", code: "CORRUPT", messages: &["points past the end", "section body ends"] },
    Check { name: "record of an unknown state", code: "CORRUPT", messages: &["record of unknown state"] },
    Check { name: "TTL field or stamped value", code: "CORRUPT", messages: &["TTL configuration", "state with TTL"] },
];

/// How many of [`CHECKS`] docs/FORMAT.md lists (in "Reading" and
/// "Chains"); a short run must reach each of them thousands of times.
pub const LISTED: usize = 20;

/// A broken rule or a panic, with what replays it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub case: u64,
    pub message: String,
    pub mutations: Vec<&'static str>,
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub cases: u64,
    pub input_bytes: u64,
    /// Outcome class ("ok restore", "CORRUPT: unknown record op #") -> cases.
    pub outcomes: BTreeMap<String, u64>,
    /// Mutation -> cases it took part in.
    pub mutations: BTreeMap<&'static str, u64>,
    pub failures: Vec<Failure>,
    pub elapsed: Duration,
    /// The slowest case to check: (time, case number, input bytes).
    pub slowest: (Duration, u64, usize),
}

/// An error's class: its code and its message with numbers and quoted
/// names blanked.
pub fn class(e: &Error) -> String {
    let mut out = format!("{}: ", e.code());
    let mut quoted = false;
    let mut last_digit = false;
    let mut prev = ' ';
    let mut hex = false;
    for c in e.to_string().chars() {
        // A quote after a space opens a name ("state 'prefs'"); others are
        // apostrophes ("the checkpoint's range").
        let opens = c == '\'' && !quoted && prev == ' ';
        prev = c;
        if opens || (quoted && c == '\'') {
            quoted = opens;
            if quoted {
                out.push_str("'…'");
            }
            continue;
        }
        if quoted {
            continue;
        }
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('#');
            }
            last_digit = true;
            continue;
        }
        if last_digit && c == 'x' {
            // A hex number: "#x" then its digits.
            hex = true;
            continue;
        }
        if hex && c.is_ascii_hexdigit() {
            continue;
        }
        hex = false;
        last_digit = false;
        out.push(c);
    }
    out
}

impl Stats {
    pub fn record(&mut self, outcome: &Outcome, mutations: &[&'static str], bytes: usize) {
        self.cases += 1;
        self.input_bytes += bytes as u64;
        let key = match outcome {
            Outcome::Refused(e) => class(e),
            Outcome::Restored { entries: 0 } => "ok: restored, empty".into(),
            Outcome::Restored { .. } => "ok: restored".into(),
            Outcome::Compacted { .. } => "ok: compacted".into(),
        };
        *self.outcomes.entry(key).or_default() += 1;
        for m in mutations {
            *self.mutations.entry(m).or_default() += 1;
        }
    }

    pub fn merge(&mut self, o: Stats) {
        self.cases += o.cases;
        self.input_bytes += o.input_bytes;
        for (k, v) in o.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        for (k, v) in o.mutations {
            *self.mutations.entry(k).or_default() += v;
        }
        self.failures.extend(o.failures);
        if o.slowest.0 > self.slowest.0 {
            self.slowest = o.slowest;
        }
    }

    /// Cases that ended in each check.
    pub fn hits(&self) -> Vec<(&'static str, u64)> {
        CHECKS
            .iter()
            .map(|c| {
                let n = self
                    .outcomes
                    .iter()
                    .filter(|(k, _)| k.starts_with(c.code) && k[c.code.len()..].starts_with(':') && c.messages.iter().any(|m| k.contains(m)))
                    .map(|(_, v)| v)
                    .sum();
                (c.name, n)
            })
            .collect()
    }

    /// Cases that ended in a store (or a compaction).
    pub fn accepted(&self) -> u64 {
        self.outcomes.iter().filter(|(k, _)| k.starts_with("ok:")).map(|(_, v)| v).sum()
    }

    pub fn report(&self) -> String {
        let mut s = String::new();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            s,
            "{} cases in {:.1} s ({:.0}/s), {:.1} MB of input; {} accepted; {} failures; slowest case {} ({} bytes) {:.1} ms",
            self.cases,
            secs,
            self.cases as f64 / secs,
            self.input_bytes as f64 / 1e6,
            self.accepted(),
            self.failures.len(),
            self.slowest.1,
            self.slowest.2,
            self.slowest.0.as_secs_f64() * 1e3
        );
        let _ = writeln!(s, "checks of docs/FORMAT.md (cases that ended in each):");
        for (i, (name, n)) in self.hits().into_iter().enumerate() {
            let mark = if i < LISTED { "" } else { " (not listed)" };
            let _ = writeln!(s, "  {n:>10}  {name}{mark}");
        }
        let _ = writeln!(s, "outcomes:");
        let mut by_count: Vec<_> = self.outcomes.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (k, v) in by_count {
            let _ = writeln!(s, "  {v:>10}  {k}");
        }
        for f in self.failures.iter().take(20) {
            let _ = writeln!(s, "FAILURE seed {} case {}: {} (mutations {:?})", f.seed, f.case, f.message, f.mutations);
        }
        s
    }
}
