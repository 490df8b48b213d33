#!/bin/bash
# The cgroup v2 scenarios, run by the VM's /init (see init) on a pure cgroup2 host: only cgroup2
# is mounted, at /sys/fs/cgroup. Each scenario checks what the container saw and what the host's
# cgroup files hold. Prints PASS/FAIL lines (lib/common.sh's scenario) and a summary; run.sh on
# the real host reads them from the serial console.
set -u
# shellcheck source=../lib/common.sh
. /suite/common.sh
# SCENARIOS (regex) as given to run.sh.
# shellcheck source=/dev/null
[ ! -r /suite/env ] || . /suite/env

SUITE_DIR=/tmp/mrt-v2
STATE=/run/mrt-v2/state
DATA=/tmp/mrt-v2/data
BUNDLES=/tmp/mrt-v2/bundles
ROOTFS=/suite/rootfs
CG=/sys/fs/cgroup
# Every container's cgroupsPath is /mrt-v2/<id> (runtimes differ in their default).
PARENT=$CG/mrt-v2
mkdir -p "$SUITE_DIR" "$STATE" "$DATA" "$BUNDLES"

# The runtime under test is installed as minirunc; runc (the reference) has no --data-root.
RT_FLAGS=(--root "$STATE")
if minirunc --help 2>&1 | grep -q -- --data-root; then RT_FLAGS+=(--data-root "$DATA"); fi
rt() { minirunc "${RT_FLAGS[@]}" "$@"; }
cgdir() { echo "$PARENT/$1"; }

# make_bundle NAME JQ-FILTER: `minirunc spec` with the shared rootfs, no terminal, `sleep 600` as
# the process, the cgroup /mrt-v2/NAME, then FILTER. Prints the bundle's path.
make_bundle() {
    local dir=$BUNDLES/$1
    mkdir -p "$dir"
    rt spec --bundle "$dir"
    jq --arg rootfs "$ROOTFS" --arg cgroup "/mrt-v2/$1" \
        ".root.path = \$rootfs | .process.terminal = false | .process.args = [\"sleep\", \"600\"]
         | .linux.cgroupsPath = \$cgroup | $2" \
        "$dir/config.json" >"$dir/config.tmp"
    mv "$dir/config.tmp" "$dir/config.json"
    echo "$dir"
}

# start ID BUNDLE: a detached container, its stdio in $SUITE_DIR/ID.log.
start() {
    rt run --detach --bundle "$2" "$1" </dev/null >"$SUITE_DIR/$1.log" 2>&1 ||
        { cat "$SUITE_DIR/$1.log"; return 1; }
}

status_of() { rt state "$1" | jq -r .status; }
init_pid() { rt state "$1" | jq -r .pid; }

# finish ID: delete --force, and the container's cgroup must be gone.
finish() {
    rt delete --force "$1"
    [ ! -e "$(cgdir "$1")" ] || { echo "delete left $(cgdir "$1")"; return 1; }
}

# want_file ID FILE VALUE: the host's cgroup file of container ID holds VALUE.
want_file() { want_eq "$(cat "$(cgdir "$1")/$2")" "$3" "host $2"; }

# want_seen ID FILE VALUE: the container's own /sys/fs/cgroup/FILE (its cgroup namespace) holds VALUE.
want_seen() { want_eq "$(rt exec "$1" cat "/sys/fs/cgroup/$2")" "$3" "container's $2"; }

