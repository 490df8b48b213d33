# shellcheck shell=bash
# The Kubernetes CRI client of the containerd suites: integration/cri-client (k8s-cri's tonic
# client), which runs one pod and checks it (see its src/main.rs). Built outside the work tree, so
# that a fresh clone (CI) reuses the build: its gRPC stack takes minutes to compile.

CRI_CLIENT_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../cri-client" && pwd)
CRI_TARGET=${MINIRUNC_TEST_CACHE:-/var/cache/minirunc-test}/cri-client-target
# Built from its own directory, so that the repository's .cargo/config.toml applies (cargo reads
# it from the working directory up): a static binary under the target's triple.
CRI_CLIENT=$CRI_TARGET/x86_64-unknown-linux-gnu/release/cri-pod-test

# Build the client (cargo is up to date when nothing changed); exits 2 when it cannot be built.
build_cri_client() {
    ensure_packages protoc:protobuf-compiler
    mkdir -p "$CRI_TARGET"
    (cd "$CRI_CLIENT_SRC" && cargo build --release --quiet --target-dir "$CRI_TARGET") \
        >"$CRI_TARGET/build.log" 2>&1 && return 0
    echo "building integration/cri-client failed:" >&2
    tail -20 "$CRI_TARGET/build.log" >&2
    exit 2
}

# The client against the suite's containerd: cri_ run ... | cri_ cleanup.
cri_() { timeout 120 "$CRI_CLIENT" "$SOCK" "$@"; }

# ctr in CRI's containerd namespace.
k8s_() { NS=k8s.io ctr_ "$@"; }

# Import the pod's images (the containers' and the sandbox's, from lib/image.sh's directory) into
# CRI's namespace.
cri_images() { # IMAGES_DIR
    k8s_ image import "$1/busybox.oci.tar" >/dev/null &&
        k8s_ image import "$1/busybox-pause.oci.tar" >/dev/null
}

# After a failure: remove every pod, then CRI's images.
cri_cleanup() {
    local img
    cri_ cleanup
    for img in $(k8s_ image ls -q 2>/dev/null); do k8s_ image rm "$img" >/dev/null 2>&1; done
}
