"""Run one bundle through one runtime: create, state, start, state, [kill], wait, state, delete, state.

Nothing is written into the bundle. Each run gets a private --root (unless one is given), a unique
container id starting with "mrt-", and files for the container's stdio, which it inherits from create.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from . import expect, leaks, reaper

POLL_S = 0.02


class Abort(Exception):
    """A lifecycle step failed; the message is the first difference reported."""


@dataclass
class Run:
    bundle: str
    runtime: str
    cid: str
    passed: bool = False
    failures: list = field(default_factory=list)
    timings_ms: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    exit_code: object = None
    leftovers: list = field(default_factory=list)

    def as_dict(self):
        return dict(self.__dict__)


class Console:
    """The receiving end of --console-socket: one connection carrying the pty master (SCM_RIGHTS)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.master = None
        self.data = b""

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        if len(fds) != 1:
            raise Abort(f"console socket: expected 1 fd, got {len(fds)}")
        self.master = fds[0]
        os.set_blocking(self.master, False)

    def pump(self):
        """Read what the container wrote to its terminal so far (it blocks if nobody reads)."""
        while self.master is not None:
            try:
                chunk = os.read(self.master, 65536)
            except BlockingIOError:
                return
            except OSError:  # EIO: every slave fd is closed
                chunk = b""
            if not chunk:
                os.close(self.master)
                self.master = None
                return
            self.data += chunk

    def close(self):
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self.sock.close()


