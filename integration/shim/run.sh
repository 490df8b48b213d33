#!/bin/bash
# minirunc's own containerd shim: a private containerd 1.6 (own config, sockets, root and state
# under a temp dir, as integration/containerd/run.sh) runs containers with
# `ctr run --runtime io.containerd.minirunc.v1`, which execs containerd-shim-minirunc-v1 from
# containerd's PATH: the directory of RUNTIME, where `cargo build --release` puts both binaries.
# Usage (as root): RUNTIME=/abs/path/to/target/x86_64-unknown-linux-gnu/release/minirunc integration/shim/run.sh
# Leaves nothing behind: no shim process, mount, cgroup, runtime state or shim socket.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$top/integration/lib/common.sh"
# shellcheck source=../lib/ctr.sh
. "$top/integration/lib/ctr.sh"
# shellcheck source=../lib/cri.sh
. "$top/integration/lib/cri.sh"
# shellcheck source=../../scripts/lib/cannot-run.sh
. "$top/scripts/lib/cannot-run.sh"

RUNTIME=${RUNTIME:-$top/target/x86_64-unknown-linux-gnu/release/minirunc}
require_runtime shim
SHIM_BIN=$(dirname "$RUNTIME")/containerd-shim-minirunc-v1
[ -x "$SHIM_BIN" ] || cannot_run "shim suite: no containerd-shim-minirunc-v1 next to $RUNTIME (build with cargo build --release)"

ensure_packages containerd:containerd ctr:containerd jq:jq
PATH=/usr/lib/cni:$PATH ensure_packages macvlan:containernetworking-plugins host-local:containernetworking-plugins
images=$("$top/integration/lib/image.sh") || { echo "image build failed" >&2; exit 2; }
build_cri_client

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
# CRI's containers: containerd namespace k8s.io, the shim's runtime root in it.
CRI_STATE=$STATE_PARENT/k8s.io
IMG=localhost/minirunc-busybox:latest
CTRD_PID=""
mkdir -p "$FIFO_DIR" "$SUITE_DIR/cni/net.d"
# The CRI pod's network: a macvlan (bridge mode) on the host's uplink in the pod's namespace,
# with an address from a private range (no traffic is sent); it goes with the namespace.
uplink=$(ip -o route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
cat >"$SUITE_DIR/cni/net.d/10-mrt-pod.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "mrt-pod-net", "plugins": [{"type": "macvlan", "mode": "bridge",
  "master": "${uplink:-eth0}", "ipam": {"type": "host-local", "subnet": "10.254.77.0/24",
  "dataDir": "$SUITE_DIR/cni/ipam"}}]}
EOF
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

# CRI's pod and container ids (the pod first), as the client made them.
cri_ids() { [ ! -e "$SUITE_DIR/ids.k8s.io" ] || cat "$SUITE_DIR/ids.k8s.io"; }

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
        cri_cleanup >/dev/null 2>&1
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
    for id in $(cri_ids); do rm -f "$(NS=k8s.io shim_socket "$id")"; rm -rf "${CRI_STATE:?}/$id"; done
    unmount_under "$SUITE_DIR"
    for cg in $(cgroups_named "$NS"); do
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rm -rf "${RUNTIME_STATE:?}"
    rmdir "$CRI_STATE" 2>/dev/null
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

