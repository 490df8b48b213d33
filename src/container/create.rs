//! `create`: from a bundle to a container whose init waits for `start`.
//! Order (LIFECYCLE.md): validate, claim the id, layers, exec fifo, spawn, state, pid file.
//! Any failure undoes everything done so far; the bundle is never written.

use anyhow::{bail, Context, Result};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::Paths;
use crate::cgroups::Cgroup;
use crate::idmap::IdMaps;
use crate::process::{self, Launch, Role};
use crate::rootfs::owner::Owner;
use crate::rootfs::{layers, RootPlan};
use crate::state::{self, HostRoot, Layers, Lock, State, Status, EXEC_FIFO};
use crate::sync::Message;
use crate::{hooks, spec};

pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// With `process.terminal` and no console socket, give the terminal to the caller (`run`).
    pub local_terminal: bool,
    pub no_pivot: bool,
    /// Fds 3..3+N pass into the container (`--preserve-fds` and `LISTEN_FDS`).
    pub preserve_fds: u32,
    /// "cow", "direct" or "auto"; None defers to the annotation.
    pub rootfs_mode: Option<String>,
    /// The host's default mode (global `--rootfs-mode`, MINIRUNC_ROOTFS_MODE).
    pub default_rootfs_mode: Option<String>,
    /// `--systemd-cgroup`: cgroupsPath is `slice:prefix:name`.
    pub systemd_cgroup: bool,
}

pub struct Created {
    /// The init's host pid.
    pub pid: i32,
    /// With `local_terminal`: the runtime's end of the console socket pair.
    pub console: Option<OwnedFd>,
}

