#!/bin/bash
# Rootless podman suite: podman 4.3 run by the unprivileged user minirunc-rootless (created with
# subordinate id ranges if missing, as tests/common/user.rs does) with `--runtime $RUNTIME`, the
# cgroupfs manager, the file events logger and no systemd session: a private HOME and
# XDG_RUNTIME_DIR (0700, the user's) under a temp dir, and the root suite's containers.conf
# template. podman runs the runtime as root of the user's namespace (its pause process holds it),
# so minirunc's state goes to $XDG_RUNTIME_DIR/minirunc and there is no cgroup (a v1/hybrid host
# delegates none): pause and limits are not scenarios here.
# Usage (as root): RUNTIME=/abs/path/to/runtime integration/podman/rootless.sh
# Leaves nothing behind: the user's podman removes its containers and storage (system reset), then
# the suite checks that no process of the user's namespace, no mount and no runtime state remains.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$top/integration/lib/common.sh"
# shellcheck source=../../scripts/lib/cannot-run.sh
. "$top/scripts/lib/cannot-run.sh"

require_runtime "rootless podman"
USER_NAME=minirunc-rootless
ensure_packages podman:podman conmon:conmon script:bsdutils newuidmap:uidmap
id "$USER_NAME" >/dev/null 2>&1 ||
    useradd --no-create-home --shell /usr/sbin/nologin "$USER_NAME" ||
    { echo "useradd $USER_NAME failed" >&2; exit 2; }
for f in /etc/subuid /etc/subgid; do
    grep -q "^$USER_NAME:" "$f" 2>/dev/null || cannot_run "$USER_NAME has no range in $f"
done
runuser -u "$USER_NAME" -- unshare --user true 2>/dev/null ||
    cannot_run "user namespaces are not available to unprivileged users on this kernel"
runuser -u "$USER_NAME" -- test -x "$RUNTIME" ||
    { echo "$USER_NAME cannot execute $RUNTIME (a directory on its path is closed)" >&2; exit 2; }
images=$("$top/integration/lib/image.sh") || { echo "image build failed" >&2; exit 2; }

SUITE_DIR=$(mktemp -d /tmp/mrt-pmrl.XXXXXX)
NS=mrt-pmrl$$    # container name prefix; "mrt-" is the leak-check marker
IMG=localhost/minirunc-busybox:latest
USER_UID=$(id -u "$USER_NAME")
SUB_UID=$(sed -n "s/^$USER_NAME:\([0-9]*\):.*/\1/p" /etc/subuid | head -1)
SUB_GID=$(sed -n "s/^$USER_NAME:\([0-9]*\):.*/\1/p" /etc/subgid | head -1)
# What the runtime keeps for a user's containers: state under XDG_RUNTIME_DIR (runc's too), layers
# under HOME.
STATE_ROOT=$SUITE_DIR/xdg/$(basename "$RUNTIME")
DATA_ROOT=$SUITE_DIR/home/.local/share/minirunc
USERNS=""    # the user namespace of podman's pause process, once it runs

mkdir -m 700 "$SUITE_DIR/xdg" "$SUITE_DIR/home"
# The user's storage is podman's rootless default, under HOME; its database must lie below it
# (static_dir = <graph root>/libpod), where conmon's exit command (podman container cleanup
# --root <graph root>) looks for it. Elsewhere the cleanup finds no container: a killed one stays
# "stopped" and each `run` waits 20 s for its exit.
sed -e "s|@DIR@|$SUITE_DIR|g" -e "s|@RUNTIME@|$RUNTIME|g" \
    -e "s|^static_dir = .*|static_dir = \"$SUITE_DIR/home/.local/share/containers/storage/libpod\"|" \
    "$here/containers.conf" >"$SUITE_DIR/containers.conf"
install -m 644 "$images/busybox.oci.tar" "$SUITE_DIR/busybox.oci.tar"
chown -R "$USER_NAME:" "$SUITE_DIR"

# podman as the user with exactly this environment (nothing of root's leaks in); a file, so that
# in_pty's command line can name it too.
PODMAN=$SUITE_DIR/podman-as-user
cat >"$PODMAN" <<EOF
#!/bin/sh
exec runuser -u $USER_NAME -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \\
    HOME=$SUITE_DIR/home XDG_RUNTIME_DIR=$SUITE_DIR/xdg CONTAINERS_CONF=$SUITE_DIR/containers.conf \\
    podman "\$@"
EOF
chmod 755 "$PODMAN"

pm() { timeout "${PM_TIMEOUT:-120}" "$PODMAN" "$@"; }
PODMAN_CMD=$PODMAN
RUN_FLAGS=()

after_failure() { PM_TIMEOUT=30 pm rm -af -t 0 >/dev/null 2>&1; }

# Processes in the user namespace podman's pause process holds (conmon, the containers), with
# their command lines; the pause process itself only with `all`.
userns_processes() { # [all]
    local p pid
    [ -n "$USERNS" ] || return 0
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$(readlink "$p/ns/user" 2>/dev/null)" = "$USERNS" ] || continue
        [ "${1:-}" = all ] || [ "$pid" != "$(cat "$SUITE_DIR/tmp/pause.pid" 2>/dev/null)" ] || continue
        [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "$p/status" 2>/dev/null)" != Z ] || continue
        echo "$pid $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
    done
}

