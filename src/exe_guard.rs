//! The runtime binary as seen from containers (runc CVE-2019-5736 class).
//!
//! minirunc forks into containers without re-executing itself, so a container process that
//! executes `/proc/self/exe` (directly, through a symlink or a `#!/proc/self/exe` script) runs
//! the host's minirunc binary; any process of the container can then open `/proc/<pid>/exe`
//! and, once no minirunc runs any more, reopen it for writing and replace the host binary.
//! Before forking into a container the runtime therefore re-executes itself from a detached,
//! read-only bind mount of its own binary: every reference the container can reach is on that
//! mount, and a write through it fails with EROFS. The mount belongs to no namespace, so no
//! one can make it writable again. A user, who may not mount, re-executes from a memfd copy
//! sealed against writes (runc's original fix).

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Set across the re-execution to stop a loop when the binary still is not read-only.
const MARKER: &str = "_MINIRUNC_EXE_GUARD";

/// Re-execute from a read-only view of the binary unless it already is one. Call first thing,
/// single-threaded, in every verb that forks into a container.
pub fn ensure_read_only_exe() -> Result<()> {
    let reexecuted = std::env::var_os(MARKER).is_some();
    // The variable must not reach hooks or anything the runtime runs later.
    std::env::remove_var(MARKER);
    if exe_is_read_only()? {
        if reexecuted {
            // execveat through an fd names the process after the fd number.
            prctl::set_name("minirunc")
                .map_err(|e| anyhow::anyhow!("prctl PR_SET_NAME: errno {e}"))?;
        }
        return Ok(());
    }
    if reexecuted {
        bail!("/proc/self/exe is still writable after re-executing from a read-only mount");
    }
    let tree = read_only_exe()?;
    std::env::set_var(MARKER, "1");
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("a command-line argument contains a NUL byte")?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .context("an environment variable contains a NUL byte")?;
    let err = nix::unistd::execveat(&tree, c"", &args, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH)
        .unwrap_err();
    Err(err).context("re-execute minirunc from its read-only mount")
}

/// Whether the running binary lies on a read-only mount (after the re-execution, or installed so)
/// or is a write-sealed memfd (the rootless re-execution).
fn exe_is_read_only() -> Result<bool> {
    let st = nix::sys::statvfs::statvfs("/proc/self/exe").context("statvfs /proc/self/exe")?;
    if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(true);
    }
    let exe = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    Ok(seals >= 0 && seals & libc::F_SEAL_WRITE != 0)
}

/// The binary to re-execute: a read-only detached mount, or for a user who may not mount (no
/// CAP_SYS_ADMIN over its mount namespace: a user, or root of a user namespace that does not
/// own it) a sealed in-memory copy, which no one can write either.
fn read_only_exe() -> Result<OwnedFd> {
    match read_only_clone() {
        Ok(fd) => Ok(fd),
        Err(e) if crate::rootless::host_root() => Err(e),
        Err(_) => sealed_copy(),
    }
}

/// A copy of the binary in a memfd sealed against any write, growth or shrinking.
fn sealed_copy() -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let fd = unsafe { libc::memfd_create(c"minirunc".as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for the runtime binary");
    }
    let mut copy = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut exe = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    std::io::copy(&mut exe, &mut copy).context("copy the runtime binary into a memfd")?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error()).context("seal the memfd copy of the binary");
    }
    Ok(copy.into())
}

/// A detached bind mount of the binary (open_tree OPEN_TREE_CLONE), made read-only.
fn read_only_clone() -> Result<OwnedFd> {
    let fd = crate::rootfs::mounts::clone_mount(None, c"/proc/self/exe")
        .context("open_tree /proc/self/exe (a detached bind mount of the runtime binary)")?;
    crate::rootfs::mounts::set_recursive_attrs(&fd, crate::rootfs::mounts::MOUNT_ATTR_RDONLY, 0)
        .with_context(|| {
            format!(
                "make the bind mount of the runtime binary (fd {}) read-only",
                fd.as_raw_fd()
            )
        })?;
    Ok(fd)
}
