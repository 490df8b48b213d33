#!/bin/bash
# minirunc's own containerd shim: a private containerd 1.6 (own config, sockets, root and state
# under a temp dir, as integration/containerd/run.sh) runs containers with
# `ctr run --runtime io.containerd.minirunc.v1`, which execs containerd-shim-minirunc-v1 from
# containerd's PATH: the directory of RUNTIME, where `cargo build --release` puts both binaries.
# Usage (as root): RUNTIME=/abs/path/to/target/release/minirunc integration/shim/run.sh
# Leaves nothing behind: no shim process, mount, cgroup, runtime state or shim socket.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$top/integration/lib/common.sh"
# shellcheck source=../lib/ctr.sh
. "$top/integration/lib/ctr.sh"
# shellcheck source=../../scripts/lib/cannot-run.sh
. "$top/scripts/lib/cannot-run.sh"

RUNTIME=${RUNTIME:-$top/target/release/minirunc}
require_runtime shim
SHIM_BIN=$(dirname "$RUNTIME")/containerd-shim-minirunc-v1
[ -x "$SHIM_BIN" ] || cannot_run "shim suite: no containerd-shim-minirunc-v1 next to $RUNTIME (build with cargo build --release)"

ensure_packages containerd:containerd ctr:containerd
images=$("$top/integration/lib/image.sh") || { echo "image build failed" >&2; exit 2; }

# Short paths: unix socket paths are limited to 108 bytes.
SUITE_DIR=$(mktemp -d /tmp/mrt-shim.XXXXXX)
# minirunc's data root (copy-on-write layers) is the suite's own: containerd's environment
# reaches the shim and, through it, the runtime.
export MINIRUNC_DATA_ROOT=$SUITE_DIR/data RUNTIME_DATA_ROOT=$SUITE_DIR/data
NS=mrt-shim$$   # private containerd namespace and cgroup parent; "mrt-" is the leak-check marker
# The shim's runtime root when containerd sends no options: <this>/<namespace>.
STATE_PARENT=/run/containerd/minirunc
RUNTIME_STATE=$STATE_PARENT/$NS
FIFO_DIR=$SUITE_DIR/fifo
SOCK=$SUITE_DIR/containerd.sock
IMG=localhost/minirunc-busybox:latest
CTRD_PID=""
mkdir -p "$FIFO_DIR"
# Shim sockets go to /run/containerd/s/ and the runtime's state under /run/containerd/minirunc/:
# directories this suite creates there, it removes again (only when empty).
created_host_dirs=""
for d in "$STATE_PARENT" /run/containerd/s /run/containerd; do
    [ -e "$d" ] || created_host_dirs="$created_host_dirs $d"
done

# ctr run with minirunc's shim; the ids are logged for the leftover checks.
run_() {
    local a
    for a in "$@"; do case $a in "$NS"-*) echo "$a" >>"$SUITE_DIR/ids" ;; esac; done
    ctr_ run --runtime io.containerd.minirunc.v1 --fifo-dir "$FIFO_DIR" "$@"
}
# Live shim processes of container ID (one line each).
shims_of() { # ID
    live_processes "containerd-shim-minirunc-v1" | grep -e "-namespace $NS -id $1 " || true
}

# Shim sockets live in /run/containerd/s/, named by sha256(<containerd address>/<ns>/<id>).
shim_socket() { # ID
    printf '%s' "$SOCK/$NS/$1" | sha256sum | sed 's|^\([0-9a-f]*\).*|/run/containerd/s/\1|'
}

IDS=""
suite_ids() {
    [ ! -e "$SUITE_DIR/ids" ] || IDS=$(sort -u "$SUITE_DIR/ids")
    echo "$IDS"
}

