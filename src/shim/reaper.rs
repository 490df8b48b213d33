//! Reaping every child of the shim: the minirunc runs and, since the shim is their subreaper,
//! the containers' processes. Each exit goes to the crate's monitor, where the runtime's runs
//! (runtime.rs) and the container processes (exits.rs) hear of it.
//!
//! SIGCHLD reaches the server's event loop through a self-pipe (signal-hook's handler writes a
//! byte to a socket the loop polls), so reaping takes no thread of its own. A self-pipe rather
//! than a signalfd: a signalfd needs the signals blocked, and std's spawn leaves a blocked mask to
//! minirunc and on to the container (which would then never see a SIGTERM). SIGTERM and SIGINT
//! get the same handler, so they are ignored, as containerd's shims do (containerd ends a shim
//! with Shutdown, or SIGKILL); handlers, unlike ignored signals, are reset by exec.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd};
use std::os::unix::net::UnixStream;

use containerd_shim::{error, synchronous::monitor::monitor_notify_by_pid};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub struct Reaper {
    /// Readable when a signal has come.
    wakes: UnixStream,
}

impl Reaper {
    pub fn new() -> Result<Reaper, String> {
        let (wakes, waker) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
        wakes
            .set_nonblocking(true)
            .map_err(|e| format!("socketpair: {e}"))?;
        // The handler writes for as long as the process lives: the write end is never closed.
        let waker = waker.into_raw_fd();
        for signal in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT] {
            signal_hook::low_level::pipe::register_raw(signal, waker)
                .map_err(|e| format!("handle signal {signal}: {e}"))?;
        }
        Ok(Reaper { wakes })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wakes.as_fd()
    }

    /// Take the pending signals and reap every child that has exited.
    pub fn reap(&self) {
        let mut drain = [0u8; 64];
        while matches!((&self.wakes).read(&mut drain), Ok(n) if n > 0) {}
        loop {
            let (pid, code) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, status)) => (pid, status),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, 128 + signal as i32),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    error!("waitpid: {e}");
                    return;
                }
            };
            if let Err(e) = monitor_notify_by_pid(pid.as_raw(), code) {
                error!("exit of {pid}: {e}");
            }
        }
    }

    /// Reap until the process ends, on a thread of its own (the `delete` command has no loop).
    pub fn spawn(self) -> Result<(), String> {
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || loop {
                let _ = poll(
                    &mut [PollFd::new(self.fd(), PollFlags::POLLIN)],
                    PollTimeout::NONE,
                );
                self.reap();
            })
            .map(drop)
            .map_err(|e| format!("start the reaper: {e}"))
    }
}
