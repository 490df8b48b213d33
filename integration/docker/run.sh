#!/bin/bash
# Docker integration suite: Debian 12's docker.io (dockerd 20.10) drives the runtime under test
# through a private containerd 1.6 and its runc v2 shim. Everything of both daemons (data root, exec
# root, sockets, pid file) lives under a temp dir; no iptables, no bridge (containers use
# `--network none`). The runtime is registered first with `dockerd --add-runtime minirunc=$RUNTIME`,
# then, after a daemon restart, through integration/docker/daemon.json.
# Usage (as root): RUNTIME=/abs/path/to/runtime integration/docker/run.sh
# Leaves nothing behind: a trap removes containers, images, both daemons, mounts, cgroups and the
# temp dir, then the suite checks that no mount, process, cgroup or runtime state remains.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$top/integration/lib/common.sh"
# shellcheck source=../../scripts/lib/cannot-run.sh
. "$top/scripts/lib/cannot-run.sh"

require_runtime docker

DOCKERD=/usr/sbin/dockerd
# The docker.io package's client: /usr/local/bin/docker, first on PATH here, is another, newer CLI.
DOCKER=/usr/bin/docker

# Install docker.io without its maintainer scripts starting the host's dockerd: invoke-rc.d and
# deb-systemd-invoke both ask /usr/sbin/policy-rc.d first, and its exit status 101 forbids the start.
# An existing policy that allows it is left alone: then the suite does not install.
install_docker() {
    local policy=/usr/sbin/policy-rc.d made="" rc=0
    if [ -x "$DOCKERD" ] && [ -x "$DOCKER" ]; then return 0; fi
    if [ -e "$policy" ]; then
        "$policy" docker start >/dev/null 2>&1 || rc=$?
        [ "$rc" = 101 ] || cannot_run "docker.io is missing, and $policy would let its installation start the host's dockerd"
    else
        printf '#!/bin/sh\n# integration/docker/run.sh: no service starts while docker.io installs\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made=$policy
        trap 'rm -f "$made"; exit 130' INT TERM
    fi
    ensure_packages --no-install-recommends dockerd:docker.io
    [ -z "$made" ] || rm -f "$made"
    trap - INT TERM
    if [ ! -x "$DOCKERD" ] || [ ! -x "$DOCKER" ]; then cannot_run "cannot install docker.io"; fi
}
install_docker
ensure_packages containerd:containerd containerd-shim-runc-v2:containerd script:bsdutils jq:jq
command -v containerd-shim-runc-v2 >/dev/null || cannot_run "containerd's runc v2 shim is missing"

# Short paths: unix socket paths are limited to 108 bytes.
SUITE_DIR=$(mktemp -d /tmp/mrt-dk.XXXXXX)
NS=mrt-dk$$   # containerd namespace and cgroup parent; "mrt-" is the leak-check marker
SOCK=$SUITE_DIR/docker.sock
CTRD_SOCK=$SUITE_DIR/containerd.sock
EXEC_ROOT=$SUITE_DIR/exec
IMG=localhost/minirunc-busybox:latest
# containerd's environment reaches its shims and so the runtime: minirunc's data root (copy-on-write
# layers) is the suite's own, never the host's default.
export MINIRUNC_DATA_ROOT=$SUITE_DIR/data RUNTIME_DATA_ROOT=$SUITE_DIR/data
# The client's own files (config.json), and no inherited daemon address or context.
export DOCKER_CONFIG=$SUITE_DIR/client
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
CTRD_PID=""
DOCKERD_PID=""
START_TIME=$(date +%s)
# Host paths the daemons create whatever their configuration says (shim sockets in
# /run/containerd/s, dockerd's plugin sockets in /run/docker/plugins), deepest first: removed at the
# end, only when empty, if this suite created them.
created_host_dirs=""
for d in /run/containerd/s /run/containerd /run/docker/plugins /run/docker; do
    [ -e "$d" ] || created_host_dirs="$created_host_dirs $d"
done

dk() { timeout "${DK_TIMEOUT:-60}" "$DOCKER" -H "unix://$SOCK" "$@"; }
# docker run with the runtime under test (registered as "minirunc", whatever RUNTIME is).
drun_() { dk run --runtime minirunc --network none "$@"; }
inspect() { dk inspect --format "$1" "$2"; }

