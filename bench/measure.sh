#!/bin/bash
# One measurement pass in the current mount namespace: every workload, the runtimes interleaved
# round by round (A,B,C,A,B,C...), raw samples appended to $OUT as tab-separated lines:
#   T <workload> <runtime> <microseconds...>   time samples
#   M <workload> <runtime> <KiB...>            peak RSS samples
#   F <workload> <runtime> <count>             failed iterations
#   N <workload|*> <runtime> <reason>          not measured
#   I <key> <value>                            facts for the report
# Called by bench/run.sh, which prepares the bundles; see there for the environment it sets.
set -uo pipefail
export LC_ALL=C # EPOCHREALTIME must use '.' as decimal separator

: "${BENCH_DIR:?}" "${OUT:?}" "${MODE:?}" "${FLOOR:?}" "${MINIRUNC:?}"
RUNTIMES=${RUNTIMES:-minirunc runc crun}
COMMIT_COMPRESS_FLAGS=${COMMIT_COMPRESS_FLAGS:---compress gzip}
ROOTFS=$BENCH_DIR/rootfs
ERRLOG=$BENCH_DIR/errors-$MODE.log
STATE=/run/minirunc-bench.$$.$MODE # private --root of each runtime lives below
: >"$ERRLOG"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    N_LIFE=10 N_VERB=10 N_EXEC=10 N_RSS=3 N_CONC=50 R_CONC=1 SEQ_BATCHES=5 SEQ_BATCH=20 N_HF=5 N_COMMIT=1
else
    N_LIFE=50 N_VERB=50 N_EXEC=50 N_RSS=9 N_CONC=50 R_CONC=3 SEQ_BATCHES=5 SEQ_BATCH=100 N_HF=20 N_COMMIT=7
fi

declare -A BIN ROOT BUNDLE
MEASURED=() # real runtimes that passed their smoke test, in RUNTIMES order
PREMOUNTED=""  # the bind mount to undo at exit
PREMOUNT_OK=0 # minirunc ran on the pre-mounted rootfs

