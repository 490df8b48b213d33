#!/bin/sh
# shellcheck disable=SC2016 # ${Status} is dpkg-query's format, not the shell's
# make test-deb: `make deb`, then `apt-get install ./minirunc_*.deb` and `apt-get remove --purge`
# in a throwaway root: an overlay of the host's / in a private mount namespace, whose writes land
# in a tmpfs that vanishes with it, so the host never has the package installed. Checks that the
# binary runs from /usr/bin, `man 8 minirunc-gc` finds its page, bash loads the completion, the
# docs and copyright are in /usr/share/doc/minirunc, and that the purge leaves no file of the
# package, nothing named minirunc in dpkg's database, and no empty state or data root.
set -eu
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/cannot-run.sh
. scripts/lib/cannot-run.sh

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# In the private mount namespace: $1 the work dir, $2 the package's file name.
inside() {
    work=$1
    mount -t tmpfs tmpfs "$work/layers"
    mkdir "$work/layers/upper" "$work/layers/work" "$work/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$work/layers/upper,workdir=$work/layers/work" \
        "$work/root"
    root=$work/root
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount -t tmpfs tmpfs "$root/tmp"
    mount -t tmpfs tmpfs "$root/run"
    cp "$work/$2" "$root/tmp/"
    in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

    in_root apt-get install -y -q "/tmp/$2" >"$work/apt.log" 2>&1 ||
        fail "apt-get install: $(tail -n 20 "$work/apt.log")"
    in_root dpkg-query -W -f='${Status}' minirunc | grep -qx 'install ok installed' || fail "not installed"
    in_root /usr/bin/minirunc --version | grep -q '^minirunc version ' || fail "/usr/bin/minirunc does not run"
    in_root man -w 8 minirunc-gc | grep -qx /usr/share/man/man8/minirunc-gc.8.gz || fail "man cannot find minirunc-gc(8)"
    in_root sh -c 'MANPAGER=cat MANWIDTH=80 man 8 minirunc 2>&1' | grep -q '^NAME' || fail "man 8 minirunc does not render"
    in_root bash -c '. /usr/share/bash-completion/completions/minirunc && complete -p minirunc' >/dev/null ||
        fail "the bash completion does not load"
    for f in /usr/share/zsh/vendor-completions/_minirunc /usr/share/fish/vendor_completions.d/minirunc.fish \
        /usr/share/doc/minirunc/copyright /usr/share/doc/minirunc/changelog.Debian.gz \
        /usr/share/doc/minirunc/examples/docker-daemon.json; do
        [ -f "$root$f" ] || fail "$f is not installed"
    done
    grep -q '"/usr/bin/minirunc"' "$root/usr/share/doc/minirunc/examples/docker-daemon.json" ||
        fail "docker-daemon.json does not name /usr/bin/minirunc"
    in_root dpkg-query -L minirunc >"$work/files"
    # What the runtime makes when it runs; purge removes them when empty.
    mkdir -p "$root/var/lib/minirunc" "$root/run/minirunc"

    in_root apt-get remove --purge -y -q minirunc >>"$work/apt.log" 2>&1 ||
        fail "apt-get remove --purge: $(tail -n 20 "$work/apt.log")"
    if in_root dpkg-query -W minirunc >/dev/null 2>&1; then
        fail "dpkg still knows minirunc after the purge"
    fi
    # Every path of the package is gone unless the host itself has it (a shared directory).
    while IFS= read -r path; do
        if [ -e "$root$path" ] && [ ! -e "$path" ]; then
            fail "the purge left $path"
        fi
    done <"$work/files"
    for dir in /var/lib/minirunc /run/minirunc; do
        [ ! -e "$root$dir" ] || fail "the purge left the empty $dir"
    done
    # Removed files of the host's own tree show as whiteouts (character devices) in the upper dir;
    # man's cache of the page rendered above is man-db's (its daily job drops stale pages).
    left=$(find "$work/layers/upper" -path "$work/layers/upper/var/cache/man" -prune -o \
        -name '*minirunc*' ! -type c -print)
    [ -z "$left" ] || fail "the purge left: $left"
    echo "deb: $2 installed with apt-get in a throwaway root ($(wc -l <"$work/files") paths), purged cleanly"
}

if [ "${1:-}" = --inside ]; then
    shift
    inside "$@"
    exit 0
fi

[ "$(id -u)" = 0 ] || cannot_run "must run as root (the throwaway root is a mount)"
for tool in dpkg-deb readelf unshare apt-get; do
    command -v "$tool" >/dev/null 2>&1 || cannot_run "$tool is not installed (make setup installs it)"
done
if dpkg-query -W -f='${Status}' minirunc 2>/dev/null | grep -q 'install ok'; then
    cannot_run "the host has a minirunc package installed: the throwaway root would start with it"
fi
deb=$(make -s deb | tail -n 1)
[ -f "$deb" ] || fail "make deb did not write a package: $deb"
work=$(mktemp -d /tmp/minirunc-deb-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/layers"
cp "$deb" "$work/"
# The namespace ends with this command: every mount above, and the tmpfs holding all the writes, go.
unshare --mount --propagation private "$0" --inside "$work" "$(basename "$deb")"