# Shim sockets live in /run/containerd/s/, named by sha256(<containerd address>/<ns>/<id>).
shim_socket() { # ID
    printf '%s' "$CTRD_SOCK/$NS/$1" | sha256sum | sed 's|^\([0-9a-f]*\).*|/run/containerd/s/\1|'; }

# Ids of every container the suite made, from dockerd's event log while it runs; kept in IDS.
IDS=""
container_ids() {
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        IDS=$( (echo "$IDS"; DK_TIMEOUT=15 dk events --since "$START_TIME" --until "$(date +%s)" \
            --filter type=container --format '{{.ID}}' 2>/dev/null) | sed '/^$/d' | sort -u)
    fi
    echo "$IDS"
}

# The runtime's state directories of the suite's containers: dockerd gives the shim a --root under
# its exec root (runtime-<name>/<namespace>), and the runtime's data root may hold layers.
runtime_state_left() {
    local id
    find "$EXEC_ROOT" -mindepth 3 -maxdepth 3 -path "$EXEC_ROOT/runtime-*/$NS/*" 2>/dev/null
    for id in $(container_ids); do data_root_entries "$id"; done
}

# The daemons' pids (not leftovers of the containers).
daemon_pids() { echo "$CTRD_PID $DOCKERD_PID"; }
container_processes() {
    live_processes "$SUITE_DIR" "/$NS/" | awk -v pids=" $(daemon_pids) " 'index(pids, " " $1 " ") == 0'
}

after_failure() {
    local ids
    if [ -e "$SUITE_DIR/dockerd.log" ]; then
        echo "last errors of dockerd:"
        grep -i 'level=error' "$SUITE_DIR/dockerd.log" | tail -3
    fi
    # The runtime's kill may be what failed: end the containers' processes directly first.
    kill_container_processes "/$NS/"
    ids=$(DK_TIMEOUT=15 dk ps -aq 2>/dev/null)
    # shellcheck disable=SC2086 # one argument per id
    [ -z "$ids" ] || DK_TIMEOUT=30 dk rm -f $ids >/dev/null 2>&1
}

