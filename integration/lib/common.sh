# shellcheck shell=bash
# Shared helpers of the client suites (sourced by bash scripts): scenario runner, assertions,
# leftover checks. Each suite sets SUITE_DIR (its private temp dir) before using the leftover helpers.

PASSED=0
FAILED=0
FAILED_NAMES=""

log() { printf '%s\n' "$*" >&2; }

# ensure_packages [--no-install-recommends] CMD:PACKAGE...: apt-get install the packages whose
# command is missing (a fresh machine may need its package lists updated first).
ensure_packages() {
    local pair missing="" opts=""
    case ${1:-} in --*) opts=$1; shift ;; esac
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
    done
    [ -n "$missing" ] || return 0
    log "installing:$missing"
    # shellcheck disable=SC2086
    apt-get install -y -qq $opts $missing >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $opts $missing >/dev/null; }
}

# scenario NAME FUNCTION: run FUNCTION in a subshell under `set -e` (so any failing command or
# assertion fails the scenario), print PASS/FAIL, and show its output only on failure.
# SCENARIOS=REGEX (environment) runs only the scenarios whose name matches; a scenario running
# longer than SCENARIO_TIMEOUT seconds (default 120) is killed and fails.
SCENARIO_PID=""
scenario() {
    local name=$1 fn=$2 out rc start
    if [ -n "${SCENARIOS:-}" ] && ! printf '%s\n' "$name" | grep -Eq -- "$SCENARIOS"; then
        echo "SKIP: $name (not selected by SCENARIOS)"
        return 0
    fi
    out=$(mktemp "$SUITE_DIR/scenario.XXXXXX")
    start=$(date +%s)
    # Own process group (set -m), so a hung scenario can be killed whole.
    set -m
    (set -eu; "$fn") >"$out" 2>&1 </dev/null &
    SCENARIO_PID=$!
    set +m
    if ! timeout "${SCENARIO_TIMEOUT:-120}" tail -s 0.1 --pid="$SCENARIO_PID" -f /dev/null; then
        echo "scenario timed out after ${SCENARIO_TIMEOUT:-120}s" >>"$out"
        stop_scenario
    fi
    wait "$SCENARIO_PID" 2>/dev/null
    rc=$?
    SCENARIO_PID=""
    # A failed scenario may have left containers: the suite's hook removes them, so one failure
    # does not cascade into the next scenarios.
    [ "$rc" -eq 0 ] || after_failure >>"$out" 2>&1
    if [ "$rc" -eq 0 ]; then
        echo "PASS: $name ($(( $(date +%s) - start ))s)"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL: $name (exit $rc)"
        sed 's/^/    | /' "$out"
        FAILED=$((FAILED + 1))
        FAILED_NAMES="$FAILED_NAMES $name;"
    fi
    rm -f "$out"
}

# Kill the running scenario's process group (on timeout, or from a suite's cleanup on Ctrl-C).
stop_scenario() {
    [ -n "$SCENARIO_PID" ] || return 0
    kill -KILL -- "-$SCENARIO_PID" 2>/dev/null
}

# kill_container_processes CGROUP_TEXT [EXCLUDE_TEXT]: SIGKILL every process whose cgroup path
# contains CGROUP_TEXT (and not EXCLUDE_TEXT), after thawing frozen cgroups (a frozen process
# cannot die). For failure paths only, when the client's own kill may be what is broken.
kill_container_processes() {
    local f pid
    find /sys/fs/cgroup -path "*$1*" \( -name freezer.state -o -name cgroup.freeze \) 2>/dev/null |
        while read -r f; do
            case $f in */freezer.state) echo THAWED ;; *) echo 0 ;; esac >"$f" 2>/dev/null
        done
    grep -lF -- "$1" /proc/[0-9]*/cgroup 2>/dev/null | while read -r f; do
        [ -z "${2:-}" ] || ! grep -qF -- "$2" "$f" 2>/dev/null || continue
        pid=${f#/proc/}
        kill -KILL "${pid%%/*}" 2>/dev/null
    done
}

# Assertions: each prints what it expected and returns 1, which ends the scenario under set -e.
want_eq() { # GOT WANT WHAT
    [ "$1" = "$2" ] && return 0
    echo "expected $3 = '$2', got '$1'"
    return 1
}
want_contains() { # HAYSTACK NEEDLE WHAT
    case $1 in *"$2"*) return 0 ;; esac
    echo "expected $3 to contain '$2', got: $1"
    return 1
}
want_match() { # TEXT EXTENDED-REGEX WHAT
    printf '%s\n' "$1" | grep -Eq -- "$2" && return 0
    echo "expected $3 to match /$2/, got: $1"
    return 1
}

# in_pty COMMAND-STRING: run COMMAND-STRING (sh syntax) on a new pseudo-terminal with `script`,
# printing its output and returning its exit status. Its stdin is a FIFO opened read-write: it
# never reaches EOF (script would forward an EOF, which races with the container's output).
in_pty() {
    local fifo
    fifo=$(mktemp -u "$SUITE_DIR/pty-in.XXXXXX")
    mkfifo "$fifo"
    timeout 60 script -qec "$1" /dev/null <>"$fifo"
    local rc=$?
    rm -f "$fifo"
    return "$rc"
}