class Lifecycle:
    def __init__(self, runtime, bundle, cid, rootdir, timeout, reap, as_user=None):
        self.runtime = runtime
        self.bundle = bundle
        self.cid = cid
        self.timeout = timeout
        self.reap = reap
        self.work = tempfile.mkdtemp(prefix=f"minirunc-test-{cid}-")
        # Searchable by all: a container with a user namespace reaches its layers under it as its
        # mapped root, not as the host's.
        os.chmod(self.work, 0o711)
        self.own_root = rootdir is None
        self.root = rootdir or os.path.join(self.work, "root")
        # minirunc's copy-on-write layers go under the run's own dir too, never the host's default
        # data root (runc ignores the variable); a caller's MINIRUNC_DATA_ROOT wins.
        self.data_root = os.environ.get("MINIRUNC_DATA_ROOT") or os.path.join(self.work, "data")
        self.env = dict(os.environ, MINIRUNC_DATA_ROOT=self.data_root)
        # --as-user: the runtime runs as that user, in the run's dir (the user's), on the
        # bundle's rootless form; expectations stay the bundle's.
        self.user, self.config_bundle = as_user or (None, bundle)
        if self.user:
            self.user.give(self.work)
            self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MINIRUNC_DATA_ROOT": self.data_root,
                        "XDG_RUNTIME_DIR": self.work, "HOME": self.work}
        self.exp = expect.load(bundle)
        self.timeout = self.exp.get("timeout_s", timeout)
        self.run = Run(bundle=bundle, runtime=runtime, cid=cid)
        self.console = None
        self.pid = 0

    # --- runtime commands -------------------------------------------------------------------------
    def cmd(self, step, *args, stdout=None, stderr=None):
        argv = [self.runtime, "--root", self.root, *args]
        if self.user:
            argv = self.user.wrap(argv, self.env)
        t0 = time.monotonic()
        capture = stdout is None
        try:
            res = subprocess.run(argv, stdin=subprocess.DEVNULL, env=self.env,
                                 stdout=subprocess.PIPE if capture else stdout,
                                 stderr=subprocess.PIPE if capture else stderr,
                                 timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise Abort(f"{step}: `{' '.join(argv)}` hung for {self.timeout}s") from e
        finally:
            self.run.timings_ms[step] = round((time.monotonic() - t0) * 1000, 1)
        out = (res.stdout or b"").decode(errors="replace") if capture else ""
        err = (res.stderr or b"").decode(errors="replace") if capture else ""
        return res.returncode, out, err

    def state(self, step, allowed):
        rc, out, err = self.cmd(step, "state", self.cid)
        if rc != 0:
            raise Abort(f"{step}: state exited {rc}: {(err or out).strip()}")
        try:
            st = json.loads(out)
        except ValueError as e:
            raise Abort(f"{step}: state printed invalid JSON: {out[:200]!r}") from e
        self.run.states[step] = st
        if st.get("status") not in allowed:
            raise Abort(f"{step}: status {st.get('status')!r}, expected {' or '.join(allowed)}")
        return st

    # --- the lifecycle ----------------------------------------------------------------------------
    def execute(self):
        with open(os.path.join(self.config_bundle, "config.json"), encoding="utf-8") as f:
            terminal = json.load(f).get("process", {}).get("terminal", False)
        expect.prepare(self.bundle, self.exp)
        if self.own_root:
            os.mkdir(self.root, 0o700)
            if self.user:
                self.user.give(self.root)
        pid_file = os.path.join(self.work, "init.pid")
        create = ["create", "--bundle", self.config_bundle, "--pid-file", pid_file]
        if terminal:
            self.console = Console(os.path.join(self.work, "console.sock"))
            if self.user:
                self.user.give(self.console.path)
            create += ["--console-socket", self.console.path]
        out_path = os.path.join(self.work, "stdout")
        err_path = os.path.join(self.work, "stderr")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            rc, _, _ = self.cmd("create", *create, self.cid, stdout=out, stderr=err)
        if rc != 0:
            raise Abort(f"create exited {rc}: {self.read(err_path).strip()}")
        if self.console:
            self.console.receive(self.timeout)
        st = self.state("state-created", ("created",))
        self.pid = st.get("pid") or 0
        if not isinstance(self.pid, int) or self.pid <= 0:
            raise Abort(f"state-created: pid {self.pid!r}, expected > 0")
        if self.read(pid_file).strip() != str(self.pid):
            raise Abort(f"--pid-file holds {self.read(pid_file)!r}, state says pid {self.pid}")
        rc, out, err = self.cmd("start", "start", self.cid)
        if rc != 0:
            raise Abort(f"start exited {rc}: {(err or out).strip()}")
        # A service must still run when it is killed; anything else may already be done.
        self.state("state-started", ("running",) if "kill" in self.exp else ("running", "stopped"))
        deadline = time.monotonic() + self.timeout
        if "kill" in self.exp:
            self.kill_when_ready(deadline, out_path)
        self.wait_exit(deadline, out_path)
        self.state("state-stopped", ("stopped",))
        rc, out, err = self.cmd("delete", "delete", self.cid)
        if rc != 0:
            raise Abort(f"delete exited {rc}: {(err or out).strip()}")
        rc, out, err = self.cmd("state-deleted", "state", self.cid)
        if rc == 0 or "does not exist" not in err + out:
            raise Abort(f"state after delete: exit {rc}, expected failure with 'does not exist': "
                        f"{(err or out).strip()!r}")

    def output(self, out_path):
        if self.console:
            self.console.pump()
            return self.console.data.decode(errors="replace")
        return self.read(out_path)

    def kill_when_ready(self, deadline, out_path):
        kill = self.exp["kill"]
        ready = kill.get("after_stdout")
        t0 = time.monotonic()
        while ready is not None and ready not in self.output(out_path).splitlines():
            if time.monotonic() > deadline:
                raise Abort(f"timeout: no stdout line {ready!r} within {self.timeout}s")
            time.sleep(POLL_S)
        self.run.timings_ms["ready"] = round((time.monotonic() - t0) * 1000, 1)
        rc, out, err = self.cmd("kill", "kill", self.cid, kill.get("signal", "TERM"))
        if rc != 0:
            raise Abort(f"kill exited {rc}: {(err or out).strip()}")

    def wait_exit(self, deadline, out_path):
        """Reap init (our child since create exited) and record its exit status."""
        t0 = time.monotonic()
        while True:
            self.output(out_path)
            self.reap.reap()
            code = self.reap.pop(self.pid)
            if code is not None:
                self.run.exit_code = code
                break
            ppid = reaper.parent_of(self.pid)
            if ppid is None:
                raise Abort(f"wait: init {self.pid} exited but was not our child: its exit status "
                            "is lost (was it reparented to the harness, a subreaper?)")
            if time.monotonic() > deadline:
                raise Abort(f"timeout: container still running after {self.timeout}s")
            time.sleep(POLL_S)
        self.run.timings_ms["wait"] = round((time.monotonic() - t0) * 1000, 1)

    def force_cleanup(self):
        """After a failure: kill and force-delete so that nothing is left behind."""
        self.try_cmd("cleanup-kill", "kill", self.cid, "KILL")
        if self.pid > 0 and reaper.parent_of(self.pid) is not None:
            reaper.kill_quietly(self.pid)
        end = time.monotonic() + 5
        while self.pid > 0 and reaper.parent_of(self.pid) is not None and time.monotonic() < end:
            self.reap.reap()
            time.sleep(POLL_S)
        self.try_cmd("cleanup-delete", "delete", "--force", self.cid)
        self.reap.reap()

    def try_cmd(self, step, *args):
        try:
            self.cmd(step, *args)
        except Abort as e:
            self.run.failures.append(str(e))

    @staticmethod
    def read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def finish(self, out_path, err_path, rootfs):
        run = self.run
        run.stdout = self.output(out_path)
        run.stderr = self.read(err_path)
        if not run.failures:
            diff = expect.check_stdout(self.exp, run.stdout)
            if diff:
                run.failures.append(diff)
            want = self.exp.get("exit_code", 0)
            if run.exit_code != want:
                run.failures.append(f"exit code {run.exit_code}, expected {want}")
            run.failures += expect.check_host(self.bundle, self.exp, self.cid)
        expect.cleanup_host(self.bundle, self.exp, self.cid)
        self.reap.reap()
        run.leftovers = leaks.leftovers(self.cid, self.root, self.data_root, [self.bundle, rootfs])
        remaining = run.leftovers
        if run.leftovers:
            run.failures.append("left behind: " + "; ".join(run.leftovers))
            leaks.release_mounts([self.bundle, rootfs])
            remaining = leaks.leftovers(self.cid, self.root, self.data_root, [self.bundle, rootfs])
        run.passed = not run.failures
        if self.console:
            self.console.close()
        # A private root with leftovers the harness could not release is kept for inspection
        # (integration/leak-check.sh reports it); the run's failure records them either way.
        if not (self.own_root and remaining):
            shutil.rmtree(self.work, ignore_errors=True)


def rootfs_of(bundle):
    try:
        with open(os.path.join(bundle, "config.json"), encoding="utf-8") as f:
            path = json.load(f).get("root", {}).get("path", "rootfs")
    except (OSError, ValueError):
        return os.path.join(bundle, "rootfs")
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(bundle, path))


