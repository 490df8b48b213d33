//! Shared by the reliability tests (bad input, crashes, races): a small, fast bundle whose
//! config the bad-input corpus patches.

#![allow(dead_code)] // each test crate uses a different subset

use crate::common::Sandbox;
use std::path::PathBuf;
use std::time::Duration;

/// How long one run of the binary may take in these tests: a hang is a failure, not a stuck
/// suite.
pub const DEADLINE: Duration = Duration::from_secs(20);

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

/// A sandbox with `bundle/`: a busybox rootfs of a few applets, and the base config.
pub fn sandbox() -> (Sandbox, PathBuf) {
    let sb = Sandbox::new().with_deadline(DEADLINE);
    let bundle = sb.path("bundle");
    let rootfs = bundle.join("rootfs");
    for sub in ["bin", "proc", "dev", "tmp", "mnt", "vol"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "true", "sleep", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    sb.write_bundle("bundle", &base_config());
    (sb, bundle)
}
