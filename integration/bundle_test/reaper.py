"""The harness as a child subreaper: the runtime's `create` exits and the container's init is
reparented to us, so we can reap it and learn its exit status, as containerd's shim and conmon do."""

import ctypes
import os
import signal

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


def status_to_code(status):
    """Shell convention: the exit code, or 128+N for death by signal N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Reaper:
    """Collects every exited child. Only called between subprocess runs (single thread), so it never
    steals the status of a runtime command that subprocess is waiting for."""

    def __init__(self):
        self.codes = {}

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.codes[pid] = status_to_code(status)

    def pop(self, pid):
        return self.codes.pop(pid, None)


def parent_of(pid):
    """PPid of a live process, or None when it is gone (or a zombie that is not ours)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_files(name):
    """(pid, content of /proc/PID/NAME) for every process still there when read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/{name}", encoding="utf-8", errors="replace") as f:
                yield int(entry), f.read()
        except OSError:
            continue


def live_children():
    """Pids of our live (not zombie) children: after delete there must be none."""
    me = os.getpid()
    kids = []
    for pid, stat in proc_files("stat"):
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z":
            kids.append(pid)
    return kids


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
