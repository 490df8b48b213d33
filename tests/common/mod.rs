//! Shared by every test binary that runs the `minirunc` binary (root only).
//!
//! - `Sandbox` (sandbox.rs): a private `--root`/`--data-root` under /tmp/minirunc-test-<pid>-<n>,
//!   ids `mrt-<pid>-<n>`, configs from the default spec, bundles, state; dropping it force-deletes
//!   its containers and removes its directory (never through a mount point).
//! - `Running` (watchdog.rs): every run of the binary goes through it; one that outlives its
//!   deadline is killed and the test fails naming it and what was still running.
//! - leaks.rs: `Sandbox::assert_clean(id)`: no state, layers, mount, cgroup or process of `id`.
//! - user.rs: the unprivileged test user of the rootless tests, created when missing.
//! - fs.rs: the shared busybox rootfs, temp dirs and mounts undone on drop.
#![allow(dead_code)] // each test binary uses a different part of this module

mod fs;
mod leaks;
mod sandbox;
mod user;
mod watchdog;

#[allow(unused_imports)] // each test binary uses a different part of these, too
pub use {
    fs::{host_mounts, is_within, make_rootfs, remove_unless_mounted, rootfs, Mount, TempDir},
    leaks::{cgroup_dirs, processes_naming},
    sandbox::Sandbox,
    user::{give_to_user, rootless_user, run_as_user, user_command, ROOTLESS_USER},
    watchdog::{Running, DEFAULT_DEADLINE},
};

use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_minirunc");

/// What `minirunc spec` writes (the binary's own default, read from the same file).
const DEFAULT_CONFIG: &str = include_str!("../../src/commands/default-config.json");

/// A test that cannot run on this host: outside CI a skip (printed; the caller returns), under
/// CI=true a failure, since a test that does not run there proves nothing.
pub fn cannot_run(reason: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!ci, "cannot run under CI: {reason}");
    println!("SKIP: {reason}");
}

/// A number unique within this test binary.
pub fn next() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// What every container id of this test binary starts with.
pub fn id_prefix() -> String {
    format!("mrt-{}-", std::process::id())
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// stdout followed by stderr.
pub fn output_text(o: &Output) -> String {
    text(&o.stdout) + &text(&o.stderr)
}

/// The default spec made fit for tests: no terminal, a writable root, `args` as the process.
/// The root path stays the spec's `rootfs`, relative to the bundle.
pub fn spec_config(args: &[&str]) -> Value {
    let mut c: Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
    c["process"]["terminal"] = false.into();
    c["process"]["args"] = json!(args);
    c["root"]["readonly"] = false.into();
    c
}

/// Appends a read-write bind mount of the host's `source` at `dest`.
pub fn add_bind(c: &mut Value, source: &Path, dest: &str) {
    c["mounts"].as_array_mut().unwrap().push(json!({
        "destination": dest, "type": "bind", "source": source, "options": ["rbind", "rw"],
    }));
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
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Poll `f` until it returns Some, for up to `limit`; fail naming `what` after that.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    let ok = eventually(limit, || {
        found = f();
        found.is_some()
    });
    assert!(ok, "timed out after {limit:?} waiting for {what}");
    found.unwrap()
}
