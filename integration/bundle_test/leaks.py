"""What a container run left on the host after `delete`: mounts, cgroups, processes, state dirs."""

import os
import subprocess

from . import reaper

CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_DEPTH = 4


def _mounts():
    """(mount point, source) of every mount we can see."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            src = right.split()[1] if len(right.split()) > 1 else ""
            out.append((fields[4].replace("\\040", " "), src))
    return out


def _cgroup_dirs(cid):
    found = []
    base_depth = CGROUP_ROOT.count("/")
    for dirpath, dirnames, _ in os.walk(CGROUP_ROOT):
        depth = dirpath.count("/") - base_depth
        for d in dirnames:
            if cid in d:
                found.append(os.path.join(dirpath, d))
        if depth >= CGROUP_DEPTH:
            dirnames[:] = []
    return found


def _processes_in_cgroup(cid):
    return [pid for pid, text in reaper.proc_files("cgroup") if cid in text]


def _data_entries(data_root, cid):
    """Layer dirs (<data root>/<key of the state root>/<id>) of CID left in DATA_ROOT."""
    if not os.path.isdir(data_root):
        return []
    return [os.path.join(data_root, key, cid) for key in os.listdir(data_root)
            if os.path.lexists(os.path.join(data_root, key, cid))]


def leftovers(cid, root, data_root, paths):
    """Describe everything of container CID still on the host; PATHS are the bundle and rootfs."""
    found = []
    needles = [cid, root] + list(paths)
    for point, src in _mounts():
        if any(n and (n in point or n in src) for n in needles):
            found.append(f"mount {point} (source {src})")
    found += [f"cgroup {d}" for d in _cgroup_dirs(cid)]
    found += [f"process {p} in a cgroup named after the container" for p in _processes_in_cgroup(cid)]
    found += [f"process {p} (child of the harness, still alive)" for p in reaper.live_children()]
    found += [f"layers {d}" for d in _data_entries(data_root, cid)]
    state = os.path.join(root, cid)
    if os.path.exists(state):
        found.append(f"state dir {state}")
    return found


def release_mounts(paths):
    """Detach mounts a runtime left at or below PATHS (the bundle and its rootfs), deepest first,
    so a leaky runtime (runc 1.1.5 without a mount namespace) does not leave them on the host."""
    points = sorted({p for p, _ in _mounts() if any(p == d or p.startswith(d + "/") for d in paths)},
                    key=len, reverse=True)
    for point in points:
        subprocess.run(["umount", "--lazy", point], stderr=subprocess.DEVNULL, check=False)
