//! `binary://` log URIs: a program the user names reads the container's output, as containerd's
//! runc shim runs it. For `binary:///path/to/logger?key=value&flag`, the shim starts
//! `/path/to/logger key value flag` with CONTAINER_ID and CONTAINER_NAMESPACE in its environment,
//! the read ends of the container's stdout and stderr pipes as fds 3 and 4, and fd 5 to write a
//! byte to (or close) once it is ready; Create waits for that. The container gets the write ends,
//! and the shim keeps none: the logger reads EOF when the container's processes are gone.
//! Delete then gives it 12 s to finish, as the Go shim does, and kills it after that.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::pipe2;
use percent_encoding::percent_decode_str;

const SCHEME: &str = "binary://";
/// How long Delete waits for the logger to drain the pipes (the Go shim's binaryIOProcTermTimeout).
const FINISH_TIMEOUT: Duration = Duration::from_secs(12);

pub fn is_binary(uri: &str) -> bool {
    uri.starts_with(SCHEME)
}

/// A running logger, by pidfd: the reaper reaps it like any child, and the pidfd still says
/// when it has exited without a pid that could be reused.
pub struct BinaryLog {
    pidfd: Option<OwnedFd>,
}

/// What the container gets as stdout and stderr, and the logger reading them.
pub struct Started {
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub log: BinaryLog,
}

/// Start the logger of `uri` for a process of container `id` in containerd namespace `namespace`.
pub fn start(uri: &str, id: &str, namespace: &str) -> Result<Started, String> {
    let (program, args) = parse(uri)?;
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("log URI {uri}: {what}: {e}");
    let (stdout_r, stdout_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| failed("pipe", &e))?;
    let (stderr_r, stderr_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| failed("pipe", &e))?;
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| failed("pipe", &e))?;
    // Above fd 5, so that moving them to 3, 4 and 5 in the child cannot overwrite one another.
    let high = |fd: &OwnedFd| -> Result<OwnedFd, String> {
        let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(10)).map_err(|e| failed("dup", &e))?;
        // SAFETY: fcntl just made `raw`, and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    };
    let passed = [high(&stdout_r)?, high(&stderr_r)?, high(&ready_w)?];
    let sources: [RawFd; 3] = passed.each_ref().map(|fd| fd.as_raw_fd());
    let mut command = Command::new(&program);
    command
        .args(&args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only dup2, which is async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            for (target, source) in (3..).zip(sources) {
                if libc::dup2(source, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| failed(&format!("start {program}"), &e))?;
    let pidfd = pidfd_open(child.id());
    // The logger has its copies: without ours, its exit shows as EOF on `ready_r`.
    drop((passed, stdout_r, stderr_r, ready_w));
    let mut ready = [0u8; 1];
    std::fs::File::from(ready_r)
        .read(&mut ready)
        .map_err(|e| failed("wait until the logger is ready", &e))?;
    Ok(Started {
        stdout: Stdio::from(stdout_w),
        stderr: Stdio::from(stderr_w),
        log: BinaryLog { pidfd },
    })
}

impl BinaryLog {
    /// Give the logger FINISH_TIMEOUT to read the rest of the output and exit, then kill it.
    pub fn finish(self) {
        let Some(pidfd) = self.pidfd else { return };
        let timeout = PollTimeout::try_from(FINISH_TIMEOUT).unwrap_or(PollTimeout::MAX);
        let mut exited = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if poll(&mut exited, timeout) == Ok(0) {
            // SAFETY: a plain syscall on a pidfd this process owns.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
    }
}

/// None if the logger already exited (and was reaped) or the kernel has no pidfd: then Delete
/// does not wait for it.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a new fd, owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The program and its arguments: each query pair gives its key, then its value unless empty.
fn parse(uri: &str) -> Result<(String, Vec<String>), String> {
    let rest = uri.strip_prefix(SCHEME).unwrap_or(uri);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let program = percent_decode_str(path)
        .decode_utf8()
        .map_err(|e| format!("log URI {uri}: the path: {e}"))?
        .into_owned();
    if !program.starts_with('/') {
        return Err(format!("log URI {uri}: the logger's path must be absolute"));
    }
    let mut args = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        args.push(key.into_owned());
        if !value.is_empty() {
            args.push(value.into_owned());
        }
    }
    Ok((program, args))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn program_and_arguments_from_the_uri() {
        let (program, args) =
            parse("binary:///usr/local/bin/my%20logger?dir=/var/log/a+b&verbose").unwrap();
        assert_eq!(program, "/usr/local/bin/my logger");
        assert_eq!(args, ["dir", "/var/log/a b", "verbose"]);
        assert!(parse("binary://relative/logger").is_err());
    }
}