cleanup() {
    trap - EXIT INT TERM
    local pid id cg d
    stop_scenario
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        after_failure >/dev/null 2>&1
        ctr_ image rm "$IMG" >/dev/null 2>&1
        kill "$CTRD_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$CTRD_PID" 2>/dev/null
        wait "$CTRD_PID" 2>/dev/null
    fi
    wait_processes_gone "$SUITE_DIR" "/$NS/"
    for pid in $(live_processes "$SUITE_DIR" "/$NS/" | cut -d' ' -f1); do
        kill -9 "$pid" 2>/dev/null
    done
    for id in $(suite_ids); do rm -f "$(shim_socket "$id")"; done
    unmount_under "$SUITE_DIR"
    for cg in $(cgroups_named "$NS"); do
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rm -rf "${RUNTIME_STATE:?}"
    suite_ids >/dev/null
    rm -rf "$SUITE_DIR"
    for d in $created_host_dirs; do rmdir "$d" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- scenarios -------------------------------------------------------------------------------

t_run_output_exit() {
    local out rc=0
    out=$(run_ --rm "$IMG" "$NS-run" sh -c 'echo hello from the container; echo to stderr >&2; exit 7' \
        2>"$SUITE_DIR/stderr") || rc=$?
    want_eq "$out" "hello from the container" "stdout"
    want_eq "$(cat "$SUITE_DIR/stderr")" "to stderr" "stderr"
    want_eq "$rc" 7 "exit code"
    out=$(run_ --rm "$IMG" "$NS-run0" true)
    want_eq "$out" "" "output of true"
    want_eq "$(shims_of "$NS-run")" "" "shim of the removed task"
}

t_stdin() {
    local out
    out=$(printf 'line one\nline two\n' | run_ --rm "$IMG" "$NS-stdin" sh -c 'cat; echo "eof seen"')
    want_eq "$out" "line one
line two
eof seen" "stdin read to its end"
}

# The shim's task events, as containerd forwards them: create, start, exit (with the status),
# delete, in this order.
t_events() {
    local id=$NS-events log=$SUITE_DIR/events pid topics
    ctr --address "$SOCK" --namespace "$NS" events >"$log" 2>&1 &
    pid=$!
    sleep 0.5
    run_ --rm "$IMG" "$id" sh -c 'exit 3' || true
    for _ in $(seq 50); do grep -q "/tasks/delete.*$id" "$log" && break; sleep 0.1; done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    topics=$(grep -F "\"$id\"" "$log" | grep -o ' /tasks/[a-z-]* ' | tr -d ' ' | tr '\n' ' ')
    want_eq "$topics" "/tasks/create /tasks/start /tasks/exit /tasks/delete " "task events of $id"
    want_contains "$(grep /tasks/exit "$log")" '"exit_status":3' "exit event"
}

t_detached_kill() {
    local id=$NS-kill dir=$SUITE_DIR/kill
    mkdir -p "$dir"
    # A shell init that exits 42 on SIGTERM (as PID 1 it has no default action for it); it tells
    # the host through a bind mount when its trap is set.
    run_ -d --mount "type=bind,src=$dir,dst=/host,options=rbind:rw" "$IMG" "$id" \
        sh -c 'trap "exit 42" TERM; touch /host/ready; while :; do sleep 1; done'
    for _ in $(seq 200); do [ -e "$dir/ready" ] && break; sleep 0.1; done
    want_eq "$(task_field "$id" 3)" RUNNING "task status"
    want_eq "$(shims_of "$id" | wc -l)" 1 "shim processes of the task"
    ctr_ task kill -s SIGTERM "$id"
    wait_status "$id" STOPPED
    want_eq "$(task_exit "$id")" 42 "exit status after SIGTERM"
    ctr_ container rm "$id"
    want_eq "$(shims_of "$id")" "" "shim after delete"
}

t_task_ls_ps() {
    local id=$NS-ps pid pids
    run_ -d "$IMG" "$id" sh -c 'sleep 300 & wait'
    pid=$(task_field "$id" 2)
    want_match "$pid" '^[1-9][0-9]*$' "task pid in ctr task ls"
    want_eq "$(task_field "$id" 3)" RUNNING "task status"
    for _ in $(seq 50); do [ "$(ctr_ task ps "$id" 2>/dev/null | tail -n +2 | wc -l)" -ge 2 ] && break; sleep 0.1; done
    pids=$(ctr_ task ps "$id" | awk 'NR > 1 { print $1 }' | sort -n | tr '\n' ' ')
    want_contains " $pids" " $pid " "ctr task ps (init pid)"
    want_eq "$(echo "$pids" | wc -w)" 2 "number of processes in ctr task ps ($pids)"
    # The shim reaps its container: the init's parent is the shim.
    want_contains "$(tr '\0' ' ' <"/proc/$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status")/cmdline")" \
        containerd-shim-minirunc-v1 "the init's parent"
    ctr_ task kill -a -s SIGKILL "$id"
    wait_status "$id" STOPPED
    want_eq "$(task_exit "$id")" 137 "exit status after SIGKILL"
    ctr_ container rm "$id"
}

