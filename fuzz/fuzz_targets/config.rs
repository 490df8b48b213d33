//! config.json parsing and validation must reject any input with an error, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = minirunc::spec::parse(data) {
        let _ = minirunc::spec::validate(&spec, true);
    }
});
