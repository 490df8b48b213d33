//! Handing the seccomp notify fd to the agent at `linux.seccomp.listenerPath`.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Send the notify fd plus the container state to the agent listening on `listener_path`, as
/// runc does: one unix stream connection carrying the spec's `ContainerProcessState` JSON
/// (`{"ociVersion","fds":["seccompFd"],"pid","metadata","state"}`) with the fd as SCM_RIGHTS.
/// `state_json` is the container state (`minirunc state` output); its `ociVersion` and `pid`
/// are repeated at the top level.
pub fn send_to_listener(
    listener_path: &Path,
    metadata: &str,
    state_json: &str,
    fd: BorrowedFd,
) -> Result<()> {
    let payload = process_state(metadata, state_json)?;
    let stream = UnixStream::connect(listener_path).with_context(|| {
        format!(
            "linux.seccomp.listenerPath: connecting to {}",
            listener_path.display()
        )
    })?;
    send_all(&stream, payload.as_bytes(), fd).with_context(|| {
        format!(
            "linux.seccomp.listenerPath: sending the seccomp fd to {}",
            listener_path.display()
        )
    })
}

fn process_state(metadata: &str, state_json: &str) -> Result<String> {
    let state: serde_json::Value =
        serde_json::from_str(state_json).context("parsing the container state JSON")?;
    let Some(pid) = state.get("pid").and_then(serde_json::Value::as_i64) else {
        bail!("container state JSON: no integer \"pid\"");
    };
    let Some(version) = state.get("ociVersion").and_then(serde_json::Value::as_str) else {
        bail!("container state JSON: no string \"ociVersion\"");
    };
    let message = serde_json::json!({
        "ociVersion": version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    });
    Ok(message.to_string())
}

/// The fd travels with the first chunk; a stream socket may take the rest in further sends.
fn send_all(stream: &UnixStream, payload: &[u8], fd: BorrowedFd) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let mut sent = 0;
    while sent < payload.len() {
        let iov = [IoSlice::new(&payload[sent..])];
        let rights = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if sent == 0 { &rights } else { &[] };
        match sendmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(0) => bail!("the agent closed the connection"),
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
