//! The first cgroup migration in a while waits for an RCU grace period: a write to cgroup.procs
//! takes the kernel's global `cgroup_threadgroup_rwsem` for writing, whose rcu_sync must first
//! leave its fast, reader-only state. Once a writer has paid that wait, writers that follow
//! within about one more grace period pass at once. `exec` therefore starts a migration that
//! changes nothing (the runtime into the v1 cgroup it is already in) in a thread first thing,
//! and pays the grace period while it loads the container's state and spec instead of while the
//! intermediate process waits to be moved. The writer holds the global cgroup_mutex while it
//! waits, so this is no use where the runtime itself makes cgroups meanwhile, as `create` does
//! (measured slower with it). On a cgroup2-only host the intermediate starts in its cgroup
//! (clone3 CLONE_INTO_CGROUP) and nothing is needed.

use std::path::PathBuf;
use std::thread::JoinHandle;

use super::mounts::V1Mount;

/// The no-op migration under way; dropping it waits for its end, which must come before the
/// runtime forks (no threads across a fork).
pub struct WarmUp(Option<JoinHandle<()>>);

impl WarmUp {
    /// Start the no-op migration in the first v1 hierarchy with a controller. Best effort: where
    /// it cannot start (no such hierarchy, an unreadable /proc/self/cgroup), nothing happens and
    /// the real migration pays the wait as before.
    pub(super) fn start(v1: &[V1Mount]) -> WarmUp {
        let procs = v1
            .iter()
            .find(|h| !h.controllers.is_empty())
            .and_then(own_procs_file);
        let thread = procs.and_then(|file| {
            std::thread::Builder::new()
                .name("cgroup-warm-up".into())
                .stack_size(64 * 1024)
                // An error (e.g. EACCES for a user) only means no head start.
                .spawn(move || drop(std::fs::write(file, std::process::id().to_string())))
                .ok()
        });
        WarmUp(thread)
    }
}

impl Drop for WarmUp {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// cgroup.procs of the cgroup this process is in, in hierarchy `h`, from /proc/self/cgroup
/// ("id:controller,...:/path").
fn own_procs_file(h: &V1Mount) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let controllers = fields.nth(1)?;
        let path = fields.next()?;
        controllers
            .split(',')
            .any(|c| c == h.controllers[0])
            .then_some(path)
    })?;
    Some(
        h.mount_point
            .join(path.trim_start_matches('/'))
            .join("cgroup.procs"),
    )
}
