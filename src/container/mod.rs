//! The library behind the verbs: one function per lifecycle operation on a container.

pub mod cgroup;
mod create;
mod exec;
mod lifecycle;

pub use create::{create, hook_state, seccomp_handoff, write_pid_file, CreateOptions, Created};
pub use exec::exec;
pub use lifecycle::{delete, kill, load, start, status_of};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where state and layers live (the global flags).
pub struct Paths {
    pub root: PathBuf,
    /// Resolved when the flags run, but only an error for the verbs that need layers: rootless
    /// podman runs start, kill and delete with XDG_RUNTIME_DIR as the whole environment.
    data_root: Result<PathBuf, String>,
}

impl Paths {
    pub fn new(root: PathBuf, data_root: anyhow::Result<PathBuf>) -> Paths {
        let data_root = data_root.map_err(|e| format!("{e:#}"));
        Paths { root, data_root }
    }

    /// --data-root, or the error saying why there is no default one.
    pub fn data_root(&self) -> anyhow::Result<&Path> {
        match &self.data_root {
            Ok(d) => Ok(d),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        }
    }
}

/// Reclaim the layers of this `--root`'s containers whose state is gone (rootfs/reclaim.rs).
/// Run by create, run and delete; a failure here is the log's, never the verb's.
pub fn reclaim_layers(paths: &Paths) {
    use crate::logging::{debug, warn};
    // Without a data root this caller cannot have made layers under one.
    let Ok(data_root) = paths.data_root() else {
        return;
    };
    match crate::rootfs::reclaim::sweep_root(data_root, &paths.root) {
        Ok(reports) => {
            for r in reports {
                let line = r.describe(false);
                match r.verdict {
                    crate::rootfs::reclaim::Verdict::Failed(_) => warn(&line),
                    _ => debug(&line),
                }
            }
        }
        Err(e) => warn(&format!("reclaim layers: {e:#}")),
    }
}

/// Wait until `pid` is gone or a zombie (someone else reaps it), up to `timeout` (default 10s).
pub fn wait_gone(pid: i32, timeout: Option<Duration>) -> bool {
    let deadline = Instant::now() + timeout.unwrap_or(Duration::from_secs(10));
    let mut pause = Duration::from_micros(200);
    loop {
        match crate::state::proc_stat(pid) {
            None | Some(('Z', _)) | Some(('X', _)) => return true,
            _ if Instant::now() >= deadline => return false,
            _ => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}
