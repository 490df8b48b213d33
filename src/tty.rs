//! Terminals: the pty is created inside the container (its devpts), and its master is sent over
//! the console socket in one message with exactly one SCM_RIGHTS fd and the pty's name as
//! payload, without waiting for a reply (runc's protocol, which containerd and conmon expect).

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};

/// Create a pty, send its master to `socket`, and make the slave the caller's controlling
/// terminal and stdio. Call after the root switch, in a new session.
pub fn setup(socket: &OwnedFd) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("open /dev/ptmx")?;
    grantpt(&master).context("grantpt")?;
    unlockpt(&master).context("unlockpt")?;
    let name = ptsname_r(&master).context("ptsname")?;
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {name}"))?;
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("send the pty master over the console socket")?;
    drop(master);
    // /dev/console is the terminal too, as runc does it.
    let console = std::path::Path::new("/dev/console");
    if !console.exists() {
        let _ = std::fs::File::create(console);
    }
    let _ = nix::mount::mount(
        Some(name.as_str()),
        console,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    );
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("TIOCSCTTY");
    }
    nix::unistd::dup2_stdin(&slave).context("dup2 the pty onto stdin")?;
    nix::unistd::dup2_stdout(&slave).context("dup2 the pty onto stdout")?;
    nix::unistd::dup2_stderr(&slave).context("dup2 the pty onto stderr")?;
    Ok(())
}

/// The caller's own terminal for a container without a console socket (`run`, foreground
/// `exec`): a socketpair stands in for the socket; the runtime receives the master and copies
/// between it and its stdio, with the local terminal in raw mode until dropped.
pub struct LocalTerminal {
    restore: Option<nix::sys::termios::Termios>,
    master: OwnedFd,
}

/// A connected pair: (the end given to the container process, the runtime's end).
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for the terminal")
}

/// Receive the pty master a runtime sends over a connected console socket (one SCM_RIGHTS fd,
/// the pty's name as data, which is ignored).
pub fn receive_master(socket: &impl AsRawFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receive the pty master")?;
    for c in msg.cmsgs().context("pty master message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave this process the fd; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("the console socket's message carried no pty master")
}

impl LocalTerminal {
    /// Receive the pty master on `ours` and start copying; the local terminal goes raw.
    pub fn attach(ours: OwnedFd) -> Result<LocalTerminal> {
        let master = receive_master(&ours)?;
        let stdin = std::io::stdin();
        let restore = nix::sys::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &restore {
            let mut raw = t.clone();
            nix::sys::termios::cfmakeraw(&mut raw);
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
            copy_window_size(&master);
        }
        let mut to_pty = std::fs::File::from(master.try_clone()?);
        let mut from_pty = std::fs::File::from(master.try_clone()?);
        // Threads are fine here: the runtime forks nothing after the container exists.
        std::thread::spawn(move || std::io::copy(&mut std::io::stdin(), &mut to_pty));
        std::thread::spawn(move || std::io::copy(&mut from_pty, &mut std::io::stdout()));
        Ok(LocalTerminal { restore, master })
    }
}

impl LocalTerminal {
    /// The local terminal changed size (SIGWINCH): give the pty the same size.
    pub fn resize(&self) {
        copy_window_size(&self.master);
    }
}

fn copy_window_size(master: &OwnedFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

impl Drop for LocalTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.restore {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}
