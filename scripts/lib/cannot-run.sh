# shellcheck shell=sh
# cannot_run REASON: this suite cannot run on this host. Under CI (CI=true) that is a failure:
# a suite CI cannot run proves nothing. Elsewhere it is a skip, printed loudly, whose reason goes
# to MINIRUNC_SKIP_FILE (set by scripts/test.sh) for make test's summary. Exits either way.
cannot_run() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL: cannot run under CI: $*" >&2
        exit 1
    fi
    echo "*** SKIP: $* ***" >&2
    [ -z "${MINIRUNC_SKIP_FILE:-}" ] || printf '%s\n' "$*" >"$MINIRUNC_SKIP_FILE"
    exit 0
}
