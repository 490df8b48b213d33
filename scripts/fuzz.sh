#!/bin/sh
# Bounded fuzzing of the two parsers of untrusted input (config.json and the command line) with
# cargo-fuzz, starting from the saved seeds in fuzz/corpus. A crash fails the run; its input is
# in fuzz/artifacts/ and becomes a case in tests/bad-input.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/cannot-run.sh
seconds=${FUZZ_SECONDS:-30}
# cargo-fuzz needs nightly-only flags (-Zsanitizer). Without a nightly toolchain the stable one
# takes them under RUSTC_BOOTSTRAP=1, the switch Rust's own build uses; the fuzzing is the same.
if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=+nightly
else
    toolchain=""
    export RUSTC_BOOTSTRAP=1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install --quiet --locked cargo-fuzz >fuzz/install.log 2>&1 ||
        cannot_run "cargo install cargo-fuzz failed: $(tail -n 3 fuzz/install.log | tr '\n' ' ')"
fi
for target in config cli; do
    echo "fuzz: $target for ${seconds}s"
    log=fuzz/$target.log
    # shellcheck disable=SC2086 # an empty $toolchain is no argument
    if ! cargo $toolchain fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
        tail -n 30 "$log"
        echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    tail -n 1 "$log"
done