# The error a start of /nonexistent/binary must show: the runtime's own reason naming the path, in
# either order (not e.g. containerd's "open .../log.json: no such file or directory").
MISSING_EXEC_ERROR='/nonexistent/binary.*(executable file not found|no such file or directory)'
MISSING_EXEC_ERROR="$MISSING_EXEC_ERROR|(executable file not found|no such file or directory).*/nonexistent/binary"

# Entries of the runtime's data directory (RUNTIME_DATA_ROOT, default /var/lib/<basename>, e.g.
# minirunc's copy-on-write layers) that name container ID.
data_root_entries() { # ID
    local root=${RUNTIME_DATA_ROOT:-/var/lib/$(basename "$RUNTIME")}
    [ -d "$root" ] || return 0
    find "$root" -maxdepth 3 -name "*$1*" 2>/dev/null
}

# Print the host-side memory limit of a process's cgroup (cgroup v1 memory controller, or cgroup2).
host_memory_limit() { # PID
    local pid=$1 path mnt
    path=$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' "/proc/$pid/cgroup")
    if [ -n "$path" ]; then
        cat "/sys/fs/cgroup/memory$path/memory.limit_in_bytes"
        return
    fi
    path=$(sed -n 's/^0::\(.*\)$/\1/p' "/proc/$pid/cgroup")
    mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
    cat "$mnt$path/memory.max"
}

# Freezer state of a process's cgroup as FROZEN/THAWED (v1 freezer.state, or cgroup2 cgroup.freeze).
host_freezer_state() { # PID
    local pid=$1 path mnt
    path=$(sed -n 's/^[0-9]*:freezer:\(.*\)$/\1/p' "/proc/$pid/cgroup")
    if [ -n "$path" ]; then
        cat "/sys/fs/cgroup/freezer$path/freezer.state"
        return
    fi
    path=$(sed -n 's/^0::\(.*\)$/\1/p' "/proc/$pid/cgroup")
    mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
    if [ "$(cat "$mnt$path/cgroup.freeze")" = 1 ]; then echo FROZEN; else echo THAWED; fi
}

# Live (non-zombie) processes whose command line contains TEXT, or whose cgroup path contains
# CGROUP_TEXT (optional), one "pid cmdline" per line. Exited shims and conmon linger as zombies
# until PID 1 reaps them: those are not leaks.
live_processes() { # TEXT [CGROUP_TEXT]
    local f pid state cmd
    {
        grep -laF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null
        [ -z "${2:-}" ] || grep -lF -- "$2" /proc/[0-9]*/cgroup 2>/dev/null
    } | sort -u | while read -r f; do
        pid=${f#/proc/}
        pid=${pid%%/*}
        [ "$pid" != "$$" ] || continue
        state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)
        if [ -z "$state" ] || [ "$state" = Z ]; then continue; fi
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
        # The grep and sed of this very check match their own pattern.
        case $cmd in grep\ *|sed\ *|"") continue ;; esac
        echo "$pid $cmd"
    done
}

# Wait (at most 10 s) until live_processes TEXT [CGROUP_TEXT] finds nothing: exited shims, conmon
# and podman's exit commands finish shortly after their container.
wait_processes_gone() { # TEXT [CGROUP_TEXT]
    for _ in $(seq 100); do
        [ -z "$(live_processes "$@")" ] && return 0
        sleep 0.1
    done
    return 1
}

# Mount points (from /proc/self/mountinfo) whose path contains TEXT, deepest first.
mounts_under() { # TEXT
    awk -v t="$1" 'index($5, t) { print $5 }' /proc/self/mountinfo | sort -r
}

# Cgroup directories named NAME anywhere in the cgroup hierarchies (depth-limited).
cgroups_named() { # NAME
    find /sys/fs/cgroup -maxdepth 4 -type d -name "$1" 2>/dev/null
}

# Cgroup directories whose path names any of the container IDs: found wherever the runtime put
# them, not only under the cgroup parent the client asked for.
cgroups_naming() { # ID...
    [ $# -gt 0 ] || return 0
    find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d 2>/dev/null | grep -F -- "$(printf '%s\n' "$@")"
}

# Unmount everything under DIR (deepest first); lazily if busy.
unmount_under() { # DIR
    local m
    for m in $(mounts_under "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cleanup: cannot unmount $m"
    done
}

# record NAME PROBLEMS: PASS if PROBLEMS (text) is empty, else FAIL showing it.
record() {
    if [ -z "$2" ]; then
        echo "PASS: $1"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL: $1"
        printf '%s\n' "$2" | sed 's/^/    | /'
        FAILED=$((FAILED + 1))
        FAILED_NAMES="$FAILED_NAMES $1;"
    fi
}

# Print the summary line and return non-zero if any scenario failed.
summary() { # SUITE-NAME
    echo "$1: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] || { echo "failed:$FAILED_NAMES"; return 1; }
}

# Check RUNTIME (default Debian's runc): an absolute path to an executable; and that we are root.
require_runtime() { # SUITE
    RUNTIME=${RUNTIME:-/usr/sbin/runc}
    case $RUNTIME in /*) ;; *) echo "RUNTIME must be an absolute path, got '$RUNTIME'" >&2; exit 2 ;; esac
    [ -x "$RUNTIME" ] || { echo "RUNTIME $RUNTIME is not executable" >&2; exit 2; }
    [ "$(id -u)" = 0 ] || { echo "$1 suite: must run as root" >&2; exit 2; }
}
