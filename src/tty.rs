//! Terminals: the pty is created inside the container (its devpts), and its master is sent over
//! the console socket in one message with exactly one SCM_RIGHTS fd and the pty's name as
//! payload, without waiting for a reply (runc's protocol, which containerd and conmon expect).

use anyhow::{Context, Result};
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
