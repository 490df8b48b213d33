#!/bin/sh
# scripts/install.sh install|uninstall: what `make install` and `make uninstall` do.
#
# install puts the binary, the man pages and shell completions (gen_docs output in $DOCS) and the
# client configuration examples where the Makefile's variables say, below $DESTDIR, and records
# every file it wrote and every directory it had to make in $DESTDIR$MANIFEST. uninstall removes
# exactly those: the files, then the directories that are empty again (deepest first), so it never
# removes a directory that existed before or that holds something else. With MANIFEST empty no
# record is kept (a package manager keeps its own: make deb).
#
# Variables (all set by the Makefile): DESTDIR, BINDIR, MAN8DIR, BASHCOMPDIR, ZSHCOMPDIR,
# FISHCOMPDIR, DOCDIR, MANIFEST (absolute paths, DESTDIR excepted); BIN, SHIM_BIN, DOCS,
# CLIENT_CONFIGS.
set -eu
umask 022 # what is installed is readable by all, whoever runs make install

die() {
    echo "install.sh: $*" >&2
    exit 1
}

for var in BINDIR MAN8DIR BASHCOMPDIR ZSHCOMPDIR FISHCOMPDIR DOCDIR; do
    value=
    eval "value=\${$var:-}"
    case $value in
    /*) ;;
    *) die "$var=$value: must be an absolute path (DESTDIR is where it goes below)" ;;
    esac
done
case ${MANIFEST:-} in
"" | /*) ;;
*) die "MANIFEST=$MANIFEST: must be an absolute path, or empty for none" ;;
esac
DESTDIR=${DESTDIR:-}

# make_dir DIR: make DIR (below DESTDIR) and its missing parents, recording each one made.
make_dir() {
    [ -d "$DESTDIR$1" ] && return 0
    if [ "$1" = / ]; then
        mkdir -p "$DESTDIR" # the caller's, not the install's
        return 0
    fi
    make_dir "$(dirname "$1")"
    mkdir "$DESTDIR$1"
    echo "d $1" >>"$record"
}

# put MODE SOURCE DIR [NAME]: install SOURCE as DIR/NAME (default: its own name), recorded.
put() {
    [ -f "$2" ] || die "$2: not found (run make build docs first)"
    make_dir "$3"
    dest=$3/${4:-$(basename "$2")}
    install -m "$1" "$2" "$DESTDIR$dest"
    echo "f $dest" >>"$record"
}

# put_program SOURCE NAME: install the executable SOURCE as BINDIR/NAME, stripped: the build
# keeps the symbol table, for perf and bench/hot-order.sh.
put_program() {
    put 0755 "$1" "$BINDIR" "$2"
    strip "$DESTDIR$BINDIR/$2"
}

# Written on exit, even after a failure half-way: what was installed is what uninstall removes.
# A re-install keeps the earlier record (the directories it made are still the install's).
save_record() {
    [ -n "${MANIFEST:-}" ] || return 0
    manifest=$DESTDIR$MANIFEST
    [ -f "$manifest" ] && cat "$manifest" >>"$record"
    make_dir "$(dirname "$MANIFEST")"
    echo "f $MANIFEST" >>"$record"
    sort -u "$record" >"$manifest"
}

install_all() {
    record=$(mktemp)
    trap 'save_record; rm -f "$record"' EXIT
    put_program "$BIN" minirunc
    # containerd finds the shim of runtime io.containerd.minirunc.v1 on its PATH, by this name.
    put_program "$SHIM_BIN" containerd-shim-minirunc-v1
    for page in "$DOCS"/man/*.8; do
        put 0644 "$page" "$MAN8DIR"
    done
    put 0644 "$DOCS/completions/minirunc.bash" "$BASHCOMPDIR" minirunc
    put 0644 "$DOCS/completions/_minirunc" "$ZSHCOMPDIR"
    put 0644 "$DOCS/completions/minirunc.fish" "$FISHCOMPDIR"
    put 0644 README.md "$DOCDIR"
    # integration/CLIENT/FILE becomes examples/CLIENT-FILE, naming the runtime where this install
    # puts it (the suites' templates say @RUNTIME@, daemon.json the default path).
    edited=$(mktemp -d)
    for config in $CLIENT_CONFIGS; do
        name=$(basename "$(dirname "$config")")-$(basename "$config")
        sed -e "/^[[:space:]]*#/!s|@RUNTIME@|$BINDIR/minirunc|g" \
            -e "/^[[:space:]]*#/!s|/usr/local/bin/minirunc|$BINDIR/minirunc|g" \
            "$config" >"$edited/$name"
        put 0644 "$edited/$name" "$DOCDIR/examples"
    done
    rm -r "$edited"
}

uninstall_all() {
    [ -n "${MANIFEST:-}" ] || die "MANIFEST is empty: there is no record of what to remove"
    manifest=$DESTDIR$MANIFEST
    [ -f "$manifest" ] || die "$manifest: not found: nothing was installed with these DESTDIR and PREFIX"
    entries=$(cat "$manifest")
    echo "$entries" | sed -n 's/^f //p' | while IFS= read -r file; do
        rm -f "$DESTDIR$file"
    done
    # Reverse order lists a directory's children before it.
    echo "$entries" | sed -n 's/^d //p' | sort -r | while IFS= read -r dir; do
        rmdir "$DESTDIR$dir" 2>/dev/null || [ ! -d "$DESTDIR$dir" ] ||
            echo "install.sh: kept $DESTDIR$dir: it holds files the install did not put there" >&2
    done
}

case ${1:-} in
install) install_all ;;
uninstall) uninstall_all ;;
*) die "usage: install.sh install|uninstall" ;;
esac
