# shellcheck shell=bash
# The podman scenarios the root suite (run.sh) and the rootless one (rootless.sh) share. The
# sourcing suite defines pm (podman), PODMAN_CMD (podman as a command line, for in_pty),
# RUN_FLAGS (its `podman run` options), IMG, NS, SUITE_DIR, runtime_state_left, and
# host_dir DIR (a directory on the host the containers' root may write).

prun_() { pm --runtime "$RUNTIME" run "${RUN_FLAGS[@]}" "$@"; }

inspect() { pm inspect --format "$1" "$2"; }

# Wait until container NAME has status STATUS (at most 10 s).
wait_status() { # NAME STATUS
    for _ in $(seq 100); do
        [ "$(inspect '{{.State.Status}}' "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    echo "container $1 did not reach status $2: $(inspect '{{.State.Status}}' "$1")"
    return 1
}

t_run_output_exit() {
    local out rc=0
    out=$(prun_ --rm "$IMG" sh -c 'echo hello from the container; exit 7') || rc=$?
    want_eq "$out" "hello from the container" "output"
    want_eq "$rc" 7 "exit code"
}

t_missing_command() {
    local out rc=0
    out=$(prun_ --rm --name "$NS-missing" "$IMG" /nonexistent/binary 2>&1) || rc=$?
    want_eq "$rc" 127 "exit code of a missing command (output: $out)"
    want_match "$out" "$MISSING_EXEC_ERROR" "error"
    rc=0
    out=$(prun_ --rm --name "$NS-noexec" "$IMG" /etc/passwd 2>&1) || rc=$?
    want_eq "$rc" 126 "exit code of a non-executable command (output: $out)"
    want_match "$out" '/etc/passwd.*permission denied' "error"
    want_eq "$(pm ps -a --filter "name=$NS-" -q)" "" "containers left"
    want_eq "$(runtime_state_left)" "" "runtime state left"
}

t_env_cwd_user() {
    local out
    out=$(prun_ --rm -e FOO=bar -w /var/tmp -u 65534:65534 "$IMG" \
        sh -c 'echo "$FOO|$(pwd)|$(id -u):$(id -g)"; touch /root/x 2>/dev/null || echo denied')
    want_eq "$out" "bar|/var/tmp|65534:65534
denied" "env|cwd|uid:gid"
}

t_read_only() {
    local out
    out=$(prun_ --rm --read-only "$IMG" sh -c 'touch /etc/x 2>&1; echo "rc=$?"; touch /tmp/x && echo tmp-writable')
    want_contains "$out" "Read-only file system" "write to /etc"
    want_contains "$out" "rc=1" "touch exit code"
    want_contains "$out" "tmp-writable" "podman's tmpfs on /tmp"
}

t_volume() {
    local dir=$SUITE_DIR/vol out
    host_dir "$dir"
    echo from-host >"$dir/in"
    out=$(prun_ --rm -v "$dir:/data" "$IMG" sh -c 'cat /data/in; echo from-container >/data/out')
    want_eq "$out" from-host "file read through -v"
    want_eq "$(cat "$dir/out")" from-container "file written through -v, seen on the host"
    out=$(prun_ --rm -v "$dir:/data:ro" "$IMG" sh -c 'echo x >/data/out2 2>&1; echo "rc=$?"')
    want_contains "$out" "rc=1" "write to a read-only volume"
    [ ! -e "$dir/out2" ] || { echo "read-only volume was written"; return 1; }
}

t_terminal() {
    local out rc=0
    out=$(in_pty "$PODMAN_CMD --runtime $RUNTIME run --rm -t ${RUN_FLAGS[*]} $IMG \
        sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exit 5'") || rc=$?
    want_match "$out" '^/dev/pts/[0-9]+' "tty output"
    want_contains "$out" stdio-is-a-tty "terminal test"
    want_eq "$rc" 5 "exit code through the terminal"
}

t_detached_exec_top() {
    local id=$NS-det out rc=0
    prun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    want_eq "$(inspect '{{.State.Status}}' "$id")" running "status"
    out=$(pm exec "$id" sh -c 'echo in-exec; ps -o comm | grep -c sleep; exit 4') || rc=$?
    want_eq "$out" "in-exec
1" "exec output (and sees the container's sleep)"
    want_eq "$rc" 4 "exec exit code"
    out=$(pm exec -e FOO=bar -w /tmp -u 65534 "$id" sh -c 'echo "$FOO $(pwd) $(id -u)"')
    want_eq "$out" "bar /tmp 65534" "exec env, cwd and user"
    rc=0
    out=$(in_pty "$PODMAN_CMD exec -t $id sh -c 'tty; exit 6'") || rc=$?
    want_match "$out" '/dev/pts/[0-9]+' "exec -t output"
    want_eq "$rc" 6 "exec -t exit code"
    rc=0
    pm exec "$id" /nonexistent >/dev/null 2>&1 || rc=$?
    want_eq "$rc" 127 "exec of a missing command"
    out=$(pm top "$id" pid args)
    want_match "$out" '^ *1 +sleep 300' "podman top"
    pm rm -f -t 0 "$id" >/dev/null
    want_eq "$(pm ps -a --filter "name=$id" -q)" "" "container after rm -f"
}

t_stop() {
    local id=$NS-stop dir=$SUITE_DIR/stop
    host_dir "$dir"
    # A shell init that exits 42 on SIGTERM; it tells the host through a volume when its trap is set.
    prun_ -d --name "$id" -v "$dir:/host" "$IMG" \
        sh -c 'trap "exit 42" TERM; touch /host/ready; while :; do sleep 1; done' >/dev/null
    for _ in $(seq 200); do [ -e "$dir/ready" ] && break; sleep 0.1; done
    pm stop -t 10 "$id" >/dev/null
    want_eq "$(inspect '{{.State.Status}}' "$id")" exited "status after stop"
    want_eq "$(inspect '{{.State.ExitCode}}' "$id")" 42 "exit code after SIGTERM"
    pm rm "$id" >/dev/null
    # sleep as PID 1 ignores SIGTERM: stop falls back to SIGKILL after the timeout.
    prun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    pm stop -t 1 "$id" >/dev/null
    want_eq "$(inspect '{{.State.ExitCode}}' "$id")" 137 "exit code after SIGKILL"
    pm rm "$id" >/dev/null
}

t_kill_rm() {
    local id=$NS-kill
    prun_ -d --name "$id" "$IMG" sleep 300 >/dev/null
    pm kill -s KILL "$id" >/dev/null
    wait_status "$id" exited
    want_eq "$(inspect '{{.State.ExitCode}}' "$id")" 137 "exit code after kill -s KILL"
    pm rm "$id" >/dev/null
    want_eq "$(pm ps -a --filter "name=$id" -q)" "" "container after rm"
}

t_configured_runtime() {
    local id=$NS-conf out
    # No --runtime: containers.conf's `runtime = "minirunc"` ([engine.runtimes] -> RUNTIME).
    out=$(pm run "${RUN_FLAGS[@]}" --name "$id" "$IMG" echo via-containers-conf)
    want_eq "$out" via-containers-conf "output"
    want_eq "$(inspect '{{.OCIRuntime}}' "$id")" minirunc "runtime of the container"
    pm rm "$id" >/dev/null
}
