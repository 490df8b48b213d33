#!/bin/bash
# podman integration suite: podman 4.3 + conmon with private storage and configuration under a
# temp dir (integration/podman/containers.conf and storage.conf) drive the runtime under test
# (`podman --runtime $RUNTIME`, and once as the configured runtime "minirunc").
# Usage (as root): RUNTIME=/abs/path/to/runtime integration/podman/run.sh
# podman passes no --root to the runtime, so its state lives in the runtime's default root
# (RUNTIME_ROOT; default: from the runtime's --help, /run/runc for runc, /run/minirunc for minirunc).
# Leaves nothing behind: a trap removes containers, images, mounts, cgroups and the temp dir, then
# the suite checks that no mount, process, cgroup or runtime state remains.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$top/integration/lib/common.sh"

require_runtime podman
# The runtime's default state root, as its --help states it (runc: `(default: "/run/runc")`,
# minirunc: `[default: /run/minirunc]`), else /run/<basename>.
default_root() {
    "$RUNTIME" --help 2>/dev/null |
        sed -n 's/^ *--root[ =].*[[(]default: "\{0,1\}\([^]")]*\)"\{0,1\}[])].*/\1/p' | head -1
}
RUNTIME_ROOT=${RUNTIME_ROOT:-$(default_root)}
RUNTIME_ROOT=${RUNTIME_ROOT:-/run/$(basename "$RUNTIME")}

ensure_packages podman:podman conmon:conmon script:bsdutils
images=$("$top/integration/lib/image.sh") || { echo "image build failed" >&2; exit 2; }

SUITE_DIR=$(mktemp -d /tmp/mrt-pm.XXXXXX)
NS=mrt-pm$$    # container name prefix and cgroup parent; "mrt-" is the leak-check marker
IMG=localhost/minirunc-busybox:latest
# Host paths podman 4.3 creates whatever its configuration says (the blob info cache of `load`,
# the network run dir), deepest first: removed at the end if this suite created them. Only these
# files and then empty directories are removed, so a concurrent podman's data is never touched.
HOST_PATHS="/var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache
/var/lib/containers /run/containers/networks /run/containers"
created_host_paths=""
for d in $HOST_PATHS; do [ -e "$d" ] || created_host_paths="$created_host_paths $d"; done

for f in containers.conf storage.conf; do
    sed -e "s|@DIR@|$SUITE_DIR|g" -e "s|@RUNTIME@|$RUNTIME|g" "$here/$f" >"$SUITE_DIR/$f"
done
export CONTAINERS_CONF=$SUITE_DIR/containers.conf CONTAINERS_STORAGE_CONF=$SUITE_DIR/storage.conf

pm() { timeout "${PM_TIMEOUT:-120}" podman "$@"; }
PODMAN_CMD=podman
# podman run with the runtime under test, in the suite's cgroup parent.
RUN_FLAGS=(--cgroup-parent "/$NS")

# Remove every container of the private storage through podman.
after_failure() {
    # The runtime's kill may be what failed: end the containers' processes (not conmon) directly.
    kill_container_processes "/$NS/" "/$NS/conmon"
    PM_TIMEOUT=30 pm --runtime "$RUNTIME" rm -af -t 0 >/dev/null 2>&1
}

# Runtime state of this suite's containers: entries of the runtime root that name suite paths or
# container ids (from podman's event log), and entries of the runtime's data root naming them.
# The ids are kept in IDS once the suite dir is gone.
IDS=""
container_ids() {
    [ ! -e "$SUITE_DIR/events.log" ] ||
        IDS=$(grep -o '"ID":"[0-9a-f]*"' "$SUITE_DIR/events.log" | cut -d'"' -f4 | sort -u)
    echo "$IDS"
}
runtime_state_left() {
    local id
    [ ! -d "$RUNTIME_ROOT" ] || grep -rlF -- "$SUITE_DIR" "$RUNTIME_ROOT" 2>/dev/null
    for id in $(container_ids); do
        [ ! -e "$RUNTIME_ROOT/$id" ] || echo "$RUNTIME_ROOT/$id"
        data_root_entries "$id"
    done
}

