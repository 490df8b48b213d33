#!/bin/bash
# make test: every suite in order, each recorded as passed, failed or skipped with its reason, and
# one summary line per suite at the end. A failed suite does not stop the ones after it (the
# summary shows them all); a failed setup, build or rootfs does. Exits 1 if any suite failed.
# Suites that cannot run on this host skip outside CI and fail under CI=true (scripts/lib/cannot-run.sh).
set -u
cd "$(dirname "$0")/.."
export RUNTIME=${RUNTIME:-$PWD/target/x86_64-unknown-linux-gnu/release/minirunc}
work=$(mktemp -d /tmp/test-summary.XXXXXX)
trap 'rm -rf "$work"' EXIT
summary=""
failed=0

step() { # NAME COMMAND...
    local name=$1 start rc took result
    shift
    printf '\n=== %s\n' "$name"
    start=$(date +%s)
    MINIRUNC_SKIP_FILE=$work/skip "$@"
    rc=$?
    took="$(($(date +%s) - start)) s"
    if [ "$rc" -ne 0 ]; then
        result="FAILED (exit $rc, $took)"
        failed=1
    elif [ -s "$work/skip" ]; then
        result="SKIPPED: $(cat "$work/skip")"
    else
        result="passed ($took)"
    fi
    rm -f "$work/skip"
    summary="$summary$(printf '%-16s %s' "$name" "$result")"$'\n'
    return "$rc"
}

print_summary() {
    printf '\n=== summary%s\n%s' "${CI:+ (CI=$CI)}" "$summary"
    if [ "$failed" = 0 ]; then echo "make test: all suites passed"; else echo "make test: FAILED"; fi
}

if ! { step setup make -s setup && step build make -s build && step rootfs make -s rootfs; }; then
    print_summary
    exit 1
fi
# What the host's default state and data roots hold before the suites, so the leak check judges
# only what appeared during the run.
integration/leak-check.sh --record "$work/leak-baseline"
step unit make -s test-unit
step lint make -s lint
step install make -s test-install
step deb make -s test-deb
step fuzz make -s fuzz
step harness make -s test-harness
step bundles make -s test-bundles
step compare make -s test-compare
step compare-rootless make -s test-compare-rootless
for suite in containerd shim podman; do
    step "$suite" "integration/$suite/run.sh"
done
step podman-rootless integration/podman/rootless.sh
for suite in docker cgroupv2-vm; do
    step "$suite" "integration/$suite/run.sh"
done
step leak-check integration/leak-check.sh --since "$work/leak-baseline"
print_summary
exit "$failed"
