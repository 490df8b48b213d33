//! File system helpers that keep the promise "nothing a user owns is ever lost": removal never
//! descends through a mount point (a bind-mounted volume is the user's data). And one for the
//! files the kernel generates, read on every verb.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The text of a file the kernel generates (/proc, /sys), which stat reports as empty: read in
/// page-sized steps, where `fs::read_to_string` stats it first and then reads 32 bytes, 64, ...
pub fn read_kernel_file(path: impl AsRef<Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0; 4096];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Is `path` the root of a mount (statx's STATX_ATTR_MOUNT_ROOT)? Symlinks are not followed.
pub fn is_mount_point(path: &Path) -> Result<bool> {
    let stx = statx(path, libc::STATX_BASIC_STATS)?;
    const MOUNT_ROOT: u64 = 0x2000;
    if stx.stx_attributes_mask & MOUNT_ROOT == 0 {
        bail!(
            "statx {}: the kernel does not report mount roots",
            path.display()
        );
    }
    Ok(stx.stx_attributes & MOUNT_ROOT != 0)
}

/// The id of the mount `path` is on (the topmost one, if several are stacked there).
pub fn mount_id(path: &Path) -> Result<u64> {
    let stx = statx(path, libc::STATX_MNT_ID)?;
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        bail!(
            "statx {}: the kernel does not report mount ids",
            path.display()
        );
    }
    Ok(stx.stx_mnt_id)
}

fn statx(path: &Path, mask: u32) -> Result<libc::statx> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            mask,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statx {}", path.display()));
    }
    Ok(stx)
}

/// Remove `path` and everything below it, refusing to touch anything that is a mount point.
/// A missing path is not an error (delete must be idempotent).
pub fn remove_tree(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path).with_context(|| format!("remove {}", path.display()));
    }
    if is_mount_point(path)? {
        bail!(
            "refusing to remove {}: it is a mount point (unmount it first)",
            path.display()
        );
    }
    for entry in std::fs::read_dir(path).with_context(|| format!("read {}", path.display()))? {
        remove_tree(&entry?.path())?;
    }
    std::fs::remove_dir(path).with_context(|| format!("remove {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_stops_at_a_mount_point_and_keeps_its_data() {
        let top = std::env::temp_dir().join(format!("minirunc-fsutil-{}", std::process::id()));
        let vol = top.join("a/vol");
        let data =
            std::env::temp_dir().join(format!("minirunc-fsutil-data-{}", std::process::id()));
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("keep"), "x").unwrap();
        nix::mount::mount(
            Some(&data),
            &vol,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        let err = remove_tree(&top);
        nix::mount::umount2(&vol, nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(err.is_err(), "removed through a mount point");
        assert!(data.join("keep").exists());
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        std::fs::remove_dir_all(&data).unwrap();
    }
}
