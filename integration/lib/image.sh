#!/bin/bash
# Build, offline, the OCI image archives the client suites load: a busybox-static root filesystem
# (scripts/mkrootfs.sh) packed with umoci. Two archives, one image each, because `podman load`
# rejects an OCI archive holding more than one image:
#   build/images/busybox.oci.tar       localhost/minirunc-busybox:latest   (runs as root)
#   build/images/busybox-user.oci.tar  localhost/minirunc-busybox:user     (config User 65534:65534,
#                                      for ctr 1.6 whose `run` has no --user)
#   build/images/busybox-pause.oci.tar localhost/minirunc-busybox:pause    (sleeps: the CRI sandbox)
# Archives are cached and rebuilt only when busybox or these scripts change.
# Usage: image.sh            prints the directory holding the archives
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
out="$top/build/images"
repo=localhost/minirunc-busybox
base="$out/busybox.oci.tar"
user="$out/busybox-user.oci.tar"
pause="$out/busybox-pause.oci.tar"
busybox=${BUSYBOX:-/bin/busybox}
# shellcheck source=common.sh
. "$top/integration/lib/common.sh"

fresh() {
    for src in "$0" "$top/scripts/mkrootfs.sh" "$busybox"; do
        [ "$1" -nt "$src" ] || return 1
    done
}

if [ -s "$base" ] && [ -s "$user" ] && [ -s "$pause" ] && fresh "$base" && fresh "$user" && fresh "$pause"; then
    echo "$out"
    exit 0
fi

ensure_packages umoci:umoci

mkdir -p "$out"
work=$(mktemp -d "$out/work.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# derive NAME TAG CONFIG-OPTIONS...: a copy of the base layout holding only the image retagged TAG
# with the given config changes.
derive() {
    name=$1 tag=$2
    shift 2
    cp -a "$work/base" "$work/$name"
    umoci config --image "$work/$name:$repo:latest" --tag "$repo:$tag" "$@" \
        --history.created_by "integration/lib/image.sh $tag" >/dev/null
    umoci rm --image "$work/$name:$repo:latest"
    umoci gc --layout "$work/$name"
}

# One layer: the busybox root filesystem, written into an unpacked empty image and repacked.
umoci init --layout "$work/base"
umoci new --image "$work/base:$repo:latest"
umoci unpack --image "$work/base:$repo:latest" "$work/bundle" >/dev/null
"$top/scripts/mkrootfs.sh" "$work/bundle/rootfs"
mkdir -p "$work/bundle/rootfs/mnt" "$work/bundle/rootfs/var/tmp"
umoci repack --image "$work/base:$repo:latest" "$work/bundle" >/dev/null
umoci config --image "$work/base:$repo:latest" \
    --config.cmd /bin/sh --config.workingdir / \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --author minirunc-tests --history.created_by "integration/lib/image.sh" >/dev/null

umoci gc --layout "$work/base"
# The same image with a non-root default user, and one that sleeps (a CRI pod sandbox).
derive user user --config.user 65534:65534
derive pause pause --clear config.cmd --config.cmd sleep --config.cmd 2147483647

# Archive members relative to the layout root (oci-layout, index.json, blobs/), as an oci-archive.
tar -C "$work/base" -cf "$base.tmp" oci-layout index.json blobs
tar -C "$work/user" -cf "$user.tmp" oci-layout index.json blobs
tar -C "$work/pause" -cf "$pause.tmp" oci-layout index.json blobs
mv "$base.tmp" "$base"
mv "$user.tmp" "$user"
mv "$pause.tmp" "$pause"
echo "$out"
