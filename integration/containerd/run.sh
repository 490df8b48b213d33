#!/bin/bash
# containerd integration suite: a private containerd 1.6 (own config, sockets, root and state under
# a temp dir) drives the runtime under test through its runc v2 shim (`ctr run --runc-binary`), and
# through the `BinaryName` option of integration/containerd/config.toml (CRI runtime "minirunc").
# Usage (as root): RUNTIME=/abs/path/to/runtime integration/containerd/run.sh
# Leaves nothing behind: a trap removes tasks, containers, images, the daemon, mounts, cgroups and
# the temp dir, then the suite checks that no mount, process, cgroup or runtime state remains.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$top/integration/lib/common.sh"
# shellcheck source=../lib/ctr.sh
. "$top/integration/lib/ctr.sh"
# shellcheck source=../lib/cri.sh
. "$top/integration/lib/cri.sh"

require_runtime containerd

ensure_packages containerd:containerd ctr:containerd script:bsdutils
images=$("$top/integration/lib/image.sh") || { echo "image build failed" >&2; exit 2; }
build_cri_client

# Short paths: unix socket paths are limited to 108 bytes.
SUITE_DIR=$(mktemp -d /tmp/mrt-ctr.XXXXXX)
# minirunc's data root (copy-on-write layers) is the suite's own, never the host's default:
# containerd's environment reaches the shims and the runtime.
export MINIRUNC_DATA_ROOT=$SUITE_DIR/data RUNTIME_DATA_ROOT=$SUITE_DIR/data
NS=mrt-ctr$$   # private containerd namespace and cgroup parent; "mrt-" is the leak-check marker
RUNC_ROOT=$SUITE_DIR/runc-root        # the shim passes --root $RUNC_ROOT/$NS to the runtime
RUNTIME_STATE=$RUNC_ROOT/$NS
FIFO_DIR=$SUITE_DIR/fifo
SOCK=$SUITE_DIR/containerd.sock
IMG=localhost/minirunc-busybox:latest
IMG_USER=localhost/minirunc-busybox:user
CTRD_PID=""
mkdir -p "$RUNC_ROOT" "$FIFO_DIR" "$SUITE_DIR/cni/net.d" "$SUITE_DIR/cni/bin"
# The shims put their sockets in /run/containerd/s/ whatever the configuration says: if this suite
# creates those directories, it removes them again (only when empty).
created_host_dirs=""
for d in /run/containerd/s /run/containerd; do [ -e "$d" ] || created_host_dirs="$created_host_dirs $d"; done

# ctr run with the runtime under test.
run_() {
    local a
    for a in "$@"; do case $a in "$NS"-*) echo "$a" >>"$SUITE_DIR/ids.$NS" ;; esac; done
    ctr_ run --runc-binary "$RUNTIME" --runc-root "$RUNC_ROOT" --fifo-dir "$FIFO_DIR" "$@"; }

# Shim sockets live in /run/containerd/s/, named by sha256(<containerd address>/<ns>/<id>).
shim_socket() { # NAMESPACE ID
    printf '%s' "$SOCK/$1/$2" | sha256sum | sed 's|^\([0-9a-f]*\).*|/run/containerd/s/\1|'; }

# The suite's containers as NAMESPACE/ID: run_ and the CRI client log the ids, per namespace, in
# $SUITE_DIR/ids.<namespace>; kept in IDS once the dir is gone.
IDS=""
shim_ids() {
    local f
    if [ -d "$SUITE_DIR" ]; then
        IDS=$(for f in "$SUITE_DIR"/ids.*; do [ -e "$f" ] && sed "s|^|${f##*/ids.}/|" "$f"; done | sort -u)
    fi
    echo "$IDS"
}

# Shim sockets of this suite's containers still in /run/containerd/s/.
shim_sockets_left() {
    local id sock
    for id in $(shim_ids); do
        sock=$(shim_socket "${id%%/*}" "${id#*/}")
        [ ! -e "$sock" ] || echo "$sock"
    done
}

