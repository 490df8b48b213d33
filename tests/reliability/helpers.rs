//! Shared by the reliability tests (bad input, crashes, races): a private sandbox of state root,
//! data root and bundle per test, running the release binary with a deadline, and a check that
//! nothing of a container id is left on the host (state, layers, mounts, cgroups, processes).

#![allow(dead_code)] // each test crate uses a different subset

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_minirunc");

/// `mrt-<label>-<pid>-<n>`: unique per call, carries the leak-check marker.
pub fn unique(label: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("mrt-{label}-{}-{n}", std::process::id())
}

/// The configuration every case starts from: valid, and fast to run (/bin/true).
pub fn base_config() -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/true"],
            "env": ["PATH=/bin"],
            "cwd": "/"
        },
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}]
        }
    })
}

/// A temporary directory with `root/` (state), `data/` (layers) and `bundle/` (busybox rootfs
/// and the base config). Dropping it removes what is left, never descending into a mount.
pub struct Sandbox {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub data_root: PathBuf,
    pub bundle: PathBuf,
}

impl Sandbox {
    pub fn new(label: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(unique(label));
        let sb = Sandbox {
            root: dir.join("root"),
            data_root: dir.join("data"),
            bundle: dir.join("bundle"),
            dir,
        };
        let rootfs = sb.bundle.join("rootfs");
        for sub in ["bin", "proc", "dev", "tmp", "mnt", "vol"] {
            std::fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "true", "sleep", "cat", "echo"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        sb.write_config(&base_config());
        sb
    }

    pub fn write_config(&self, config: &serde_json::Value) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
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

    /// Start a minirunc command line inside the sandbox. Its output goes to files, not pipes:
    /// a container's processes inherit the runtime's stdio and would hold pipes open.
    pub fn spawn<S: AsRef<OsStr>>(&self, args: &[S]) -> Spawned {
        let base = self.dir.join(unique("out"));
        let (out, err) = (base.with_extension("stdout"), base.with_extension("stderr"));
        let child = Command::new(BIN)
            .args(self.globals())
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Spawned { child, out, err }
    }

    /// Run a verb to completion (20 s at most: a hang is a failure, not a stuck suite).
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.spawn(args).finish(Duration::from_secs(20))
    }

    /// Run and require success.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "minirunc {:?} failed: {}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `state` answered: the status, or None when the container does not exist.
    pub fn status(&self, id: &str) -> Option<String> {
        let out = self.run(&["state", id]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("does not exist"), "state {id}: {err}");
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Some(v["status"].as_str().unwrap().to_string())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // A failed test may leave containers: remove them the runtime's way first.
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = Command::new(BIN)
                .args(self.globals())
                .args([OsStr::new("delete"), OsStr::new("--force"), &e.file_name()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Err(e) = minirunc::fsutil::remove_tree(&self.dir) {
            eprintln!("sandbox {}: {e:#}", self.dir.display());
        }
    }
}

pub fn run_with_deadline(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd.spawn().unwrap();
    run_with_deadline_child(child, limit)
}

/// A running minirunc whose output is in files.
pub struct Spawned {
    pub child: std::process::Child,
    out: PathBuf,
    err: PathBuf,
}

impl Spawned {
    /// Wait (SIGKILL and fail after `limit`) and collect the output.
    pub fn finish(self, limit: Duration) -> Output {
        let mut out = run_with_deadline_child(self.child, limit);
        out.stdout = std::fs::read(&self.out).unwrap_or_default();
        out.stderr = std::fs::read(&self.err).unwrap_or_default();
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
        out
    }

    /// SIGKILL it now.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
    }
}

/// Wait for `child` and collect its output; SIGKILL and fail when it exceeds `limit`.
pub fn run_with_deadline_child(child: std::process::Child, limit: Duration) -> Output {
    let pid = child.id() as i32;
    let deadline = Instant::now() + limit;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    loop {
        if let Ok(out) = rx.try_recv() {
            return out.unwrap();
        }
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("pid {pid} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Everything on the host that still carries `id` or lives in the sandbox: state and data
/// dirs, mounts, cgroups (every hierarchy) and processes. Empty when the host is clean.
pub fn leftovers(sb: &Sandbox, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [&sb.root, &sb.data_root] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            found.push(format!("state/data: {}", e.path().display()));
        }
    }
    let sandbox = sb.dir.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        if line.contains(id) || line.contains(&sandbox) {
            found.push(format!("mount: {line}"));
        }
    }
    found.extend(
        cgroups_named(id)
            .into_iter()
            .map(|p| format!("cgroup: {p}")),
    );
    found.extend(
        processes_with(id)
            .into_iter()
            .map(|p| format!("process: {p}")),
    );
    found
}

/// Cgroup directories (3 levels below each hierarchy) whose path contains `needle`.
pub fn cgroups_named(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack: Vec<(PathBuf, usize)> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.path(), 0))
        .collect();
    while let Some((dir, depth)) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if p.to_string_lossy().contains(needle) {
                found.push(p.display().to_string());
            } else if depth < 3 {
                stack.push((p, depth + 1));
            }
        }
    }
    found
}

/// Live processes (not our own, not zombies) whose command line or cgroup contains `needle`.
pub fn processes_with(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let p = e.path();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        if stat.rsplit(')').next().is_some_and(|r| r.starts_with(" Z")) {
            continue;
        }
        let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
        let cgroup = std::fs::read_to_string(p.join("cgroup")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) || cgroup.contains(needle) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// Poll `cond` for up to `limit`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Assert the host is clean of `id`, allowing a short time for processes to be reaped.
pub fn assert_clean(sb: &Sandbox, id: &str, context: &str) {
    let mut last = Vec::new();
    let clean = eventually(Duration::from_secs(3), || {
        last = leftovers(sb, id);
        last.is_empty()
    });
    assert!(clean, "{context}: left behind:\n{}", last.join("\n"));
}
