//! The intermediate process: enters the namespaces, forks the container's process, reports its
//! pid and exits, so that the process is reparented to the caller (a subreaper) at once.

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::LinuxNamespaceType;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{init, Launch, Role};
use crate::namespaces;
use crate::sync::{Channel, Message};

/// `v1_tasks`: the cgroup's v1 `tasks` files, for the intermediate to move itself with before it
/// makes anything (the container's process is then born in the cgroup).
pub fn run(launch: &Launch, chan: Channel, v1_tasks: Vec<OwnedFd>) -> ! {
    if let Err(err) = enter(launch, &chan, v1_tasks) {
        chan.send_error(&err);
        unsafe { libc::_exit(1) };
    }
    // The container process must not speak before the runtime knows its pid (step 3): it waits
    // for the end of the intermediate, which closes `release` after sending InitPid.
    let (hold, release) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            chan.send_error(&anyhow::Error::new(e).context("pipe for the container process"));
            unsafe { libc::_exit(1) }
        }
    };
    // SAFETY: single-threaded; the child runs init and never returns.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(release);
            let mut byte = [0u8; 1];
            while let Err(nix::Error::EINTR) = nix::unistd::read(&hold, &mut byte) {}
            drop(hold);
            init::run(launch, chan)
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = chan.send(&Message::InitPid(child.as_raw()));
            unsafe { libc::_exit(0) }
        }
        Err(e) => {
            chan.send_error(&anyhow::Error::new(e).context("fork the container process"));
            unsafe { libc::_exit(1) }
        }
    }
}

fn enter(launch: &Launch, chan: &Channel, v1_tasks: Vec<OwnedFd>) -> Result<()> {
    close_inherited(launch, chan, &v1_tasks)?;
    // execCPUAffinity.initial: where the process runs until it is in the container's cgroup.
    let affinity = launch.process.exec_cpu_affinity().as_ref();
    if let Some(cpus) = affinity.and_then(|a| a.initial().as_deref()) {
        crate::security::set_affinity(cpus)?;
    }
    crate::cgroups::join_v1(&v1_tasks)?;
    drop(v1_tasks);
    let linux = launch.spec.linux().as_ref().context("linux: missing")?;
    // Opened while still the host's root and dumpable: once non-dumpable, /proc/self belongs to
    // the host's root, which a new user namespace's root is not (EACCES), and the kernel checks
    // CAP_SYS_TIME over the time namespace's owner with the opener's credentials.
    let time_offsets = match (&launch.role, linux.time_offsets()) {
        (Role::Init { .. }, Some(offsets)) => Some((namespaces::open_time_offsets()?, offsets)),
        _ => None,
    };
    let nss = linux.namespaces().as_deref().unwrap_or_default();
    let new_user = matches!(launch.role, Role::Init { .. }) && namespaces::new_user_ns(nss);
    // A user's runtime writes the maps (or has newuidmap do it) as that user, who must own
    // /proc/<pid>, which a non-dumpable process's is not: stay dumpable until then. That user
    // could trace this process anyway; root's runtime must not be readable from the container.
    let defer_undumpable = new_user && !nix::unistd::geteuid().is_root();
    if !defer_undumpable {
        set_undumpable()?;
    }
    match launch.role {
        Role::Init { .. } => {
            if new_user {
                unshare(CloneFlags::CLONE_NEWUSER).context("unshare the user namespace")?;
                chan.send(&Message::UserNsCreated)?;
            } else if let Some(ns) = nss.iter().find(|n| n.typ() == LinuxNamespaceType::User) {
                if let Some(path) = ns.path() {
                    namespaces::join(LinuxNamespaceType::User, path)?;
                }
            }
            chan.expect(&Message::Proceed)?;
            if defer_undumpable {
                set_undumpable()?;
            }
            if new_user {
                crate::userns::become_root()?;
            }
            namespaces::enter_all(nss)?;
            if let Some((file, offsets)) = time_offsets {
                namespaces::set_time_offsets(file, offsets)?;
            }
        }
        Role::Exec { init_pid, .. } => {
            chan.expect(&Message::Proceed)?;
            join_container(init_pid, nss.iter().map(|n| n.typ()))?;
        }
    }
    Ok(())
}

/// The runtime's memory must not be readable from the container while it is mapped here.
fn set_undumpable() -> Result<()> {
    prctl::set_dumpable(false).map_err(|e| anyhow::anyhow!("prctl PR_SET_DUMPABLE: errno {e}"))
}

/// Close every fd the runtime had open except the ones the child needs, first thing: the
/// runtime's state-dir lock in particular must not live on in the container.
fn close_inherited(launch: &Launch, chan: &Channel, v1_tasks: &[OwnedFd]) -> Result<()> {
    let mut keep = vec![chan.as_raw_fd()];
    keep.extend(v1_tasks.iter().map(|f| f.as_raw_fd()));
    keep.extend(launch.console.as_ref().map(|f| f.as_raw_fd()));
    if let Role::Init {
        exec_fifo, plan, ..
    } = &launch.role
    {
        keep.push(exec_fifo.as_raw_fd());
        keep.extend(plan.idmaps.iter().flatten().map(|f| f.as_raw_fd()));
    }
    keep.sort_unstable();
    let kept_from = 3 + launch.preserve_fds as i32;
    let mut first = kept_from;
    for fd in keep
        .into_iter()
        .filter(|fd| *fd >= kept_from)
        .chain([i32::MAX])
    {
        if fd > first {
            let last = if fd == i32::MAX {
                u32::MAX
            } else {
                (fd - 1) as u32
            };
            if unsafe { libc::close_range(first as u32, last, 0) } != 0 {
                return Err(std::io::Error::last_os_error()).context("close_range");
            }
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

/// Join every namespace of the running container: open them all first (the mount namespace
/// changes what paths mean), then the user namespace, then the rest. A container without a
/// mount namespace is its init's root directory in the host's mounts: chroot there, last.
fn join_container(init_pid: i32, types: impl Iterator<Item = LinuxNamespaceType>) -> Result<()> {
    let mut opened = Vec::new();
    let mut root = Some(format!("/proc/{init_pid}/root"));
    for t in types {
        if t == LinuxNamespaceType::Mount {
            root = None;
        }
        let path = format!("/proc/{init_pid}/ns/{}", namespaces::proc_name(t));
        let f = File::open(&path).with_context(|| format!("open {path}"))?;
        // Already in it (e.g. a namespace shared with the host): setns would fail for user.
        let mine = std::fs::metadata(format!("/proc/self/ns/{}", namespaces::proc_name(t)));
        let theirs = f.metadata()?;
        use std::os::unix::fs::MetadataExt;
        if mine.is_ok_and(|m| m.ino() == theirs.ino() && m.dev() == theirs.dev()) {
            continue;
        }
        opened.push((t, f));
    }
    let root = root
        .map(|path| {
            nix::fcntl::open(
                path.as_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .with_context(|| format!("open {path}"))
        })
        .transpose()?;
    opened.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    for (t, f) in &opened {
        nix::sched::setns(f, namespaces::flag(*t))
            .with_context(|| format!("join the container's {t:?} namespace"))?;
        if *t == LinuxNamespaceType::User {
            crate::userns::become_root()?;
        }
    }
    if let Some(root) = root {
        nix::unistd::fchdir(&root).context("enter the container's root")?;
        nix::unistd::chroot(".").context("chroot into the container's root")?;
    }
    Ok(())
}
