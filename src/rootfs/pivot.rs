//! Switching into the new root, then what must happen inside it: masked paths, read-only
//! paths and a read-only root.

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, pivot_root};
use oci_spec::runtime::Spec;
use std::path::Path;

use super::mounts::remount_bind;

/// Make `root` the process's `/`: pivot_root (the old root is detached, so nothing of the host
/// stays reachable), or with `no_pivot` move the mount over `/` and chroot, like runc.
pub fn switch_root(root: &Path, no_pivot: bool) -> Result<()> {
    chdir(root).with_context(|| format!("chdir {}", root.display()))?;
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
        pivot_root(".", ".").context("pivot_root")?;
        // The old root is now stacked under "."; detach it.
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

/// Masked paths, read-only paths and `root.readonly`, applied inside the new root.
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