emit() { local IFS=$'\t'; printf '%s\n' "$*" >>"$OUT"; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

# rt RUNTIME ARGS...: one runtime invocation with its private root, quiet, stdin closed.
rt() {
    local name=$1
    shift
    "${BIN[$name]}" --root "${ROOT[$name]}" "$@" </dev/null >/dev/null 2>>"$ERRLOG"
}

# timed CMD...: run CMD quietly, set US to its wall time in microseconds, return its status.
timed() {
    local t0 t1 rc
    t0=${EPOCHREALTIME/./}
    "$@" </dev/null >/dev/null 2>>"$ERRLOG"
    rc=$?
    t1=${EPOCHREALTIME/./}
    US=$((t1 - t0))
    return $rc
}

declare -A SAMPLES FAILS
# sample KIND WORKLOAD RUNTIME VALUE / fail WORKLOAD RUNTIME: collected, flushed by flush.
sample() { SAMPLES["$1"$'\t'"$2"$'\t'"$3"]+="$4 "; }
fail() { FAILS["$1"$'\t'"$2"]=$((${FAILS["$1"$'\t'"$2"]:-0} + 1)); }
flush() {
    local k
    for k in "${!SAMPLES[@]}"; do emit "$k" "${SAMPLES[$k]% }"; done
    for k in "${!FAILS[@]}"; do emit F "$k" "${FAILS[$k]}"; done
    SAMPLES=() FAILS=()
}

# Remove every container a runtime still has under its private root, then the root itself.
cleanup_runtime() {
    local name=$1 id
    [ -n "${ROOT[$name]:-}" ] && [ -d "${ROOT[$name]}" ] || return 0
    # `list` and the state directories both, in case one of them is what broke.
    for id in $({ rt_list "$name"; find "${ROOT[$name]}" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'; } | sort -u); do
        stop_delete "$name" "$id" || echo "measure: could not delete $name container $id" >&2
    done
    rm -rf "${ROOT[$name]}"
}

# Kill, wait, then delete: runc 1.1's `delete -f` on cgroup v1 races the dying processes and logs
# failed cgroup removals; the forced delete stays as the fallback.
stop_delete() {
    rt "$1" kill "$2" KILL
    wait_stopped "$1" "$2" && rt "$1" delete "$2" && return 0
    rt "$1" delete -f "$2"
}

cleanup() {
    local name
    jobs -p | xargs -r kill 2>/dev/null
    wait 2>/dev/null
    for name in "${!ROOT[@]}"; do cleanup_runtime "$name"; done
    if [ -n "$PREMOUNTED" ] && mountpoint -q "$PREMOUNTED"; then umount "$PREMOUNTED"; fi
    rm -rf "$STATE" "$BENCH_DIR/out-$MODE"
    sweep_cgroups
}

# Every container id ends in -PID: a cgroup left with that suffix is a runtime's leftover. One
# retry after a pause, for removals the runtimes still have in flight.
sweep_cgroups() {
    local left dir
    left=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 4 -depth -type d -name "*-$$" 2>/dev/null)
    [ -z "$left" ] && return
    sleep 0.5
    for dir in $left; do
        # Plain directories in the private tmpfs of the cgroup2-hidden pass vanish with it.
        [ -d "$dir" ] && [[ $(stat -fc %T "$dir") == cgroup* ]] || continue
        rmdir "$dir" 2>/dev/null || echo "measure: could not remove leftover cgroup $dir" >&2
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait until a container is stopped (its init is gone); bounded so a stuck runtime cannot hang us.
wait_stopped() {
    local name=$1 id=$2 i
    for i in $(seq 200); do
        "${BIN[$name]}" --root "${ROOT[$name]}" state "$id" 2>/dev/null | grep -q '"status": *"stopped"' && return 0
        sleep 0.01
    done
    return 1
}

# lifecycle RUNTIME ID: one create+start+wait+delete of /bin/true, or the floor / harness baseline.
lifecycle() {
    case $1 in
    true) /bin/true ;;
    floor) "$FLOOR" "$ROOTFS" ;;
    *) rt "$1" run --bundle "${BUNDLE[$1]}" "$2" ;;
    esac
}

setup_runtimes() {
    local name bin reason
    mkdir -p "$STATE"
    for name in $RUNTIMES; do
        case $name in
        minirunc) bin=$MINIRUNC ;;
        *) bin=$(command -v "$name" || echo "$name") ;;
        esac
        if [ ! -x "$bin" ]; then
            emit N '*' "$name" "binary $bin not found"
            continue
        fi
        BIN[$name]=$bin ROOT[$name]=$STATE/$name BUNDLE[$name]=$BENCH_DIR/bundle-true
        emit I "version-$name" "$("$bin" --version 2>&1 | head -n1)"
        if ! out=$("$bin" --root "${ROOT[$name]}" run --bundle "${BUNDLE[$name]}" "smoke-$name-$$" </dev/null 2>&1); then
            reason=$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)
            emit N '*' "$name" "smoke test (run /bin/true) failed: ${reason:-no message}"
            cleanup_runtime "$name"
            continue
        fi
        MEASURED+=("$name")
    done
    if [ -n "${BIN[minirunc]:-}" ] && [[ " ${MEASURED[*]} " == *" minirunc "* ]]; then
        setup_premounted
    fi
}

# minirunc with a rootfs that is already a mount point (what containerd does): used as it is.
setup_premounted() {
    local dir=$BENCH_DIR/bundle-premounted/rootfs name=minirunc-premounted
    BIN[$name]=${BIN[minirunc]} ROOT[$name]=$STATE/$name BUNDLE[$name]=$BENCH_DIR/bundle-premounted
    if ! mount --bind "$dir" "$dir"; then
        emit N lifecycle "$name" "bind mount of $dir failed"
        return
    fi
    PREMOUNTED=$dir
    if rt "$name" run --bundle "${BUNDLE[$name]}" "smoke-$name-$$"; then
        PREMOUNT_OK=1
    else
        emit N lifecycle "$name" "smoke test on the pre-mounted rootfs failed (see $ERRLOG)"
    fi
}

