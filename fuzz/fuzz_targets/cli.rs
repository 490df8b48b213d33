//! The command line parser must reject any argument vector with an error, never panic.
#![no_main]

use clap::Parser;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args = std::iter::once("minirunc").chain(text.split('\0'));
    let _ = minirunc::cli::Cli::try_parse_from(args);
});
