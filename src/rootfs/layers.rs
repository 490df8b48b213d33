//! The copy-on-write root, on the runtime's side: whether a container gets one, and creating and
//! removing its upper/work/merged directories and owner record (owner.rs) under the data root. The overlay itself is mounted
//! by init inside the container's mount namespace (see `rootfs::prepare`).

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::owner::Owner;
use super::reclaim;
use crate::fsutil::{is_mount_point, remove_tree};
use crate::idmap::IdMaps;
use crate::state::{Layers, Lock};

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

/// `<data_root>/<key of the state root>`: containers of different `--root`s (containerd
/// namespaces) may share an id, so the layers are keyed by the state root too.
pub fn key_dir(data_root: &Path, state_root: &Path) -> PathBuf {
    // FNV-1a: stable across releases, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in state_root.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    data_root.join(format!("{h:016x}"))
}

/// `<data_root>/<key of the state root>/<id>`.
pub fn dir_for(data_root: &Path, state_root: &Path, id: &str) -> PathBuf {
    key_dir(data_root, state_root).join(id)
}

/// The key directory and the data root above a layer directory.
fn parents(dir: &Path) -> Result<(&Path, &Path)> {
    let key = dir.parent();
    match (key, key.and_then(Path::parent)) {
        (Some(key), Some(data_root)) => Ok((key, data_root)),
        _ => bail!("{}: not a layer directory", dir.display()),
    }
}

/// Make the container's layer: its owner record first, then upper, work and merged, so a layer
/// without a record never held an overlay. A layer left at this path by an earlier container of
/// the same id whose state was removed is reclaimed first, unless that container still runs.
/// All under the data root's lock, so a sweep never judges a half-made layer. With `root_ids`
/// (the host ids of root in the container's own user namespace) upper and work belong to it:
/// the overlay is mounted inside that namespace, whose root could not write them otherwise
/// (the kernel would mount the root read-only).
pub fn claim(layers: &Layers, owner: &Owner, root_ids: Option<(u32, u32)>) -> Result<()> {
    let dir = &layers.dir;
    let (key, data_root) = parents(dir)?;
    std::fs::create_dir_all(data_root)
        .with_context(|| format!("create --data-root {}", data_root.display()))?;
    let lock = Lock::exclusive(data_root)?;
    let earlier = match std::fs::symlink_metadata(dir) {
        Ok(_) => Some(take_over(dir)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("stat {}", dir.display())),
    };
    let made = make(key, dir, owner, root_ids);
    if made.is_err() {
        let _ = remove_tree(dir);
    }
    drop(lock);
    if let Some(aside) = earlier {
        if let Err(e) = reclaim::remove_aside(&aside) {
            crate::logging::warn(&format!("reclaim an earlier layer: {e:#}"));
        }
    }
    made
}

/// Move aside the layer an earlier container of this id left at `dir`, or say why not.
fn take_over(dir: &Path) -> Result<PathBuf> {
    let owner = Owner::load(dir);
    if let Some(keep) = reclaim::keep_reason(dir, owner.as_ref()) {
        let why = match keep {
            reclaim::Verdict::InUse(why) => why,
            _ => "it has no owner record (an older minirunc made it)".into(),
        };
        bail!(
            "the copy-on-write layer {} of an earlier container with this id, whose state was \
             removed, is still in use: {why}; stop that container or use another id",
            dir.display()
        );
    }
    reclaim::move_aside(dir)
}

fn make(key: &Path, dir: &Path, owner: &Owner, root_ids: Option<(u32, u32)>) -> Result<()> {
    std::fs::create_dir_all(key).with_context(|| format!("create {}", key.display()))?;
    std::fs::create_dir(dir).with_context(|| format!("create {}", dir.display()))?;
    owner.save(dir)?;
    for sub in ["upper", "work", "merged"] {
        let p = dir.join(sub);
        std::fs::create_dir(&p).with_context(|| format!("create {}", p.display()))?;
        if let (Some((uid, gid)), "upper" | "work") = (root_ids, sub) {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .with_context(|| format!("chown {} to {uid}:{gid}", p.display()))?;
        }
    }
    Ok(())
}

/// Remove the container's layers. The merged dir must not be mounted here (it is only ever
/// mounted inside the container's namespace); a volume mounted below it is never entered.
/// Called once the container's processes are gone: a layer still in use then belongs to another
/// container (a create killed before its claim left a state naming this path), and is kept.
/// What a user cannot remove (files of the container's other ids, overlay's mode 000 work dir)
/// goes as root of a user namespace with the container's `maps`; the plain attempt first needs
/// no helper, so a create that failed on its mappings still cleans up.
pub fn remove(layers: &Layers, maps: Option<&IdMaps>) -> Result<()> {
    let (key, data_root) = parents(&layers.dir)?;
    if let Some(why) = Owner::load(&layers.dir).and_then(|o| o.in_use()) {
        crate::logging::warn(&format!(
            "kept {}: another container uses it ({why})",
            layers.dir.display()
        ));
        return Ok(());
    }
    match (remove_tree(&layers.dir), maps) {
        (Ok(()), _) => {}
        (Err(_), Some(maps)) if !nix::unistd::geteuid().is_root() => {
            crate::userns::as_root_in(crate::userns::Entry::New(maps), || remove_tree(&layers.dir))?
        }
        (Err(e), _) => return Err(e),
    }
    reclaim::remove_key_if_empty(data_root, key)
}
