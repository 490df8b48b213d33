"""Minimal Kubernetes CRI client (runtime.v1) for the containerd suite: runs one pod with the
runtime handler "minirunc" (the BinaryName runtime of integration/containerd/config.toml), as the
kubelet would for a RuntimeClass with that handler. No crictl on Debian 12, so the few protobuf
messages needed are encoded by hand over grpcio's raw-bytes calls.

Usage: cri.py SOCKET run LOGDIR CGROUP_PARENT IMAGE IDFILE
                                         -> prints the container's log lines; appends the
                                            sandbox and container ids to IDFILE
       cri.py SOCKET cleanup                          -> stops and removes every pod sandbox
"""
import os
import sys
import time

import grpc

# CRI enums (k8s.io/cri-api runtime/v1 api.proto).
NAMESPACE_NODE = 2
CONTAINER_EXITED = 2


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, value):
    """Encode one field: int -> varint, str/bytes -> length-delimited (strings and messages)."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def msg(*fields):
    return b"".join(field(n, v) for n, v in fields if v is not None)


def decode(data):
    """Decode one message level into {field number: [raw values]}."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = read_varint(data, i)
        elif wire == 2:
            size, i = read_varint(data, i)
            val, i = data[i:i + size], i + size
        elif wire == 1:
            val, i = data[i:i + 8], i + 8
        elif wire == 5:
            val, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.setdefault(num, []).append(val)
    return out


def read_varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


class Runtime:
    def __init__(self, socket):
        self.channel = grpc.insecure_channel("unix://" + socket)

    def call(self, method, request):
        rpc = self.channel.unary_unary("/runtime.v1.RuntimeService/" + method)
        return decode(rpc(request, timeout=60))


def sandbox_config(name, logdir, cgroup_parent):
    metadata = msg((1, name), (2, name + "-uid"), (3, "default"), (4, 0))
    # Host network: there is no CNI plugin here.
    security = msg((1, msg((1, NAMESPACE_NODE))))
    linux = msg((1, cgroup_parent), (2, security))
    return msg((1, metadata), (3, logdir), (8, linux))


def record(idfile, ident):
    with open(idfile, "a") as f:
        f.write(ident + "\n")


def run(rt, logdir, cgroup_parent, image, idfile):
    sandbox = sandbox_config("mrt-pod", logdir, cgroup_parent)
    resp = rt.call("RunPodSandbox", msg((1, sandbox), (2, "minirunc")))
    pod = resp[1][0].decode()
    record(idfile, pod)
    try:
        container = msg(
            (1, msg((1, "mrt-ctr"), (2, 0))),
            (2, msg((1, image))),
            (3, "sh"),
            (4, "-c"),
            (4, 'echo "via-cri-binaryname uid=$(id -u)"'),
            (11, "mrt-ctr.log"),
        )
        resp = rt.call("CreateContainer", msg((1, pod), (2, container), (3, sandbox)))
        cid = resp[1][0].decode()
        record(idfile, cid)
        rt.call("StartContainer", msg((1, cid)))
        for _ in range(300):
            status = decode(rt.call("ContainerStatus", msg((1, cid)))[1][0])
            if status.get(3, [0])[0] == CONTAINER_EXITED:
                break
            time.sleep(0.1)
        else:
            raise SystemExit("CRI container did not exit within 30s")
        code = status.get(7, [0])[0]
        with open(os.path.join(logdir, "mrt-ctr.log")) as f:
            # CRI log lines: "<time> <stream> <tag> <text>"
            for line in f:
                print(line.rstrip("\n").split(" ", 3)[-1])
        rt.call("RemoveContainer", msg((1, cid)))
        if code != 0:
            raise SystemExit(f"CRI container exited with {code}")
    finally:
        rt.call("StopPodSandbox", msg((1, pod)))
        rt.call("RemovePodSandbox", msg((1, pod)))


def cleanup(rt):
    resp = rt.call("ListPodSandbox", b"")
    for item in resp.get(1, []):
        pod = decode(item)[1][0].decode()
        rt.call("StopPodSandbox", msg((1, pod)))
        rt.call("RemovePodSandbox", msg((1, pod)))


def main():
    rt = Runtime(sys.argv[1])
    try:
        if sys.argv[2] == "run":
            run(rt, *sys.argv[3:7])
        else:
            cleanup(rt)
    except grpc.RpcError as err:
        raise SystemExit(f"CRI call failed: {err.details()}")


if __name__ == "__main__":
    main()
