#!/bin/bash
# containerd's shims side by side on a private containerd 1.6: the Go runc shim with runc and with
# minirunc behind it, and containerd-shim-minirunc-v1. For each, the mean RSS and PSS of its shims with N
# (default 10) detached `sleep` containers, one shim each (from /proc/PID/smaps_rollup; PSS shares
# the text pages among the shims, so it is the fair per-container figure), the same with N pods of
# 3 containers (one CRI sandbox-id annotation per pod, one shim per pod), and the median wall
# time of N `ctr run --rm ... true`.
# Usage (as root): MINIRUNC=/abs/target/x86_64-unknown-linux-gnu/release/minirunc [N=10] bench/shim-memory.sh
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=integration/lib/common.sh
. "$top/integration/lib/common.sh"
# shellcheck source=integration/lib/ctr.sh
. "$top/integration/lib/ctr.sh"

RUNTIME=${MINIRUNC:-$top/target/x86_64-unknown-linux-gnu/release/minirunc}
N=${N:-10}
SHIM_DIR=$(dirname "$RUNTIME")
[ -x "$SHIM_DIR/containerd-shim-minirunc-v1" ] || { echo "no containerd-shim-minirunc-v1 next to $RUNTIME" >&2; exit 2; }
command -v runc >/dev/null || { echo "no runc on PATH (the Go shim's baseline)" >&2; exit 2; }
images=$("$top/integration/lib/image.sh") || exit 2
SUITE_DIR=$(mktemp -d /tmp/mrt-shimmem.XXXXXX)
export MINIRUNC_DATA_ROOT=$SUITE_DIR/data
NS=mrt-shimmem$$
SOCK=$SUITE_DIR/containerd.sock   # read by lib/ctr.sh
FIFO_DIR=$SUITE_DIR/fifo
IMG=localhost/minirunc-busybox:latest
CTRD_PID=""
# The shim's runtime root is /run/containerd/minirunc/<namespace>: removed after, with its parent
# if this script made it.
state_parent=/run/containerd/minirunc
[ -e "$state_parent" ] && made_parent="" || made_parent=$state_parent

cleanup() {
    local id
    for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task rm -f "$id" >/dev/null 2>&1; done
    for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container rm "$id" >/dev/null 2>&1; done
    ctr_ image rm "$IMG" >/dev/null 2>&1
    [ -z "$CTRD_PID" ] || { kill "$CTRD_PID"; wait "$CTRD_PID"; } 2>/dev/null
    wait_processes_gone "$SUITE_DIR" "/$NS/"
    unmount_under "$SUITE_DIR"
    for cg in $(cgroups_named "$NS"); do find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null; done
    rm -rf "${state_parent:?}/$NS" "$SUITE_DIR"
    [ -z "$made_parent" ] || rmdir "$made_parent" 2>/dev/null
}
trap cleanup EXIT

# Mean RSS and PSS (kB) of the shims serving this namespace's containers NAME-1..N (or, with
# PER=pod, the pods' shims, named after their first containers NAME-1-1..NAME-N-1).
measure() { # LABEL NAME [PER]
    local id pid rss=0 pss=0 threads=0 per=${3:-container} suffix=""
    [ "$per" = container ] || suffix=-1
    for i in $(seq "$N"); do
        id=$NS-$2-$i$suffix
        pid=$(live_processes "$id" | awk -v id="$id" '/containerd-shim/ {
            for (f = 2; f < NF; f++) if ($f == "-id" && $(f + 1) == id) { print $1; exit } }')
        [ -n "$pid" ] || { echo "no shim for $id" >&2; return 1; }
        rss=$((rss + $(awk '/^Rss:/ { print $2 }' "/proc/$pid/smaps_rollup")))
        pss=$((pss + $(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")))
        threads=$((threads + $(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")))
    done
    printf '%-40s RSS %6d kB   PSS %6d kB   threads %d   (mean of %d shims, one per %s)\n' \
        "$1" $((rss / N)) $((pss / N)) $((threads / N)) "$N" "$per"
}

# Median wall time (ms) of N `ctr run --rm IMG ID true` with the given flags.
time_runs() { # LABEL NAME CTR-RUN-FLAGS...
    local label=$1 name=$2 i start
    shift 2
    for i in $(seq "$N"); do
        start=$(date +%s%N)
        ctr_ run --rm --fifo-dir "$FIFO_DIR" "$@" "$IMG" "$NS-$name-t$i" true || return 1
        echo $(( ($(date +%s%N) - start) / 1000000 ))
    done | sort -n | awk -v l="$label" '{ t[NR] = $1 } END {
        printf "%-40s ctr run --rm: median %d ms (of %d)\n", l, t[int((NR + 1) / 2)], NR }'
}

run_many() { # NAME CTR-RUN-FLAGS...
    local name=$1 i
    shift
    for i in $(seq "$N"); do
        ctr_ run -d --fifo-dir "$FIFO_DIR" "$@" "$IMG" "$NS-$name-$i" sleep 600 >/dev/null || return 1
    done
}

stop_many() { # NAME
    local i
    for i in $(seq "$N"); do ctr_ task rm -f "$NS-$1-$i" >/dev/null 2>&1; ctr_ container rm "$NS-$1-$i"; done
}

# N pods of 3 containers NAME-P-1..3: CRI's sandbox-id annotation groups a pod in one shim.
run_pods() { # NAME CTR-RUN-FLAGS...
    local name=$1 p c
    shift
    for p in $(seq "$N"); do
        for c in 1 2 3; do
            ctr_ run -d --fifo-dir "$FIFO_DIR" --annotation "io.kubernetes.cri.sandbox-id=$NS-$name-$p" \
                "$@" "$IMG" "$NS-$name-$p-$c" sleep 600 >/dev/null || return 1
        done
    done
}

stop_pods() { # NAME
    local p c
    for p in $(seq "$N"); do
        for c in 3 2 1; do
            ctr_ task rm -f "$NS-$1-$p-$c" >/dev/null 2>&1
            ctr_ container rm "$NS-$1-$p-$c"
        done
    done
}

mkdir -p "$FIFO_DIR"
start_containerd "$top/integration/shim/config.toml" "$SHIM_DIR"
ctr_ image import "$images/busybox.oci.tar" >/dev/null || exit 2
go_flags=(--runc-binary "$RUNTIME" --runc-root "$SUITE_DIR/runc-root")
runc_flags=(--runc-binary "$(command -v runc)" --runc-root "$SUITE_DIR/runc-root-runc")
time_runs "Go runc shim (containerd 1.6) + runc" runc "${runc_flags[@]}"
time_runs "Go runc shim (containerd 1.6) + minirunc" go "${go_flags[@]}"
time_runs "containerd-shim-minirunc-v1" mr --runtime io.containerd.minirunc.v1
run_many go "${go_flags[@]}" &&
    measure "Go runc shim (containerd 1.6) + minirunc" go
stop_many go
run_many mr --runtime io.containerd.minirunc.v1 &&
    measure "containerd-shim-minirunc-v1" mr
stop_many mr
run_pods gopod "${go_flags[@]}" &&
    measure "Go runc shim (containerd 1.6) + minirunc" gopod pod
stop_pods gopod
run_pods mrpod --runtime io.containerd.minirunc.v1 &&
    measure "containerd-shim-minirunc-v1" mrpod pod
stop_pods mrpod