cleanup() {
    trap - EXIT INT TERM
    local pid cg d
    stop_scenario
    after_failure
    pm rmi -af >/dev/null 2>&1
    # conmon runs podman's exit command after a container dies; it must not outlive the config.
    wait_processes_gone "$SUITE_DIR" "/$NS/"
    container_ids >/dev/null
    for pid in $(live_processes "$SUITE_DIR" "/$NS/" | cut -d' ' -f1); do kill -9 "$pid" 2>/dev/null; done
    unmount_under "$SUITE_DIR"
    for cg in $(cgroups_named "$NS"); do find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null; done
    rm -rf "$SUITE_DIR"
    for d in $created_host_paths; do
        if [ -d "$d" ]; then rmdir "$d" 2>/dev/null; else rm -f "$d"; fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scenarios.sh
. "$here/scenarios.sh"
host_dir() { mkdir -p "$1"; }

# ---- root-only scenarios ------------------------------------------------------------------------

t_pause_unpause() {
    local id=$NS-pause pid
    prun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    pid=$(inspect '{{.State.Pid}}' "$id")
    pm pause "$id" >/dev/null
    want_eq "$(inspect '{{.State.Status}}' "$id")" paused "status after pause"
    want_eq "$(host_freezer_state "$pid")" FROZEN "host freezer state"
    pm unpause "$id" >/dev/null
    want_eq "$(inspect '{{.State.Status}}' "$id")" running "status after unpause"
    want_eq "$(host_freezer_state "$pid")" THAWED "host freezer state after unpause"
    want_eq "$(pm exec "$id" echo alive)" alive "exec after unpause"
    pm rm -f -t 0 "$id" >/dev/null
}

t_memory() {
    local id=$NS-mem pid
    prun_ -d --name "$id" --memory 64m "$IMG" sleep 300 >/dev/null
    pid=$(inspect '{{.State.Pid}}' "$id")
    want_eq "$(host_memory_limit "$pid")" 67108864 "host-side memory limit"
    pm rm -f -t 0 "$id" >/dev/null
}

# ---- main --------------------------------------------------------------------------------------

echo "podman suite: runtime $RUNTIME (state in $RUNTIME_ROOT), dir $SUITE_DIR"
pm load -q -i "$images/busybox.oci.tar" >/dev/null || { echo "podman load failed" >&2; exit 2; }

scenario "run: output and exit code" t_run_output_exit
scenario "run: missing command 127, not executable 126" t_missing_command
scenario "run: env, cwd and user" t_env_cwd_user
scenario "run: read-only rootfs" t_read_only
scenario "run -v: bind volume" t_volume
scenario "run -t: terminal" t_terminal
scenario "run -d + exec + top + rm" t_detached_exec_top
scenario "stop: exit status" t_stop
scenario "pause/unpause" t_pause_unpause
scenario "--memory limit" t_memory
scenario "kill + rm" t_kill_rm
scenario "runtime from containers.conf" t_configured_runtime

# ---- leftover check ---------------------------------------------------------------------------
leftover() {
    local what
    what=$(live_processes "$SUITE_DIR" "/$NS/")
    [ -z "$what" ] || { echo "processes left:"; echo "$what"; }
    # The overlay driver keeps its home directory mounted (private) while storage is in use.
    what=$(mounts_under "$SUITE_DIR" | grep -vx "$SUITE_DIR/root/overlay")
    [ -z "$what" ] || { echo "mounts left:"; echo "$what"; }
    what=$(for cg in $(cgroups_named "$NS"); do find "$cg" -mindepth 1 -type d ! -path "$cg/conmon"; done)
    # shellcheck disable=SC2046 # one argument per id
    what=$(echo "$what"; cgroups_naming $(container_ids))
    what=$(printf '%s\n' "$what" | sed '/^$/d' | sort -u)
    [ -z "$what" ] || { echo "container cgroups left:"; echo "$what"; }
    what=$(runtime_state_left)
    [ -z "$what" ] || { echo "runtime state left:"; echo "$what"; }
    [ ! -e "$SUITE_DIR" ] || what=$(pm ps -a -q)
    [ -z "$what" ] || { echo "containers left:"; echo "$what"; }
}
wait_processes_gone "$SUITE_DIR" "/$NS/"
record "nothing of the containers left behind" "$(leftover)"
cleanup
record "suite cleanup complete" "$(leftover; cgroups_named "$NS";
    [ ! -e "$SUITE_DIR" ] || echo "suite dir left: $SUITE_DIR";
    for d in $created_host_paths; do [ ! -e "$d" ] || echo "host path left: $d"; done)"
summary podman
