//! Bounded, deterministic fuzzing of the two parsers that take untrusted input: config.json
//! (parse + validate) and the command line. Seeds are the bad-input corpus and the default
//! config; mutations are byte flips, truncations, splices and JSON value swaps. The property:
//! no input makes either parser panic. This always runs, in seconds, with a fixed seed; the
//! coverage-guided cargo-fuzz targets in fuzz/ (scripts/fuzz.sh, nightly) search further.

use clap::Parser;
use minirunc::cli::Cli;
use std::path::Path;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: reproducible without a crate.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = vec![std::fs::read(root.join("src/commands/default-config.json")).unwrap()];
    for case in std::fs::read_dir(root.join("tests/bad-input"))
        .unwrap()
        .flatten()
    {
        for name in ["config.json", "patch.json"] {
            if let Ok(raw) = std::fs::read(case.path().join(name)) {
                seeds.push(raw);
            }
        }
    }
    seeds
}

const SWAPS: [&str; 10] = [
    "null",
    "-1",
    "0",
    "18446744073709551616",
    "\"\"",
    "[]",
    "{}",
    "true",
    "\"../..\"",
    "1e308",
];

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len());
        match rng.below(5) {
            0 if !v.is_empty() => v[at] ^= 1 << rng.below(8),
            1 => v.truncate(at),
            2 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let len = rng.below(64).min(other.len() - from.min(other.len()));
                v.splice(at..at, other[from..from + len].iter().copied());
            }
            3 => {
                // Replace the value after a ':' with one of the usual troublemakers.
                if let Some(colon) = v[at..].iter().position(|b| *b == b':').map(|p| p + at + 1) {
                    let end = v[colon..]
                        .iter()
                        .position(|b| matches!(b, b',' | b'}' | b']'))
                        .map_or(v.len(), |p| p + colon);
                    v.splice(colon..end, SWAPS[rng.below(SWAPS.len())].bytes());
                }
            }
            _ => v.insert(at.min(v.len()), rng.next() as u8),
        }
    }
    v
}

#[test]
fn config_parsing_and_validation_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x6d69_6e69_7275_6e63);
    let mut parsed = 0;
    for i in 0..6000 {
        let input = mutate(&mut rng, &seeds[i % seeds.len()], &seeds);
        if let Ok(spec) = minirunc::spec::parse(&input) {
            parsed += 1;
            let _ = minirunc::spec::validate(&spec, true);
        }
    }
    // The mutations must not be so wild that nothing reaches validate.
    assert!(parsed > 100, "only {parsed} mutated configs parsed");
}

#[test]
fn command_line_parsing_never_panics() {
    const WORDS: [&str; 28] = [
        "create",
        "start",
        "state",
        "kill",
        "delete",
        "run",
        "exec",
        "list",
        "spec",
        "ps",
        "pause",
        "resume",
        "update",
        "events",
        "features",
        "commit",
        "--root",
        "--bundle",
        "--all",
        "-f",
        "--format",
        "json",
        "--log-format=json",
        "--pid-file",
        "--preserve-fds",
        "-1",
        "--",
        "x/../y",
    ];
    let mut rng = Rng(0x636c_6970);
    for _ in 0..20000 {
        let mut args = vec!["minirunc".to_string()];
        for _ in 0..rng.below(7) {
            let mut w = WORDS[rng.below(WORDS.len())].to_string();
            if rng.below(8) == 0 {
                w.push(char::from(rng.below(128) as u8));
            }
            args.push(w);
        }
        let _ = Cli::try_parse_from(&args);
    }
}