# binary:// log URIs: a logger program reads the container's stdout and stderr (fds 3 and 4),
# with the container's id and namespace in its environment and the URI's query as arguments;
# task delete returns once it has read the last of them.
t_binary_log() {
    local id=$NS-binlog dir=$SUITE_DIR/binlog
    mkdir -p "$dir"
    cat >"$dir/logger" <<'EOF'
#!/bin/sh
exec 5>&-
echo "$CONTAINER_NAMESPACE $CONTAINER_ID $*" >"$2/args"
cat <&3 >"$2/stdout" &
cat <&4 >"$2/stderr" &
wait
EOF
    chmod +x "$dir/logger"
    run_ -d --log-uri "binary://$dir/logger?dir=$dir" "$IMG" "$id" \
        sh -c 'echo to-stdout; echo to-stderr >&2; exit 5'
    wait_status "$id" STOPPED
    want_eq "$(task_exit "$id")" 5 "exit status"
    want_eq "$(cat "$dir/stdout")" to-stdout "stdout, as the logger read it"
    want_eq "$(cat "$dir/stderr")" to-stderr "stderr, as the logger read it"
    want_eq "$(cat "$dir/args")" "$NS $id dir $dir" "the logger's environment and arguments"
    ctr_ container rm "$id"
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
    # Output the container writes just before it exits, more than a FIFO holds, all arrives.
    echo "$id-big" >>"$SUITE_DIR/ids"
    out=$(in_pty "ctr --address $SOCK --namespace $NS run --rm -t --runtime io.containerd.minirunc.v1 \
        --fifo-dir $FIFO_DIR $IMG $id-big seq 1 30000" | tr -d '\r' | tail -n 1)
    want_eq "$out" 30000 "the last line of 30000 through the terminal"
    # What is typed reaches the container through its terminal.
    echo "$id-in" >>"$SUITE_DIR/ids"
    mkfifo "$SUITE_DIR/typed"
    timeout 10 sh -c 'sleep 1 && echo typed-line >"$1"' sh "$SUITE_DIR/typed" &
    out=$(timeout 60 script -qec "ctr --address $SOCK --namespace $NS run --rm -t \
        --runtime io.containerd.minirunc.v1 --fifo-dir $FIFO_DIR $IMG $id-in \
        sh -c 'read line; echo got-\$line'" /dev/null <>"$SUITE_DIR/typed")
    want_contains "$out" got-typed-line "a line typed on the terminal"
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

# `ctr task metrics`: cgroup v1 metrics of a running task, read from its cgroup by the shim.
t_metrics() {
    local id=$NS-metrics json limit=67108864
    run_ -d --memory-limit "$limit" "$IMG" "$id" sh -c 'sleep 300 & wait'
    for _ in $(seq 50); do [ "$(ctr_ task ps "$id" 2>/dev/null | tail -n +2 | wc -l)" -ge 2 ] && break; sleep 0.1; done
    json=$(ctr_ task metrics --format json "$id")
    want_eq "$(jq -r '.memory.usage.limit' <<<"$json")" "$limit" "memory limit"
    want_eq "$(jq -r '.memory.usage.usage > 0 and .memory.usage.usage < '"$limit" <<<"$json")" true \
        "memory usage above 0, below the limit ($(jq -c .memory.usage <<<"$json"))"
    want_eq "$(jq -r '.pids.current' <<<"$json")" 2 "pids.current (sh and sleep)"
    want_eq "$(jq -r '.cpu.usage.total > 0' <<<"$json")" true "cpu usage ($(jq -c .cpu.usage <<<"$json"))"
    # The table form names the cgroup v1 files.
    want_match "$(ctr_ task metrics "$id")" 'pids\.current +2' "ctr task metrics table"
    ctr_ task kill -s SIGKILL "$id"
    wait_status "$id" STOPPED
    ctr_ task delete "$id" >/dev/null 2>&1 || true
    ctr_ container rm "$id"
    # A task that is gone has no metrics.
    if ctr_ task metrics "$id" >/dev/null 2>&1; then echo "metrics of a deleted task"; return 1; fi
}

# A container that outgrows its memory limit is OOM-killed, and containerd hears of it.
t_oom() {
    local id=$NS-oom log=$SUITE_DIR/events-oom pid rc=0
    ctr --address "$SOCK" --namespace "$NS" events >"$log" 2>&1 &
    pid=$!
    sleep 0.5
    # dd's 64 MiB buffer, filled from /dev/zero, does not fit in 16 MiB.
    run_ --rm --memory-limit 16777216 "$IMG" "$id" dd if=/dev/zero of=/dev/null bs=64M count=1 \
        >/dev/null 2>&1 || rc=$?
    for _ in $(seq 50); do grep -q "/tasks/delete.*$id" "$log" && break; sleep 0.1; done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    want_eq "$rc" 137 "exit status of the OOM-killed dd"
    # One, not a second when the cgroup is removed (t_events: none without an OOM).
    want_eq "$(grep -F "\"$id\"" "$log" | grep -c ' /tasks/oom ')" 1 "oom events of $id"
}