# Wait (at most 5 s) until COMMAND succeeds.
wait_for() {
    for _ in $(seq 50); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
procs_empty() { [ -z "$(cat "$(cgdir "$1")/cgroup.procs")" ]; }

# After a failed scenario: end every container of the suite so the next one starts clean.
after_failure() {
    local id pid
    kill_container_processes /mrt-v2/
    for id in $(rt list --quiet 2>/dev/null); do rt delete --force "$id"; done
    # containerd-oom's containerd, shim and ctr, and its container.
    for pid in $(live_processes "$CTRD" | cut -d' ' -f1); do kill -KILL "$pid"; done
    for id in $(minirunc --root "$CTRD_STATE" list --quiet 2>/dev/null); do
        MINIRUNC_DATA_ROOT=$DATA minirunc --root "$CTRD_STATE" delete --force "$id"
    done
    rm -rf "$CTRD" /run/containerd
    losetup -d /dev/loop0 2>/dev/null
}

# ---- scenarios -------------------------------------------------------------------------------

# Limits given at create: memory (+swap), pids, cpu quota/period and shares, io weight; the
# controllers enabled on the way down; the container sees its own cgroup through its namespace.
limits_at_create() {
    local id=mrt-v2-limits b pid
    b=$(make_bundle "$id" '.linux.resources += {
        memory: {limit: 67108864, swap: 100663296, reservation: 16777216},
        pids: {limit: 50},
        cpu: {shares: 512, quota: 20000, period: 100000, burst: 1000, cpus: "0", mems: "0"},
        blockIO: {weight: 500},
        hugepageLimits: [{pageSize: "2MB", limit: 4194304}]}')
    start "$id" "$b"
    for dir in "$CG" "$PARENT"; do
        for c in cpu io memory pids; do
            want_match "$(cat "$dir/cgroup.subtree_control")" "(^| )$c( |$)" "$dir/cgroup.subtree_control"
        done
    done
    want_file "$id" memory.max 67108864
    # memory.swap.max holds swap alone: OCI's memory+swap minus the memory limit.
    want_file "$id" memory.swap.max 33554432
    want_file "$id" pids.max 50
    want_file "$id" cpu.max "20000 100000"
    # runc's conversion: 1 + (shares - 2) * 9999 / 262142.
    want_file "$id" cpu.weight 20
    want_file "$id" cpu.max.burst 1000
    want_file "$id" cpuset.cpus 0
    want_file "$id" cpuset.mems 0
    # blkio.weight 10..1000 onto io.weight 1..10000.
    want_file "$id" io.weight "default 4950"
    want_file "$id" memory.low 16777216
    want_file "$id" hugetlb.2MB.max 4194304
    pid=$(init_pid "$id")
    want_eq "$(cat "/proc/$pid/cgroup")" "0::/mrt-v2/$id" "host /proc/$pid/cgroup"
    want_eq "$(cat "$(cgdir "$id")/cgroup.procs")" "$pid" "host cgroup.procs"
    # Inside: the cgroup namespace is rooted at the container's cgroup, mounted as cgroup2.
    want_eq "$(rt exec "$id" cat /proc/self/cgroup)" "0::/" "container's /proc/self/cgroup"
    want_match "$(rt exec "$id" grep ' /sys/fs/cgroup ' /proc/self/mountinfo)" ' - cgroup2 ' "container's /sys/fs/cgroup mount"
    want_seen "$id" memory.max 67108864
    want_seen "$id" memory.swap.max 33554432
    want_seen "$id" pids.max 50
    want_seen "$id" cpu.max "20000 100000"
    want_seen "$id" cpu.weight 20
    want_seen "$id" hugetlb.2MB.max 4194304
    finish "$id"
}

# pids.max stops forks inside the container.
pids_limit_enforced() {
    local id=mrt-v2-pids b out rc=0
    b=$(make_bundle "$id" '.linux.resources += {pids: {limit: 8}}')
    start "$id" "$b"
    want_seen "$id" pids.max 8
    out=$(rt exec "$id" sh -c 'for i in $(seq 20); do sleep 60 </dev/null >/dev/null 2>&1 & done; echo all-forked' 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || { echo "20 forks under pids.max 8 succeeded: $out"; return 1; }
    want_contains "$out" "can't fork" "the fork bomb's output"
    case $out in *all-forked*) echo "the loop finished: $out"; return 1 ;; esac
    want_match "$(cat "$(cgdir "$id")/pids.current")" '^[1-8]$' "host pids.current"
    want_match "$(cat "$(cgdir "$id")/pids.events")" '^max [1-9]' "host pids.events"
    finish "$id"
}

# A process allocating past memory.max is OOM-killed; memory.events, `events` and `events --stats`
# report it, and the container's init survives.
memory_oom() {
    local id=mrt-v2-oom b rc=0 ev
    b=$(make_bundle "$id" '.linux.resources += {memory: {limit: 33554432}}')
    start "$id" "$b"
    want_file "$id" memory.max 33554432
    rt events --interval 60s "$id" >"$SUITE_DIR/$id.events" 2>&1 &
    ev=$!
    # Let `events` read the OOM count before the kill.
    sleep 0.3
    # dd volunteers as the victim: a second OOM kill, while its memory is being freed, must not
    # pick the container's init.
    rt exec "$id" sh -c 'echo 1000 >/proc/self/oom_score_adj; exec dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null' || rc=$?
    want_eq "$rc" 137 "exit status of dd allocating 64M under a 32M limit (SIGKILL)"
    want_match "$(cat "$(cgdir "$id")/memory.events")" 'oom_kill [1-9]' "host memory.events"
    if ! wait_for grep -q '"type":"oom"' "$SUITE_DIR/$id.events"; then
        echo "no oom event from minirunc events: $(cat "$SUITE_DIR/$id.events")"
        return 1
    fi
    want_match "$(rt events --stats "$id" | jq .data.memory.usage.failcnt)" '^[1-9]' "events --stats memory failcnt"
    want_eq "$(status_of "$id")" running "state after the OOM kill of an exec'd process"
    finish "$id"
    # events ends by itself once the container is gone.
    wait_for sh -c "! kill -0 $ev 2>/dev/null" || { kill "$ev"; echo "events did not end with the container"; return 1; }
    wait "$ev"
}

# containerd (Debian's 1.6, with ctr) and minirunc's shim, whose OOM watcher learns of a kill from
# the cgroup's memory.events (cgroup v2 has no OOM notification): a container whose init is
# OOM-killed under its memory limit is reported once as /tasks/oom and exits 137. The report must
# come while the stopped task is kept (not only from the shim's last look at delete), and the
# cgroup's removal under the watch must not make a second one. The container runs from the
# suite's rootfs (`ctr run --rootfs`: no image, no snapshot), its cgroup below the suite's parent.
CTRD=$SUITE_DIR/containerd
# The shim's runtime root for the namespace mrt-v2.
CTRD_STATE=/run/containerd/minirunc/mrt-v2
ctr_() { timeout 60 ctr --address "$CTRD/containerd.sock" --namespace mrt-v2 "$@"; }
# Topics of container ID in the events log, in order.
ctr_topics() { grep -F "\"$1\"" "$CTRD/events" | grep -o ' /tasks/[a-z-]* ' | tr -d ' ' | tr '\n' ' '; }

containerd_oom() {
    local id=mrt-v2-ctr-oom ctrd ev i out
    mkdir -p "$CTRD"
    sed "s|@DIR@|$CTRD|g" /suite/containerd.toml >"$CTRD/config.toml"
    # minirunc's layers go to the suite's data root, checked by nothing-left.
    MINIRUNC_DATA_ROOT=$DATA containerd --config "$CTRD/config.toml" >"$CTRD/containerd.log" 2>&1 &
    ctrd=$!
    for i in $(seq 300); do
        ! ctr_ version >/dev/null 2>&1 || break
        [ "$i" -lt 300 ] || { echo "containerd did not start:"; tail -5 "$CTRD/containerd.log"; return 1; }
        sleep 0.1
    done
    ctr_ events >"$CTRD/events" 2>&1 &
    ev=$!
    # Subscribed once a namespace update shows in the log.
    ctr_ namespaces create mrt-v2
    for i in $(seq 100); do
        ctr_ namespaces label mrt-v2 "mrt-v2-probe=$i"
        ! grep -q ' /namespaces/update ' "$CTRD/events" || break
        [ "$i" -lt 100 ] || { echo "ctr events shows no event"; return 1; }
    done
    # dd's 64 MiB buffer, filled from /dev/zero, does not fit in 16 MiB.
    ctr_ run -d --null-io --rootfs --runtime io.containerd.minirunc.v1 --memory-limit 16777216 \
        --cgroup "/mrt-v2/$id" "$ROOTFS" "$id" dd if=/dev/zero of=/dev/null bs=64M count=1
    for i in $(seq 300); do
        ! ctr_topics "$id" | grep -q /tasks/oom || break
        [ "$i" -lt 300 ] || { echo "no /tasks/oom for $id: $(ctr_topics "$id")"; return 1; }
        sleep 0.1
    done
    want_match "$(cat "$(cgdir "$id")/memory.events")" 'oom_kill 1' "host memory.events"
    wait_for sh -c "! grep -q . $(cgdir "$id")/cgroup.procs"
    rmdir "$(cgdir "$id")"
    # ctr 1.6 reports the exit status of a deleted task in a warning only.
    out=$(ctr_ task delete "$id" 2>&1)
    want_contains "$out" "exit code 137" "ctr task delete"
    ctr_ container rm "$id"
    for i in $(seq 50); do
        ! ctr_topics "$id" | grep -q /tasks/delete || break
        sleep 0.1
    done
    kill "$ev"
    wait "$ev" || true
    want_eq "$(ctr_topics "$id" | grep -o /tasks/oom | wc -l)" 1 "/tasks/oom events of $id"
    want_eq "$(ctr_topics "$id" | sed 's|/tasks/oom ||')" "/tasks/create /tasks/start /tasks/exit /tasks/delete " \
        "the other task events of $id"
    kill "$ctrd"
    wait "$ctrd" || true
    # The shim leaves after the delete.
    wait_processes_gone "$CTRD" || { echo "left: $(live_processes "$CTRD")"; return 1; }
    want_eq "$(ls "$CTRD_STATE")" "" "the shim's runtime state left"
    rm -rf "$CTRD" /run/containerd
}

# pause/resume through cgroup.freeze; state says paused.
pause_resume() {
    local id=mrt-v2-pause b
    b=$(make_bundle "$id" .)
    start "$id" "$b"
    rt pause "$id"
    want_eq "$(status_of "$id")" paused "state after pause"
    want_file "$id" cgroup.freeze 1
    want_match "$(cat "$(cgdir "$id")/cgroup.events")" 'frozen 1' "host cgroup.events"
    want_eq "$(host_freezer_state "$(init_pid "$id")")" FROZEN "freezer state of init"
    rt resume "$id"
    want_eq "$(status_of "$id")" running "state after resume"
    want_file "$id" cgroup.freeze 0
    want_match "$(cat "$(cgdir "$id")/cgroup.events")" 'frozen 0' "host cgroup.events"
    want_eq "$(rt exec "$id" echo alive)" alive "exec after resume"
    # A frozen container's processes must still die on delete --force.
    rt pause "$id"
    finish "$id"
}

# update with runc's flags, then with a LinuxResources JSON on stdin (containerd's way). A value
# left out keeps its current value, also where one v2 file holds two OCI values: cpu.max (quota
# and period) and memory.swap.max (OCI's swap is memory+swap, the file holds swap alone), as runc
# does and as v1's separate files behave.
update_limits() {
    local id=mrt-v2-update b rc=0
    b=$(make_bundle "$id" '.linux.resources += {memory: {limit: 67108864}, pids: {limit: 50},
        cpu: {quota: 20000, period: 100000}}')
    start "$id" "$b"
    rt update --memory 128M --pids-limit 30 "$id"
    want_file "$id" memory.max 134217728
    want_file "$id" pids.max 30
    want_seen "$id" memory.max 134217728
    rt update --memory-swap 256M "$id"
    want_file "$id" memory.swap.max 134217728
    # memory+swap stays 256M.
    rt update --memory 192M "$id"
    want_file "$id" memory.max 201326592
    want_file "$id" memory.swap.max 67108864
    rt update --memory 512M "$id" 2>/dev/null || rc=$?
    [ "$rc" -ne 0 ] || { echo "update --memory over memory+swap (256M) succeeded"; return 1; }
    want_file "$id" memory.max 201326592
    rt update --cpu-period 50000 "$id"
    want_file "$id" cpu.max "20000 50000"
    rt update --cpu-quota 30000 "$id"
    want_file "$id" cpu.max "30000 50000"
    echo '{"memory": {"limit": 100663296, "swap": 201326592},
           "cpu": {"shares": 2048, "quota": 40000, "period": 100000}, "pids": {"limit": 40}}' |
        rt update --resources - "$id"
    want_file "$id" memory.max 100663296
    want_file "$id" memory.swap.max 100663296
    want_file "$id" cpu.max "40000 100000"
    want_file "$id" cpu.weight 79
    want_file "$id" pids.max 40
    want_seen "$id" pids.max 40
    finish "$id"
}

