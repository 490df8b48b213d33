"""--as-user: run the bundles as an unprivileged user, each turned into its rootless form.

The form is runc's `spec --rootless` conversion (specconv.ToRootless), done here so that the
oracle's shape does not come from the runtime under test: a user namespace mapping the user's own
uid and gid to root (a bundle with its own user namespace keeps its mappings, which must lie in the
user's subordinate ranges), no network or cgroup namespace, the host's /sys bound read-only in
place of sysfs, no uid=/gid= mount options (ids that are not mapped), and no device cgroup rules.
"""

import copy
import json
import os
import pwd

# Bundles whose point needs root, with the reason they are left out.
NOT_ROOTLESS = {
    "memory-limit": "a memory limit needs a cgroup, which a user does not have here",
    "env-cwd-user": "runs as uid 1000 with supplementary groups, which a single-id mapping lacks",
    "fifo-device": "creates a device node, which a user namespace may not (mknod)",
    "no-mount-ns": "a rootless container needs a mount namespace for its root",
    "volume": "writes into a host directory root owns",
}


class User:
    """The user the runtime runs as: name, uid, gid."""

    def __init__(self, name):
        try:
            pw = pwd.getpwnam(name)
        except KeyError as e:
            raise SystemExit(f"bundle-test: --as-user {name}: no such user") from e
        self.name, self.uid, self.gid = name, pw.pw_uid, pw.pw_gid

    def wrap(self, argv, env):
        """ARGV run as the user with exactly ENV (nothing of root's environment leaks in)."""
        pairs = [f"{k}={v}" for k, v in sorted(env.items())]
        return ["runuser", "-u", self.name, "--", "env", "-i", *pairs, *argv]

    def give(self, path):
        os.chown(path, self.uid, self.gid)


def convert(config, bundle, user):
    """CONFIG (of BUNDLE) in its rootless form for USER; the root path made absolute."""
    c = copy.deepcopy(config)
    root = c.setdefault("root", {"path": "rootfs"})
    if not os.path.isabs(root["path"]):
        root["path"] = os.path.normpath(os.path.join(bundle, root["path"]))
    linux = c.setdefault("linux", {})
    namespaces = linux.get("namespaces", [])
    has_userns = any(n.get("type") == "user" for n in namespaces)
    linux["namespaces"] = [n for n in namespaces if n.get("type") not in ("network", "cgroup")]
    if not has_userns:
        linux["namespaces"].append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": user.gid, "size": 1}]
    resources = linux.get("resources", {})
    resources.pop("devices", None)
    if not resources:
        linux.pop("resources", None)
    mounts = []
    for m in c.get("mounts", []):
        if os.path.normpath(m.get("destination", "")) == "/sys":
            m = {"destination": "/sys", "type": "none", "source": "/sys",
                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        elif "options" in m:
            m = dict(m, options=[o for o in m["options"] if not o.startswith(("uid=", "gid="))])
        mounts.append(m)
    c["mounts"] = mounts
    return c


def write_bundle(bundle, parent, user):
    """The rootless form of BUNDLE as PARENT/<its name>/config.json (its root where it was)."""
    with open(os.path.join(bundle, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    out = os.path.join(parent, os.path.basename(bundle))
    os.mkdir(out)
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(convert(config, bundle, user), f, indent=2)
    return out
