#!/bin/sh
# List what tests left on the host: mounts, cgroups, processes and state/data dirs whose names contain
# "minirunc" or the test marker "mrt-" (every test container id starts with mrt-). Exit 1 if any.
# Zombies (<defunct>) of containerd shims and conmon are ignored: their parents reap them later.
# The runtime's default state and data roots (/run/minirunc*, /var/lib/minirunc*) may hold other
# programs' containers: `--record FILE` lists what they hold, and `--since FILE` reports only what
# appeared after that listing (make test records one before its suites, which use their own roots).
# Without either, every entry there is reported.
# Usage: leak-check.sh [--record FILE | --since FILE]
set -u

# Entries of the default roots: containers' state dirs, layer dirs (<data root>/<key>/<id>).
default_root_entries() {
    find /run/minirunc* /var/lib/minirunc* -mindepth 1 -maxdepth 2 2>/dev/null | sort
}
case ${1:-} in
    --record)
        default_root_entries >"$2"
        exit 0
        ;;
    --since) baseline=$2 ;;
    "") baseline=/dev/null ;;
    *) echo "usage: $0 [--record FILE | --since FILE]" >&2; exit 2 ;;
esac

found=0
report() {
    # $1: kind; stdin: one leftover per line
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        echo "leak-check: $1: $line"
        found=1
    done
}

pattern='minirunc|mrt-'

# Mounts: mount point or source (the field after " - fstype").
report mount <<EOF2
$(awk '{ split($0, halves, " - "); split(halves[2], right, " ");
         if ($5 ~ /minirunc|mrt-/ || right[2] ~ /minirunc|mrt-/) print $5 " (" right[1] " from " right[2] ")" }' \
    /proc/self/mountinfo)
EOF2

# Cgroups, every hierarchy (v1 controllers and the unified one). The shared parent of the default
# cgroupsPath (/minirunc/<id>) stays, empty, by design (as runc's parents do); any child of it is a leak.
report cgroup <<EOF2
$(find /sys/fs/cgroup -mindepth 1 -maxdepth 6 -type d 2>/dev/null | grep -E "$pattern" |
    grep -vxE '/sys/fs/cgroup/[^/]+/minirunc')
EOF2

# Processes: a minirunc binary, an argument with the marker, or membership of such a cgroup.
procs=""
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    comm=$(cat "$p/comm" 2>/dev/null) || continue
    state=$(awk '{ print $3 }' "$p/stat" 2>/dev/null)
    if [ "$state" = Z ]; then
        case $comm in containerd-shim*|conmon) continue ;; esac
    fi
    args=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
    if [ "${comm#minirunc}" != "$comm" ] || printf '%s' "$args" | grep -q 'mrt-' ||
        grep -qE "$pattern" "$p/cgroup" 2>/dev/null; then
        procs="$procs$pid $state $comm: $args
"
    fi
done
report process <<EOF2
$procs
EOF2

# State and data dirs: nothing new in the runtime's default dirs; test dirs must be gone.
dirs=$(default_root_entries | comm -13 "$baseline" -)
[ -z "$dirs" ] || dirs="$dirs
"
for d in /tmp/minirunc-test* /run/*/mrt-* /run/*/*/mrt-* /run/*/*/*/mrt-* /tmp/mrt-*; do
    [ -e "$d" ] && dirs="$dirs$d
"
done
report "state dir" <<EOF2
$dirs
EOF2

if [ "$found" = 1 ]; then
    echo "leak-check: leftovers found" >&2
    exit 1
fi
echo "leak-check: nothing left behind"
