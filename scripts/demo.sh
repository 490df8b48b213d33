#!/bin/sh
# Walk bundle-examples/service through create, state, start, state, kill, state, delete, echoing each
# command. RUNTIME selects the runtime binary (default:
# target/x86_64-unknown-linux-gnu/release/minirunc; e.g. /usr/sbin/runc).
set -eu
cd "$(dirname "$0")/.."
runtime=${RUNTIME:-$PWD/target/x86_64-unknown-linux-gnu/release/minirunc}
name=$(basename "$runtime")
bundle=$PWD/bundle-examples/service
id=mrt-demo-$$

if [ ! -x "$runtime" ]; then
    echo "demo: $runtime not found: run make build (or set RUNTIME)" >&2
    exit 1
fi

step() {
    printf '\n$ %s %s\n' "$name" "$*"
    "$runtime" "$@"
}

status() {
    "$runtime" state "$id" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'
}

# Never leave the demo container behind, whatever step fails.
cleanup() {
    if "$runtime" state "$id" >/dev/null 2>&1; then
        "$runtime" delete --force "$id" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

echo "Bundle: $bundle (a shell loop that traps SIGTERM)"
echo "Its stdout is this terminal: the container inherits the stdio of create."
step create --bundle "$bundle" "$id"
step state "$id"
step start "$id"
sleep 0.5
step state "$id"
step kill "$id" TERM
n=0
while [ "$(status)" != stopped ] && [ $n -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
step state "$id"
step delete "$id"
if ! step state "$id"; then
    echo "(state fails after delete: the container is gone)"
fi
