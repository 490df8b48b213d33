#!/bin/bash
# `make bench`: measure minirunc, runc and crun side by side and write BENCHMARKS.md.
#
# Environment:
#   RUNTIMES   runtimes to measure, in table order (default "minirunc runc crun")
#   MINIRUNC   the minirunc binary (default <repo>/target/x86_64-unknown-linux-gnu/release/minirunc)
#   BENCH_QUICK=1  few iterations, for trying the harness (the file says so)
#   COMMIT_COMPRESS_FLAGS  how to ask minirunc commit for gzip (default "--compress gzip")
#   DEBIAN_MIRROR  mirror for debootstrap (default: the first Debian archive in apt's sources)
#   BENCH_OUTPUT   the report to write (default <repo>/BENCHMARKS.md)
#
# Two passes: on the host as it is (hybrid cgroups here), then in a private mount namespace with
# /sys/fs/cgroup/unified unmounted, because Debian's crun 1.8 refuses the hybrid layout.
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "$0")/.." && pwd)
export BENCH_DIR=${BENCH_DIR:-$repo/build/bench}
export MINIRUNC=${MINIRUNC:-$repo/target/x86_64-unknown-linux-gnu/release/minirunc}
export RUNTIMES=${RUNTIMES:-minirunc runc crun}
export COMMIT_COMPRESS_FLAGS=${COMMIT_COMPRESS_FLAGS:---compress gzip}
export FLOOR=$BENCH_DIR/floor
output=${BENCH_OUTPUT:-$repo/BENCHMARKS.md}
unified=/sys/fs/cgroup/unified
started=$(date +%s)
export BENCH_LOAD_START # other work on the machine shows in the numbers: the report states the load
BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

die() {
    echo "bench: $*" >&2
    exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root (containers, mounts, cgroups)"

# Debian packages the harness needs, installed only when their command is missing.
install_missing() {
    local pkgs=() pair
    for pair in hyperfine:hyperfine time:/usr/bin/time crun:crun runc:runc debootstrap:debootstrap \
        gcc:gcc busybox-static:/bin/busybox util-linux:unshare containerd:containerd; do
        command -v "${pair#*:}" >/dev/null || pkgs+=("${pair%%:*}")
    done
    [ ${#pkgs[@]} = 0 ] && return
    echo "bench: installing ${pkgs[*]}" >&2
    apt-get install -y -qq "${pkgs[@]}" >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq "${pkgs[@]}" >/dev/null; } ||
        die "apt-get install ${pkgs[*]} failed"
}

# make_bundle DIR ROOTFS ARGS...: a config from `runc spec`, adjusted: the given args, no terminal,
# an absolute root path. Cgroups stay on (runc spec's device rules; default cgroupsPath).
make_bundle() {
    local dir=$1 rootfs=$2 args
    shift 2
    args=$(printf '"%s", ' "$@")
    mkdir -p "$dir"
    rm -f "$dir/config.json"
    (cd "$dir" && runc spec)
    sed -i -e 's/"terminal": true/"terminal": false/' \
        -e "s#\"path\": \"rootfs\"#\"path\": \"$rootfs\"#" "$dir/config.json"
    # runc spec's args are ["sh"] on three lines; replace them with ours.
    awk -v args="${args%, }" '
        /"args": \[/ { print; getline; sub(/"sh"/, args); print; next } { print }' \
        "$dir/config.json" >"$dir/config.json.new"
    mv "$dir/config.json.new" "$dir/config.json"
    grep -q "\"path\": \"$rootfs\"" "$dir/config.json" || die "could not adjust $dir/config.json"
}

debian_mirror() {
    [ -n "${DEBIAN_MIRROR:-}" ] && { echo "$DEBIAN_MIRROR"; return; }
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ { print $2 } /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break } }' |
        grep -E '/debian/?$' | head -n1 || true
}

# The Debian minbase tree for commit, cached; on failure a .skip file says why.
debian_tree() {
    local tree=$BENCH_DIR/debian-minbase mirror suite
    [ -d "$tree" ] && return
    rm -f "$tree.skip"
    mirror=$(debian_mirror)
    suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    if [ -z "$mirror" ]; then
        echo "no Debian mirror found in apt's sources (set DEBIAN_MIRROR)" >"$tree.skip"
        return
    fi
    echo "bench: debootstrap --variant=minbase $suite from $mirror (cached in $tree)" >&2
    rm -rf "$tree.tmp"
    if timeout 600 debootstrap --variant=minbase "$suite" "$tree.tmp" "$mirror" >"$BENCH_DIR/debootstrap.log" 2>&1; then
        mv "$tree.tmp" "$tree"
    else
        echo "debootstrap from $mirror failed: $(tail -n1 "$BENCH_DIR/debootstrap.log")" >"$tree.skip"
        rm -rf "$tree.tmp"
    fi
}

prepare() {
    mkdir -p "$BENCH_DIR"
    gcc -O2 -Wall -o "$FLOOR" "$repo/bench/floor.c"
    sh "$repo/scripts/mkrootfs.sh" "$BENCH_DIR/rootfs"
    make_bundle "$BENCH_DIR/bundle-true" "$BENCH_DIR/rootfs" /bin/true
    make_bundle "$BENCH_DIR/bundle-sleep" "$BENCH_DIR/rootfs" sleep 3600
    # The pre-mounted variant needs its own tree: measure.sh bind-mounts it onto itself.
    if [ ! -d "$BENCH_DIR/bundle-premounted/rootfs" ]; then
        mkdir -p "$BENCH_DIR/bundle-premounted"
        cp -a "$BENCH_DIR/rootfs" "$BENCH_DIR/bundle-premounted/rootfs"
    fi
    make_bundle "$BENCH_DIR/bundle-premounted" "$BENCH_DIR/bundle-premounted/rootfs" /bin/true
    debian_tree
    make_bundle "$BENCH_DIR/bundle-debian" "$BENCH_DIR/debian-minbase" sleep 3600
}

install_missing
prepare

host=$BENCH_DIR/results-host.tsv
hidden=$BENCH_DIR/results-v1.tsv
: >"$host"
: >"$hidden"
MODE=host OUT=$host WITH_COMMIT=1 bash "$repo/bench/measure.sh"
if mountpoint -q "$unified"; then
    # unshare -m makes the new namespace's mounts private: the host keeps its cgroup2 mount. crun,
    # seeing no cgroup2 there, writes cgroup.procs files into plain directories under $unified; an
    # empty private tmpfs over it catches them, so they vanish with the namespace.
    MODE=v1 OUT=$hidden unshare -m bash -c 'umount "$1" && mount -t tmpfs -o size=16m,mode=755 bench-unified "$1" &&
        exec bash "$2"' sh "$unified" "$repo/bench/measure.sh"
else
    printf 'N\t*\t*\tno cgroup2 mount at %s: the host table is the only one\n' "$unified" >"$hidden"
fi

# containerd's shims, on the host as it is: Go runc shim (runc, minirunc) and minirunc's own.
shims=$BENCH_DIR/results-shims.txt
MINIRUNC=$MINIRUNC bash "$repo/bench/shim-memory.sh" >"$shims" 2>"$BENCH_DIR/shim-memory.log" ||
    echo "bench/shim-memory.sh failed: $(tail -n1 "$BENCH_DIR/shim-memory.log")" >>"$shims"

BENCH_SECONDS=$(($(date +%s) - started)) bash "$repo/bench/report.sh" "$host" "$hidden" "$shims" >"$output.new"
mv "$output.new" "$output"
echo "bench: wrote $output in $(($(date +%s) - started)) s" >&2