/// Create the container; its init waits for `start`.
pub fn create(paths: &Paths, id: &str, opts: &CreateOptions) -> Result<Created> {
    state::validate_id(id)?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .with_context(|| format!("--bundle {}", opts.bundle.display()))?;
    let (spec, raw) = spec::load(&bundle)?;
    spec::validate(&spec, true)?;
    let idmaps = crate::rootfs::idmapped::requested(&spec, &raw)?;
    let rootfs = spec::rootfs_path(&spec, &bundle)?;
    let process = spec.process().as_ref().context("process: missing")?;
    let mut ours = None;
    let console = match (process.terminal() == Some(true), &opts.console_socket) {
        (true, Some(path)) => Some(connect(path)?),
        (true, None) if opts.local_terminal => {
            let (theirs, mine) = crate::tty::socket_pair()?;
            ours = Some(mine);
            Some(theirs)
        }
        (true, None) => bail!("process.terminal is true: --console-socket is required"),
        (false, Some(_)) => bail!("--console-socket given but process.terminal is false"),
        (false, None) => None,
    };

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&paths.root)
        .with_context(|| format!("create --root {}", paths.root.display()))?;
    let dir = state::container_dir(&paths.root, id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id exists: {id}")
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
    }
    let mut undo = Undo {
        dir: dir.clone(),
        layers: None,
        host_root: None,
        maps: IdMaps::of(&spec),
        cgroup: None,
        init_pid: None,
    };
    let _lock = Lock::exclusive(&dir)?;

    // Everything the container will own is named in the first state written, so that a create
    // killed at any later point leaves a state that `delete --force` can clean up completely.
    let annotations = spec.annotations().as_ref();
    let mode = opts.rootfs_mode.as_deref();
    let host_default = opts.default_rootfs_mode.as_deref();
    let layers = match layers::wants_overlay(&rootfs, mode, annotations, host_default)? {
        true => Some(Layers {
            dir: layers::dir_for(&paths.data_root, &paths.root, id),
            lowers: layers::lowers(&bundle, &rootfs, annotations)?,
        }),
        false => None,
    };
    let cgroup = super::cgroup::for_create(&spec, id, opts.systemd_cgroup)?;
    let mut st = State {
        oci_version: crate::SPEC_VERSION.to_string(),
        id: id.to_string(),
        pid: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: crate::logging::rfc3339(std::time::SystemTime::now()),
        owner: String::new(),
        annotations: annotations
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        init_start_time: 0,
        phase: Status::Creating,
        cgroup_path: cgroup.as_ref().map(|c| c.path().to_path_buf()),
        layers,
        host_root: None,
        config: serde_json::value::RawValue::from_string(String::from_utf8(raw)?)?,
    };
    st.save(&dir)?;
    // Claimed before anything is armed for undo: a claim refused because an earlier container
    // of this id still runs must not touch that container's layer or its (same-named) cgroup.
    let mut owner = None;
    if let Some(l) = &st.layers {
        let o = Owner::new(&paths.root, id, st.cgroup_path.as_deref())?;
        // A user's layers are the user's: rootless overlay (userxattr) needs no chown.
        let root_ids = crate::rootless::host_root()
            .then(|| crate::namespaces::host_ids_of_root(&spec))
            .flatten();
        layers::claim(l, &o, root_ids)?;
        owner = Some(o);
    }
    undo.layers = st.layers.clone();
    undo.cgroup = cgroup;
    let cgroup = undo.cgroup.as_ref();
    if let Some(cg) = cgroup {
        cg.create(super::cgroup::resources(&spec)?.as_ref())?;
    }
    let fifo = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622)).context("create the exec fifo")?;
    let exec_fifo = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open the exec fifo")?;

    let has_ns = |t| {
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n| n.iter().any(|n| n.typ() == t))
    };
    let mount_ns = has_ns(LinuxNamespaceType::Mount);
    if !mount_ns {
        let path = st
            .layers
            .as_ref()
            .map_or(rootfs.clone(), |l| l.dir.join("merged"));
        let mount_below = crate::fsutil::mount_id(&path)?;
        st.host_root = Some(HostRoot {
            path,
            mount_below,
            mount: None,
        });
        st.save(&dir)?;
        undo.host_root = st.host_root.clone();
    }
    let plan = RootPlan {
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        layers: st.layers.clone(),
        cgroup_path: st.cgroup_path.clone(),
        cgroup_ns: has_ns(LinuxNamespaceType::Cgroup),
        mount_ns,
        idmaps: crate::rootfs::idmapped::detached_trees(&spec, &bundle, &idmaps)?,
        rootless: !crate::rootless::host_root(),
    };
    let launch = Launch {
        spec: &spec,
        process,
        role: Role::Init {
            plan,
            exec_fifo,
            no_pivot: opts.no_pivot,
        },
        console,
        preserve_fds: opts.preserve_fds,
        hook_state: hook_state(&st, Status::Creating, 0),
    };
    let mut rt = CreateRuntime {
        spec: &spec,
        state: &st,
        cgroup,
    };
    let (pid, chan) =
        process::spawn(&launch, &mut rt).map_err(|e| explain_oom(e, &spec, cgroup))?;
    drop(launch);
    undo.init_pid = Some(pid);

    st.pid = pid;
    st.init_start_time = state::proc_stat(pid)
        .map(|(_, t)| t)
        .context("the container's init exited during create")?;
    st.phase = Status::Created;
    if let Some(h) = &mut st.host_root {
        // init has mounted the root: from now on delete detaches exactly that mount.
        h.mount = Some(crate::fsutil::mount_id(&h.path)?);
    }
    if let (Some(l), Some(o)) = (&st.layers, &mut owner) {
        // Until the record names init, the processes in its cgroup show the layer in use.
        (o.pid, o.init_start_time) = (pid, st.init_start_time);
        o.save(&l.dir)?;
    }
    st.save(&dir)?;
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid)?;
    }
    chan.send(&Message::Proceed)
        .context("the container's init exited during create")?;
    undo.disarm();
    Ok(Created { pid, console: ours })
}

/// A create whose processes hit the memory limit fails with a bare SIGKILL: name the limit.
fn explain_oom(err: anyhow::Error, spec: &Spec, cgroup: Option<&Cgroup>) -> anyhow::Error {
    let Some(cgroup) = cgroup else {
        return err;
    };
    let limit = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit());
    match (limit, cgroup.stats()) {
        (Some(limit), Ok(s)) if s.memory.usage.failcnt > 0 => err.context(format!(
            "linux.resources.memory.limit {limit}: the container's processes hit it during create"
        )),
        _ => err,
    }
}

