#!/bin/sh
# List what tests left on the host: mounts, cgroups, processes and state/data dirs whose names contain
# "minirunc" or the test marker "mrt-" (every test container id starts with mrt-). Exit 1 if any.
# Zombies (<defunct>) of containerd shims and conmon are ignored: their parents reap them later.
# A host is shared: the runtime's default roots (/run/minirunc*, /var/lib/minirunc*) may hold other
# programs' containers, and an earlier, interrupted run may have left its own leftovers. `--record
# FILE` lists everything found now, and `--since FILE` reports only what appeared after that listing
# (make test records one before its suites), so the check judges what this run did.
# Without either, everything found is reported.
# Usage: leak-check.sh [--record FILE | --since FILE]
set -u

case ${1:-} in
    --record) record=$2 baseline=/dev/null ;;
    --since) record="" baseline=$2 ;;
    "") record="" baseline=/dev/null ;;
    *) echo "usage: $0 [--record FILE | --since FILE]" >&2; exit 2 ;;
esac

pattern='minirunc|mrt-'

# Every leftover as "kind: item", one per line.
findings() {
    # Mounts: mount point or source (the field after " - fstype").
    awk '{ split($0, halves, " - "); split(halves[2], right, " ");
           if ($5 ~ /minirunc|mrt-/ || right[2] ~ /minirunc|mrt-/)
               print "mount: " $5 " (" right[1] " from " right[2] ")" }' /proc/self/mountinfo

    # Cgroups, every hierarchy (v1 controllers and the unified one). The shared parent of the default
    # cgroupsPath (/minirunc/<id>) stays, empty, by design (as runc's parents do); a child is a leak.
    find /sys/fs/cgroup -mindepth 1 -maxdepth 6 -type d 2>/dev/null | grep -E "$pattern" |
        grep -vxE '/sys/fs/cgroup/[^/]+/minirunc' | sed 's/^/cgroup: /'

    # Processes: a minirunc binary, an argument with the marker, or membership of such a cgroup.
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$self" ] && continue
        comm=$(cat "$p/comm" 2>/dev/null) || continue
        state=$(awk '{ print $3 }' "$p/stat" 2>/dev/null)
        if [ "$state" = Z ]; then
            case $comm in containerd-shim*|conmon) continue ;; esac
        fi
        args=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
        if [ "${comm#minirunc}" != "$comm" ] || printf '%s' "$args" | grep -q 'mrt-' ||
            grep -qE "$pattern" "$p/cgroup" 2>/dev/null; then
            # Keyed by pid and start time (the part before " | "): comm and state change as a
            # container's init execs, and must not make an old process look new.
            start=$(awk '{ print $22 }' "$p/stat" 2>/dev/null)
            echo "process: $pid started $start | $state $comm: $args"
        fi
    done

    # State and data dirs: the runtime's default roots (containers' state dirs, layer dirs
    # <data root>/<key>/<id>) and the tests' own dirs.
    find /run/minirunc* /var/lib/minirunc* -mindepth 1 -maxdepth 2 2>/dev/null | sed 's/^/state dir: /'
    for d in /tmp/minirunc-test* /run/*/mrt-* /run/*/*/mrt-* /run/*/*/*/mrt-* /tmp/mrt-*; do
        [ -e "$d" ] && echo "state dir: $d"
    done
}

self=$$
all=$(findings | sort)
if [ -n "$record" ]; then
    printf '%s\n' "$all" >"$record"
    exit 0
fi
new=$(printf '%s\n' "$all" | awk -F' [|] ' 'NR == FNR { seen[$1]; next } $0 != "" && !($1 in seen)' \
    "$baseline" -)
if [ -n "$new" ]; then
    printf '%s\n' "$new" | sed 's/^/leak-check: /'
    echo "leak-check: leftovers found" >&2
    exit 1
fi
echo "leak-check: nothing left behind"