def run_bundle(runtime, bundle, cid, rootdir, timeout, reap, as_user=None):
    """Run BUNDLE once under RUNTIME; never raises for container failures, never leaves it behind.
    AS_USER: (rootless.User, the bundle's rootless form) to run it as that user."""
    bundle = os.path.abspath(bundle)
    t0 = time.monotonic()
    try:
        lc = Lifecycle(runtime, bundle, cid, rootdir, timeout, reap, as_user)
    except expect.ExpectError as e:
        run = Run(bundle=bundle, runtime=runtime, cid=cid, failures=[str(e)])
        return run
    out_path = os.path.join(lc.work, "stdout")
    err_path = os.path.join(lc.work, "stderr")
    try:
        lc.execute()
    except (Abort, OSError) as e:
        lc.run.failures.append(str(e))
        lc.force_cleanup()
    except KeyboardInterrupt:
        # Interrupted (Ctrl-C or SIGTERM): still leave nothing behind.
        lc.force_cleanup()
        if not os.path.exists(os.path.join(lc.root, cid)):
            shutil.rmtree(lc.work, ignore_errors=True)
        raise
    lc.finish(out_path, err_path, rootfs_of(bundle))
    lc.run.timings_ms["total"] = round((time.monotonic() - t0) * 1000, 1)
    return lc.run
