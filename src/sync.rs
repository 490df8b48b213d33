//! The typed messages between the runtime and its children, over one SOCK_SEQPACKET socketpair
//! (one datagram per message, so no framing). The whole protocol, in order:
//!
//! | step | from -> to             | message          | meaning                                         |
//! |------|------------------------|------------------|-------------------------------------------------|
//! | 1    | intermediate -> runtime| `UserNsCreated`  | new user namespace exists: write uid/gid maps   |
//! | 2    | runtime -> intermediate| `Proceed`        | maps written; the intermediate is in the cgroup, having moved itself into the v1 hierarchies (exec --ignore-paused: see 6a) |
//! | 3    | intermediate -> runtime| `InitPid(pid)`   | init forked (host pid); the intermediate exits, and only then may init speak |
//! | 4    | init -> runtime        | `MountsReady`    | only with prestart/createRuntime hooks: run them |
//! | 5    | runtime -> init        | `HooksDone`      | hooks succeeded                                 |
//! | 5a   | child -> runtime       | `SeccompFd(n)`   | only with listenerPath: take fd n (pidfd_getfd) and pass it on |
//! | 5b   | runtime -> child       | `Proceed`        | the fd was handed to the listener               |
//! | 6    | init -> runtime        | `Ready`          | set up (exec: about to execve)                  |
//! | 6a   | runtime -> exec'd      | `Proceed`        | only with exec --ignore-paused: it is in the cgroup now |
//! | 7    | runtime -> init        | `Proceed`        | state.json names init: it waits on the exec fifo |
//! | any  | child -> runtime       | `Error{..}`      | a step failed: errno and message; the child exits |
//!
//! Step 1 happens only when the spec asks for a new user namespace. Step 7 makes an init whose
//! runtime died before recording it exit (EOF instead of `Proceed`) rather than wait forever. After `Ready` an exec'd
//! process's socket closes on execve (CLOEXEC), which tells the runtime exec succeeded.

use anyhow::{bail, Context, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum Message {
    UserNsCreated,
    Proceed,
    InitPid(i32),
    MountsReady,
    HooksDone,
    SeccompFd(i32),
    Ready,
    Error { errno: i32, message: String },
}

/// One end of the channel.
pub struct Channel(OwnedFd);

/// The runtime's end and the children's end.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for the sync channel")?;
    Ok((Channel(a), Channel(b)))
}

/// An error sent by a child, carried back into the runtime with its errno.
#[derive(Debug)]
pub struct ChildError {
    pub errno: i32,
    pub message: String,
}

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ChildError {}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<()> {
        let buf = serde_json::to_vec(msg)?;
        loop {
            let n = unsafe {
                libc::send(
                    self.0.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).context("sync channel: send");
            }
        }
    }

    /// The next message, or None when the other side closed its end.
    pub fn recv(&self) -> Result<Option<Message>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n == 0 {
                return Ok(None);
            }
            if n > 0 {
                let msg = serde_json::from_slice(&buf[..n as usize])
                    .context("sync channel: malformed message")?;
                return Ok(Some(msg));
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => {}
                // The other side closed with our last message still unread: closed all the same.
                std::io::ErrorKind::ConnectionReset => return Ok(None),
                _ => return Err(err).context("sync channel: receive"),
            }
        }
    }

    /// Receive and require `want`; a child's error becomes this call's error.
    pub fn expect(&self, want: &Message) -> Result<()> {
        match self.recv()? {
            Some(m) if &m == want => Ok(()),
            Some(Message::Error { errno, message }) => Err(ChildError { errno, message }.into()),
            Some(other) => bail!("sync channel: expected {want:?}, got {other:?}"),
            None => bail!("sync channel: the container process exited before {want:?}"),
        }
    }

    /// Report a failure to the runtime: the root cause's errno and the whole context chain.
    /// Once the runtime has gone (a failure after `start`), the container's stderr gets it.
    pub fn send_error(&self, err: &anyhow::Error) {
        let message = crate::errors::render(err);
        let sent = self.send(&Message::Error {
            errno: errno_of(err),
            message: message.clone(),
        });
        if sent.is_err() {
            eprintln!("minirunc: {message}");
        }
    }
}

/// The errno at the root of an error chain, or 0.
pub fn errno_of(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<nix::Error>() {
            return *e as i32;
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            if let Some(code) = e.raw_os_error() {
                return code;
            }
        }
        if let Some(e) = cause.downcast_ref::<ChildError>() {
            return e.errno;
        }
    }
    0
}
