//! Terminals. The runtime sends the pty master over a console socket (runc's protocol: one
//! message with one SCM_RIGHTS fd); relay.rs copies between it and containerd's FIFOs, and
//! ResizePty sets its window size.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A listening console socket, removed when dropped.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// A new socket in the temp dir: the bundle's path may be longer than a socket's 108 bytes.
    pub fn new() -> io::Result<ConsoleSocket> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "minirunc-shim-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let listener = UnixListener::bind(&path)?;
        Ok(ConsoleSocket { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master the runtime sent. Called once the runtime has exited: its connection waits in
    /// the backlog, so a runtime that never connected is an error here, not a hang.
    pub fn receive(&self) -> io::Result<OwnedFd> {
        self.listener.set_nonblocking(true)?;
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| io::Error::new(e.kind(), format!("the runtime sent no terminal: {e}")))?;
        conn.set_nonblocking(false)?;
        minirunc::tty::receive_master(&conn).map_err(|e| io::Error::other(format!("{e:#}")))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Set the terminal's window size (ResizePty).
pub fn resize(master: &OwnedFd, width: u32, height: u32) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: height as u16,
        ws_col: width as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