# Entries of the user's runtime state and data roots.
runtime_state_left() {
    find "$STATE_ROOT" "$DATA_ROOT" -mindepth 1 -maxdepth 2 2>/dev/null
}

cleanup() {
    trap - EXIT INT TERM
    local pid
    stop_scenario
    after_failure
    # The user's own storage and pause process, removed by the user's podman.
    PM_TIMEOUT=60 pm system reset -f >/dev/null 2>&1
    wait_processes_gone "$SUITE_DIR"
    for pid in $( (userns_processes all; live_processes "$SUITE_DIR") | cut -d' ' -f1); do
        kill -9 "$pid" 2>/dev/null
    done
    unmount_under "$SUITE_DIR"
    rm -rf "$SUITE_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scenarios.sh
. "$here/scenarios.sh"
host_dir() { runuser -u "$USER_NAME" -- mkdir -p "$1"; }

# ---- rootless scenarios ------------------------------------------------------------------------

t_id_mappings() {
    local out
    # podman's namespace: container root is the user, 1..65536 its subordinate range.
    out=$(prun_ --rm "$IMG" sh -c 'id -u; cat /proc/self/uid_map /proc/self/gid_map' | tr -s ' ')
    want_eq "$out" "0
 0 $USER_UID 1
 1 $SUB_UID 65536
 0 $(id -g "$USER_NAME") 1
 1 $SUB_GID 65536" "id and maps inside"
}

t_volume_owners() {
    local dir=$SUITE_DIR/owners
    host_dir "$dir"
    prun_ --rm -v "$dir:/data" "$IMG" sh -c 'echo x >/data/root; echo y >/data/sub; chown 1000:1000 /data/sub'
    # Container root is the user; container id 1000 the 1000th id of the user's range.
    want_eq "$(stat -c %u:%g "$dir/root")" "$USER_UID:$(id -g "$USER_NAME")" \
        "host owner of a file container root wrote"
    want_eq "$(stat -c %u:%g "$dir/sub")" "$((SUB_UID + 999)):$((SUB_GID + 999))" \
        "host owner of a file chowned to 1000:1000 inside"
}

t_state_location() {
    local id=$NS-state
    prun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    want_eq "$(find "$STATE_ROOT" -mindepth 1 -maxdepth 1 -printf '%f\n')" \
        "$(inspect '{{.Id}}' "$id")" "the runtime's state, under the user's XDG_RUNTIME_DIR"
    pm rm -f -t 0 "$id" >/dev/null
    want_eq "$(runtime_state_left)" "" "runtime state after rm -f"
}

# ---- main --------------------------------------------------------------------------------------

echo "rootless podman suite: runtime $RUNTIME as $USER_NAME, dir $SUITE_DIR"
pm load -q -i "$SUITE_DIR/busybox.oci.tar" >/dev/null || { echo "podman load failed" >&2; exit 2; }
USERNS=$(readlink "/proc/$(cat "$SUITE_DIR/tmp/pause.pid" 2>/dev/null)/ns/user" 2>/dev/null)
[ -n "$USERNS" ] || { echo "podman's pause process is not running ($SUITE_DIR/tmp/pause.pid)" >&2; exit 2; }

scenario "run: output and exit code" t_run_output_exit
scenario "run: the user's id mappings" t_id_mappings
scenario "run: missing command 127, not executable 126" t_missing_command
scenario "run: env, cwd and user" t_env_cwd_user
scenario "run: read-only rootfs" t_read_only
scenario "run -v: bind volume" t_volume
scenario "run -v: owners on the host" t_volume_owners
scenario "run -t: terminal" t_terminal
scenario "run -d + exec + top + rm" t_detached_exec_top
scenario "run -d: state under XDG_RUNTIME_DIR" t_state_location
scenario "stop: exit status" t_stop
scenario "kill + rm" t_kill_rm
scenario "runtime from containers.conf" t_configured_runtime

# ---- leftover check ---------------------------------------------------------------------------
leftover() { # [all]: after cleanup, also the pause process and the suite dir
    local what
    what=$(userns_processes "${1:-}"; live_processes "$SUITE_DIR")
    what=$(printf '%s\n' "$what" | sed '/^$/d' | sort -u)
    [ -z "$what" ] || { echo "processes left:"; echo "$what"; }
    what=$(mounts_under "$SUITE_DIR")
    [ -z "$what" ] || { echo "mounts left:"; echo "$what"; }
    what=$(runtime_state_left)
    [ -z "$what" ] || { echo "runtime state left:"; echo "$what"; }
}
wait_processes_gone "$SUITE_DIR"
record "nothing of the containers left behind" "$(leftover; [ ! -e "$SUITE_DIR" ] || pm ps -a -q)"
after_failure
pm rmi -af >/dev/null 2>&1
PM_TIMEOUT=60 pm system reset -f >/dev/null 2>&1
record "the user's podman removed its own storage" "$(
    find "$SUITE_DIR/home/.local/share/containers/storage" -mindepth 1 -maxdepth 1 2>/dev/null)"
cleanup
record "suite cleanup complete" "$(leftover all; [ ! -e "$SUITE_DIR" ] || echo "suite dir left: $SUITE_DIR")"
summary "rootless podman"