bench_lifecycle() {
    local i name list=(true floor "${MEASURED[@]}")
    [ "$PREMOUNT_OK" = 1 ] && list+=(minirunc-premounted)
    echo "[$MODE] lifecycle: ${#list[@]} commands x $N_LIFE, interleaved" >&2
    for i in $(seq "$N_LIFE"); do
        for name in "${list[@]}"; do
            if timed lifecycle "$name" "l-$name-$i-$$"; then sample T lifecycle "$name" "$US"; else fail lifecycle "$name"; fi
        done
    done
    flush
}

# Each verb alone, on a container running sleep (so that kill has something to signal).
bench_verbs() {
    local i name id verb
    echo "[$MODE] verbs create/start/state/kill/delete x $N_VERB" >&2
    for i in $(seq "$N_VERB"); do
        for name in "${MEASURED[@]}"; do
            id=v-$name-$i-$$
            for verb in create start state kill delete; do
                case $verb in
                create) timed rt "$name" create --bundle "$BENCH_DIR/bundle-sleep" "$id" ;;
                kill) timed rt "$name" kill "$id" KILL ;;
                delete) wait_stopped "$name" "$id" && timed rt "$name" delete "$id" ;;
                *) timed rt "$name" "$verb" "$id" ;;
                esac && sample T "$verb" "$name" "$US" || fail "$verb" "$name"
            done
            "${BIN[$name]}" --root "${ROOT[$name]}" state "$id" >/dev/null 2>&1 && stop_delete "$name" "$id"
        done
    done
    flush
}

bench_exec() {
    local i name live=()
    echo "[$MODE] exec x $N_EXEC" >&2
    for name in "${MEASURED[@]}"; do
        if rt "$name" run --detach --bundle "$BENCH_DIR/bundle-sleep" "x-$name-$$"; then
            live+=("$name")
        else
            emit N exec "$name" "could not start the sleep container"
        fi
    done
    for i in $(seq "$N_EXEC"); do
        for name in "${live[@]}"; do
            if timed rt "$name" exec "x-$name-$$" /bin/true; then sample T exec "$name" "$US"; else fail exec "$name"; fi
        done
    done
    for name in "${live[@]}"; do stop_delete "$name" "x-$name-$$"; done
    flush
}

