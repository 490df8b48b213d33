//! Work on a rootless container's files from the host: as root of a fresh user namespace with
//! the container's mappings, a user reaches what the container's ids own (its upper layer holds
//! files of the user's subordinate ids, and overlay's work dir is mode 000), with no more rights
//! than the container had; or joining a running container's. A forked child does the work; the
//! runtime writes its maps.

use anyhow::{bail, Context, Result};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Uid};

use crate::idmap::IdMaps;
use crate::sync::{self, Message};

/// The user namespace `as_root_in` works in.
pub enum Entry<'a> {
    /// A new one mapped so.
    New(&'a IdMaps),
    /// The one of this (running) process.
    Join(i32),
}

/// Run `work` in a forked child as root of the user namespace `entry` names. Call only while
/// the runtime is single-threaded; `work` itself may start threads.
pub fn as_root_in(entry: Entry, work: impl FnOnce() -> Result<()>) -> Result<()> {
    let (parent, child) = sync::pair()?;
    // SAFETY: single-threaded (the caller's promise); the child runs our code and exits.
    match unsafe { fork() }.context("fork to enter a user namespace")? {
        ForkResult::Child => {
            drop(parent);
            let result = enter(&entry, &child)
                .and_then(|()| become_root())
                .and_then(|()| work());
            match result {
                Ok(()) => {
                    let _ = child.send(&Message::Ready);
                }
                Err(e) => child.send_error(&e),
            }
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child: pid } => {
            drop(child);
            let maps_written = match entry {
                Entry::New(maps) => parent
                    .expect(&Message::UserNsCreated)
                    .and_then(|()| crate::idmap::write(pid, &maps.uids, &maps.gids))
                    .and_then(|()| parent.send(&Message::Proceed)),
                Entry::Join(_) => Ok(()),
            };
            let result = maps_written.and_then(|()| parent.expect(&Message::Ready));
            if result.is_err() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, 0)) | Err(_) => result,
                Ok(other) => result.and_then(|()| bail!("user namespace helper: {other:?}")),
            }
        }
    }
}

/// In the child: create the namespace and wait for its maps, or join the process's.
fn enter(entry: &Entry, chan: &sync::Channel) -> Result<()> {
    match entry {
        Entry::New(_) => {
            unshare(CloneFlags::CLONE_NEWUSER).context("unshare the user namespace")?;
            chan.send(&Message::UserNsCreated)?;
            chan.expect(&Message::Proceed)
        }
        Entry::Join(pid) => {
            let path = format!("/proc/{pid}/ns/user");
            let ns = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWUSER)
                .context("join the container's user namespace")?;
            // A mount namespace this user namespace owns: one the child may leave (e.g. into
            // the container's) and come back to, which the host's is not.
            unshare(CloneFlags::CLONE_NEWNS).context("unshare the mount namespace")
        }
    }
}

/// Inside a fresh user namespace: become its root (uid/gid 0 as mapped).
pub fn become_root() -> Result<()> {
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .context("setresgid 0 in the user namespace")?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .context("setresuid 0 in the user namespace")
}
