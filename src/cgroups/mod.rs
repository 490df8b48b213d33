//! A container's cgroup across every hierarchy of the host: cgroup v1, v2 (unified) and
//! hybrid (v1 controllers plus a cgroup2 mount, usually /sys/fs/cgroup/unified).
//!
//! The layout is read from /proc/self/mountinfo. On hybrid hosts processes join both the v1
//! hierarchies and the unified one; resources go to v1, except hugetlb and `unified` keys, which
//! go to the cgroup2 mount when v1 lacks them.

mod convert;
mod devices_bpf;
mod fs;
mod mounts;
mod stats;
mod sub;
pub mod systemd_path;
mod v1;
mod v2;

pub use convert::{blkio_weight_to_io_weight, shares_to_weight};
pub use stats::{Blkio, BlkioEntry, MemoryEntry, Stats};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// The default cgroup filesystem root.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// How cgroups are mounted on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 hierarchies only.
    V1,
    /// cgroup v2 only, mounted at the root.
    Unified,
    /// cgroup v1 hierarchies plus a cgroup2 mount below the root.
    Hybrid,
}

/// The container's directory in one v1 hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    controllers: Vec<String>,
    root: PathBuf,
    dir: PathBuf,
}

/// The directory of `controller` among v1 hierarchies.
fn find<'a>(hs: &'a [Hierarchy], controller: &str) -> Option<&'a Path> {
    hs.iter()
        .find(|h| h.controllers.iter().any(|c| c == controller))
        .map(|h| h.dir.as_path())
}

/// A container's cgroup across all hierarchies.
#[derive(Debug, Clone)]
pub struct Cgroup {
    layout: Layout,
    path: PathBuf,
    v1: Vec<Hierarchy>,
    /// (cgroup2 mount, container directory in it).
    unified: Option<(PathBuf, PathBuf)>,
}

/// The OCI cgroupsPath made absolute (relative paths hang off the hierarchy roots, absent means
/// `/minirunc/<id>`), refusing `..` so that no path escapes a hierarchy.
fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let rel = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new("minirunc").join(id),
    };
    let mut abs = PathBuf::from("/");
    for c in rel.components() {
        match c {
            Component::Normal(part) => abs.push(part),
            Component::RootDir | Component::CurDir => {}
            _ => bail!("cgroupsPath {}: must not contain '..'", rel.display()),
        }
    }
    if abs == Path::new("/") {
        bail!(
            "cgroupsPath {}: must name a cgroup below the root",
            rel.display()
        );
    }
    Ok(abs)
}

/// The host's cgroup mounts under the default root, detected once per process.
fn host_mounts() -> Result<&'static mounts::Mounts> {
    static HOST: OnceLock<mounts::Mounts> = OnceLock::new();
    match HOST.get() {
        Some(m) => Ok(m),
        None => {
            let m = mounts::detect_host(Path::new(DEFAULT_ROOT))?;
            Ok(HOST.get_or_init(|| m))
        }
    }
}

/// Moves the calling process, which must have a single thread, into the v1 cgroups whose
/// `tasks` files these are (`Cgroup::open_v1_tasks`).
pub fn join_v1(tasks: &[std::os::fd::OwnedFd]) -> Result<()> {
    for fd in tasks {
        nix::unistd::write(fd, b"0").context("join the container's cgroup (write 0 to tasks)")?;
    }
    Ok(())
}

impl Cgroup {
    /// Resolves linux.cgroupsPath on the host's layout (detected once per process).
    pub fn new(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        Self::from_mounts(host_mounts()?, cgroups_path, id)
    }

    /// Like [`Cgroup::new`] against another cgroup filesystem root, e.g. a cgroup2 mount.
    pub fn with_root(root: &Path, cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        Self::from_mounts(&mounts::detect_host(root)?, cgroups_path, id)
    }

    fn from_mounts(m: &mounts::Mounts, cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup> {
        let path = resolve(cgroups_path, id)?;
        let rel = path.strip_prefix("/").unwrap_or(&path);
        let v1 =
            m.v1.iter()
                .map(|h| Hierarchy {
                    controllers: h.controllers.clone(),
                    root: h.mount_point.clone(),
                    dir: h.mount_point.join(rel),
                })
                .collect();
        let unified = m.unified.as_ref().map(|u| (u.clone(), u.join(rel)));
        Ok(Cgroup {
            layout: m.layout,
            path,
            v1,
            unified,
        })
    }

    /// The cgroup path relative to the hierarchy roots (absolute form, e.g. `/minirunc/abc`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Every directory of this cgroup: v1 hierarchies first, then the unified one.
    pub fn dirs(&self) -> Vec<&Path> {
        let unified = self.unified.iter().map(|(_, d)| d.as_path());
        self.v1
            .iter()
            .map(|h| h.dir.as_path())
            .chain(unified)
            .collect()
    }

    /// The container's directory in the v1 hierarchy of `controller`, if v1 has it.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        find(&self.v1, controller)
    }