/// The runtime's part of the protocol during create.
struct CreateRuntime<'a> {
    spec: &'a oci_spec::runtime::Spec,
    state: &'a State,
    cgroup: Option<&'a crate::cgroups::Cgroup>,
}

impl process::Runtime for CreateRuntime<'_> {
    fn cgroup(&self) -> Option<&crate::cgroups::Cgroup> {
        self.cgroup
    }

    fn has_create_hooks(&self) -> bool {
        self.spec
            .hooks()
            .as_ref()
            .is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some())
    }

    fn seccomp_listener(&mut self, pid: i32, fd: OwnedFd) -> Result<()> {
        seccomp_handoff(self.spec, self.state, Status::Creating, pid, fd)
    }

    fn run_create_hooks(&mut self, init_pid: i32) -> Result<()> {
        let state = hook_state(self.state, Status::Creating, init_pid);
        if let Some(h) = self.spec.hooks() {
            hooks::run(
                "prestart",
                h.prestart().as_deref().unwrap_or_default(),
                &state,
                &[],
            )?;
            hooks::run(
                "createRuntime",
                h.create_runtime().as_deref().unwrap_or_default(),
                &state,
                &[],
            )?;
        }
        Ok(())
    }
}

/// Send a process's seccomp notify fd to the spec's listenerPath with the container state.
pub fn seccomp_handoff(
    spec: &oci_spec::runtime::Spec,
    st: &State,
    status: Status,
    pid: i32,
    fd: OwnedFd,
) -> Result<()> {
    use std::os::fd::AsFd;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .context("linux.seccomp")?;
    let path = seccomp
        .listener_path()
        .as_ref()
        .context("linux.seccomp.listenerPath")?;
    let metadata = seccomp.listener_metadata().as_deref().unwrap_or_default();
    crate::seccomp::send_to_listener(path, metadata, &hook_state(st, status, pid), fd.as_fd())
}

/// The OCI state JSON given to hooks.
pub fn hook_state(st: &State, status: Status, pid: i32) -> String {
    let mut v = st.to_oci_json(status);
    v["pid"] = pid.into();
    v.to_string()
}

fn connect(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("--console-socket {}", path.display()))?;
    Ok(s.into())
}

/// The pid as a bare decimal without newline (containerd parses it with Atoi), written atomically.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("minirunc-tmp");
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("--pid-file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("--pid-file {}", path.display()))
}

/// Undo a half-done create: kill init, detach a root mounted in the host's table, remove layers
/// and the state dir.
struct Undo {
    dir: PathBuf,
    layers: Option<Layers>,
    host_root: Option<HostRoot>,
    /// The container's id mappings, to remove a user's layers.
    maps: Option<IdMaps>,
    cgroup: Option<crate::cgroups::Cgroup>,
    init_pid: Option<i32>,
}

impl Undo {
    fn disarm(mut self) {
        self.layers = None;
        self.host_root = None;
        self.cgroup = None;
        self.init_pid = None;
        self.dir = PathBuf::new();
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        if let Some(pid) = self.init_pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            super::wait_gone(pid, None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(nix::sys::signal::Signal::SIGKILL);
            if let Err(e) = cg.destroy() {
                crate::logging::warn(&format!("cleanup after a failed create: {e:#}"));
            }
        }
        if let Some(h) = &self.host_root {
            if let Err(e) = crate::rootfs::detach_host_root(h) {
                crate::logging::warn(&format!("cleanup after a failed create: {e:#}"));
            }
        }
        if let Some(l) = &self.layers {
            if let Err(e) = layers::remove(l, self.maps.as_ref()) {
                crate::logging::warn(&format!("cleanup after a failed create: {e:#}"));
            }
        }
        let _ = crate::fsutil::remove_tree(&self.dir);
    }
}