# Containers of one pod (CRI's sandbox-id annotation) share one shim; it leaves with the last.
# The threads of shim PID once its request workers have ended (they do after 2 s idle).
idle_threads() { # PID
    for _ in $(seq 50); do
        grep -qx worker /proc/"$1"/task/*/comm 2>/dev/null || break
        sleep 0.1
    done
    ls /proc/"$1"/task | wc -l
}

t_pod_one_shim() {
    local sandbox=$NS-pod i shim pids threads
    echo "$sandbox" >>"$SUITE_DIR/ids"
    for i in 1 2 3; do
        run_ -d --annotation "io.kubernetes.cri.sandbox-id=$sandbox" "$IMG" "$NS-pod$i" sleep 300
        pids=$(live_processes containerd-shim-minirunc-v1 | grep -e "-namespace $NS " | cut -d' ' -f1)
        # No thread per container: the pod's shim idles with as many as it had for one.
        [ "$i" = 1 ] && threads=$(idle_threads "$pids")
    done
    want_eq "$(echo "$pids" | wc -w)" 1 "shim processes of the pod ($pids)"
    shim=$pids
    want_eq "$(idle_threads "$shim")" "$threads" "idle threads of the shim with 3 containers as with 1"
    for i in 1 2 3; do
        want_eq "$(task_field "$NS-pod$i" 3)" RUNNING "status of $NS-pod$i"
        want_eq "$(awk '/^PPid:/ { print $2 }' "/proc/$(task_field "$NS-pod$i" 2)/status")" "$shim" \
            "parent of $NS-pod$i's init"
    done
    for i in 1 2; do
        ctr_ task kill -s SIGKILL "$NS-pod$i"
        wait_status "$NS-pod$i" STOPPED
        ctr_ task delete "$NS-pod$i" >/dev/null 2>&1 || true
        ctr_ container rm "$NS-pod$i"
    done
    # The shim still serves the pod's last container.
    want_eq "$(cexec_ --exec-id e1 "$NS-pod3" echo still-served)" still-served "exec in $NS-pod3"
    ctr_ task kill -s SIGKILL "$NS-pod3"
    wait_status "$NS-pod3" STOPPED
    ctr_ task delete "$NS-pod3" >/dev/null 2>&1 || true
    ctr_ container rm "$NS-pod3"
    for _ in $(seq 50); do kill -0 "$shim" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$shim" 2>/dev/null; then echo "the pod's shim outlived its last container"; return 1; fi
}

# Kubernetes through containerd's CRI, driven by integration/cri-client (k8s-cri's tonic client):
# a pod of two containers on RuntimeClass handler "minirunc", i.e. minirunc's shim. The client
# checks the shared network and IPC namespaces, exec sync, logs, stats, one shim for the pod, stop
# and remove, and prints the first container's log.
t_cri_pod() {
    local out
    cri_images "$images"
    mkdir -p "$SUITE_DIR/pod-logs"
    out=$(cri_ run minirunc containerd-shim-minirunc-v1 pod "$SUITE_DIR/pod-logs" "/$NS/cri" "$IMG" \
        "$SUITE_DIR/ids.k8s.io")
    want_eq "$out" "cri-log first uid=0" "the first container's log, read through CRI"
    want_eq "$(find "$CRI_STATE" -mindepth 1 2>/dev/null)" "" "runtime state of the pod"
}

# ---- main --------------------------------------------------------------------------------------

echo "shim suite: $SHIM_BIN with runtime $RUNTIME, dir $SUITE_DIR, namespace $NS"
start_containerd "$here/config.toml" "$(dirname "$SHIM_BIN")"
ctr_ image import "$images/busybox.oci.tar" >/dev/null || { echo "ctr image import failed" >&2; exit 2; }

scenario "run: output and exit code" t_run_output_exit
scenario "run: stdin to its end" t_stdin
scenario "binary:// log URI: a logger program gets the output" t_binary_log
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
scenario "task metrics: cgroup v1 numbers" t_metrics
scenario "OOM: the kill is reported as /tasks/oom" t_oom
scenario "one shim for the containers of a pod" t_pod_one_shim
scenario "CRI: a pod of two containers (cri-client)" t_cri_pod

# ---- leftover check ---------------------------------------------------------------------------
leftover() {
    local what id
    what=$(live_processes "$SUITE_DIR" "/$NS/" | awk -v d="$CTRD_PID" '$1 != d')
    [ -z "$what" ] || { echo "processes left:"; echo "$what"; }
    what=$(mounts_under "$SUITE_DIR")
    [ -z "$what" ] || { echo "mounts left:"; echo "$what"; }
    # The CRI pods' cgroup parent "$NS/cri" stays, as the parent of ctr's containers does.
    what=$(for cg in $(cgroups_named "$NS"); do find "$cg" -mindepth 1 -type d ! -path "$cg/cri"; done)
    [ -z "$what" ] || { echo "container cgroups left:"; echo "$what"; }
    what=$(find "$RUNTIME_STATE" -mindepth 1 2>/dev/null
        for id in $(suite_ids); do data_root_entries "$id"; done)
    [ -z "$what" ] || { echo "runtime state left:"; echo "$what"; }
    what=$(for id in $(suite_ids); do [ ! -e "$(shim_socket "$id")" ] || shim_socket "$id"; done
        for id in $(cri_ids); do
            [ ! -e "$(NS=k8s.io shim_socket "$id")" ] || NS=k8s.io shim_socket "$id"
            [ ! -e "$CRI_STATE/$id" ] || echo "$CRI_STATE/$id"
        done)
    [ -z "$what" ] || { echo "shim sockets or CRI runtime state left:"; echo "$what"; }
    [ -n "$CTRD_PID" ] || return 0
    what=$(ctr_ task ls -q; ctr_ container ls -q)
    [ -z "$what" ] || { echo "tasks or containers left:"; echo "$what"; }
}
finish_suite shim
