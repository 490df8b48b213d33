//! OOM events: one thread for all the shim's containers waits in epoll and calls back with the id
//! of a container whose cgroup had an OOM, on cgroup v1 and v2 alike.
//!
//! cgroup v1: an eventfd per container, which the memory controller signals when the cgroup hits
//! its limit (cgroup.event_control on memory.oom_control). The kernel also signals the eventfd
//! when the cgroup is removed: a signal from a cgroup whose memory.oom_control is gone ends that
//! watch instead.
//!
//! cgroup v2 has no OOM notification of its own: the kernel marks a cgroup's memory.events
//! modified (inotify's IN_MODIFY) when one of its counters moves (max, high, oom, oom_kill). An
//! OOM is reported when the oom_kill count grew since the last look, as containerd's runc shim
//! reports /tasks/oom there. One inotify instance in the same epoll holds a watch per container;
//! it is made for the first v2 container, so that a v1 host spends none of the user's few
//! inotify instances. A watch ends without an event when the kernel drops it (IN_IGNORED) or
//! memory.events can no longer be read (its cgroup was removed). Removing a cgroup does not
//! always notify (a watched kernfs file stays alive: 6.1 and 6.18 send nothing), so such a watch
//! stays, silent, until `unwatch`.
//!
//! The kernel counts an OOM kill before it sends the SIGKILL, but notifies memory.events later
//! (from a work queue, at most every 10 ms per file), so containerd may ask to delete an
//! OOM-killed task before this thread saw the change: `unwatch` looks a last time (both
//! versions) and reports what it finds.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use containerd_shim::error;
use minirunc::cgroups::{Cgroup, Layout};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// The epoll token of the inotify instance; eventfds have 0, 1, 2 ...
const INOTIFY: u64 = u64::MAX;

/// A container watched through cgroup v1, by the token its eventfd carries in epoll.
struct V1Watch {
    container_id: String,
    eventfd: EventFd,
    /// The container's v1 memory cgroup.
    memory_dir: PathBuf,
}

impl V1Watch {
    /// Whether the eventfd was signalled (resetting it, so that epoll waits for the next signal)
    /// by an OOM rather than by the cgroup's removal.
    fn signalled(&self) -> bool {
        self.eventfd.read().is_ok() && self.memory_dir.join("memory.oom_control").exists()
    }
}

/// A container watched through its cgroup v2 memory.events.
struct V2Watch {
    container_id: String,
    /// Two containers given one cgroup share the inode, hence the watch descriptor.
    wd: WatchDescriptor,
    cgroup: Cgroup,
    /// The oom_kill count last seen.
    oom_kills: u64,
}

impl V2Watch {
    /// Whether the oom_kill count grew since the last look; an error when memory.events cannot
    /// be read (the cgroup is gone).
    fn grew(&mut self) -> Result<bool, String> {
        let count = self.cgroup.oom_count().map_err(|e| format!("{e:#}"))?;
        let grew = count > self.oom_kills;
        self.oom_kills = count;
        Ok(grew)
    }
}

#[derive(Default)]
struct Watches {
    next_token: u64,
    v1: HashMap<u64, V1Watch>,
    /// Made for the first v2 container, then kept.
    inotify: Option<Inotify>,
    v2: Vec<V2Watch>,
}

type OnOom = Box<dyn Fn(&str) + Send>;

pub struct OomWatcher {
    epoll: Epoll,
    watches: Mutex<Watches>,
    /// Called by the watcher thread and by `unwatch`.
    on_oom: Mutex<OnOom>,
}

impl OomWatcher {
    /// Start the watcher thread; `on_oom(container_id)` runs for every OOM signalled, on that
    /// thread or on the caller of `unwatch`.
    pub fn start<F>(on_oom: F) -> Result<Arc<OomWatcher>, String>
    where
        F: Fn(&str) + Send + 'static,
    {
        let epoll =
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
        let watcher = Arc::new(OomWatcher {
            epoll,
            watches: Mutex::default(),
            on_oom: Mutex::new(Box::new(on_oom)),
        });
        let waiting = watcher.clone();
        thread::Builder::new()
            .name("oom".into())
            .spawn(move || waiting.serve())
            .map_err(|e| format!("start the OOM watcher: {e}"))?;
        Ok(watcher)
    }

