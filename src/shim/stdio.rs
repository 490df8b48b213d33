//! A container process's stdio from what containerd sends: FIFO paths (made by containerd or
//! ctr, whose reader is already open), `file://` paths, or nothing.
//!
//! The container gets the FIFOs themselves, not pipes the shim copies from: no copying thread
//! per container. Output FIFOs are opened read-write, as the Go shim also keeps a read end: the
//! open never blocks, and a container never dies of SIGPIPE while containerd restarts.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;

use nix::fcntl::{fcntl, FcntlArg, OFlag};

pub struct ContainerIo {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

pub fn open(stdin: &str, stdout: &str, stderr: &str) -> Result<ContainerIo, String> {
    Ok(ContainerIo {
        stdin: open_input(stdin).map_err(|e| format!("open stdin {stdin}: {e}"))?,
        stdout: open_output(stdout)?,
        stderr: open_output(stderr)?,
    })
}

/// The stdin FIFO's read end. containerd's writer is already waiting in its open(2) (it opens
/// asynchronously before Create) and counts as a writer from then on, so the container reads
/// EOF only once containerd closes it: that is stdin's end, and CloseIO has nothing to add.
fn open_input(path: &str) -> std::io::Result<Stdio> {
    if path.is_empty() {
        return Ok(Stdio::null());
    }
    // Non-blocking, so that a missing writer cannot hang Create; the container reads blocking.
    let read = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    fcntl(&read, FcntlArg::F_SETFL(OFlag::empty()))?;
    Ok(Stdio::from(read))
}

fn open_output(uri: &str) -> Result<Stdio, String> {
    if uri.is_empty() {
        return Ok(Stdio::null());
    }
    if uri.starts_with("binary://") {
        return Err(format!("{uri}: binary:// log URIs are not supported yet"));
    }
    let opened = match uri.strip_prefix("file://") {
        Some(path) => {
            if let Some(dir) = Path::new(path).parent() {
                fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            }
            OpenOptions::new().append(true).create(true).open(path)
        }
        None => OpenOptions::new().read(true).write(true).open(uri),
    };
    opened
        .map(Stdio::from)
        .map_err(|e| format!("open {uri}: {e}"))
}
