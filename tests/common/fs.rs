//! Directories and mounts of the tests, undone on drop. Removal never crosses a mount point.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A busybox rootfs (scripts/mkrootfs.sh) at `dir`.
pub fn make_rootfs(dir: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mkrootfs.sh");
    let out = Command::new("sh").arg(script).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "mkrootfs.sh {}: {}",
        dir.display(),
        super::text(&out.stderr)
    );
}

fn shared_rootfs_path() -> PathBuf {
    PathBuf::from(format!("/tmp/minirunc-test-{}-rootfs", std::process::id()))
}

/// The busybox rootfs shared by the containers of this test binary, built on first use and
/// removed when the binary exits. Containers get a copy-on-write overlay over it, so they may
/// write to their root without touching it.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = shared_rootfs_path();
        make_rootfs(&dir);
        extern "C" fn remove_rootfs() {
            remove_unless_mounted(&shared_rootfs_path());
        }
        // SAFETY: registering a plain extern "C" function; it runs at process exit.
        unsafe { libc::atexit(remove_rootfs) };
        dir
    })
}

/// Mount points of this (the host's) mount namespace.
pub fn host_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

/// Whether `path` is `dir` or below it.
pub fn is_within(path: &str, dir: &Path) -> bool {
    Path::new(path).starts_with(dir)
}

/// Remove `dir` recursively, unless something is mounted at or below it (then say so and keep
/// it: the removal would go on into the mount).
pub fn remove_unless_mounted(dir: &Path) {
    if let Some(m) = host_mounts().iter().find(|m| is_within(m, dir)) {
        eprintln!("not removing {}: {m} is mounted", dir.display());
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A fresh directory /tmp/minirunc-test-<pid>-<n>, removed on drop as `remove_unless_mounted`
/// does.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let path = PathBuf::from(format!(
            "/tmp/minirunc-test-{}-{}",
            std::process::id(),
            super::next()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove_unless_mounted(&self.0);
    }
}

/// A mount undone on drop (declare it after the TempDir holding it, so it drops first).
pub struct Mount(pub PathBuf);

impl Mount {
    /// Mounts; None when the kernel refuses (the caller skips with a reason).
    pub fn new(fstype: &str, source: &str, target: &Path, data: &str) -> Option<Mount> {
        Mount::with_flags(fstype, source, target, data, 0)
    }

    /// A bind mount of `source` on `target` (the same path makes a directory a mount point).
    pub fn bind(source: &Path, target: &Path) -> Mount {
        let src = source.to_str().unwrap();
        Mount::with_flags("none", src, target, "", libc::MS_BIND).unwrap()
    }

    fn with_flags(
        fstype: &str,
        source: &str,
        target: &Path,
        data: &str,
        flags: libc::c_ulong,
    ) -> Option<Mount> {
        let c = |s: &str| CString::new(s).unwrap();
        let t = CString::new(target.as_os_str().as_bytes()).unwrap();
        // SAFETY: all pointers are NUL-terminated strings alive for the call.
        let r = unsafe {
            libc::mount(
                c(source).as_ptr(),
                t.as_ptr(),
                c(fstype).as_ptr(),
                flags,
                c(data).as_ptr().cast(),
            )
        };
        if r != 0 {
            eprintln!(
                "mount {fstype} at {}: {}",
                target.display(),
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some(Mount(target.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let t = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated path.
        if unsafe { libc::umount2(t.as_ptr(), 0) } != 0 {
            // SAFETY: as above; a busy mount is at least detached.
            unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
