//! Shared helpers for tests that run real containers with the `minirunc` binary (root only).
//!
//! - `rootfs()`: a busybox root filesystem built once per test binary by scripts/mkrootfs.sh,
//!   removed when the binary exits. Containers get a copy-on-write overlay over it, so they may
//!   write to their root without touching it.
//! - `Runtime`: its own `--root`/`--data-root` under /tmp/minirunc-test-<pid>-<n>, unique ids
//!   `mrt-<pid>-<n>`, bundles from `minirunc spec`; dropping it force-deletes every container it
//!   named and removes its directory (never through a mount point).
//! - `Runtime::assert_nothing_left(id)`: no state dir, layers, mount, cgroup or process of `id`.
#![allow(dead_code)] // each test binary uses a different part of this module

use serde_json::Value;
use std::cell::RefCell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_minirunc");

/// A number unique within this test binary.
pub fn next() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The shared busybox rootfs, built on first use.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = PathBuf::from(format!("/tmp/minirunc-test-rootfs-{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mkrootfs.sh");
        let out = Command::new("sh").arg(&script).arg(&dir).output().unwrap();
        assert!(out.status.success(), "mkrootfs: {}", text(&out.stderr));
        extern "C" fn remove_rootfs() {
            let dir = format!("/tmp/minirunc-test-rootfs-{}", std::process::id());
            remove_unless_mounted(Path::new(&dir));
        }
        // SAFETY: registering a plain extern "C" function; it runs at process exit.
        unsafe { libc::atexit(remove_rootfs) };
        dir
    })
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Mount points of this (the host's) mount namespace.
pub fn host_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

/// Remove `dir` recursively, unless something is mounted at or below it (then say so and keep it).
pub fn remove_unless_mounted(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    if let Some(m) = host_mounts().iter().find(|m| m.starts_with(&prefix)) {
        eprintln!("not removing {}: {m} is mounted", dir.display());
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A state root, data root and bundles of one test; cleans up on drop.
pub struct Runtime {
    pub base: PathBuf,
    pub root: PathBuf,
    pub data_root: PathBuf,
    ids: RefCell<Vec<String>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        static SUBREAPER: OnceLock<()> = OnceLock::new();
        SUBREAPER.get_or_init(|| {
            // SAFETY: a plain prctl on this process.
            let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
            assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
            std::thread::spawn(|| reap_container_zombies());
        });
        let base = PathBuf::from(format!(
            "/tmp/minirunc-test-{}-{}",
            std::process::id(),
            next()
        ));
        std::fs::create_dir_all(&base).unwrap();
        Runtime {
            root: base.join("state"),
            data_root: base.join("data"),
            base,
            ids: RefCell::new(Vec::new()),
        }
    }

    /// A fresh container id, force-deleted when the runtime is dropped.
    pub fn id(&self) -> String {
        let id = format!("mrt-{}-{}", std::process::id(), next());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// `minirunc --root R --data-root D ARGS`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(&self.root)
            .arg("--data-root")
            .arg(&self.data_root)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run `minirunc ARGS`. stdout and stderr go to files, not pipes: a created container keeps
    /// the runtime's stdio open, and waiting for a pipe's end would wait for the container.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let c = self.command(args);
        self.output(c)
    }

    /// Run a prepared command with stdout/stderr in files; returns when the runtime exits.
    pub fn output(&self, mut c: Command) -> Output {
        let n = next();
        let (out, err) = (
            self.base.join(format!("out-{n}")),
            self.base.join(format!("err-{n}")),
        );
        c.stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        let status = c.status().unwrap();
        let o = Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        };
        let _ = std::fs::remove_file(out);
        let _ = std::fs::remove_file(err);
        o
    }

    /// Like `cmd`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args);
        assert!(
            o.status.success(),
            "minirunc {args:?} failed ({}): {}{}",
            o.status,
            text(&o.stderr),
            text(&o.stdout)
        );
        text(&o.stdout)
    }

    /// Like `cmd`, asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.cmd(args);
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

    /// The config `minirunc spec` writes, made fit for tests: no terminal, the shared rootfs
    /// (absolute path), writable root, `args` as the process.
    pub fn config(&self, args: &[&str]) -> Value {
        let dir = self.base.join(format!("spec-{}", next()));
        std::fs::create_dir(&dir).unwrap();
        self.ok(&["spec", "--bundle", dir.to_str().unwrap()]);
        let mut c: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!(args);
        c["root"]["path"] = rootfs().to_str().unwrap().into();
        c["root"]["readonly"] = false.into();
        c
    }

    /// A bundle directory holding `config`.
    pub fn bundle_with(&self, config: &Value) -> PathBuf {
        let dir = self.base.join(format!("bundle-{}", next()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        dir
    }

    /// A bundle running `args`, after `edit` has changed the config.
    pub fn bundle(&self, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let mut c = self.config(args);
        edit(&mut c);
        self.bundle_with(&c)
    }

    /// `run` a container executing `sh -c script`; returns (exit code, stdout, stderr).
    pub fn run_sh(&self, script: &str, edit: impl FnOnce(&mut Value)) -> (i32, String, String) {
        let bundle = self.bundle(&["sh", "-c", script], edit);
        let id = self.id();
        let o = self.cmd(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
        let code = o.status.code().unwrap_or(-1);
        (code, text(&o.stdout), text(&o.stderr))
    }

    /// Like `run_sh`, asserting exit code 0; returns stdout.
    pub fn sh_ok(&self, script: &str, edit: impl FnOnce(&mut Value)) -> String {
        let (code, out, err) = self.run_sh(script, edit);
        assert_eq!(code, 0, "script {script:?}: stdout {out:?} stderr {err:?}");
        out
    }

    /// Create (not start) a container whose process is `args`; returns its id.
    pub fn create(&self, args: &[&str], edit: impl FnOnce(&mut Value)) -> String {
        let bundle = self.bundle(args, edit);
        let id = self.id();
        self.ok(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
        id
    }

    /// Create and start a long-running container (`sleep 1000`); returns its id.
    pub fn running(&self, edit: impl FnOnce(&mut Value)) -> String {
        let id = self.create(&["sleep", "1000"], edit);
        self.ok(&["start", &id]);
        id
    }

    /// Assert that nothing of container `id` is left on the host: no state dir, no layers, no
    /// mount naming it or this runtime's directories, no cgroup directory and no process.
    pub fn assert_nothing_left(&self, id: &str) {
        assert!(
            !self.root.join(id).exists(),
            "state dir of {id} left behind"
        );
        if let Ok(keys) = std::fs::read_dir(&self.data_root) {
            for k in keys.flatten() {
                assert!(!k.path().join(id).exists(), "layers of {id} left behind");
            }
        }
        let base = format!("{}/", self.base.display());
        for line in std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
        {
            assert!(
                !names(line, id) && !line.contains(&base),
                "mount left behind: {line}"
            );
        }
        if let Some(dir) = find_cgroup_dir(Path::new("/sys/fs/cgroup"), id, 6) {
            panic!("cgroup left behind: {}", dir.display());
        }
        // The test process is a subreaper (as containerd's shim is) and reaps the container's
        // processes in a thread: give that a few seconds, then fail.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while let Some(left) = process_in_cgroup_of(id) {
            assert!(
                std::time::Instant::now() < deadline,
                "process left behind: {left}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A process (pid and cgroups) whose cgroup names `id`.
fn process_in_cgroup_of(id: &str) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let cg = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if names(&cg, id) {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            return Some(format!("{stat} in {cg}"));
        }
    }
    None
}

/// Reap, forever, our zombie children that are container processes of this test binary (orphans
/// reparented to us as subreaper). Only those: `Command` children must stay for their waiters.
/// A dead init of a pid namespace lingers until all its namespace's processes are reaped, so
/// this must go on while a test waits for `delete`.
fn reap_container_zombies() -> ! {
    let me = std::process::id().to_string();
    let prefix = format!("mrt-{me}-");
    loop {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().collect())
                .unwrap_or_default();
            if fields.first() != Some(&"Z") || fields.get(1) != Some(&me.as_str()) {
                continue;
            }
            let cg = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
            if cg.contains(&prefix) {
                // SAFETY: waiting for one specific pid, our zombie child that nobody else waits for.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Whether `text` has `id` as a whole path component (so mrt-1-1 does not match mrt-1-10).
fn names(text: &str, id: &str) -> bool {
    text.split(|c: char| c == '/' || c.is_whitespace() || c == ':' || c == ',')
        .any(|part| part == id)
}

/// A directory below `dir` (up to `depth` levels) named `id`.
fn find_cgroup_dir(dir: &Path, id: &str, depth: usize) -> Option<PathBuf> {
    if depth == 0 {
        return None;
    }
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if !t.is_dir() {
            continue;
        }
        if e.file_name().to_string_lossy() == id {
            return Some(e.path());
        }
        if let Some(found) = find_cgroup_dir(&e.path(), id, depth - 1) {
            return Some(found);
        }
    }
    None
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            if self.root.join(id).exists() {
                let _ = self.cmd(&["delete", "--force", id]);
            }
        }
        remove_unless_mounted(&self.base);
    }
}