# ps --format json lists the host pids of the cgroup.
ps_json() {
    local id=mrt-v2-ps b got want
    b=$(make_bundle "$id" '.process.args = ["sh", "-c", "sleep 600 & sleep 600 & wait"]')
    start "$id" "$b"
    wait_for sh -c "[ \$(wc -l <$(cgdir "$id")/cgroup.procs) -eq 3 ]" || true
    got=$(rt ps --format json "$id" | jq -c 'sort')
    want=$(sort -n "$(cgdir "$id")/cgroup.procs" | jq -sc .)
    want_eq "$got" "$want" "ps --format json (host cgroup.procs)"
    want_eq "$(echo "$got" | jq length)" 3 "number of processes"
    finish "$id"
}

# kill --all ends every process of the cgroup (cgroup.kill on v2); delete removes the cgroup.
kill_all() {
    local id=mrt-v2-killall b
    local pid
    b=$(make_bundle "$id" .)
    start "$id" "$b"
    pid=$(init_pid "$id")
    rt exec -d "$id" sleep 600
    rt exec -d "$id" sleep 601
    # TERM goes to every process; init (sleep, pid 1 of its namespace, no handler) ignores it.
    rt kill --all "$id" TERM
    wait_for sh -c "[ \"\$(cat $(cgdir "$id")/cgroup.procs)\" = $pid ]" ||
        { echo "after kill --all TERM: $(cat "$(cgdir "$id")/cgroup.procs"), init $pid"; return 1; }
    rt exec -d "$id" sleep 602
    rt kill --all "$id" KILL
    wait_for procs_empty "$id" || { echo "left in cgroup.procs: $(cat "$(cgdir "$id")/cgroup.procs")"; return 1; }
    wait_for sh -c "[ \"\$(minirunc --root $STATE state $id | jq -r .status)\" = stopped ]" ||
        { echo "state after kill --all: $(status_of "$id")"; return 1; }
    rt delete "$id"
    [ ! -e "$(cgdir "$id")" ] || { echo "delete left $(cgdir "$id")"; return 1; }
}

