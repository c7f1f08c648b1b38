//! libFuzzer's input is the tape of decisions of keystate-fuzz's case
//! builder (which seed chain, which mutations, where, which values), so
//! coverage guidance steers the same structure-aware mutations; the oracle
//! is keystate-fuzz's. A broken rule or a panic is a crash.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static CORPUS: OnceLock<keystate_fuzz::Corpus> = OnceLock::new();

fuzz_target!(|tape: &[u8]| {
    let corpus = CORPUS.get_or_init(keystate_fuzz::Corpus::build);
    let (case, r) = keystate_fuzz::run_tape(corpus, tape);
    if let Err(e) = r {
        panic!("{e} (mutations {:?}, op {:?})", case.mutations, case.op);
    }
});