t_exec() {
    local id=$NS-exec out rc=0
    run_ -d "$IMG" "$id" sleep 300
    out=$(cexec_ --exec-id e1 "$id" sh -c 'echo in-exec; ps -o comm | grep -c sleep; exit 4') || rc=$?
    want_eq "$out" "in-exec
1" "exec output (and sees the container's sleep)"
    want_eq "$rc" 4 "exec exit code"
    out=$(cexec_ --exec-id e2 --cwd /tmp "$id" sh -c 'pwd')
    want_eq "$out" /tmp "exec cwd"
    ctr_ task kill -s SIGKILL "$id"
    wait_status "$id" STOPPED
    ctr_ task delete "$id" >/dev/null 2>&1 || true
    ctr_ container rm "$id"
}

t_terminal() {
    local out rc=0 id=$NS-tty
    echo "$id" >>"$SUITE_DIR/ids"
    out=$(in_pty "ctr --address $SOCK --namespace $NS run --rm -t --runtime io.containerd.minirunc.v1 \
        --fifo-dir $FIFO_DIR $IMG $id sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exit 5'") || rc=$?
    want_match "$out" '^/dev/pts/[0-9]+' "tty output"
    want_contains "$out" stdio-is-a-tty "terminal test"
    want_eq "$rc" 5 "exit code through the terminal"
    run_ -d "$IMG" "$id-exec" sleep 300
    rc=0
    out=$(in_pty "ctr --address $SOCK --namespace $NS task exec -t --fifo-dir $FIFO_DIR --exec-id e1 \
        $id-exec sh -c 'tty; exit 6'") || rc=$?
    want_match "$out" '/dev/pts/[0-9]+' "exec -t output"
    want_eq "$rc" 6 "exec -t exit code"
    ctr_ task kill -s SIGKILL "$id-exec"
    wait_status "$id-exec" STOPPED
    ctr_ task delete "$id-exec" >/dev/null 2>&1 || true
    ctr_ container rm "$id-exec"
}

t_pause_resume() {
    local id=$NS-pause pid
    run_ -d "$IMG" "$id" sleep 300
    pid=$(task_field "$id" 2)
    ctr_ task pause "$id"
    want_eq "$(task_field "$id" 3)" PAUSED "status after pause"
    want_eq "$(host_freezer_state "$pid")" FROZEN "host freezer state"
    ctr_ task resume "$id"
    want_eq "$(task_field "$id" 3)" RUNNING "status after resume"
    want_eq "$(host_freezer_state "$pid")" THAWED "host freezer state after resume"
    ctr_ task kill -s SIGKILL "$id"
    wait_status "$id" STOPPED
    ctr_ task delete "$id" >/dev/null 2>&1 || true
    ctr_ container rm "$id"
}

# containerd restarts while a task runs: the shim outlives it, containerd reconnects and finds
# the task running, and the task's exit event reaches the new containerd. The new daemon's pid
# goes to $SUITE_DIR/containerd.pid for the suite (this scenario runs in a subshell).
t_containerd_restart() {
    local id=$NS-restart log=$SUITE_DIR/events-restart pid
    run_ -d "$IMG" "$id" sleep 300
    kill "$CTRD_PID"
    for _ in $(seq 100); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
    want_eq "$(shims_of "$id" | wc -l)" 1 "shims of $id while containerd is down"
    start_containerd "$here/config.toml" "$(dirname "$SHIM_BIN")"
    echo "$CTRD_PID" >"$SUITE_DIR/containerd.pid"
    want_eq "$(task_field "$id" 3)" RUNNING "task status after containerd's restart"
    ctr --address "$SOCK" --namespace "$NS" events >"$log" 2>&1 &
    pid=$!
    sleep 0.5
    ctr_ task kill -s SIGKILL "$id"
    for _ in $(seq 50); do grep -q "/tasks/exit.*$id" "$log" && break; sleep 0.1; done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    want_contains "$(grep "/tasks/exit" "$log")" '"exit_status":137' "exit event after the restart"
    want_eq "$(task_exit "$id")" 137 "exit status"
    ctr_ container rm "$id"
}

# A shim that dies: containerd runs the binary's `delete` command, which removes the container
# (its processes, state and rootfs mount) and reports it stopped.
t_shim_killed() {
    local id=$NS-lost pid shim
    run_ -d "$IMG" "$id" sleep 300
    pid=$(task_field "$id" 2)
    shim=$(shims_of "$id" | cut -d' ' -f1)
    kill -9 "$shim"
    for _ in $(seq 100); do ctr_ task ls -q | grep -qx "$id" || break; sleep 0.1; done
    want_eq "$(ctr_ task ls -q | grep -cx "$id" || true)" 0 "tasks named $id after its shim died"
    want_eq "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null | grep -v Z)" "" \
        "the container's init, alive"
    want_eq "$(mounts_under "$id")" "" "mounts of $id"
    [ ! -e "$RUNTIME_STATE/$id" ] || { echo "runtime state left: $RUNTIME_STATE/$id"; return 1; }
    [ ! -e "$(shim_socket "$id")" ] || { echo "the dead shim's socket is left"; return 1; }
    ctr_ container rm "$id"
}

t_not_supported() {
    local out rc=0
    out=$(ctr_ task checkpoint "$NS-none" 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || { echo "checkpoint of a missing task succeeded"; return 1; }
    run_ -d "$IMG" "$NS-ckpt" sleep 300
    out=$(ctr_ task checkpoint "$NS-ckpt" 2>&1) || rc=$?
    want_contains "$out" "checkpoint is not implemented by minirunc" "checkpoint error"
    ctr_ task kill -s SIGKILL "$NS-ckpt"
    wait_status "$NS-ckpt" STOPPED
    ctr_ task delete "$NS-ckpt" >/dev/null 2>&1 || true
    ctr_ container rm "$NS-ckpt"
}

# ---- main --------------------------------------------------------------------------------------

echo "shim suite: $SHIM_BIN with runtime $RUNTIME, dir $SUITE_DIR, namespace $NS"
start_containerd "$here/config.toml" "$(dirname "$SHIM_BIN")"
ctr_ image import "$images/busybox.oci.tar" >/dev/null || { echo "ctr image import failed" >&2; exit 2; }

scenario "run: output and exit code" t_run_output_exit
scenario "run: stdin to its end" t_stdin
scenario "events: create, start, exit, delete" t_events
scenario "run -d, task kill, exit status, delete" t_detached_kill
scenario "task ls/ps, kill --all, the shim is the parent" t_task_ls_ps
scenario "task exec" t_exec
scenario "run -t and exec -t: terminals" t_terminal
scenario "task pause/resume" t_pause_resume
scenario "10 containers at once" t_ten_at_once
scenario "failing start leaves nothing" t_failing_start
scenario "containerd restarts: the task keeps running, its exit is reported" t_containerd_restart
[ ! -e "$SUITE_DIR/containerd.pid" ] || CTRD_PID=$(cat "$SUITE_DIR/containerd.pid")
scenario "a killed shim: containerd's delete command cleans up" t_shim_killed
scenario "checkpoint: not implemented, said clearly" t_not_supported

# ---- leftover check ---------------------------------------------------------------------------
leftover() {
    local what id
    what=$(live_processes "$SUITE_DIR" "/$NS/" | awk -v d="$CTRD_PID" '$1 != d')
    [ -z "$what" ] || { echo "processes left:"; echo "$what"; }
    what=$(mounts_under "$SUITE_DIR")
    [ -z "$what" ] || { echo "mounts left:"; echo "$what"; }
    what=$(for cg in $(cgroups_named "$NS"); do find "$cg" -mindepth 1 -type d; done)
    [ -z "$what" ] || { echo "container cgroups left:"; echo "$what"; }
    what=$(find "$RUNTIME_STATE" -mindepth 1 2>/dev/null
        for id in $(suite_ids); do data_root_entries "$id"; done)
    [ -z "$what" ] || { echo "runtime state left:"; echo "$what"; }
    what=$(for id in $(suite_ids); do [ ! -e "$(shim_socket "$id")" ] || shim_socket "$id"; done)
    [ -z "$what" ] || { echo "shim sockets left:"; echo "$what"; }
    [ -n "$CTRD_PID" ] || return 0
    what=$(ctr_ task ls -q; ctr_ container ls -q)
    [ -z "$what" ] || { echo "tasks or containers left:"; echo "$what"; }
}
finish_suite shim
