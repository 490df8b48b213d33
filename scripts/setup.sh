#!/bin/sh
# Install everything the build, the tests, the demo and the benchmarks need on Debian 12, as root.
# Idempotent and quiet: when every package is already installed it does not call apt-get at all.
set -eu

# uidmap: newuidmap/newgidmap, which map a rootless container's subordinate id ranges.
# man-db, zsh, fish: make test-install renders the man pages and loads each completion.
packages="busybox-static runc crun libseccomp-dev pkg-config containerd podman conmon catatonit
containernetworking-plugins umoci hyperfine time strace iproute2 jq python3 procps util-linux make protobuf-compiler
uidmap man-db zsh fish"

if [ "$(id -u)" != 0 ]; then
    echo "setup: must run as root (try: sudo make ...)" >&2
    exit 1
fi

missing=""
for p in $packages; do
    # dpkg-query prints "install ok installed" only for a fully installed package.
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "setup: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # Recommends stay on: podman needs several of them (CNI plugins, catatonit, uidmap, fuse-overlayfs).
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y -qq $missing >/dev/null
fi

# The Rust toolchain is not an apt package here: rustup installs it for root in ~/.cargo/bin.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x /root/.cargo/bin/cargo ]; then
    echo "setup: cargo not found on PATH nor in /root/.cargo/bin: install the Rust toolchain (rustup)" >&2
    exit 1
fi