# events --stats: memory from memory.stat/memory.current, pids, cpu usage and throttling from cpu.stat.
events_stats() {
    local id=mrt-v2-stats b stats host_usage
    b=$(make_bundle "$id" '.linux.resources += {memory: {limit: 67108864}, pids: {limit: 20},
        cpu: {quota: 10000, period: 100000}} | .process.args = ["sh", "-c", "while :; do :; done"]')
    start "$id" "$b"
    # A busy loop at 10% of a CPU is throttled every period.
    sleep 1
    host_usage=$(awk '$1 == "usage_usec" { print $2 }' "$(cgdir "$id")/cpu.stat")
    stats=$(rt events --stats "$id")
    want_eq "$(echo "$stats" | jq -r .type)" stats "event type"
    want_eq "$(echo "$stats" | jq -r .id)" "$id" "event id"
    want_eq "$(echo "$stats" | jq .data.memory.usage.limit)" 67108864 "memory.usage.limit"
    want_match "$(echo "$stats" | jq .data.memory.usage.usage)" '^[1-9]' "memory.usage.usage"
    want_eq "$(echo "$stats" | jq '.data.memory.raw | has("anon")')" true "memory.raw has memory.stat's anon"
    want_eq "$(echo "$stats" | jq .data.pids.current)" "$(cat "$(cgdir "$id")/pids.current")" "pids.current"
    want_eq "$(echo "$stats" | jq .data.pids.limit)" 20 "pids.limit"
    want_eq "$(echo "$stats" | jq ".data.cpu.usage.total >= $host_usage * 1000")" true \
        "cpu.usage.total (ns) >= host usage_usec * 1000 read before"
    want_match "$(echo "$stats" | jq .data.cpu.throttling.throttledPeriods)" '^[1-9]' "cpu.throttling.throttledPeriods"
    finish "$id"
}

