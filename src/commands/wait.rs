//! Waiting for a container process in the foreground (`run`, `exec`): the runtime is a child
//! subreaper, forwards the signals it gets, and exits with the process's status.

use anyhow::{Context, Result};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::tty::LocalTerminal;

const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

pub fn become_subreaper() -> Result<()> {
    prctl::set_child_subreaper(true)
        .map_err(|e| anyhow::anyhow!("PR_SET_CHILD_SUBREAPER: errno {e}"))
}

/// Block the forwarded signals and SIGCHLD. Call after the container's processes exist, so
/// they do not inherit the mask.
pub fn block_signals() -> Result<SigSet> {
    let mut set: SigSet = FORWARDED.into_iter().collect();
    set.add(Signal::SIGCHLD);
    set.thread_block().context("block signals")?;
    Ok(set)
}

/// Wait for `pid`, forwarding signals to it and reaping everything reparented to us; returns
/// its exit code (128+N for a signal, like a shell). With the caller's terminal attached, a
/// window change resizes the container's pty instead of being forwarded.
pub fn wait_forwarding(pid: i32, set: &SigSet, terminal: Option<&LocalTerminal>) -> Result<i32> {
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                    return Ok(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => break,
                Ok(_) => continue,
                Err(e) => return Err(e).context("waitpid"),
            }
        }
        match (set.wait().context("sigwait")?, terminal) {
            (Signal::SIGCHLD, _) => {}
            (Signal::SIGWINCH, Some(t)) => t.resize(),
            (sig, _) => {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }
}
