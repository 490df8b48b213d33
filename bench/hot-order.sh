#!/bin/bash
# `make hot-order`: rewrite link/hot.order, the functions minirunc runs on its hot path, which the
# linker lays out together at the start of .text (build.rs passes it to lld).
#
# Why: each page fault on the binary's code maps a 64 KiB window around it (fault-around), so
# code spread over 4 MB of .text makes most of it resident although a verb runs a few hundred
# KiB of it: peak RSS and page faults of every process of a lifecycle (bench/notes.md).
#
# How: bench/hot-trace.c single-steps the release binary (its symbols are kept: the release
# profile strips only debug info) and its forks through the verbs of the hot path: run, create,
# start, state, exec, list, kill, delete, on the host's cgroups and again with cgroup2 hidden. A
# function belongs to the hot path when one of its instructions ran. Names the linker no longer
# finds after a code change are skipped silently, so a stale list only costs memory: rerun this
# after large changes (BENCHMARKS.md's header says how much of the list the binary still has).
# Takes about ten minutes (every instruction traps).
#
# Needs root, gcc, and the rootfs of `make rootfs`.
set -euo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${MINIRUNC:-$repo/target/x86_64-unknown-linux-gnu/release/minirunc}
work=$(mktemp -d /tmp/minirunc-hot.XXXXXX)

die() {
    echo "hot-order: $*" >&2
    exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root (containers)"
[ -x "$repo/bundle-examples/rootfs/bin/busybox" ] || die "no rootfs: run make rootfs"
nm "$bin" >/dev/null 2>&1 || die "$bin has no symbol table: build it with make build"
cleanup() {
    local root
    for root in "$work"/state-*; do
        [ -d "$root" ] && "$bin" --root "$root" delete -f hot-sleep >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT
gcc -O2 -Wall -o "$work/hot-trace" "$repo/bench/hot-trace.c"

mkdir -p "$work/bundle" "$work/sleep" "$work/offsets"
(cd "$work/bundle" && "$bin" spec)
sed -i -e 's/"terminal": true/"terminal": false/' \
    -e "s#\"path\": \"rootfs\"#\"path\": \"$repo/bundle-examples/rootfs\"#" \
    -e 's#^\( *\)"sh"$#\1"/bin/true"#' "$work/bundle/config.json"
sed 's#"/bin/true"#"sleep", "3600"#' "$work/bundle/config.json" >"$work/sleep/config.json"
# The hot path as bench/measure.sh drives it; each verb's executed offsets go to its own file.
verbs() {
    local pass=$1 n=0
    traced() {
        n=$((n + 1))
        "$work/hot-trace" "$bin" "$bin" --root "$work/state-$pass" "$@" >"$work/offsets/$pass.$n" ||
            { echo "hot-order: $* failed" >&2; return 1; }
    }
    traced run --bundle "$work/bundle" hot-run
    traced create --bundle "$work/sleep" hot-sleep
    traced start hot-sleep
    traced state hot-sleep
    traced exec hot-sleep /bin/true
    traced list
    traced kill hot-sleep KILL
    until "$bin" --root "$work/state-$pass" state hot-sleep | grep -q '"stopped"'; do sleep 0.01; done
    traced delete hot-sleep
}
export -f verbs
export bin work
echo "hot-order: tracing the verbs (minutes)" >&2
# The two passes side by side: each keeps a core busy.
verbs host &
if mountpoint -q /sys/fs/cgroup/unified; then
    unshare -m bash -c 'umount /sys/fs/cgroup/unified && verbs v1' &
fi
for pass in $(jobs -p); do wait "$pass" || die "tracing failed"; done

# Functions (nm: address, size, name, in address order) that hold an executed offset; file
# offsets become addresses through the executable PT_LOAD.
read -r seg_off seg_vaddr < <(readelf -lW "$bin" | awk '$1 == "LOAD" && / R?W?E / { print $2, $3 }')
sort -u -n "$work"/offsets/* | awk -v d=$((seg_vaddr - seg_off)) '{ print $1 + d }' >"$work/ran"
nm --defined-only --numeric-sort --radix=d -S "$bin" | awk '$3 ~ /^[tTwW]$/ && $2 + 0 > 0' |
    awk -v ran="$work/ran" '
    BEGIN { more = (getline pc < ran) > 0 }
    {
        start = $1 + 0; end = start + $2
        while (more && pc + 0 < start) more = (getline pc < ran) > 0
        if (more && pc + 0 < end) print $4
    }' >"$work/order"
mkdir -p "$repo/link"
{
    echo "# The hot path's functions, in address order: written by bench/hot-order.sh on $(date -u +%F)"
    echo "# from $(git -C "$repo" describe --always --dirty); read by lld through build.rs."
    cat "$work/order"
} >"$repo/link/hot.order"
echo "hot-order: $(wc -l <"$work/order") functions on the hot path -> link/hot.order" >&2
