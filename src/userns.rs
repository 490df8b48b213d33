//! Work on a rootless container's files from the host: as root of a fresh user namespace with
//! the container's mappings, a user reaches what the container's ids own (its upper layer holds
//! files of the user's subordinate ids, and overlay's work dir is mode 000), with no more rights
//! than the container had. A forked child does the work; the runtime writes its maps.

use anyhow::{bail, Context, Result};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Uid};

use crate::idmap::IdMaps;
use crate::sync::{self, Message};

/// Run `work` in a forked child as root of a new user namespace mapped by `maps`. Call only
/// while the runtime is single-threaded.
pub fn as_mapped_root(maps: &IdMaps, work: impl FnOnce() -> Result<()>) -> Result<()> {
    let (parent, child) = sync::pair()?;
    // SAFETY: single-threaded (the caller's promise); the child runs our code and exits.
    match unsafe { fork() }.context("fork to enter a user namespace")? {
        ForkResult::Child => {
            drop(parent);
            let result = unshare(CloneFlags::CLONE_NEWUSER)
                .context("unshare the user namespace")
                .and_then(|()| child.send(&Message::UserNsCreated))
                .and_then(|()| child.expect(&Message::Proceed))
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
            let result = parent
                .expect(&Message::UserNsCreated)
                .and_then(|()| crate::idmap::write(pid, &maps.uids, &maps.gids))
                .and_then(|()| parent.send(&Message::Proceed))
                .and_then(|()| parent.expect(&Message::Ready));
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

/// Inside a fresh user namespace: become its root (uid/gid 0 as mapped).
pub fn become_root() -> Result<()> {
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .context("setresgid 0 in the user namespace")?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .context("setresuid 0 in the user namespace")
}
