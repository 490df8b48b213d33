#!/bin/sh
# scripts/deb.sh STAGE OUTDIR: the last step of `make deb`. STAGE holds what `make install` put
# at Debian's places (the Makefile installs it with PREFIX=/usr, no manifest: dpkg keeps its own);
# this makes it a package as Debian policy wants it and writes OUTDIR/minirunc_VERSION-1_ARCH.deb:
# man pages and the README gzipped, a machine-readable copyright file, changelog.Debian.gz, the
# control file (no shared-library dependencies: the binary is static; Built-Using names the
# glibc and libseccomp it carries, as Debian policy 7.8 asks), md5sums, and a postrm
# that on purge removes the state and data roots only when they are empty (layers of containers
# that still run stay; `minirunc gc` reclaims the others).
set -eu
umask 022
[ $# = 2 ] || {
    echo "usage: deb.sh STAGE OUTDIR" >&2
    exit 1
}
stage=$1
out=$2
cd "$(dirname "$0")/.."
[ -x "$stage/usr/bin/minirunc" ] || {
    echo "deb.sh: $stage/usr/bin/minirunc: not found (run make deb)" >&2
    exit 1
}

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)-1
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-minirunc developers <minirunc@localhost>}
summary=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
doc=$stage/usr/share/doc/minirunc
# The date of the commit built, so the same commit gives the same changelog.
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown (built without git)")

gzip -9nf "$stage"/usr/share/man/man8/*.8 "$doc/README.md"
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: minirunc

Files: *
Copyright: the minirunc developers
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
printf 'minirunc (%s) unstable; urgency=medium\n\n  * Built by make deb from commit %s.\n\n -- %s  %s\n' \
    "$version" "$commit" "$maintainer" "$date" | gzip -9n >"$doc/changelog.Debian.gz"

mkdir -p "$stage/DEBIAN"
if readelf -d "$stage/usr/bin/minirunc" | grep -q NEEDED; then
    echo "deb.sh: $stage/usr/bin/minirunc needs shared libraries; it should be static" >&2
    exit 1
fi
built_using=$(dpkg-query -W -f='${source:Package} (= ${source:Version})\n' libc6-dev libseccomp-dev |
    sort -u | paste -sd, - | sed 's/,/, /g')

cat >"$stage/DEBIAN/control" <<EOF
Package: minirunc
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Built-Using: $built_using
Section: admin
Priority: optional
Description: $summary
 minirunc is a low-level OCI container runtime with runc's command line:
 containerd, podman and Docker drive it unmodified. A container whose root
 is a plain directory gets a copy-on-write overlay, so a bundle is never
 written, and minirunc commit saves what a container changed.
EOF
cat >"$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
# The state and data roots are made by the runtime, not the package: on purge they go when empty.
if [ "$1" = purge ]; then
    rmdir /run/minirunc /var/lib/minirunc 2>/dev/null || true
fi
EOF
chmod 0755 "$stage/DEBIAN/postrm"
(cd "$stage" && find usr -type f -exec md5sum {} + | sort -k 2) >"$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/minirunc_${version}_$arch.deb
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
