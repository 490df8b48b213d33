#!/bin/sh
# Bounded fuzzing of the two parsers of untrusted input (config.json and the command line) with
# cargo-fuzz, starting from the saved seeds in fuzz/corpus. A crash fails the run; its input is
# in fuzz/artifacts/ and becomes a case in tests/bad-input.
set -eu
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "SKIP: fuzzing needs a nightly Rust toolchain (cargo +nightly is not available here)"
    exit 0
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --quiet --locked cargo-fuzz
for target in config cli; do
    echo "fuzz: $target for ${seconds}s"
    log=fuzz/$target.log
    if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
        tail -n 30 "$log"
        echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    tail -n 1 "$log"
done