# Device rules become an eBPF program on the cgroup: the spec denies everything, allows /dev/kmsg
# (1:11) for reading only; the defaults (null, zero, ..., mknod of any char device) stay allowed.
devices_ebpf() {
    local id=mrt-v2-devices b dir out rc=0
    # CAP_SYSLOG: /dev/kmsg itself refuses readers without it (dmesg_restrict).
    b=$(make_bundle "$id" '.process.capabilities |= map_values(. + ["CAP_MKNOD", "CAP_SYSLOG"])
        | .linux.resources.devices += [{allow: true, type: "c", major: 1, minor: 11, access: "r"}]')
    start "$id" "$b"
    out=$(rt exec "$id" sh -c 'mknod /dev/mrt-mem c 1 1 && cat /dev/mrt-mem' 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || { echo "reading a 1:1 node succeeded"; return 1; }
    want_contains "$out" "Operation not permitted" "opening a denied device (c 1:1)"
    want_eq "$(rt exec "$id" sh -c 'echo x >/dev/null && head -c 3 /dev/zero | wc -c')" 3 "/dev/null and /dev/zero"
    rt exec "$id" sh -c 'mknod /dev/mrt-kmsg c 1 11 && head -c 0 /dev/mrt-kmsg'
    rc=0
    out=$(rt exec "$id" sh -c 'echo x >/dev/mrt-kmsg' 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || { echo "writing 1:11 (allowed r only) succeeded"; return 1; }
    want_contains "$out" "Operation not permitted" "writing a read-only allowed device"
    # The program sits on the host's cgroup itself: a host process moved into it (no namespace,
    # the host's /dev) is refused the same device.
    dir=$(cgdir "$id")
    mknod "$SUITE_DIR/mrt-mem" c 1 1
    rc=0
    out=$(sh -c "echo \$\$ >$dir/cgroup.procs && exec cat $SUITE_DIR/mrt-mem" 2>&1) || rc=$?
    rm -f "$SUITE_DIR/mrt-mem"
    [ "$rc" -ne 0 ] || { echo "a host process in the container's cgroup read 1:1"; return 1; }
    want_contains "$out" "Operation not permitted" "host process in the cgroup opening c 1:1"
    sh -c "echo \$\$ >$dir/cgroup.procs && exec cat /dev/null"
    finish "$id"
}

# io.max throttles and io.weight on a real block device (a loop device over a tmpfs file); io.stat
# reaches events --stats as blkio entries.
io_limits() {
    local id=mrt-v2-io b stats read out
    dd if=/dev/zero of="$SUITE_DIR/disk" bs=1M count=8 2>/dev/null
    losetup /dev/loop0 "$SUITE_DIR/disk"
    # The device and its cgroup rule, as docker and containerd pass them.
    b=$(make_bundle "$id" '.linux.devices += [{path: "/dev/loop0", type: "b", major: 7, minor: 0}]
        | .linux.resources.devices += [{allow: true, type: "b", major: 7, minor: 0, access: "rw"}]
        | .linux.resources.blockIO = {weight: 300,
            throttleReadBpsDevice: [{major: 7, minor: 0, rate: 4194304}],
            throttleWriteIOPSDevice: [{major: 7, minor: 0, rate: 200}]}')
    start "$id" "$b"
    want_file "$id" io.max "7:0 rbps=4194304 wbps=max riops=max wiops=200"
    want_file "$id" io.weight "default 2930"
    want_seen "$id" io.max "7:0 rbps=4194304 wbps=max riops=max wiops=200"
    out=$(rt exec "$id" dd if=/dev/loop0 of=/dev/null bs=64k count=16 2>&1) ||
        { echo "reading /dev/loop0 in the container: $out"; return 1; }
    want_match "$(cat "$(cgdir "$id")/io.stat")" '^7:0 rbytes=[0-9]{7}' "host io.stat"
    stats=$(rt events --stats "$id")
    # runc's JSON omits zero fields (omitempty), minor 0 included.
    read=$(echo "$stats" | jq '[.data.blkio.ioServiceBytesRecursive[]
        | select(.major == 7 and (.minor // 0) == 0 and .op == "Read") | .value] | add')
    want_eq "$(echo "$read" | jq '. >= 1048576')" true \
        "events --stats Read bytes of 7:0 ($read) in $(echo "$stats" | jq -c .data.blkio), io.stat: $(cat "$(cgdir "$id")/io.stat")"
    finish "$id"
    losetup -d /dev/loop0
    rm -f "$SUITE_DIR/disk"
}

# --systemd-cgroup with slice:prefix:name, as containerd's SystemdCgroup = true passes it (no
# systemd here: the cgroup is made at the unit's path through cgroupfs). Controllers must be
# enabled at each level of the nested slices.
systemd_cgroup_path() {
    local id=mrt-v2-systemd b dir
    b=$(make_bundle "$id" '.linux.cgroupsPath = "mrt-v2.slice:mrt:v2sd"
        | .linux.resources += {memory: {limit: 58720256}, pids: {limit: 33}}')
    rt --systemd-cgroup run --detach --bundle "$b" "$id" \
        </dev/null >"$SUITE_DIR/$id.log" 2>&1 || { cat "$SUITE_DIR/$id.log"; return 1; }
    dir=$CG/mrt.slice/mrt-v2.slice/mrt-v2sd.scope
    want_eq "$(cat "/proc/$(init_pid "$id")/cgroup")" "0::/mrt.slice/mrt-v2.slice/mrt-v2sd.scope" "init's cgroup"
    want_eq "$(cat "$dir/memory.max") $(cat "$dir/pids.max")" "58720256 33" "host memory.max and pids.max"
    want_eq "$(rt exec "$id" cat /sys/fs/cgroup/memory.max)" 58720256 "container's memory.max"
    rt pause "$id"
    want_eq "$(cat "$dir/cgroup.freeze")" 1 "cgroup.freeze after pause"
    rt delete --force "$id"
    [ ! -e "$dir" ] || { echo "delete left $dir"; return 1; }
    # The slices stay, as with systemd's driver; they must be empty.
    rmdir "$CG/mrt.slice/mrt-v2.slice" "$CG/mrt.slice"
}

# Without a cgroup namespace the container's /sys/fs/cgroup is its own cgroup bound from the host
# (never the host's root), and /proc/self/cgroup shows the host path.
cgroup_mount_without_cgroupns() {
    local id=mrt-v2-nocgns b
    b=$(make_bundle "$id" '.linux.namespaces |= map(select(.type != "cgroup"))
        | .linux.resources += {memory: {limit: 50331648}}')
    start "$id" "$b"
    want_eq "$(rt exec "$id" cat /proc/self/cgroup)" "0::/mrt-v2/$id" "container's /proc/self/cgroup"
    want_seen "$id" memory.max 50331648
    want_eq "$(rt exec "$id" sh -c 'ls /sys/fs/cgroup | grep -c "^mrt-v2$"' || true)" 0 \
        "the host's root cgroup hidden (no mrt-v2/ in the container's /sys/fs/cgroup)"
    finish "$id"
}

# A container managing its own sub-cgroups (systemd or a runtime inside, with /sys/fs/cgroup
# mounted rw): ps, pause and delete --force must reach the processes and directories below.
nested_cgroups() {
    local id=mrt-v2-nested b inner
    b=$(make_bundle "$id" '.mounts |= map(if .destination == "/sys/fs/cgroup"
        then .options -= ["ro"] else . end)')
    start "$id" "$b"
    rt exec -d "$id" sh -c 'mkdir /sys/fs/cgroup/inner && echo $$ >/sys/fs/cgroup/inner/cgroup.procs && exec sleep 600'
    inner=$(cgdir "$id")/inner
    wait_for sh -c "[ -n \"\$(cat $inner/cgroup.procs 2>/dev/null)\" ]" ||
        { echo "no process in $inner"; return 1; }
    want_eq "$(rt ps --format json "$id" | jq length)" 2 "ps --format json count (init and the inner sleep)"
    rt pause "$id"
    want_match "$(cat "$inner/cgroup.events")" 'frozen 1' "inner cgroup.events after pause"
    rt resume "$id"
    want_match "$(cat "$inner/cgroup.events")" 'frozen 0' "inner cgroup.events after resume"
    finish "$id"
}

# linux.resources.unified: written as given, after (so over) the converted values.
unified_keys() {
    local id=mrt-v2-unified b
    b=$(make_bundle "$id" '.linux.resources += {pids: {limit: 100},
        unified: {"memory.high": "50331648", "pids.max": "42", "cpu.weight": "300"}}')
    start "$id" "$b"
    want_file "$id" memory.high 50331648
    want_file "$id" pids.max 42
    want_file "$id" cpu.weight 300
    want_seen "$id" memory.high 50331648
    finish "$id"
}

# The cgroup exists from create (init waiting in it) and delete removes it, for a created, a
# running (--force) and an exited container; run removes it by itself.
delete_removes_cgroup() {
    local id=mrt-v2-delete b pid
    b=$(make_bundle "$id" '.process.args = ["true"]')
    rt create --bundle "$b" "$id" </dev/null >/dev/null 2>&1
    pid=$(init_pid "$id")
    want_eq "$(cat "$(cgdir "$id")/cgroup.procs")" "$pid" "cgroup.procs of a created container"
    rt delete --force "$id"
    [ ! -e "$(cgdir "$id")" ] || { echo "delete --force of a created container left its cgroup"; return 1; }
    rt create --bundle "$b" "$id" </dev/null >/dev/null 2>&1
    rt start "$id"
    wait_for sh -c "[ \"\$(minirunc --root $STATE state $id | jq -r .status)\" = stopped ]"
    rt delete "$id"
    [ ! -e "$(cgdir "$id")" ] || { echo "delete of an exited container left its cgroup"; return 1; }
    want_eq "$(rt run --bundle "$b" "$id" </dev/null 2>&1; echo "rc=$?")" rc=0 "run"
    [ ! -e "$(cgdir "$id")" ] || { echo "run left its cgroup"; return 1; }
}

# Nothing of the suite left: no container cgroup (the shared parent may stay, empty), no
# container process, state or layers, no overlay mount.
nothing_left() {
    local dirs
    dirs=$(find "$CG" -mindepth 1 -type d)
    case $dirs in "" | "$PARENT") ;; *) echo "cgroups left: $dirs"; return 1 ;; esac
    want_eq "$(live_processes /mrt-v2/ /mrt-v2/)" "" "container processes left"
    want_eq "$(ls "$STATE")" "" "state left"
    want_eq "$(find "$DATA" -mindepth 2)" "" "layers left"
    want_eq "$(awk '$3 == "overlay"' /proc/mounts)" "" "overlay mounts left"
}

scenario limits-at-create limits_at_create
scenario pids-limit-enforced pids_limit_enforced
scenario memory-oom memory_oom
if command -v containerd-shim-minirunc-v1 >/dev/null; then
    scenario containerd-oom containerd_oom
else
    echo "SKIP: containerd-oom (no containerd-shim-minirunc-v1 beside the runtime, or no containerd)"
fi
scenario pause-resume pause_resume
scenario update update_limits
scenario ps-json ps_json
scenario kill-all kill_all
scenario events-stats events_stats
scenario devices-ebpf devices_ebpf
scenario io-limits io_limits
scenario nested-cgroups nested_cgroups
scenario unified-keys unified_keys
if minirunc --version | grep -q '^minirunc'; then
    scenario systemd-cgroup-path systemd_cgroup_path
else
    echo "SKIP: systemd-cgroup-path ($(minirunc --version | head -1): its systemd driver needs a running systemd)"
fi
scenario cgroup-mount-without-cgroupns cgroup_mount_without_cgroupns
scenario delete-removes-cgroup delete_removes_cgroup
scenario nothing-left nothing_left
summary "cgroupv2-vm (in the VM)"