# Peak RSS of a created container's init so far (it waits on the exec fifo: the runtime's code only).
init_hwm() {
    local pid kib
    pid=$("${BIN[$1]}" --root "${ROOT[$1]}" state "$2" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
    kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/${pid:-0}/status" 2>/dev/null)
    if [ -n "$kib" ]; then sample M init "$1" "$kib"; else fail rss-init "$1"; fi
}

# Peak RSS (GNU time %M: the runtime process and the children it reaped) during create and run.
bench_rss() {
    local i name id kib=$BENCH_DIR/rss-$MODE.txt
    echo "[$MODE] peak RSS x $N_RSS" >&2
    for i in $(seq "$N_RSS"); do
        if /usr/bin/time -f %M -o "$kib" "$FLOOR" "$ROOTFS" 2>>"$ERRLOG"; then sample M run floor "$(tail -n1 "$kib")"; fi
        for name in "${MEASURED[@]}"; do
            id=m-$name-$i-$$
            if /usr/bin/time -f %M -o "$kib" "${BIN[$name]}" --root "${ROOT[$name]}" create \
                --bundle "$BENCH_DIR/bundle-sleep" "$id" </dev/null >/dev/null 2>>"$ERRLOG"; then
                sample M create "$name" "$(tail -n1 "$kib")"
                init_hwm "$name" "$id"
            else
                fail rss-create "$name"
            fi
            stop_delete "$name" "$id"
            if /usr/bin/time -f %M -o "$kib" "${BIN[$name]}" --root "${ROOT[$name]}" run \
                --bundle "${BUNDLE[$name]}" "$id" </dev/null >/dev/null 2>>"$ERRLOG"; then
                sample M run "$name" "$(tail -n1 "$kib")"
            else
                fail rss-run "$name"
            fi
        done
    done
    rm -f "$kib"
    flush
}

# N_CONC lifecycles at once; wall time until the last one ends, and how many failed.
bench_concurrent() {
    local r j name t0 failfile=$BENCH_DIR/conc-fail-$MODE
    echo "[$MODE] $N_CONC concurrent lifecycles x $R_CONC rounds" >&2
    for r in $(seq "$R_CONC"); do
        for name in floor "${MEASURED[@]}"; do
            : >"$failfile"
            t0=$(now_us)
            for j in $(seq "$N_CONC"); do
                { lifecycle "$name" "c-$name-$r-$j-$$" </dev/null >/dev/null 2>>"$ERRLOG" || echo x >>"$failfile"; } &
            done
            wait
            sample T concurrent "$name" $(($(now_us) - t0))
            emit F concurrent-round "$name" "$(wc -l <"$failfile")"
            [ "$name" = floor ] || [ -z "$(rt_list "$name")" ] || emit I "leftover-$MODE-$name" "$(rt_list "$name" | wc -l)"
        done
    done
    rm -f "$failfile"
    flush
}
rt_list() { "${BIN[$1]}" --root "${ROOT[$1]}" list -q 2>/dev/null; }

# SEQ_BATCHES batches of SEQ_BATCH sequential lifecycles; the per-lifecycle time of each batch.
bench_sequential() {
    local b k name t0
    echo "[$MODE] sequential: $SEQ_BATCHES batches of $SEQ_BATCH lifecycles" >&2
    emit I seq-batch "$SEQ_BATCH"
    for b in $(seq "$SEQ_BATCHES"); do
        for name in floor "${MEASURED[@]}"; do
            t0=$(now_us)
            for k in $(seq "$SEQ_BATCH"); do
                lifecycle "$name" "s-$name-$b-$k-$$" </dev/null >/dev/null 2>>"$ERRLOG" || fail sequential "$name"
            done
            sample T "batch-$b" "$name" $((($(now_us) - t0) / SEQ_BATCH))
        done
    done
    flush
}

# The same lifecycle under hyperfine (-N, no shell, one runtime after the other): a cross-check of
# the interleaved loop's numbers with an independent timer.
bench_hyperfine() {
    local name args=() json=$BENCH_DIR/hyperfine-$MODE.json
    command -v hyperfine >/dev/null || { emit N hyperfine '*' "hyperfine not installed"; return; }
    echo "[$MODE] hyperfine cross-check x $N_HF" >&2
    args+=(-n floor "$FLOOR $ROOTFS")
    for name in "${MEASURED[@]}"; do
        args+=(-n "$name" "${BIN[$name]} --root ${ROOT[$name]} run --bundle ${BUNDLE[$name]} hf-$name-$$")
    done
    if hyperfine -N --style none --warmup 3 --runs "$N_HF" --export-json "$json" "${args[@]}" \
        </dev/null >/dev/null 2>>"$ERRLOG"; then
        # One "command" line precedes each result's statistics in hyperfine's JSON.
        awk -F'[:,]' '/"command":/ { gsub(/[" ]/, "", $2); cmd = $2 }
            /"median":|"min":|"max":/ { gsub(/[" ]/, "", $1); printf "I\thf-%s-%s\t%d\n", cmd, $1, $2 * 1000000 }' \
            "$json" >>"$OUT"
    else
        emit N hyperfine '*' "hyperfine failed (see $ERRLOG)"
    fi
    rm -f "$json"
}

# commit (minirunc only) of a container on the Debian minbase tree, against GNU tar of that tree.
bench_commit() {
    local tree=$BENCH_DIR/debian-minbase out i id=commit-$$ can_commit=0
    if [ ! -d "$tree" ]; then
        emit N commit '*' "$(cat "$BENCH_DIR/debian-minbase.skip" 2>/dev/null || echo "no Debian minbase tree")"
        return
    fi
    echo "[$MODE] commit x $N_COMMIT" >&2
    # The archives go to tmpfs: their writeback to disk is neither tool's work, and it moved
    # either side's samples by 0.1 to 0.3 s (1.13x, 0.67x and 1.56x in three runs of one binary).
    out=$(mktemp -d /dev/shm/mrt-commit.XXXXXX)
    emit I commit-tree-bytes "$(du -sb "$tree" | cut -f1)"
    emit I commit-tree-files "$(find "$tree" | wc -l)"
    if [[ " ${MEASURED[*]} " != *" minirunc "* ]]; then
        emit N commit minirunc "minirunc not measured in this run"
    elif ! rt minirunc run --detach --bundle "$BENCH_DIR/bundle-debian" "$id"; then
        emit N commit minirunc "could not start a container on the Debian tree (see $ERRLOG)"
    elif ! rt minirunc commit "$id" "$out/probe.tar"; then
        emit N commit minirunc "minirunc commit failed: $(tail -n1 "$ERRLOG" | cut -c1-160)"
    else
        can_commit=1
        # shellcheck disable=SC2086 # the flags are a word list on purpose
        rt minirunc commit $COMMIT_COMPRESS_FLAGS "$id" "$out/probe.tar.gz" ||
            emit N commit-gz minirunc "minirunc commit $COMMIT_COMPRESS_FLAGS failed: $(tail -n1 "$ERRLOG" | cut -c1-160)"
    fi
    tar -cf "$out/warm.tar" -C "$tree" . 2>>"$ERRLOG" # page cache warm for both sides
    rm -f "$out/warm.tar" "$out/probe.tar"
    # Each sample starts with nothing dirty (sync, untimed) and writes a new file: neither side
    # pays for the other's writes, nor for truncating its own last archive.
    for i in $(seq "$N_COMMIT"); do
        sync
        rm -f "$out"/gnu.tar* "$out"/mini.tar*
        timed tar -cf "$out/gnu.tar" -C "$tree" . && sample T commit-tar gnu-tar "$US"
        sync
        if [ $can_commit = 1 ] && timed rt minirunc commit "$id" "$out/mini.tar"; then
            sample T commit-tar minirunc "$US"
        fi
        sync
        timed tar -czf "$out/gnu.tar.gz" -C "$tree" . && sample T commit-gz gnu-tar "$US"
        sync
        # shellcheck disable=SC2086
        if [ $can_commit = 1 ] && [ -f "$out/probe.tar.gz" ] && timed rt minirunc commit $COMMIT_COMPRESS_FLAGS "$id" "$out/mini.tar.gz"; then
            sample T commit-gz minirunc "$US"
        fi
    done
    emit I commit-gnu-tar-bytes "$(stat -c %s "$out/gnu.tar")"
    emit I commit-gnu-gz-bytes "$(stat -c %s "$out/gnu.tar.gz")"
    [ -f "$out/mini.tar" ] && emit I commit-minirunc-tar-bytes "$(stat -c %s "$out/mini.tar")"
    [ -f "$out/mini.tar.gz" ] && emit I commit-minirunc-gz-bytes "$(stat -c %s "$out/mini.tar.gz")"
    [ $can_commit = 1 ] && stop_delete minirunc "$id"
    rm -rf "$out"
    flush
}

setup_runtimes
bench_lifecycle
bench_verbs
bench_exec
bench_rss
bench_concurrent
bench_sequential
bench_hyperfine
[ "${WITH_COMMIT:-0}" = 1 ] && bench_commit
echo "[$MODE] done" >&2
