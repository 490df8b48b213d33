//! A container's on-disk state: `<root>/<id>/state.json`, written atomically (temp file + rename),
//! guarded by an flock on the container directory. The status is derived from the live process,
//! never stored stale: a pid whose start time differs is another process, not the container.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// Where a copy-on-write container's layers live.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Layers {
    /// Holds `upper/`, `work/` and `merged/`.
    pub dir: PathBuf,
    /// Read-only layers, top first (the bundle's rootfs is last).
    pub lowers: Vec<PathBuf>,
}

/// A container without a mount namespace mounts its root in the host's mount table (its own
/// mounts sit below that one): where, and which mounts were there, so that delete detaches
/// exactly the container's.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct HostRoot {
    pub path: PathBuf,
    /// The mount at `path` before the container's root was mounted on it.
    pub mount_below: u64,
    /// The container's root mount, once create has seen it.
    pub mount: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container's init; 0 while creating.
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Field 22 of /proc/<pid>/stat when init was created.
    pub init_start_time: u64,
    /// `creating` until create has finished, then `created`; later statuses are derived.
    pub phase: Status,
    /// The container's cgroup, relative to each hierarchy's root.
    pub cgroup_path: Option<PathBuf>,
    /// Present when the rootfs is a copy-on-write overlay.
    pub layers: Option<Layers>,
    /// Present when the container has no mount namespace of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_root: Option<HostRoot>,
    /// The config.json the container was created from, as given.
    pub config: Box<RawValue>,
}

/// Ids are file names under `--root`: refuse anything that could be a path.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'));
    // 255: the id names a directory (state, layers, cgroup), and NAME_MAX is 255.
    if id.is_empty() || id == "." || id == ".." || !ok_chars || id.len() > 255 {
        bail!("invalid container id {id:?}: use 1 to 255 of [A-Za-z0-9_+.-], not \".\" or \"..\"");
    }
    Ok(())
}

pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

pub fn not_found(id: &str) -> anyhow::Error {
    anyhow::anyhow!("container {id:?} does not exist")
}

impl State {
    /// The config.json the container was created from, as create read it.
    pub fn spec(&self) -> Result<oci_spec::runtime::Spec> {
        let mut spec = serde_json::from_str(self.config.get()).context("the saved config.json")?;
        crate::spec::absolute_destinations(&mut spec);
        Ok(spec)
    }

    pub fn load(root: &Path, id: &str) -> Result<State> {
        validate_id(id)?;
        let path = container_dir(root, id).join(STATE_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(id)),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&data).with_context(|| format!("parse {}", path.display()))
    }

    /// Write state.json atomically into the container's directory.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".state.json.tmp");
        let mut f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec(self)?)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(STATE_FILE))
            .with_context(|| format!("rename {} into place", tmp.display()))
    }

    /// The status as the world sees it now. `frozen` says whether the cgroup is frozen.
    pub fn status(&self, dir: &Path, frozen: impl FnOnce() -> bool) -> Status {
        if self.phase == Status::Creating {
            // A create that still holds the lock is in progress; one that crashed left a stale file.
            return if Lock::is_held(dir) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !process_is(self.pid, self.init_start_time) {
            return Status::Stopped;
        }
        if dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state JSON as runc prints it (pid 0 once stopped), plus the root's mode, where
    /// the container's writes go and where the layers live.
    pub fn to_oci_json(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": pid,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v["rootfsMode"] = serde_json::json!(if self.layers.is_some() {
            "cow"
        } else {
            "direct"
        });
        // Where the container's writes to its root land: its upper layer, or the rootfs itself.
        let writes = self
            .layers
            .as_ref()
            .map_or(self.rootfs.clone(), |l| l.dir.join("upper"));
        v["rootfsWrites"] = serde_json::json!(writes);
        if let Some(layers) = &self.layers {
            v["layers"] = serde_json::json!(layers);
        }
        v
    }
}

/// Read (state, start time) from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = crate::fsutil::read_kernel_file(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Is `pid` alive (not a zombie) and the same process that started at `start_time`?
pub fn process_is(pid: i32, start_time: u64) -> bool {
    pid > 0 && matches!(proc_stat(pid), Some((s, t)) if t == start_time && s != 'Z' && s != 'X')
}

/// An exclusive flock on a container directory, released on drop.
pub struct Lock {
    _held: File,
}

impl Lock {
    pub fn exclusive(dir: &Path) -> Result<Lock> {
        let f = File::open(dir).with_context(|| format!("open {}", dir.display()))?;
        loop {
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Lock { _held: f });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).with_context(|| format!("lock {}", dir.display()));
            }
        }
    }

    fn is_held(dir: &Path) -> bool {
        let Ok(f) = File::open(dir) else { return false };
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_ids_that_could_be_paths() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a\0b",
            "with space",
            &"x".repeat(256),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["abc", "a.b-c_d+e", "0123456789abcdef"] {
            validate_id(good).unwrap();
        }
    }

    #[test]
    fn own_process_is_alive_and_start_time_matters() {
        let me = std::process::id() as i32;
        let (_, start) = proc_stat(me).unwrap();
        assert!(process_is(me, start));
        assert!(!process_is(me, start + 1));
        assert!(!process_is(0, start));
    }
}
