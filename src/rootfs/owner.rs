//! The owner record of a copy-on-write layer, `<layer>/owner.json`: which `--root` and id it
//! belongs to, and what shows that its container may still use it.
//!
//! Why a record and not the mount table: the overlay is mounted only inside the container's own
//! mount namespace (see `rootfs::prepare`), so no host mount table shows a live container's
//! layer, and reading every process's mountinfo would cost a walk of /proc on every create. The
//! record names the container's init (pid and start time, in this boot) and its cgroup: a
//! process left in the cgroup (one exec'd into a container without a pid namespace outlives
//! init) keeps the overlay mounted too.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::cgroups::Cgroup;
use crate::state;

const FILE: &str = "owner.json";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// The state root (absolute) whose `<root>/<id>` directory owns the layer while it exists.
    pub root: PathBuf,
    pub id: String,
    /// The kernel's boot id when the layer was made: after a reboot nothing of it runs.
    pub boot_id: String,
    /// The container's init; 0 until it is spawned.
    pub pid: i32,
    pub init_start_time: u64,
    /// The container's cgroup, relative to each hierarchy's root.
    pub cgroup_path: Option<PathBuf>,
}

impl Owner {
    pub fn new(root: &Path, id: &str, cgroup_path: Option<&Path>) -> Result<Owner> {
        let root = std::path::absolute(root)
            .with_context(|| format!("--root {}: make it absolute", root.display()))?;
        Ok(Owner {
            root,
            id: id.to_string(),
            boot_id: boot_id().context("read the boot id")?,
            pid: 0,
            init_start_time: 0,
            cgroup_path: cgroup_path.map(Path::to_path_buf),
        })
    }

    /// The record of the layer at `dir`; None when it has none (or an unreadable one).
    pub fn load(dir: &Path) -> Option<Owner> {
        let data = std::fs::read(dir.join(FILE)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Write the record into the layer at `dir` atomically: a reader sees all of it or none.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".owner.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(FILE))
            .with_context(|| format!("rename {} into place", tmp.display()))
    }

    /// Whether the state directory that owns the layer still exists.
    pub fn state_exists(&self) -> bool {
        state::container_dir(&self.root, &self.id).exists()
    }

    /// Why the layer may still be in use, or None when nothing of its container runs. When the
    /// cgroup cannot be read, the layer counts as in use: keeping it is the safe mistake.
    pub fn in_use(&self) -> Option<String> {
        // A boot id that cannot be read now counts as this boot's: the checks below decide.
        if boot_id().is_ok_and(|now| now != self.boot_id) {
            return None;
        }
        if state::process_is(self.pid, self.init_start_time) {
            return Some(format!("its init (pid {}) runs", self.pid));
        }
        let path = self.cgroup_path.as_deref()?;
        match Cgroup::new(Some(path), &self.id).and_then(|cg| cg.pids()) {
            Ok(pids) if pids.is_empty() => None,
            Ok(pids) => Some(format!(
                "processes {pids:?} remain in its cgroup {}",
                path.display()
            )),
            Err(e) => Some(format!("its cgroup {}: {e:#}", path.display())),
        }
    }

    /// Remove the container's cgroup, as its `delete` would have, once nothing of it runs. A
    /// record of an earlier boot names a cgroup that boot took along.
    pub fn remove_cgroup(&self) -> Result<()> {
        let Some(path) = self.cgroup_path.as_deref() else {
            return Ok(());
        };
        if boot_id().is_ok_and(|now| now != self.boot_id) {
            return Ok(());
        }
        Cgroup::new(Some(path), &self.id)?.destroy()
    }
}

fn boot_id() -> std::io::Result<String> {
    crate::fsutil::read_kernel_file(BOOT_ID).map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: i32, start: u64) -> Owner {
        let mut o = Owner::new(Path::new("/nonexistent-root"), "x", None).unwrap();
        o.pid = pid;
        o.init_start_time = start;
        o
    }

    #[test]
    fn a_live_init_of_this_boot_is_in_use() {
        let me = std::process::id() as i32;
        let (_, start) = state::proc_stat(me).unwrap();
        assert!(record(me, start).in_use().is_some());
        // Another process behind a reused pid is not the container.
        assert!(record(me, start + 1).in_use().is_none());
        assert!(record(0, 0).in_use().is_none());
    }

    #[test]
    fn an_init_of_an_earlier_boot_is_not_in_use() {
        let me = std::process::id() as i32;
        let (_, start) = state::proc_stat(me).unwrap();
        let mut o = record(me, start);
        o.boot_id = "another boot".into();
        assert!(o.in_use().is_none());
    }

    #[test]
    fn the_record_round_trips_and_a_missing_one_is_none() {
        let dir = std::env::temp_dir().join(format!("minirunc-owner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(Owner::load(&dir).is_none());
        let o = record(42, 7);
        o.save(&dir).unwrap();
        let back = Owner::load(&dir).unwrap();
        assert_eq!((back.pid, back.init_start_time), (42, 7));
        assert!(back.root.is_absolute());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