    /// The container directory in the cgroup2 mount, if any.
    fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|(_, d)| d.as_path())
    }

    /// Creates the cgroup in every hierarchy, then applies `resources`.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        for h in &self.v1 {
            fs::mkdir_all(&h.dir)?;
            if h.controllers.iter().any(|c| c == "cpuset") {
                v1::init_cpuset(&h.root, &h.dir)?;
            }
        }
        if let Some((root, dir)) = &self.unified {
            fs::mkdir_all(dir)?;
            if self.layout == Layout::Unified {
                v2::enable_controllers(root, dir, None)?;
            }
        }
        match resources {
            Some(r) => self.set(r, false),
            None => Ok(()),
        }
    }

    /// Whether the caller may create this cgroup in every hierarchy: the directory, or its
    /// nearest existing parent, is writable (a delegated cgroup).
    pub fn writable_by_caller(&self) -> bool {
        self.dirs().iter().all(|dir| {
            let existing = dir.ancestors().find(|d| d.exists());
            existing.is_some_and(|d| nix::unistd::access(d, nix::unistd::AccessFlags::W_OK).is_ok())
        })
    }

    /// Moves process `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        let procs = pid.to_string();
        self.v1
            .iter()
            .try_for_each(|h| fs::write(&h.dir, "cgroup.procs", &procs))?;
        self.add_pid_to_v2(pid)
    }

    /// Moves `pid` into the cgroup2 directory alone (the v1 hierarchies: `open_v1_tasks`).
    pub fn add_pid_to_v2(&self, pid: i32) -> Result<()> {
        match self.unified_dir() {
            Some(dir) => fs::write(dir, "cgroup.procs", &pid.to_string()),
            None => Ok(()),
        }
    }

    /// The `tasks` file of every v1 hierarchy, opened for writing, for a child to move itself
    /// with (`join_v1`). Moving a pid through cgroup.procs takes the kernel's global
    /// threadgroup lock for writing, whose first taker in a while waits for an RCU grace
    /// period (5 to 25 ms measured here); a thread that writes "0" to `tasks` moves only
    /// itself, which needs no such lock. The kernel checks the opener's credentials, so the
    /// runtime opens them.
    pub fn open_v1_tasks(&self) -> Result<Vec<std::os::fd::OwnedFd>> {
        self.v1
            .iter()
            .map(|h| fs::open_for_write(&h.dir, "tasks"))
            .collect()
    }

    /// The cgroup2 directory opened for clone3(CLONE_INTO_CGROUP); None without one.
    pub fn open_v2_dir(&self) -> Option<std::os::fd::OwnedFd> {
        let flags = nix::fcntl::OFlag::O_PATH
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_CLOEXEC;
        nix::fcntl::open(self.unified_dir()?, flags, nix::sys::stat::Mode::empty()).ok()
    }

    /// Applies the resource limits of `update`: a value it leaves out keeps the one in force.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.set(r, true)
    }

    /// Applies resource limits; on a new cgroup (`update` false) nothing is in force yet.
    fn set(&self, r: &LinuxResources, update: bool) -> Result<()> {
        if self.layout == Layout::Unified {
            let dir = self.unified_dir().context("cgroup v2 directory missing")?;
            return v2::apply(dir, r, update);
        }
        v1::apply(&self.v1, r)?;
        if let Some(limits) = r.hugepage_limits().as_deref().filter(|l| !l.is_empty()) {
            self.apply_hugetlb_hybrid(limits)?;
        }
        if let Some(unified) = r.unified().as_ref().filter(|u| !u.is_empty()) {
            match &self.unified {
                Some((_, dir)) => v2::write_unified(dir, unified)?,
                None => {
                    bail!("cgroup unified: resources need a cgroup v2 mount (host is cgroup v1)")
                }
            }
        }
        Ok(())
    }

    /// hugetlb on a v1 hierarchy, or (hybrid) on the cgroup2 mount where the controller lives.
    fn apply_hugetlb_hybrid(&self, limits: &[oci_spec::runtime::LinuxHugepageLimit]) -> Result<()> {
        if let Some(dir) = find(&self.v1, "hugetlb") {
            return v1::hugetlb(dir, limits);
        }
        match &self.unified {
            Some((root, dir)) => {
                v2::enable_controllers(root, dir, Some(&["hugetlb"]))?;
                v2::apply_hugetlb(dir, limits)
            }
            None => v1::dir(&self.v1, "hugetlb", "hugepageLimits").map(|_| ()),
        }
    }

    /// Freezes every process of the container (v1 freezer, or cgroup.freeze on v2).
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        match (find(&self.v1, "freezer"), self.unified_dir()) {
            (Some(dir), _) => v1::set_freezer(dir, if frozen { "FROZEN" } else { "THAWED" }),
            (None, Some(dir)) => v2::set_freeze(dir, frozen),
            (None, None) => bail!("cgroup freezer: no freezer controller on this host"),
        }
    }

    pub fn is_frozen(&self) -> Result<bool> {
        match (find(&self.v1, "freezer"), self.unified_dir()) {
            (Some(dir), _) => Ok(fs::read(dir, "freezer.state")?.trim() == "FROZEN"),
            (None, Some(dir)) => v2::is_frozen(dir),
            (None, None) => bail!("cgroup freezer: no freezer controller on this host"),
        }
    }

    /// Whether the freezer holds or is about to hold this cgroup (set on it or on an ancestor):
    /// unlike `is_frozen`, true at once for a process just moved into a frozen cgroup.
    pub fn is_freezing(&self) -> Result<bool> {
        match (find(&self.v1, "freezer"), &self.unified) {
            (Some(dir), _) => Ok(fs::read(dir, "freezer.state")?.trim() != "THAWED"),
            (None, Some((root, dir))) => v2::freeze_requested(root, dir),
            (None, None) => bail!("cgroup freezer: no freezer controller on this host"),
        }
    }

    /// Every process of the container, sub-cgroups included, sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        // The unified directory (v2 or hybrid) holds every process; on pure v1 pick a controller
        // hierarchy every process joined.
        let dir = match self.unified_dir() {
            Some(dir) => dir,
            None => ["pids", "freezer", "memory", "cpu"]
                .iter()
                .find_map(|c| find(&self.v1, c))
                .or_else(|| self.v1.first().map(|h| h.dir.as_path()))
                .context("cgroup: no hierarchy to list processes from")?,
        };
        let mut pids = Vec::new();
        fs::procs_recursive(dir, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Sends `signal` to every process of the container (`kill --all`). SIGKILL on a cgroup2
    /// directory uses cgroup.kill, which also catches processes forked meanwhile.
    pub fn kill_all(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        use nix::sys::signal::{kill, Signal};
        if signal == Signal::SIGKILL {
            if let Some(dir) = self
                .unified_dir()
                .filter(|d| d.join("cgroup.kill").exists())
            {
                return fs::write(dir, "cgroup.kill", "1");
            }
        }
        for pid in self.pids()? {
            match kill(nix::unistd::Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => bail!(
                    "cgroup kill_all: signal {signal} to pid {pid}: {}",
                    e.desc()
                ),
            }
        }
        Ok(())
    }

    /// Current statistics; controllers the host lacks leave their part at zero.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if self.layout == Layout::Unified {
            let dir = self.unified_dir().context("cgroup v2 directory missing")?;
            s.cpu = stats::v2_cpu(dir)?;
            if dir.join("memory.stat").exists() {
                s.memory = stats::v2_memory(dir)?;
            }
            if dir.join("pids.max").exists() {
                s.pids = stats::pids(dir)?;
            }
            s.blkio = stats::v2_io(dir);
            s.hugetlb = stats::hugetlb(dir, true);
            return Ok(s);
        }
        if let Some(dir) = find(&self.v1, "cpuacct") {
            stats::v1_cpuacct(dir, &mut s.cpu)?;
        }
        if let Some(dir) = find(&self.v1, "cpu") {
            s.cpu.throttling = stats::v1_throttling(dir);
        }
        if let Some(dir) = find(&self.v1, "memory") {
            s.memory = stats::v1_memory(dir)?;
        }
        if let Some(dir) = find(&self.v1, "pids") {
            s.pids = stats::pids(dir)?;
        }
        if let Some(dir) = find(&self.v1, "blkio") {
            s.blkio = stats::v1_blkio(dir);
        }
        match (find(&self.v1, "hugetlb"), self.unified_dir()) {
            (Some(dir), _) => s.hugetlb = stats::hugetlb(dir, false),
            (None, Some(dir)) if dir.join("hugetlb.2MB.current").exists() => {
                s.hugetlb = stats::hugetlb(dir, true)
            }
            _ => {}
        }
        Ok(s)
    }

    /// How many times the kernel OOM-killed a process of this cgroup.
    pub fn oom_count(&self) -> Result<u64> {
        let (dir, file) = match (find(&self.v1, "memory"), self.unified_dir()) {
            (Some(dir), _) => (dir, "memory.oom_control"),
            (None, Some(dir)) => (dir, "memory.events"),
            (None, None) => bail!("cgroup memory: no memory controller on this host"),
        };
        Ok(fs::keyed(&fs::read(dir, file)?, "oom_kill").unwrap_or(0))
    }

    /// Removes the cgroup (and any child cgroups) from every hierarchy; missing is fine.
    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for dir in self.dirs() {
            if let Err(e) = fs::remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_path_resolution() {
        assert_eq!(resolve(None, "abc").unwrap(), Path::new("/minirunc/abc"));
        assert_eq!(
            resolve(Some(Path::new("/a/b")), "x").unwrap(),
            Path::new("/a/b")
        );
        assert_eq!(
            resolve(Some(Path::new("a/./b")), "x").unwrap(),
            Path::new("/a/b")
        );
        assert!(resolve(Some(Path::new("/a/../b")), "x").is_err());
        assert!(resolve(Some(Path::new("/")), "x").is_err());
    }
}
