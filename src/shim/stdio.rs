//! A container process's stdio from what containerd sends: FIFO paths (made by containerd or
//! ctr, whose reader is already open), `file://` paths, a `binary://` logger (binary_log.rs),
//! or nothing.
//!
//! The container gets the FIFOs themselves, not pipes the shim copies from: no copying thread
//! per container. Output FIFOs are opened read-write, as the Go shim also keeps a read end: the
//! open never blocks, and a container never dies of SIGPIPE while containerd restarts.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;

use containerd_shim::protos::events::task::TaskIO;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

use crate::binary_log::{self, BinaryLog};

pub struct ContainerIo {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl ContainerIo {
    /// For a terminal process, whose stdio is the pty.
    pub fn null() -> ContainerIo {
        ContainerIo {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

/// The stdio of a process of container `id`, and its logger if the output goes to one.
pub fn open(
    io: &TaskIO,
    id: &str,
    namespace: &str,
) -> Result<(ContainerIo, Option<BinaryLog>), String> {
    let stdin = open_input(&io.stdin).map_err(|e| format!("open stdin {}: {e}", io.stdin))?;
    if binary_log::is_binary(&io.stdout) || binary_log::is_binary(&io.stderr) {
        if io.stdout != io.stderr {
            return Err(format!(
                "stdout {} and stderr {}: a binary:// logger takes both",
                io.stdout, io.stderr
            ));
        }
        let started = binary_log::start(&io.stdout, id, namespace)?;
        let stdio = ContainerIo {
            stdin,
            stdout: started.stdout,
            stderr: started.stderr,
        };
        return Ok((stdio, Some(started.log)));
    }
    let stdio = ContainerIo {
        stdin,
        stdout: open_output(&io.stdout)?,
        stderr: open_output(&io.stderr)?,
    };
    Ok((stdio, None))
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
