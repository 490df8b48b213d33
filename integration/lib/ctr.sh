# shellcheck shell=bash
# Shared by the suites that drive a private containerd with ctr (containerd/run.sh through the runc
# shim, shim/run.sh through minirunc's shim): ctr helpers, the daemon's start, and the scenarios
# both run. The suite sets SUITE_DIR, SOCK, NS, FIFO_DIR, IMG, RUNTIME_STATE (the runtime's state
# dir for this namespace) and defines run_ (its `ctr run` with the runtime under test), and, for
# finish_suite, leftover and cleanup.

ctr_() { timeout "${CTR_TIMEOUT:-60}" ctr --address "$SOCK" --namespace "$NS" "$@"; }
cexec_() { ctr_ task exec --fifo-dir "$FIFO_DIR" "$@"; }

# Delete a stopped task and print its exit status: ctr 1.6 `task delete` exits 0 and reports a
# non-zero status only as a warning "task ID exit with non-zero exit code N".
task_exit() { # ID
    local out code
    out=$(ctr_ task delete "$1" 2>&1)
    code=$(printf '%s\n' "$out" | sed -n 's/.*exit with non-zero exit code \([0-9]*\).*/\1/p')
    echo "${code:-0}"
}

# A column of task ID in `ctr task ls`: 2 is the pid, 3 the status.
task_field() { # ID COLUMN
    ctr_ task ls | awk -v id="$1" -v c="$2" '$1 == id { print $c }'
}

# Wait until task ID has status STATUS (at most 10 s).
wait_status() { # ID STATUS
    for _ in $(seq 100); do
        [ "$(task_field "$1" 3)" = "$2" ] && return 0
        sleep 0.1
    done
    echo "task $1 did not reach status $2: $(ctr_ task ls)"
    return 1
}

# After a failed scenario: show containerd's last errors (the shim's "OCI runtime ... failed"
# reports), then remove every task and container of the namespace through containerd.
after_failure() {
    local id
    if [ -e "$SUITE_DIR/containerd.log" ]; then
        echo "last errors of containerd:"
        grep 'level=error' "$SUITE_DIR/containerd.log" | grep -v -e 'failed to load cni' -e 'copy shim log' | tail -3
    fi
    # The runtime's kill may be what failed: end the containers' processes directly first.
    kill_container_processes "/$NS/"
    for id in $(CTR_TIMEOUT=15 ctr_ task ls -q 2>/dev/null); do
        CTR_TIMEOUT=15 ctr_ task rm -f "$id" >/dev/null 2>&1
    done
    for id in $(CTR_TIMEOUT=15 ctr_ container ls -q 2>/dev/null); do
        CTR_TIMEOUT=15 ctr_ container rm "$id" >/dev/null 2>&1
    done
}

# After the scenarios: wait for the shims to exit, check that nothing of the containers is left
# (the suite's `leftover`), clean up (its `cleanup`), check that nothing of the suite is left, and
# print the summary.
finish_suite() { # NAME
    for _ in $(seq 100); do
        [ -z "$(live_processes "$SUITE_DIR" "/$NS/" | awk -v d="$CTRD_PID" '$1 != d')" ] && break
        sleep 0.1
    done
    record "nothing of the containers left behind" "$(leftover)"
    cleanup
    CTRD_PID=""
    record "suite cleanup complete" "$(leftover; cgroups_named "$NS"
        [ ! -e "$SUITE_DIR" ] || echo "suite dir left: $SUITE_DIR")"
    summary "$1"
}

# Start containerd with the suite's config template (@DIR@: the suite dir, @RUNTIME@: RUNTIME);
# sets CTRD_PID. PATH_PREFIX (optional) goes first in the daemon's PATH, where it finds shims.
start_containerd() { # TEMPLATE [PATH_PREFIX]
    sed -e "s|@DIR@|$SUITE_DIR|g" -e "s|@RUNTIME@|$RUNTIME|g" "$1" >"$SUITE_DIR/config.toml"
    PATH="${2:+$2:}$PATH" containerd --config "$SUITE_DIR/config.toml" >"$SUITE_DIR/containerd.log" 2>&1 &
    CTRD_PID=$!
    for _ in $(seq 100); do
        ctr --address "$SOCK" version >/dev/null 2>&1 && return 0
        kill -0 "$CTRD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "containerd did not start:" >&2
    tail -20 "$SUITE_DIR/containerd.log" >&2
    exit 2
}

t_ten_at_once() {
    local i pids="" out=$SUITE_DIR/ten bad=0
    mkdir -p "$out"
    for i in $(seq 10); do
        run_ --rm "$IMG" "$NS-many$i" sh -c "echo ok-$i" >"$out/$i" 2>&1 &
        pids="$pids $!"
    done
    i=0
    for pid in $pids; do
        i=$((i + 1))
        wait "$pid" || { echo "container $i failed (exit $?): $(cat "$out/$i")"; bad=1; }
        [ "$(cat "$out/$i")" = "ok-$i" ] || { echo "container $i printed: $(cat "$out/$i")"; bad=1; }
    done
    want_eq "$bad" 0 "all ten containers succeeded"
}

t_failing_start() {
    local id=$NS-fail out rc=0
    out=$(run_ --rm "$IMG" "$id" /nonexistent/binary 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || { echo "a nonexistent executable started"; return 1; }
    # The runtime's own reason, naming the executable (not e.g. a missing log.json).
    want_match "$out" "$MISSING_EXEC_ERROR" "error"
    want_eq "$(ctr_ task ls -q | grep -cx "$id" || true)" 0 "tasks named $id"
    want_eq "$(ctr_ container ls -q | grep -cx "$id" || true)" 0 "containers named $id"
    want_eq "$(ctr_ snapshot ls | awk -v id="$id" '$1 == id' | wc -l)" 0 "snapshots named $id"
    want_eq "$(mounts_under "$id")" "" "mounts of $id"
    [ ! -e "$RUNTIME_STATE/$id" ] || { echo "runtime state left: $RUNTIME_STATE/$id"; return 1; }
    want_eq "$(cgroups_named "$id")" "" "cgroups of $id"
}
