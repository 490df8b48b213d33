//! Helpers for tests that run real containers through the built binary: a private state and
//! data root per test, bundles whose config comes from the default spec, and a Drop guard that
//! force-deletes every container and unmounts what the test mounted, even on failure.

#![allow(dead_code)] // each test crate uses a different subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::commit_util::{remove_unless_mounted, Mount};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static ROOTFS: OnceLock<PathBuf> = OnceLock::new();

/// What `minirunc spec` writes (the binary's own default, read from the same file).
const DEFAULT_CONFIG: &str = include_str!("../../src/commands/default-config.json");

pub const BIN: &str = env!("CARGO_BIN_EXE_minirunc");

pub fn unique(label: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{label}-{}-{n}", std::process::id())
}

extern "C" fn remove_shared_rootfs() {
    if let Some(p) = ROOTFS.get() {
        let _ = fs::remove_dir_all(p);
    }
}

/// A busybox rootfs built once per test binary (removed when it exits); containers only read
/// it (copy-on-write). A test that writes to its rootfs uses `Env::rootfs_copy`.
pub fn shared_rootfs() -> &'static Path {
    ROOTFS.get_or_init(|| {
        let dir = PathBuf::from(format!("/tmp/minirunc-test-{}-rootfs", std::process::id()));
        mkrootfs(&dir);
        // SAFETY: registers a plain extern "C" function.
        unsafe { libc::atexit(remove_shared_rootfs) };
        dir
    })
}

fn mkrootfs(dir: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mkrootfs.sh");
    let st = Command::new("sh").arg(script).arg(dir).status().unwrap();
    assert!(st.success(), "mkrootfs.sh {}: {st}", dir.display());
}

/// One test's world: `--root`, `--data-root`, bundles and host dirs under one temp dir.
pub struct Env {
    pub dir: PathBuf,
    ids: Vec<String>,
    /// Undone after the containers are deleted, before the dir is removed.
    pub mounts: Vec<Mount>,
}

impl Env {
    pub fn new() -> Env {
        let dir = PathBuf::from(format!("/tmp/{}", unique("minirunc-test")));
        fs::create_dir_all(&dir).unwrap();
        Env {
            dir,
            ids: Vec::new(),
            mounts: Vec::new(),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    pub fn data_root(&self) -> PathBuf {
        self.path("data")
    }

    /// The binary with this test's `--root` and `--data-root`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(self.path("state"))
            .arg("--data-root")
            .arg(self.data_root())
            .args(args);
        c
    }

    /// Runs with output captured (only for commands that do not leave a container running
    /// with our pipes).
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs with stdio detached (a container started now may outlive the command).
    pub fn ok(&self, args: &[&str]) {
        let st = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "minirunc {args:?}: {st}");
    }

    /// A fresh container id, force-deleted when the Env drops.
    pub fn id(&mut self) -> String {
        let id = unique("mrt");
        self.ids.push(id.clone());
        id
    }

    /// A copy of the shared rootfs this test may change.
    pub fn rootfs_copy(&self, name: &str) -> PathBuf {
        let dst = self.path(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(shared_rootfs())
            .arg(&dst)
            .status()
            .unwrap();
        assert!(st.success(), "cp -a rootfs: {st}");
        dst
    }

    /// A bundle running `sh -c script` on `rootfs`; `edit` changes the config further.
    pub fn bundle(
        &self,
        name: &str,
        rootfs: &Path,
        script: &str,
        edit: impl FnOnce(&mut Value),
    ) -> PathBuf {
        let bundle = self.path(name);
        fs::create_dir_all(&bundle).unwrap();
        let mut c: Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", script]);
        c["root"] = json!({ "path": rootfs, "readonly": false });
        edit(&mut c);
        fs::write(bundle.join("config.json"), c.to_string()).unwrap();
        bundle
    }

    /// Tries `create` of a fresh container (force-deleted at the end): its id, and whether
    /// create succeeded.
    pub fn try_create(&mut self, bundle: &Path) -> (String, bool) {
        let id = self.id();
        let out = self.output(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
        (id, out.status.success())
    }

    /// Creates and starts a container; returns its id.
    pub fn start(&mut self, bundle: &Path, flags: &[&str]) -> String {
        let id = self.id();
        let b = bundle.to_str().unwrap();
        let mut args = vec!["create", "--bundle", b];
        args.extend_from_slice(flags);
        args.push(&id);
        self.ok(&args);
        self.ok(&["start", &id]);
        id
    }

    /// Starts a container and waits until it has stopped.
    pub fn run_to_stop(&mut self, bundle: &Path, flags: &[&str]) -> String {
        let id = self.start(bundle, flags);
        self.wait_status(&id, "stopped");
        id
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.output(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = self.state(id);
            if st["status"] == want {
                return;
            }
            assert!(Instant::now() < deadline, "{id} never got {want}: {st}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The container's upper dir (its copy-on-write layer), from `state`.
    pub fn upper(&self, id: &str) -> PathBuf {
        let st = self.state(id);
        let dir = st["layers"]["dir"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no layers: {st}"));
        Path::new(dir).join("upper")
    }

    /// Waits for a file the container creates in its upper layer to say it is ready.
    pub fn wait_ready(&self, id: &str, name: &str) {
        let path = self.upper(id).join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{id}: {} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stderr(Stdio::null())
                .status();
        }
        self.mounts.clear();
        remove_unless_mounted(&self.dir);
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Adds capabilities to every set of the process (the default spec has only three).
pub fn add_caps(c: &mut Value, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        let list = c["process"]["capabilities"][set].as_array_mut().unwrap();
        list.extend(caps.iter().map(|s| json!(s)));
    }
}

/// Appends a bind mount of `source` at `dest`.
pub fn add_bind(c: &mut Value, source: &Path, dest: &str) {
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": dest, "type": "bind", "source": source, "options": ["rbind", "rw"],
    }));
}
