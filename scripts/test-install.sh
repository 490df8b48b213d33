#!/bin/sh
# make test-install: `make install` into a temporary DESTDIR puts a binary that runs, a man page
# (section 8) for minirunc and for each of its commands that `man -l` renders without warnings,
# bash, zsh and fish completions that load (bash's completes a command), and the client examples;
# `make uninstall` then leaves the DESTDIR empty. Run as root or not; nothing outside DESTDIR.
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/cannot-run.sh
. scripts/lib/cannot-run.sh

for tool in man bash zsh fish; do
    command -v "$tool" >/dev/null 2>&1 || cannot_run "$tool is not installed (make setup installs it)"
done
dest=$(mktemp -d /tmp/minirunc-install-test.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

make -s install DESTDIR="$dest" PREFIX=/usr/local
prefix=$dest/usr/local
"$prefix/bin/minirunc" --version | grep -q '^minirunc version ' || fail "the installed binary does not run"
[ -x "$prefix/bin/containerd-shim-minirunc-v1" ] || fail "the shim binary is not installed"

# Every command of the help has its page; every page renders, names itself and warns of nothing.
commands=$("$prefix/bin/minirunc" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z]*\) .*/\1/p' | grep -vx help)
[ -n "$commands" ] || fail "no commands in minirunc --help"
for cmd in "" $commands; do
    page=$prefix/share/man/man8/minirunc${cmd:+-$cmd}.8
    [ -f "$page" ] || fail "no man page $page"
    text=$(MANWIDTH=100 man --warnings -l "$page" 2>"$dest.warn") || fail "man -l $page failed"
    [ ! -s "$dest.warn" ] || fail "man -l $page: $(cat "$dest.warn")"
    echo "$text" | grep -q "^ *minirunc${cmd:+-$cmd} *- " || fail "$page: no NAME line: $text"
done
rm -f "$dest.warn"

comp=$prefix/share/bash-completion/completions/minirunc
bash -c ". '$comp' && complete -p minirunc" | grep -q ' minirunc$' || fail "bash completion does not load"
got=$(bash -c ". '$comp'; COMP_WORDS=(minirunc cre); COMP_CWORD=1; COMP_LINE='minirunc cre'
    COMP_POINT=\${#COMP_LINE}; _minirunc minirunc cre minirunc; echo \"\${COMPREPLY[*]}\"")
[ "$got" = create ] || fail "bash completes 'minirunc cre' to '$got', not create"
zsh -n "$prefix/share/zsh/site-functions/_minirunc" || fail "zsh completion does not parse"
fish --no-execute "$prefix/share/fish/vendor_completions.d/minirunc.fish" || fail "fish completion does not parse"
for example in docker-daemon.json containerd-config.toml podman-containers.conf; do
    [ -f "$prefix/share/doc/minirunc/examples/$example" ] || fail "no example $example"
done
grep -q '"/usr/local/bin/minirunc"' "$prefix/share/doc/minirunc/examples/docker-daemon.json" ||
    fail "docker-daemon.json does not name the installed binary"

make -s uninstall DESTDIR="$dest" PREFIX=/usr/local
left=$(find "$dest" -mindepth 1)
[ -z "$left" ] || fail "uninstall left: $left"
echo "install: ok ($(echo "$commands" | wc -l) command pages, 3 completions, examples; uninstall left nothing)"
