//! `run`: create, start, wait and delete, exiting with the container's status. The runtime is a
//! child subreaper for the duration, so init is reparented to it and its status can be reaped.

use anyhow::{Context, Result};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create_options;
use crate::cli::RunArgs;
use crate::container::{self, Paths};

const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

pub fn run(paths: &Paths, a: &RunArgs) -> Result<i32> {
    let id = &a.create.id;
    if !a.create.detach {
        prctl::set_child_subreaper(true)
            .map_err(|e| anyhow::anyhow!("PR_SET_CHILD_SUBREAPER: errno {e}"))?;
    }
    let pid = container::create(paths, id, &create_options(&a.create))?;
    if a.create.detach {
        return container::start(paths, id).map(|_| 0);
    }
    // Blocked only now, so the container's processes do not inherit the mask.
    let mut set: SigSet = FORWARDED.into_iter().collect();
    set.add(Signal::SIGCHLD);
    set.thread_block().context("block signals")?;
    if let Err(e) = container::start(paths, id) {
        let _ = container::delete(paths, id, true);
        return Err(e);
    }
    let code = wait_forwarding(pid, &set)?;
    if !a.keep {
        container::delete(paths, id, true)?;
    }
    Ok(code)
}

/// Wait for init, forwarding the signals the runtime receives; reap everything reparented to us.
fn wait_forwarding(init: i32, set: &SigSet) -> Result<i32> {
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == init => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == init => {
                    return Ok(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => break,
                Ok(_) => continue,
                Err(e) => return Err(e).context("waitpid"),
            }
        }
        let sig = set.wait().context("sigwait")?;
        if sig != Signal::SIGCHLD {
            let _ = kill(Pid::from_raw(init), sig);
        }
    }
}
