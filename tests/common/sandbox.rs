//! One test's private world: a directory holding the runtime's `--root` and `--data-root`, the
//! bundles and the output files; every run of the binary has a deadline (see watchdog.rs).

use super::fs::{rootfs, Mount, TempDir};
use super::watchdog::{output_files, Running, DEFAULT_DEADLINE};
use super::{spec_config, text, BIN};
use serde_json::Value;
use std::cell::RefCell;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Dropping it force-deletes every container in its state root, undoes the mounts handed to
/// `keep_mount` and removes its directory (never through a mount point).
pub struct Sandbox {
    pub root: PathBuf,
    pub data_root: PathBuf,
    /// Each run of the binary may take this long.
    pub deadline: Duration,
    mounts: RefCell<Vec<Mount>>,
    pub dir: TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        static SUBREAPER: OnceLock<()> = OnceLock::new();
        SUBREAPER.get_or_init(|| {
            // SAFETY: a plain prctl on this process.
            let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
            std::thread::spawn(|| super::leaks::reap_container_zombies());
        });
        let dir = TempDir::new();
        Sandbox {
            root: dir.join("state"),
            data_root: dir.join("data"),
            deadline: DEFAULT_DEADLINE,
            mounts: RefCell::new(Vec::new()),
            dir,
        }
    }

    /// The same with a shorter deadline for each run of the binary.
    pub fn with_deadline(mut self, limit: Duration) -> Sandbox {
        self.deadline = limit;
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A fresh container id, `mrt-<pid>-<n>`.
    pub fn id(&self) -> String {
        format!("{}{}", super::id_prefix(), super::next())
    }

    /// Undo `mount` after the containers are deleted, before the directory is removed.
    pub fn keep_mount(&self, mount: Mount) {
        self.mounts.borrow_mut().push(mount);
    }

    /// The global flags that keep the runtime inside this sandbox.
    pub fn globals(&self) -> Vec<OsString> {
        vec![
            "--root".into(),
            self.root.clone().into(),
            "--data-root".into(),
            self.data_root.clone().into(),
        ]
    }

    /// `minirunc --root R --data-root D ARGS` with stdin from /dev/null, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(self.globals()).args(args).stdin(Stdio::null());
        c
    }

    /// Start a prepared minirunc command line, output into files of the sandbox.
    pub fn spawn_command(&self, c: Command) -> Running {
        let (stdout, stderr) = output_files(&self.dir);
        Running::start(c, stdout, stderr)
    }

    /// Start `minirunc ARGS`.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_command(self.command(args))
    }

    /// Run a prepared command to its end (within the sandbox's deadline).
    pub fn output(&self, c: Command) -> Output {
        self.spawn_command(c).finish_within(self.deadline)
    }

    /// Run `minirunc ARGS` to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.output(self.command(args))
    }

    /// Run `minirunc ARGS` with extra fds: `fds[i]` becomes fd `3 + i` in minirunc.
    pub fn run_with_fds(&self, args: &[&str], fds: Vec<OwnedFd>) -> Output {
        // No allocation after fork: a fixed array for the moved fds.
        assert!(fds.len() <= 8, "run_with_fds takes up to 8 fds");
        let first_free = 3 + fds.len() as i32;
        let mut c = self.command(args);
        // SAFETY: only fcntl and dup2 between fork and exec.
        unsafe {
            c.pre_exec(move || {
                // Move them above the target range first (a file may already sit on a target
                // number), then into place: dup2 to another number clears close-on-exec.
                let mut moved = [-1; 8];
                for (f, slot) in fds.iter().zip(moved.iter_mut()) {
                    *slot = libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, first_free);
                    if *slot < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (i, &fd) in moved[..fds.len()].iter().enumerate() {
                    if libc::dup2(fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        self.output(c)
    }

    /// Like `run`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "minirunc {args:?} failed ({}): {}{}",
            o.status,
            text(&o.stderr),
            text(&o.stdout)
        );
        text(&o.stdout)
    }

    /// Like `run`, asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "minirunc {args:?} succeeded: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stderr)
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// The status, or None when `state` says the container does not exist.
    pub fn try_status(&self, id: &str) -> Option<String> {
        let out = self.run(&["state", id]);
        if !out.status.success() {
            let err = text(&out.stderr);
            assert!(err.contains("does not exist"), "state {id}: {err}");
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        Some(v["status"].as_str().unwrap().to_string())
    }

    /// Poll `state` until the status is `want` (containers stop asynchronously); returns the
    /// state.
    pub fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = self.state(id);
            if st["status"] == want || Instant::now() > deadline {
                assert_eq!(st["status"], want, "state of {id}: {st}");
                return st;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `spec_config` on the shared rootfs (an absolute path).
    pub fn config(&self, args: &[&str]) -> Value {
        let mut c = spec_config(args);
        c["root"]["path"] = rootfs().to_str().unwrap().into();
        c
    }

    /// The directory `name` holding `config` as its config.json.
    pub fn write_bundle(&self, name: &str, config: &Value) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let json = serde_json::to_vec_pretty(config).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
        dir
    }

    /// A bundle running `args` on the shared rootfs, after `edit` has changed the config.
    pub fn bundle(&self, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let mut c = self.config(args);
        edit(&mut c);
        self.write_bundle(&format!("bundle-{}", super::next()), &c)
    }

    /// A copy of the shared rootfs this test may change.
    pub fn rootfs_copy(&self, name: &str) -> PathBuf {
        let dst = self.path(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(rootfs())
            .arg(&dst)
            .status()
            .unwrap();
        assert!(st.success(), "cp -a rootfs: {st}");
        dst
    }

    /// `run` a container executing `sh -c script`; returns (exit code, stdout, stderr).
    pub fn run_sh(&self, script: &str, edit: impl FnOnce(&mut Value)) -> (i32, String, String) {
        let bundle = self.bundle(&["sh", "-c", script], edit);
        let id = self.id();
        let o = self.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
        let code = o.status.code().unwrap_or(-1);
        (code, text(&o.stdout), text(&o.stderr))
    }

    /// Like `run_sh`, asserting exit code 0; returns stdout.
    pub fn sh_ok(&self, script: &str, edit: impl FnOnce(&mut Value)) -> String {
        let (code, out, err) = self.run_sh(script, edit);
        assert_eq!(code, 0, "script {script:?}: stdout {out:?} stderr {err:?}");
        out
    }

    /// `create` (not start) a container of `bundle` with `flags`; returns its id.
    pub fn create_bundle(&self, bundle: &std::path::Path, flags: &[&str]) -> String {
        let id = self.id();
        let b = bundle.to_str().unwrap();
        let mut args = vec!["create", "--bundle", b];
        args.extend_from_slice(flags);
        args.push(&id);
        self.ok(&args);
        id
    }

    /// Tries `create` of a fresh container: its id, and whether create succeeded.
    pub fn try_create(&self, bundle: &std::path::Path) -> (String, bool) {
        let id = self.id();
        let out = self.run(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
        (id, out.status.success())
    }

    /// Creates and starts a container of `bundle`; returns its id.
    pub fn start_bundle(&self, bundle: &std::path::Path, flags: &[&str]) -> String {
        let id = self.create_bundle(bundle, flags);
        self.ok(&["start", &id]);
        id
    }

    /// Create (not start) a container whose process is `args`; returns its id.
    pub fn create(&self, args: &[&str], edit: impl FnOnce(&mut Value)) -> String {
        self.create_bundle(&self.bundle(args, edit), &[])
    }

    /// Create and start a long-running container (`sleep 1000`); returns its id.
    pub fn running(&self, edit: impl FnOnce(&mut Value)) -> String {
        self.start_bundle(&self.bundle(&["sleep", "1000"], edit), &[])
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // A failed test may leave containers: remove them the runtime's way first. A hang here
        // is reported, not raised: the test may be failing already.
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            let mut delete = self.spawn(&["delete", "--force", &id]);
            if let Err(why) = delete.wait_within(self.deadline) {
                eprintln!("cleanup of {}: {why}", self.dir.display());
            }
        }
        self.mounts.borrow_mut().clear();
    }
}