cleanup() {
    trap - EXIT INT TERM
    local pid sock cg d
    stop_scenario
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        after_failure >/dev/null 2>&1
        cri_cleanup >/dev/null 2>&1
        ctr_ image rm "$IMG" "$IMG_USER" >/dev/null 2>&1
        kill "$CTRD_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$CTRD_PID" 2>/dev/null
        wait "$CTRD_PID" 2>/dev/null
    fi
    wait_processes_gone "$SUITE_DIR" "/$NS/"
    # Shims (and anything else) this suite started that are still alive: kill them by pid.
    for pid in $(live_processes "$SUITE_DIR" "/$NS/" | cut -d' ' -f1); do
        kill -9 "$pid" 2>/dev/null
    done
    for sock in $(shim_sockets_left); do rm -f "$sock"; done
    unmount_under "$SUITE_DIR"
    for cg in $(cgroups_named "$NS") $(cgroups_named "${NS//-/_}.slice"); do
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    shim_ids >/dev/null
    rm -rf "$SUITE_DIR"
    for d in $created_host_dirs; do rmdir "$d" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- scenarios -------------------------------------------------------------------------------

t_run_output_exit() {
    local out rc=0
    out=$(run_ --rm "$IMG" "$NS-run" sh -c 'echo hello from the container; exit 7') || rc=$?
    want_eq "$out" "hello from the container" "output"
    want_eq "$rc" 7 "exit code"
    out=$(run_ --rm "$IMG" "$NS-run0" true)
    want_eq "$out" "" "output of true"
}

t_env_cwd() {
    local out
    out=$(run_ --rm --env FOO=bar --env EMPTY= --cwd /var/tmp "$IMG" "$NS-env" \
        sh -c 'echo "$FOO|${EMPTY-unset}|$(pwd)|$PATH"')
    want_eq "$out" "bar||/var/tmp|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "env|cwd|PATH"
}

t_user() {
    local out rc=0
    out=$(run_ --rm "$IMG_USER" "$NS-user" sh -c 'id -u; id -g; touch /root/x 2>&1; echo "rc=$?"') || rc=$?
    want_eq "$rc" 0 "exit code"
    want_eq "$(echo "$out" | sed -n 1p)" 65534 "uid"
    want_eq "$(echo "$out" | sed -n 2p)" 65534 "gid"
    want_contains "$out" "Permission denied" "touch /root/x as nobody"
    want_contains "$out" "rc=1" "touch /root/x exit code"
}

t_read_only() {
    local out
    out=$(run_ --rm --read-only "$IMG" "$NS-ro" sh -c 'touch /etc/x 2>&1; echo "rc=$?"; cat /etc/hostname >/dev/null && echo readable')
    want_contains "$out" "Read-only file system" "write to /etc"
    want_contains "$out" "rc=1" "touch exit code"
    want_contains "$out" "readable" "read of /etc/hostname"
}

t_bind_mount() {
    local dir=$SUITE_DIR/bind out
    mkdir -p "$dir"
    echo from-host >"$dir/in"
    out=$(run_ --rm --mount "type=bind,src=$dir,dst=/data,options=rbind:rw" "$IMG" "$NS-bind" \
        sh -c 'cat /data/in; echo from-container >/data/out')
    want_eq "$out" from-host "file read through the bind mount"
    want_eq "$(cat "$dir/out")" from-container "file written through the bind mount, seen on the host"
    # A read-only bind refuses writes.
    out=$(run_ --rm --mount "type=bind,src=$dir,dst=/data,options=rbind:ro" "$IMG" "$NS-bindro" \
        sh -c 'echo x >/data/out2 2>&1; echo "rc=$?"' 2>&1)
    want_contains "$out" "rc=1" "write to a read-only bind"
    [ ! -e "$dir/out2" ] || { echo "read-only bind was written"; return 1; }
}

t_terminal() {
    local out rc=0
    out=$(in_pty "ctr --address $SOCK --namespace $NS run --rm -t --runc-binary $RUNTIME \
        --runc-root $RUNC_ROOT --fifo-dir $FIFO_DIR $IMG $NS-tty \
        sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exit 5'") || rc=$?
    want_match "$out" '^/dev/pts/[0-9]+' "tty output"
    want_contains "$out" stdio-is-a-tty "terminal test"
    want_eq "$rc" 5 "exit code through the terminal"
}

t_detached_exec() {
    local id=$NS-det out rc=0
    run_ -d "$IMG" "$id" sleep 300
    want_eq "$(ctr_ task ls | awk -v id="$id" '$1 == id { print $3 }')" RUNNING "task status"
    out=$(cexec_ --exec-id e1 "$id" sh -c 'echo in-exec; ps -o comm | grep -c sleep; exit 4') || rc=$?
    want_eq "$out" "in-exec
1" "exec output (and sees the container's sleep)"
    want_eq "$rc" 4 "exec exit code"
    out=$(cexec_ --exec-id e2 --user 65534 --cwd /tmp "$id" sh -c 'echo "$(id -u) $(pwd)"')
    want_eq "$out" "65534 /tmp" "exec user and cwd"
    out=$(in_pty "ctr --address $SOCK --namespace $NS task exec -t --fifo-dir $FIFO_DIR --exec-id e3 $id \
        sh -c 'tty; exit 6'") || rc=$?
    want_match "$out" '/dev/pts/[0-9]+' "exec -t output"
    want_eq "$rc" 6 "exec -t exit code"
    ctr_ task kill -s SIGKILL "$id"
    wait_status "$id" STOPPED
    want_eq "$(task_exit "$id")" 137 "exit status after SIGKILL"
    ctr_ container rm "$id"
}

t_kill() {
    local id=$NS-kill dir=$SUITE_DIR/kill
    mkdir -p "$dir"
    # A shell init that exits 42 on SIGTERM (as PID 1 it has no default action for it); it tells
    # the host through a bind mount when its trap is set.
    run_ -d --mount "type=bind,src=$dir,dst=/host,options=rbind:rw" "$IMG" "$id" \
        sh -c 'trap "exit 42" TERM; touch /host/ready; while :; do sleep 1; done'
    for _ in $(seq 200); do [ -e "$dir/ready" ] && break; sleep 0.1; done
    ctr_ task kill -s SIGTERM "$id"
    wait_status "$id" STOPPED
    want_eq "$(task_exit "$id")" 42 "exit status after SIGTERM"
    ctr_ container rm "$id"
}

t_pause_resume_ps() {
    local id=$NS-pause pid pids
    run_ -d "$IMG" "$id" sh -c 'sleep 300 & wait'
    pid=$(ctr_ task ls | awk -v id="$id" '$1 == id { print $2 }')
    for _ in $(seq 50); do [ "$(ctr_ task ps "$id" 2>/dev/null | tail -n +2 | wc -l)" -ge 2 ] && break; sleep 0.1; done
    pids=$(ctr_ task ps "$id" | awk 'NR > 1 { print $1 }' | sort -n | tr '\n' ' ')
    want_contains " $pids" " $pid " "ctr task ps (init pid)"
    want_eq "$(echo "$pids" | wc -w)" 2 "number of processes in ctr task ps ($pids)"
    ctr_ task pause "$id"
    want_eq "$(ctr_ task ls | awk -v id="$id" '$1 == id { print $3 }')" PAUSED "status after pause"
    want_eq "$(host_freezer_state "$pid")" FROZEN "host freezer state"
    ctr_ task resume "$id"
    want_eq "$(ctr_ task ls | awk -v id="$id" '$1 == id { print $3 }')" RUNNING "status after resume"
    want_eq "$(host_freezer_state "$pid")" THAWED "host freezer state after resume"
    want_eq "$(cexec_ --exec-id alive "$id" echo alive)" alive "exec after resume"
    ctr_ task kill -s SIGKILL "$id"
    ctr_ task delete "$id" >/dev/null 2>&1 || true
    ctr_ container rm "$id"
}

t_memory_limit() {
    local id=$NS-mem pid
    run_ -d --memory-limit 67108864 "$IMG" "$id" sleep 300
    pid=$(ctr_ task ls | awk -v id="$id" '$1 == id { print $2 }')
    want_eq "$(host_memory_limit "$pid")" 67108864 "host-side memory limit"
    ctr_ task kill -s SIGKILL "$id"
    ctr_ task delete "$id" >/dev/null 2>&1 || true
    ctr_ container rm "$id"
}

# containerd with SystemdCgroup=true (kubeadm's default): the shim passes --systemd-cgroup and a
# slice:prefix:name cgroupsPath; the cgroup is made where systemd would put that scope.
t_systemd_cgroup() {
    local id=$NS-sd slice=${NS//-/_}.slice pid d
    run_ -d --runc-systemd-cgroup --cgroup "$slice:mrt:$id" --memory-limit 67108864 "$IMG" "$id" sleep 300
    pid=$(ctr_ task ls | awk -v id="$id" '$1 == id { print $2 }')
    want_eq "$(sed -n 's/^[0-9]*:memory://p; s/^0:://p' "/proc/$pid/cgroup" | head -1)" \
        "/$slice/mrt-$id.scope" "the container's cgroup"
    want_eq "$(host_memory_limit "$pid")" 67108864 "host-side memory limit"
    ctr_ task kill -s SIGKILL "$id"
    ctr_ task delete "$id" >/dev/null 2>&1 || true
    ctr_ container rm "$id"
    want_eq "$(cgroups_naming "$id")" "" "cgroups of $id after delete"
    # The slice stays, as systemd keeps it: remove it here.
    for d in /sys/fs/cgroup/*/"$slice" /sys/fs/cgroup/"$slice"; do [ ! -d "$d" ] || rmdir "$d"; done
}

t_cri_binary_name() {
    local out
    cri_images "$images"
    mkdir -p "$SUITE_DIR/pod-logs"
    # Host network: this suite has no CNI plugin.
    out=$(cri_ run minirunc containerd-shim-runc-v2 node "$SUITE_DIR/pod-logs" "/$NS/cri" "$IMG" \
        "$SUITE_DIR/ids.k8s.io")
    want_eq "$out" "cri-log first uid=0" "the first container's log, read through CRI"
    # The runtime was called with the options block's Root (+ namespace): the options were used.
    [ -d "$SUITE_DIR/runtime-root-cri/k8s.io" ] || { echo "runtime root of the CRI runtime unused"; return 1; }
}

# ---- main --------------------------------------------------------------------------------------

echo "containerd suite: runtime $RUNTIME, dir $SUITE_DIR, namespace $NS"
start_containerd "$here/config.toml"
for archive in busybox busybox-user; do
    ctr_ image import "$images/$archive.oci.tar" >/dev/null || { echo "ctr image import failed" >&2; exit 2; }
done

t_commit_import() {
    # minirunc's own verb: a container's filesystem as an OCI archive that containerd imports
    # and runs.
    local dir=$SUITE_DIR/commit id="$NS-commit" out img=localhost/mrt-committed:v1
    local mr=("$RUNTIME" --root "$dir/state" --data-root "$dir/data")
    mkdir -p "$dir/bundle"
    "$here/../../scripts/mkrootfs.sh" "$dir/bundle/rootfs" >/dev/null
    (cd "$dir/bundle" && "${mr[@]}" spec)
    jq '.process.terminal = false | .root.readonly = false
        | .process.args = ["sh", "-c", "echo committed >/marker; rm /etc/group"]' \
        "$dir/bundle/config.json" >"$dir/config.json" && mv "$dir/config.json" "$dir/bundle/config.json"
    "${mr[@]}" run --keep --bundle "$dir/bundle" "$id" </dev/null || { echo "run failed"; return 1; }
    "${mr[@]}" commit --format oci-archive --name "$img" "$id" "$dir/image.tar"
    "${mr[@]}" delete "$id"
    ctr_ image import "$dir/image.tar" >/dev/null
    out=$(run_ --rm "$img" "$NS-committed" sh -c 'cat /marker; ls /etc/group 2>&1; true')
    ctr_ image rm "$img" >/dev/null
    want_contains "$out" "committed" "the committed file, run by containerd"
    want_contains "$out" "No such file" "the file the container deleted stays deleted"
}

scenario "run: output and exit code" t_run_output_exit
scenario "run: env and cwd" t_env_cwd
scenario "run: non-root user" t_user
scenario "run: read-only rootfs" t_read_only
scenario "run: bind mounts" t_bind_mount
scenario "run -t: terminal" t_terminal
scenario "detached task + task exec" t_detached_exec
scenario "task kill: exit status" t_kill
scenario "task pause/resume + task ps" t_pause_resume_ps
scenario "memory limit" t_memory_limit
# runc's systemd driver needs a running systemd; minirunc's does not talk to systemd.
if [ -d /run/systemd/system ] || "$RUNTIME" --version 2>/dev/null | grep -q '^minirunc'; then
    scenario "systemd cgroup driver (--runc-systemd-cgroup)" t_systemd_cgroup
else
    echo "SKIP: systemd cgroup driver: $(basename "$RUNTIME") needs a running systemd, this host has none"
fi
scenario "10 containers at once" t_ten_at_once
scenario "failing start leaves nothing" t_failing_start
scenario "CRI: a pod of two containers, runtime via BinaryName (config.toml)" t_cri_binary_name
if "$RUNTIME" commit --help >/dev/null 2>&1; then
    scenario "commit: OCI archive imported and run by containerd" t_commit_import
else
    echo "SKIP: commit: OCI archive imported and run by containerd ($(basename "$RUNTIME") has no commit verb)"
fi

# ---- leftover check ---------------------------------------------------------------------------
# Before cleanup: every scenario removed its containers, so nothing of them may remain (the daemon
# itself still runs). After cleanup: nothing of the suite at all.
leftover() {
    local what
    what=$(live_processes "$SUITE_DIR" "/$NS/" | awk -v d="$CTRD_PID" '$1 != d')
    [ -z "$what" ] || { echo "processes left:"; echo "$what"; }
    what=$(mounts_under "$SUITE_DIR")
    [ -z "$what" ] || { echo "mounts left:"; echo "$what"; }
    # The CRI pods' cgroup parent "$NS/cri" stays, as the parent of ctr's containers does.
    what=$(for cg in $(cgroups_named "$NS"); do find "$cg" -mindepth 1 -type d ! -path "$cg/cri"; done)
    # shellcheck disable=SC2046 # one argument per id
    what=$(echo "$what"; cgroups_naming $(shim_ids | sed 's|.*/||'))
    what=$(printf '%s\n' "$what" | sed '/^$/d' | sort -u)
    [ -z "$what" ] || { echo "container cgroups left:"; echo "$what"; }
    what=$(find "$RUNC_ROOT/$NS" "$SUITE_DIR/runtime-root-cri/k8s.io" -mindepth 1 2>/dev/null
        for id in $(shim_ids); do data_root_entries "${id#*/}"; done)
    [ -z "$what" ] || { echo "runtime state left:"; echo "$what"; }
    what=$(shim_sockets_left)
    [ -z "$what" ] || { echo "shim sockets left:"; echo "$what"; }
    [ -n "$CTRD_PID" ] || return 0
    what=$(ctr_ task ls -q; ctr_ container ls -q)
    [ -z "$what" ] || { echo "tasks or containers left:"; echo "$what"; }
}
finish_suite containerd
