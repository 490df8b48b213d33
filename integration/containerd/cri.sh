#!/bin/bash
# Run one Kubernetes pod through the private containerd's CRI with runtime handler "minirunc"
# (BinaryName = the runtime under test, from config.toml), or remove all pods (cleanup).
# Environment from run.sh: SOCK, SUITE_DIR, NS, images.
set -eu
: "${SOCK:?}" "${SUITE_DIR:?}" "${NS:?}" "${images:?}"
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import grpc' 2>/dev/null; then
    apt-get install -y -qq python3-grpcio >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq python3-grpcio >/dev/null; }
fi
case ${1:?usage: cri.sh run|cleanup} in
run)
    k8s="timeout 60 ctr --address $SOCK --namespace k8s.io"
    $k8s image import "$images/busybox.oci.tar" >/dev/null
    $k8s image import "$images/busybox-pause.oci.tar" >/dev/null
    mkdir -p "$SUITE_DIR/pod-logs"
    timeout 120 "$py" "$here/cri.py" "$SOCK" run "$SUITE_DIR/pod-logs" "/$NS/cri" \
        localhost/minirunc-busybox:latest "$SUITE_DIR/ids.k8s.io"
    ;;
cleanup)
    [ -S "$SOCK" ] || exit 0
    timeout 60 "$py" "$here/cri.py" "$SOCK" cleanup
    k8s="timeout 60 ctr --address $SOCK --namespace k8s.io"
    for img in $($k8s image ls -q); do $k8s image rm "$img" >/dev/null; done
    ;;
esac