    fn watches(&self) -> MutexGuard<'_, Watches> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self, container_ids: Vec<String>) {
        let on_oom = self.on_oom.lock().unwrap_or_else(|e| e.into_inner());
        for id in container_ids {
            on_oom(&id);
        }
    }

    /// Report the OOMs of `container_id`'s cgroup from now on.
    pub fn watch(&self, container_id: &str, cgroup: &Cgroup) -> Result<(), String> {
        match cgroup.v1_dir("memory") {
            Some(memory_dir) => self.watch_v1(container_id, memory_dir.to_path_buf()),
            None => self.watch_v2(container_id, cgroup),
        }
    }

    fn watch_v1(&self, container_id: &str, memory_dir: PathBuf) -> Result<(), String> {
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
        let token = watches.next_token;
        watches.next_token += 1;
        self.epoll
            .add(&eventfd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(|e| format!("epoll: {e}"))?;
        watches.v1.insert(
            token,
            V1Watch {
                container_id: container_id.to_string(),
                eventfd,
                memory_dir,
            },
        );
        Ok(())
    }

    fn watch_v2(&self, container_id: &str, cgroup: &Cgroup) -> Result<(), String> {
        // `dirs` lists the cgroup2 directory last; a v1-only host has none.
        let dir = match cgroup.layout() {
            Layout::V1 => None,
            Layout::Unified | Layout::Hybrid => cgroup.dirs().last().copied(),
        };
        let Some(dir) = dir else {
            return Err(format!(
                "OOM events of {container_id}: no memory controller, not watched"
            ));
        };
        let events = dir.join("memory.events");
        let mut guard = self.watches();
        let watches = &mut *guard;
        let inotify = match &mut watches.inotify {
            Some(inotify) => inotify,
            none => {
                let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                    .map_err(|e| format!("inotify: {e}"))?;
                self.epoll
                    .add(&inotify, EpollEvent::new(EpollFlags::EPOLLIN, INOTIFY))
                    .map_err(|e| format!("epoll: {e}"))?;
                none.insert(inotify)
            }
        };
        let wd = inotify
            .add_watch(&events, AddWatchFlags::IN_MODIFY)
            .map_err(|e| format!("inotify on {}: {e}", events.display()))?;
        let mut watch = V2Watch {
            container_id: container_id.to_string(),
            wd,
            cgroup: cgroup.clone(),
            oom_kills: 0,
        };
        // The count from now on, read once watched so that no later change goes unseen.
        if let Err(e) = watch.grew() {
            if !watches.v2.iter().any(|w| w.wd == wd) {
                let _ = inotify.rm_watch(wd);
            }
            return Err(format!("OOM events of {container_id}: {e}"));
        }
        watches.v2.push(watch);
        Ok(())
    }

    /// Stop watching, reporting an OOM not seen yet: closing the eventfd takes it out of epoll;
    /// an inotify watch no other container shares is removed.
    pub fn unwatch(&self, container_id: &str) {
        let mut oom = Vec::new();
        {
            let mut guard = self.watches();
            let watches = &mut *guard;
            watches.v1.retain(|_, watch| {
                if watch.container_id != container_id {
                    return true;
                }
                if watch.signalled() {
                    oom.push(watch.container_id.clone());
                }
                false
            });
            let (gone, kept): (Vec<_>, Vec<_>) = watches
                .v2
                .drain(..)
                .partition(|watch| watch.container_id == container_id);
            watches.v2 = kept;
            for mut watch in gone {
                if watch.grew() == Ok(true) {
                    oom.push(watch.container_id.clone());
                }
                if let Some(inotify) = &watches.inotify {
                    if !watches.v2.iter().any(|w| w.wd == watch.wd) {
                        // EINVAL if the kernel dropped it already.
                        let _ = inotify.rm_watch(watch.wd);
                    }
                }
            }
        }
        self.report(oom);
    }

    fn serve(&self) {
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
                let oom = match event.data() {
                    INOTIFY => self.v2_changed(),
                    token => self.v1_signalled(token).into_iter().collect(),
                };
                self.report(oom);
            }
        }
    }

    /// The container whose OOM the eventfd of `token` reports; none when it reports the
    /// cgroup's removal (the watch ends) or the container was unwatched meanwhile.
    fn v1_signalled(&self, token: u64) -> Option<String> {
        let mut watches = self.watches();
        let watch = watches.v1.get(&token)?;
        if watch.signalled() {
            return Some(watch.container_id.clone());
        }
        if !watch.memory_dir.join("memory.oom_control").exists() {
            watches.v1.remove(&token);
        }
        None
    }

    /// The containers whose oom_kill count grew, after the changes inotify queued. A watch the
    /// kernel dropped, or whose memory.events is gone, ends.
    fn v2_changed(&self) -> Vec<String> {
        let mut guard = self.watches();
        let watches = &mut *guard;
        let Some(inotify) = &watches.inotify else {
            return Vec::new();
        };
        let queued = match inotify.read_events() {
            Ok(queued) => queued,
            Err(Errno::EAGAIN | Errno::EINTR) => return Vec::new(),
            Err(e) => {
                error!("OOM watcher: inotify: {e}");
                return Vec::new();
            }
        };
        let mut changed = HashSet::new();
        let mut dropped = HashSet::new();
        let mut overflow = false;
        for event in queued {
            if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                overflow = true;
            } else if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                dropped.insert(event.wd);
            } else {
                changed.insert(event.wd);
            }
        }
        watches.v2.retain(|watch| !dropped.contains(&watch.wd));
        let mut oom = Vec::new();
        let mut gone = HashSet::new();
        // Changes lost to an overflow: every count is read again.
        for watch in watches
            .v2
            .iter_mut()
            .filter(|watch| overflow || changed.contains(&watch.wd))
        {
            match watch.grew() {
                Ok(true) => oom.push(watch.container_id.clone()),
                Ok(false) => {}
                Err(_) => {
                    gone.insert(watch.wd);
                }
            }
        }
        watches.v2.retain(|watch| !gone.contains(&watch.wd));
        for wd in gone {
            let _ = inotify.rm_watch(wd);
        }
        oom
    }
}
