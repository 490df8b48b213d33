//! Switching into the new root, then what must happen inside it: masked paths, read-only
//! paths and a read-only root.

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::Spec;
use std::path::Path;

use super::mounts::remount_bind;

/// Make `root` the process's `/`: pivot_root (the old root is detached, so nothing of the host
/// stays reachable), or with `no_pivot` move the mount over `/` and chroot, like runc.
/// `shared_root`: `/` was left shared for a shared rootfsPropagation (see `prepare`); pivot_root
/// and a move both refuse a shared old root, so it is made private (only here) first.
pub fn switch_root(root: &Path, no_pivot: bool, shared_root: bool) -> Result<()> {
    chdir(root).with_context(|| format!("chdir {}", root.display()))?;
    if shared_root {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .context("make the old root private")?;
    }
    if no_pivot {
        mount(
            Some(root),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .context("move the root over /")?;
        chroot(".").context("chroot")?;
    } else {
        let old_root = nix::fcntl::open(
            "/",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("open the old root")?;
        pivot_root(".", ".").context("pivot_root")?;
        // The old root is now stacked on the new one. From inside it, make its mounts slaves so
        // that detaching them cannot unmount their peers on the host; the new root's own mounts
        // keep their propagation (a shared volume stays the host's peer).
        fchdir(&old_root).context("fchdir to the old root")?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .context("make the old root a slave")?;
        umount2(".", MntFlags::MNT_DETACH).context("detach the old root")?;
    }
    chdir("/").context("chdir /")
}

/// Without a mount namespace of its own the container's `/` is its root directory (chroot, as
/// runc): a pivot would move the host's root. The root stays a mount of the host's table.
pub fn chroot_into(root: &Path) -> Result<()> {
    chdir(root).with_context(|| format!("chdir {}", root.display()))?;
    chroot(".").context("chroot")?;
    chdir("/").context("chdir /")
}

/// Masked paths, read-only paths and `root.readonly`, applied inside the new root, then
/// `linux.rootfsPropagation` (last: binds of read-only paths fail on an unbindable root).
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        readonly(path).with_context(|| format!("linux.readonlyPaths {path}"))?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
    {
        mask(path).with_context(|| format!("linux.maskedPaths {path}"))?;
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        remount_bind("/", MsFlags::MS_RDONLY).context("root.readonly")?;
    }
    if let Some(flags) = super::requested_propagation(spec) {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .context("linux.rootfsPropagation")?;
    }
    Ok(())
}

fn mask(path: &str) -> Result<()> {
    // After pivot_root a symlink resolves inside the container; one leading nowhere is a
    // missing path, skipped as runc does (mounting over it would fail with ENOENT).
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )?;
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
    }
    Ok(())
}

fn readonly(path: &str) -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    match mount(Some(path), path, None::<&str>, flags, None::<&str>) {
        Ok(()) => remount_bind(path, MsFlags::MS_RDONLY),
        Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
