//! The long mode: `cargo run --profile fuzz -p keystate-fuzz -- [options]`.
//!
//!   --inputs N     cases to run (default 1000000)
//!   --seconds S    stop after S seconds
//!   --seed S       run seed (default 1); case n of seed s is always the same input
//!   --first N      first case number (default 0)
//!   --threads T    threads (default 1)
//!   --case N       run case N only, print it, and write its pieces to --save
//!   --save DIR     where --case writes its pieces (default target/fuzz-case)
//!
//! Exit code 1 when any case broke a rule or panicked.

use std::time::Duration;

use keystate_fuzz::{run, run_case, Config, Corpus};

#[global_allocator]
static ALLOC: keystate_fuzz::alloc::Counting = keystate_fuzz::alloc::Counting;

fn main() {
    let mut cfg = Config { inputs: 1_000_000, ..Config::default() };
    let mut case = None;
    let mut save = String::from("target/fuzz-case");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        let num = |v: String| v.parse::<u64>().unwrap_or_else(|_| panic!("not a number: {v}"));
        match a.as_str() {
            "--inputs" => cfg.inputs = num(val()),
            "--seconds" => cfg.time_limit = Some(Duration::from_secs(num(val()))),
            "--seed" => cfg.seed = num(val()),
            "--first" => cfg.first = num(val()),
            "--threads" => cfg.threads = num(val()) as usize,
            "--case" => case = Some(num(val())),
            "--save" => save = val(),
            other => panic!("unknown option {other} (see the top of crates/keystate-fuzz/src/main.rs)"),
        }
    }
    let corpus = Corpus::build();
    if let Some(n) = case {
        let (c, r) = run_case(&corpus, cfg.seed, n);
        println!("case {n} of seed {}: op {:?}, mutations {:?}", cfg.seed, c.op, c.mutations);
        std::fs::create_dir_all(&save).expect("create --save directory");
        for (ci, chain) in c.chains.iter().enumerate() {
            for (pi, piece) in chain.iter().enumerate() {
                let path = format!("{save}/case{n}-chain{ci}-piece{pi}.ks");
                std::fs::write(&path, piece).expect("write piece");
                println!("  {path}: {} bytes", piece.len());
            }
        }
        match r {
            Ok(o) => println!("outcome: {o:?}"),
            Err(e) => {
                println!("FAILURE: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    println!("keystate-fuzz: seed {}, cases {}..{}, {} thread(s), seed corpus {} bytes", cfg.seed, cfg.first, cfg.first + cfg.inputs, cfg.threads, corpus.bytes());
    let stats = run(&corpus, &cfg);
    print!("{}", stats.report());
    if !stats.failures.is_empty() {
        std::process::exit(1);
    }
}
