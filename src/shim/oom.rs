//! OOM events: one thread for all the shim's containers waits in epoll on an eventfd per
//! container, which cgroup v1's memory controller signals when the cgroup hits its limit
//! (cgroup.event_control on memory.oom_control), and calls back with the container's id.
//!
//! The kernel also signals the eventfd when the cgroup is removed: a signal from a cgroup whose
//! memory.oom_control is gone ends that watch instead. A container whose memory controller is
//! not v1 (a cgroup v2-only host) is not watched: its OOMs are not reported.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use containerd_shim::error;
use minirunc::cgroups::Cgroup;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

/// A watched container, by the token its eventfd carries in epoll.
struct Watch {
    container_id: String,
    eventfd: EventFd,
    /// The container's v1 memory cgroup.
    memory_dir: PathBuf,
}

pub struct OomWatcher {
    epoll: Epoll,
    watches: Mutex<(u64, HashMap<u64, Watch>)>,
}

impl OomWatcher {
    /// Start the watcher thread; `on_oom(container_id)` runs on it for every OOM signalled.
    pub fn start<F>(on_oom: F) -> Result<Arc<OomWatcher>, String>
    where
        F: Fn(&str) + Send + 'static,
    {
        let epoll =
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
        let watcher = Arc::new(OomWatcher {
            epoll,
            watches: Mutex::default(),
        });
        let waiting = watcher.clone();
        thread::Builder::new()
            .name("oom".into())
            .spawn(move || waiting.serve(on_oom))
            .map_err(|e| format!("start the OOM watcher: {e}"))?;
        Ok(watcher)
    }

    fn watches(&self) -> MutexGuard<'_, (u64, HashMap<u64, Watch>)> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Report the OOMs of `container_id`'s cgroup from now on.
    pub fn watch(&self, container_id: &str, cgroup: &Cgroup) -> Result<(), String> {
        let Some(memory_dir) = cgroup.v1_dir("memory") else {
            return Err(format!(
                "OOM events of {container_id}: its memory cgroup is not v1, not watched"
            ));
        };
        let eventfd =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| format!("eventfd: {e}"))?;
        let control_path = memory_dir.join("memory.oom_control");
        let control = File::open(&control_path)
            .map_err(|e| format!("open {}: {e}", control_path.display()))?;
        // The registration holds its own reference to memory.oom_control: ours may close.
        let registration = format!("{} {}", eventfd.as_raw_fd(), control.as_raw_fd());
        let event_control = memory_dir.join("cgroup.event_control");
        fs::write(&event_control, registration)
            .map_err(|e| format!("write {}: {e}", event_control.display()))?;
        let mut watches = self.watches();
        let token = watches.0;
        watches.0 += 1;
        self.epoll
            .add(&eventfd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(|e| format!("epoll: {e}"))?;
        watches.1.insert(
            token,
            Watch {
                container_id: container_id.to_string(),
                eventfd,
                memory_dir: memory_dir.to_path_buf(),
            },
        );
        Ok(())
    }

    /// Stop watching: closing the eventfd takes it out of epoll.
    pub fn unwatch(&self, container_id: &str) {
        self.watches()
            .1
            .retain(|_, watch| watch.container_id != container_id);
    }

    fn serve<F: Fn(&str)>(&self, on_oom: F) {
        let mut events = [EpollEvent::empty(); 16];
        loop {
            let ready = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    error!("OOM watcher: epoll: {e}");
                    return;
                }
            };
            for event in &events[..ready] {
                if let Some(container_id) = self.signalled(event.data()) {
                    on_oom(&container_id);
                }
            }
        }
    }

    /// The container whose OOM the eventfd of `token` reports; none when it reports the
    /// cgroup's removal (the watch ends) or the container was unwatched meanwhile.
    fn signalled(&self, token: u64) -> Option<String> {
        let mut watches = self.watches();
        let watch = watches.1.get(&token)?;
        // Reset the counter, so that epoll waits for the next signal.
        let _ = watch.eventfd.read();
        if watch.memory_dir.join("memory.oom_control").exists() {
            return Some(watch.container_id.clone());
        }
        watches.1.remove(&token);
        None
    }
}
