#!/bin/bash
# Run the real-client suites (containerd, podman as root and as a user, docker) against RUNTIME (absolute path; default: Debian's runc),
# and containerd with minirunc's own shim (the shim suite needs RUNTIME to be a minirunc build).
# Usage (as root): RUNTIME=/usr/local/bin/minirunc integration/run.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
rc=0
"$here/containerd/run.sh" || rc=1
"$here/shim/run.sh" || rc=1
"$here/podman/run.sh" || rc=1
"$here/podman/rootless.sh" || rc=1
"$here/docker/run.sh" || rc=1
exit "$rc"