stop_pid() { # PID: TERM, up to 15 s, then KILL
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
    kill "$1" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

cleanup() {
    trap - EXIT INT TERM
    local pid cg d id
    stop_scenario
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        after_failure >/dev/null 2>&1
        container_ids >/dev/null
        DK_TIMEOUT=30 dk rmi -f "$IMG" >/dev/null 2>&1
    fi
    stop_pid "$DOCKERD_PID"
    stop_pid "$CTRD_PID"
    wait_processes_gone "$SUITE_DIR" "/$NS/"
    # Shims (and anything else) this suite started that are still alive: kill them by pid.
    for pid in $(live_processes "$SUITE_DIR" "/$NS/" | cut -d' ' -f1); do kill -9 "$pid" 2>/dev/null; done
    for id in $IDS; do rm -f "$(shim_socket "$id")"; done
    unmount_under "$SUITE_DIR"
    for cg in $(cgroups_named "$NS"); do find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null; done
    # Never delete through a mount point: a mount that would not go keeps the dir.
    if [ -z "$(mounts_under "$SUITE_DIR")" ]; then
        rm -rf "$SUITE_DIR"
    else
        log "cleanup: mounts left under $SUITE_DIR, not removing it"
    fi
    for d in $created_host_dirs; do rmdir "$d" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_containerd() {
    # Plugins a private instance does not need; "opt" would create /opt/containerd on the host.
    cat >"$SUITE_DIR/containerd.toml" <<EOF
version = 2
root = "$SUITE_DIR/containerd/root"
state = "$SUITE_DIR/containerd/state"
oom_score = 0
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$SUITE_DIR/containerd-ttrpc.sock"
EOF
    containerd --config "$SUITE_DIR/containerd.toml" >"$SUITE_DIR/containerd.log" 2>&1 &
    CTRD_PID=$!
    for _ in $(seq 100); do
        ctr --address "$CTRD_SOCK" version >/dev/null 2>&1 && return 0
        kill -0 "$CTRD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "containerd did not start:" >&2
    tail -20 "$SUITE_DIR/containerd.log" >&2
    exit 2
}

# start_dockerd CONFIG-FILE [FLAG...]: dockerd on the suite's containerd. --ip-forward=false: it
# would otherwise switch on the host's IPv4 forwarding.
start_dockerd() {
    local config=$1
    shift
    "$DOCKERD" --config-file "$config" --containerd "$CTRD_SOCK" --containerd-namespace "$NS" \
        --containerd-plugins-namespace "$NS-plugins" --data-root "$SUITE_DIR/docker" \
        --exec-root "$EXEC_ROOT" --pidfile "$SUITE_DIR/dockerd.pid" -H "unix://$SOCK" \
        --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$NS" "$@" \
        >>"$SUITE_DIR/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 300); do
        DK_TIMEOUT=5 dk version >/dev/null 2>&1 && return 0
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "dockerd did not start:" >&2
    tail -20 "$SUITE_DIR/dockerd.log" >&2
    exit 2
}

# Wait until container NAME has status STATUS (at most 10 s).
wait_status() { # NAME STATUS
    for _ in $(seq 100); do
        [ "$(inspect '{{.State.Status}}' "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    echo "container $1 did not reach status $2: $(inspect '{{.State.Status}}' "$1")"
    return 1
}

# Wait until FILE exists inside running container NAME (at most 20 s).
wait_file_in() { # NAME FILE
    for _ in $(seq 200); do
        dk exec "$1" test -e "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$2 never appeared in container $1"
    return 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- scenarios -------------------------------------------------------------------------------

t_run_output_exit() {
    local out rc=0
    out=$(drun_ --rm "$IMG" sh -c 'echo hello from the container; exit 3') || rc=$?
    want_eq "$out" "hello from the container" "output"
    want_eq "$rc" 3 "exit code"
    out=$(drun_ --rm "$IMG" true)
    want_eq "$out" "" "output of true"
}

# Docker maps the runtime's start errors as it does runc's: 127 for a command that is not there,
# 126 for one that cannot be executed.
t_missing_command() {
    local out rc=0
    out=$(drun_ --rm --name "$NS-missing" "$IMG" /nonexistent/binary 2>&1) || rc=$?
    want_eq "$rc" 127 "exit code of a missing command (output: $out)"
    want_match "$out" "$MISSING_EXEC_ERROR" "error"
    rc=0
    out=$(drun_ --rm --name "$NS-nopath" "$IMG" no-such-command 2>&1) || rc=$?
    want_eq "$rc" 127 "exit code of a command not in PATH (output: $out)"
    want_contains "$out" "executable file not found" "error"
    rc=0
    out=$(drun_ --rm --name "$NS-noexec" "$IMG" /etc/passwd 2>&1) || rc=$?
    want_eq "$rc" 126 "exit code of a non-executable command (output: $out)"
    want_match "$out" '/etc/passwd.*permission denied' "error"
    want_eq "$(dk ps -aq --filter "name=$NS-")" "" "containers left"
}

t_env_cwd_user() {
    local out
    out=$(drun_ --rm -e FOO=bar -w /tmp -u 65534:65534 "$IMG" \
        sh -c 'echo "$FOO|$(pwd)|$(id -u):$(id -g)"; touch /root/x 2>/dev/null || echo denied')
    want_eq "$out" "bar|/tmp|65534:65534
denied" "env|cwd|uid:gid"
}

t_read_only() {
    local out
    out=$(drun_ --rm --read-only "$IMG" sh -c 'touch /etc/x 2>&1; echo "rc=$?"; cat /etc/hostname >/dev/null && echo readable')
    want_contains "$out" "Read-only file system" "write to /etc"
    want_contains "$out" "rc=1" "touch exit code"
    want_contains "$out" "readable" "read of /etc/hostname"
}

t_volume() {
    local dir=$SUITE_DIR/vol out
    mkdir -p "$dir"
    echo from-host >"$dir/in"
    out=$(drun_ --rm -v "$dir:/data" "$IMG" sh -c 'cat /data/in; echo from-container >/data/out')
    want_eq "$out" from-host "file read through -v"
    want_eq "$(cat "$dir/out")" from-container "file written through -v, seen on the host"
    out=$(drun_ --rm -v "$dir:/data:ro" "$IMG" sh -c 'echo x >/data/out2 2>&1; echo "rc=$?"')
    want_contains "$out" "rc=1" "write to a read-only volume"
    [ ! -e "$dir/out2" ] || { echo "read-only volume was written"; return 1; }
}

t_terminal() {
    local out rc=0
    out=$(in_pty "$DOCKER -H unix://$SOCK run --rm -t --runtime minirunc --network none $IMG \
        sh -c 'tty; test -t 0 && test -t 1 && echo stdio-is-a-tty; exit 5'") || rc=$?
    want_match "$out" '^/dev/pts/[0-9]+' "tty output"
    want_contains "$out" stdio-is-a-tty "terminal test"
    want_eq "$rc" 5 "exit code through the terminal"
}

t_detached_exec() {
    local id=$NS-det out rc=0 full
    drun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    want_eq "$(inspect '{{.State.Status}}' "$id")" running "status"
    # The runtime under test holds the container: its state is under the --root dockerd chose.
    full=$(inspect '{{.Id}}' "$id")
    out=$("$RUNTIME" --root "$(dirname "$(runtime_state_left | grep -m1 "/$full\$")")" state "$full")
    want_contains "$out" '"status": "running"' "the runtime's state of the container"
    out=$(dk exec "$id" sh -c 'echo in-exec; ps -o comm | grep -c sleep; exit 4') || rc=$?
    want_eq "$out" "in-exec
1" "exec output (and sees the container's sleep)"
    want_eq "$rc" 4 "exec exit code"
    out=$(dk exec -e FOO=bar -w /tmp -u 65534 "$id" sh -c 'echo "$FOO $(pwd) $(id -u)"')
    want_eq "$out" "bar /tmp 65534" "exec env, cwd and user"
    rc=0
    out=$(in_pty "$DOCKER -H unix://$SOCK exec -t $id sh -c 'tty; test -t 0 && echo exec-tty; exit 6'") || rc=$?
    want_match "$out" '/dev/pts/[0-9]+' "exec -t output"
    want_contains "$out" exec-tty "exec -t terminal test"
    want_eq "$rc" 6 "exec -t exit code"
    rc=0
    out=$(dk exec "$id" /nonexistent 2>&1) || rc=$?
    want_eq "$rc" 126 "exit code of exec of a missing command (output: $out)"
    want_contains "$out" "no such file or directory" "error"
    dk rm -f "$id" >/dev/null
    want_eq "$(dk ps -aq --filter "name=$id")" "" "container after rm -f"
}

t_stop() {
    local id=$NS-stop start took
    # A shell init that exits 42 on SIGTERM.
    drun_ -d --name "$id" "$IMG" sh -c 'trap "exit 42" TERM; touch /tmp/ready; while :; do sleep 1; done' >/dev/null
    wait_file_in "$id" /tmp/ready
    start=$(now_ms)
    dk stop -t 10 "$id" >/dev/null
    took=$(($(now_ms) - start))
    want_eq "$(inspect '{{.State.Status}}' "$id")" exited "status after stop"
    want_eq "$(inspect '{{.State.ExitCode}}' "$id")" 42 "exit code after SIGTERM"
    [ "$took" -lt 5000 ] || { echo "stop of a container that exits on SIGTERM took ${took} ms"; return 1; }
    dk rm "$id" >/dev/null
    # sleep as PID 1 ignores SIGTERM: stop sends SIGKILL after the 2 s timeout.
    drun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    start=$(now_ms)
    dk stop -t 2 "$id" >/dev/null
    took=$(($(now_ms) - start))
    want_eq "$(inspect '{{.State.ExitCode}}' "$id")" 137 "exit code after SIGKILL"
    if [ "$took" -lt 2000 ] || [ "$took" -ge 6000 ]; then
        echo "stop -t 2 of a container ignoring SIGTERM took ${took} ms, not about 2 s"
        return 1
    fi
    dk rm "$id" >/dev/null
}

t_pause_unpause() {
    local id=$NS-pause pid
    drun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    pid=$(inspect '{{.State.Pid}}' "$id")
    dk pause "$id" >/dev/null
    want_eq "$(inspect '{{.State.Status}}' "$id")" paused "status after pause"
    want_eq "$(host_freezer_state "$pid")" FROZEN "host freezer state"
    dk unpause "$id" >/dev/null
    want_eq "$(inspect '{{.State.Status}}' "$id")" running "status after unpause"
    want_eq "$(host_freezer_state "$pid")" THAWED "host freezer state after unpause"
    want_eq "$(dk exec "$id" echo alive)" alive "exec after unpause"
    dk rm -f "$id" >/dev/null
}

t_memory() {
    local id=$NS-mem pid out
    drun_ -d --name "$id" --memory 64m "$IMG" sleep 300 >/dev/null
    pid=$(inspect '{{.State.Pid}}' "$id")
    want_eq "$(host_memory_limit "$pid")" 67108864 "host-side memory limit"
    # Inside: the cgroup v1 memory controller (the container's own cgroup at its root), or cgroup2.
    out=$(dk exec "$id" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null ||
        cat /sys/fs/cgroup/memory.max')
    want_eq "$out" 67108864 "memory limit seen inside"
    dk rm -f "$id" >/dev/null
}

t_kill_rm() {
    local id=$NS-kill
    drun_ -d --name "$id" "$IMG" sh -c 'trap "exit 10" USR1; touch /tmp/ready; while :; do sleep 1; done' >/dev/null
    wait_file_in "$id" /tmp/ready
    dk kill -s USR1 "$id" >/dev/null
    wait_status "$id" exited
    want_eq "$(inspect '{{.State.ExitCode}}' "$id")" 10 "exit code after kill -s USR1"
    dk rm "$id" >/dev/null
    drun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    dk kill "$id" >/dev/null
    wait_status "$id" exited
    want_eq "$(inspect '{{.State.ExitCode}}' "$id")" 137 "exit code after kill (SIGKILL)"
    dk rm "$id" >/dev/null
    want_eq "$(dk ps -aq --filter "name=$id")" "" "container after rm"
}

# docker commit of a running container (paused by the runtime while docker copies its layer).
t_commit() {
    local id=$NS-commit img=localhost/mrt-committed:v1 out
    drun_ -d --name "$id" "$IMG" sh -c 'echo written-in-the-container >/committed; rm /etc/group; sleep 300' >/dev/null
    wait_file_in "$id" /committed
    dk commit -c 'CMD ["cat", "/committed"]' "$id" "$img" >/dev/null
    want_eq "$(inspect '{{.State.Status}}' "$id")" running "status after commit"
    dk rm -f "$id" >/dev/null
    out=$(drun_ --rm "$img")
    want_eq "$out" written-in-the-container "the committed file, read by the image's CMD"
    out=$(drun_ --rm "$img" sh -c 'ls /etc/group 2>&1; true')
    want_contains "$out" "No such file" "the file the container deleted stays deleted"
    dk rmi "$img" >/dev/null
}

# The environment of containerd reaches the runtime through the shim (the container's parent).
t_runtime_env() {
    local id=$NS-env pid shim
    drun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    pid=$(inspect '{{.State.Pid}}' "$id")
    shim=$(awk '{ print $4 }' "/proc/$pid/stat")
    want_contains "$(tr '\0' ' ' <"/proc/$shim/cmdline")" containerd-shim-runc-v2 "the container's parent"
    want_contains "$(tr '\0' '\n' <"/proc/$shim/environ")" "MINIRUNC_DATA_ROOT=$MINIRUNC_DATA_ROOT" \
        "the shim's environment"
    dk rm -f "$id" >/dev/null
}

t_daemon_json() {
    local id=$NS-conf out rc=0
    out=$(dk info --format '{{json .Runtimes}}')
    want_contains "$out" "\"minirunc\":{\"path\":\"$RUNTIME\"}" "dockerd's runtimes"
    out=$(drun_ --name "$id" "$IMG" sh -c 'echo via-daemon-json; exit 3') || rc=$?
    want_eq "$out" via-daemon-json "output"
    want_eq "$rc" 3 "exit code"
    want_eq "$(inspect '{{.HostConfig.Runtime}}' "$id")" minirunc "runtime of the container"
    dk rm "$id" >/dev/null
}

# ---- main --------------------------------------------------------------------------------------

echo "docker suite: runtime $RUNTIME, dir $SUITE_DIR, namespace $NS"
start_containerd
# Phase 1: the runtime on dockerd's command line. The config file only moves dockerd's identity
# key from /etc/docker/key.json into the suite dir.
echo "{\"deprecated-key-path\": \"$SUITE_DIR/key.json\"}" >"$SUITE_DIR/private.json"
start_dockerd "$SUITE_DIR/private.json" --add-runtime "minirunc=$RUNTIME"
# The image: the project's busybox root filesystem, imported as one layer.
"$top/scripts/mkrootfs.sh" "$SUITE_DIR/rootfs" >/dev/null
tar -C "$SUITE_DIR/rootfs" --numeric-owner -cf "$SUITE_DIR/rootfs.tar" .
dk import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$SUITE_DIR/rootfs.tar" "$IMG" >/dev/null || { echo "docker import failed" >&2; exit 2; }
rm -rf "$SUITE_DIR/rootfs" "$SUITE_DIR/rootfs.tar"

scenario "run: output and exit code" t_run_output_exit
scenario "run: missing command 127, not executable 126" t_missing_command
scenario "run: env, cwd and user" t_env_cwd_user
scenario "run: read-only rootfs" t_read_only
scenario "run -v: bind volume" t_volume
scenario "run -t: terminal" t_terminal
scenario "run -d + exec + rm -f" t_detached_exec
scenario "stop: SIGTERM, then SIGKILL after the timeout" t_stop
scenario "pause/unpause" t_pause_unpause
scenario "--memory limit" t_memory
scenario "kill + rm" t_kill_rm
scenario "commit of a running container" t_commit
scenario "containerd's environment reaches the runtime" t_runtime_env

# Phase 2: the same dockerd restarted with the shipped daemon.json (minirunc's path replaced by
# RUNTIME) instead of --add-runtime.
container_ids >/dev/null
stop_pid "$DOCKERD_PID"
sed "s|\"/usr/local/bin/minirunc\"|\"$RUNTIME\"|" "$here/daemon.json" |
    jq --arg key "$SUITE_DIR/key.json" '. + {"deprecated-key-path": $key}' >"$SUITE_DIR/daemon.json"
start_dockerd "$SUITE_DIR/daemon.json"
scenario "runtime from daemon.json" t_daemon_json

# ---- leftover check ---------------------------------------------------------------------------
# Before cleanup: every scenario removed its containers, so nothing of them may remain (the daemons
# still run). After cleanup: nothing of the suite at all.
leftover() {
    local what id
    what=$(container_processes)
    [ -z "$what" ] || { echo "processes left:"; echo "$what"; }
    # dockerd keeps its data root bind-mounted on itself while it runs (made rshared or rslave).
    what=$(mounts_under "$SUITE_DIR" | grep -vx "$SUITE_DIR/docker")
    [ -z "$what" ] || { echo "mounts left:"; echo "$what"; }
    what=$(for cg in $(cgroups_named "$NS"); do find "$cg" -mindepth 1 -type d; done)
    # shellcheck disable=SC2046 # one argument per id
    what=$(echo "$what"; cgroups_naming $(container_ids))
    what=$(printf '%s\n' "$what" | sed '/^$/d' | sort -u)
    [ -z "$what" ] || { echo "container cgroups left:"; echo "$what"; }
    what=$(runtime_state_left)
    [ -z "$what" ] || { echo "runtime state left:"; echo "$what"; }
    what=$(for id in $IDS; do [ ! -e "$(shim_socket "$id")" ] || shim_socket "$id"; done)
    [ -z "$what" ] || { echo "shim sockets left:"; echo "$what"; }
    [ -n "$DOCKERD_PID" ] || return 0
    what=$(dk ps -aq)
    [ -z "$what" ] || { echo "containers left:"; echo "$what"; }
}
# Shims exit shortly after their container is deleted.
for _ in $(seq 100); do [ -z "$(container_processes)" ] && break; sleep 0.1; done
record "nothing of the containers left behind" "$(leftover)"
cleanup
DOCKERD_PID="" CTRD_PID=""
record "suite cleanup complete" "$(leftover; cgroups_named "$NS";
    [ ! -e "$SUITE_DIR" ] || echo "suite dir left: $SUITE_DIR";
    for d in $created_host_dirs; do [ ! -e "$d" ] || echo "host path left: $d"; done)"
echo "docker suite took $(($(date +%s) - START_TIME)) s"
summary docker
