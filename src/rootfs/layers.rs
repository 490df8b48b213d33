//! The copy-on-write root, on the runtime's side: whether a container gets one, and creating and
//! removing its upper/work/merged directories under the data root. The overlay itself is mounted
//! by init inside the container's mount namespace (see `rootfs::prepare`).

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::fsutil::{is_mount_point, remove_tree};
use crate::idmap::IdMaps;
use crate::state::Layers;

/// Annotation forcing the mode: "cow" or "direct".
pub const MODE_ANNOTATION: &str = "org.minirunc.rootfs.mode";
/// Annotation listing extra read-only layers above root.path, top first, separated by ':'
/// (paths relative to the bundle).
pub const LOWERS_ANNOTATION: &str = "org.minirunc.rootfs.lowers";

/// Decide the root's mode: a plain directory gets a copy-on-write overlay; a mount point
/// (containerd and podman mount their snapshot there) is used as it is. Chosen instead, first
/// found: create's `flag`, the annotation, the host's default (global flag or environment).
pub fn wants_overlay(
    rootfs: &Path,
    flag: Option<&str>,
    annotations: Option<&HashMap<String, String>>,
    host_default: Option<&str>,
) -> Result<bool> {
    let chosen = flag
        .or_else(|| annotations?.get(MODE_ANNOTATION).map(String::as_str))
        .or(host_default);
    match chosen {
        Some("cow") => Ok(true),
        Some("direct") => Ok(false),
        None | Some("auto") => Ok(!is_mount_point(rootfs)?),
        Some(other) => bail!("annotation {MODE_ANNOTATION}: {other:?} is not cow, direct or auto"),
    }
}

/// The read-only layers, top first: the annotation's extra layers, then the bundle's rootfs.
pub fn lowers(
    bundle: &Path,
    rootfs: &Path,
    annotations: Option<&HashMap<String, String>>,
) -> Result<Vec<PathBuf>> {
    let mut lowers = Vec::new();
    if let Some(list) = annotations.and_then(|a| a.get(LOWERS_ANNOTATION)) {
        for part in list.split(':').filter(|p| !p.is_empty()) {
            let path = bundle.join(part);
            if !path.is_dir() {
                bail!(
                    "annotation {LOWERS_ANNOTATION}: {}: not a directory",
                    path.display()
                );
            }
            lowers.push(path);
        }
    }
    lowers.push(rootfs.to_path_buf());
    Ok(lowers)
}

/// `<data_root>/<key of the state root>/<id>`: containers of different `--root`s (containerd
/// namespaces) may share an id, so the layers are keyed by the state root too.
pub fn dir_for(data_root: &Path, state_root: &Path, id: &str) -> PathBuf {
    // FNV-1a: stable across releases, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in state_root.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    data_root.join(format!("{h:016x}")).join(id)
}

/// Create the upper, work and merged directories of `layers`. With `owner` (the host ids of
/// the root of the container's own user namespace), upper and work belong to it: the overlay
/// is mounted inside that namespace, and its root could not write them otherwise (the kernel
/// would mount the root read-only).
pub fn create(layers: &Layers, owner: Option<(u32, u32)>) -> Result<()> {
    for sub in ["upper", "work", "merged"] {
        let p = layers.dir.join(sub);
        std::fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
        if let (Some((uid, gid)), "upper" | "work") = (owner, sub) {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .with_context(|| format!("chown {} to {uid}:{gid}", p.display()))?;
        }
    }
    Ok(())
}

/// Remove the container's layers. The merged dir must not be mounted here (it is only ever
/// mounted inside the container's namespace); a volume mounted below it is never entered.
/// What a user cannot remove (files of the container's other ids, overlay's mode 000 work dir)
/// goes as root of a user namespace with the container's `maps`; the plain attempt first needs
/// no helper, so a create that failed on its mappings still cleans up.
pub fn remove(layers: &Layers, maps: Option<&IdMaps>) -> Result<()> {
    match (remove_tree(&layers.dir), maps) {
        (Ok(()), _) => {}
        (Err(_), Some(maps)) if !nix::unistd::geteuid().is_root() => {
            crate::userns::as_root_in(crate::userns::Entry::New(maps), || remove_tree(&layers.dir))?
        }
        (Err(e), _) => return Err(e),
    }
    if let Some(parent) = layers.dir.parent() {
        let _ = std::fs::remove_dir(parent); // only succeeds when no other container uses it
    }
    Ok(())
}
