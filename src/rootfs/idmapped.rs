//! Idmapped bind mounts (spec 1.2: `mounts[].uidMappings`/`gidMappings`, options `idmap` and
//! `ridmap`): the source is seen through a user namespace whose maps are the mount's, so a file
//! owned by `containerID` on disk appears owned by `hostID`.
//!
//! Idmapping a mount takes CAP_SYS_ADMIN over the filesystem's user namespace (the host's), so
//! the runtime does it before forking: it makes a user namespace with the maps (from a child
//! that only waits to be killed), clones the source into a detached mount and idmaps that.
//! Init, possibly inside the container's user namespace by then, only moves it into place.

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};
use serde::Deserialize;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The maps of one idmapped mount.
pub struct Idmap {
    uid: Vec<LinuxIdMapping>,
    gid: Vec<LinuxIdMapping>,
}

/// The part of config.json's mounts that oci-spec's `Mount` does not carry (spec 1.2).
#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    mounts: Option<Vec<MountMaps>>,
}

#[derive(Deserialize)]
struct MountMaps {
    #[serde(default, rename = "uidMappings")]
    uid: Option<Vec<LinuxIdMapping>>,
    #[serde(default, rename = "gidMappings")]
    gid: Option<Vec<LinuxIdMapping>>,
}

/// The idmapped mounts of config.json (`raw`), by index in `mounts`: a mount's own maps, or for
/// a bare `idmap`/`ridmap` option the container's user namespace maps (the spec's rule).
pub fn requested(spec: &Spec, raw: &[u8]) -> Result<Vec<Option<Idmap>>> {
    let config: Config = serde_json::from_slice(raw).context("mounts[].uidMappings")?;
    let linux = spec.linux().as_ref();
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(mounts.len());
    for (i, (m, maps)) in mounts
        .iter()
        .zip(config.mounts.unwrap_or_default())
        .enumerate()
    {
        let opts = m.options().as_deref().unwrap_or_default();
        let option = opts.iter().any(|o| o == "idmap" || o == "ridmap");
        if maps.uid.is_none() && maps.gid.is_none() && !option {
            out.push(None);
            continue;
        }
        if !opts.iter().any(|o| o == "bind" || o == "rbind") {
            bail!("mounts[{i}]: idmapped mounts are supported for bind mounts only");
        }
        let uid = maps
            .uid
            .or_else(|| linux.and_then(|l| l.uid_mappings().clone()))
            .unwrap_or_default();
        let gid = maps
            .gid
            .or_else(|| linux.and_then(|l| l.gid_mappings().clone()))
            .unwrap_or_default();
        if uid.is_empty() || gid.is_empty() {
            bail!("mounts[{i}].uidMappings: an idmapped mount needs uidMappings and gidMappings (its own or linux's)");
        }
        out.push(Some(Idmap { uid, gid }));
    }
    Ok(out)
}

/// Whether the clone takes the mounts below the source too (`rbind` or `ridmap`).
pub fn recursive(m: &Mount) -> bool {
    let opts = m.options().as_deref().unwrap_or_default();
    opts.iter().any(|o| o == "rbind" || o == "ridmap")
}

/// The detached, idmapped clone of each idmapped mount's source, in the order of `mounts`.
pub fn detached_trees(
    spec: &Spec,
    bundle: &Path,
    idmaps: &[Option<Idmap>],
) -> Result<Vec<Option<OwnedFd>>> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    idmaps
        .iter()
        .zip(mounts)
        .enumerate()
        .map(|(i, (idmap, m))| {
            let Some(idmap) = idmap else {
                return Ok(None);
            };
            let source = bundle.join(m.source().as_deref().unwrap_or(Path::new("")));
            let userns = user_namespace(&idmap.uid, &idmap.gid)?;
            clone_idmapped(&source, &userns, recursive(m))
                .map(Some)
                .with_context(|| format!("mounts[{i}] idmap {}", source.display()))
        })
        .collect()
}

/// A user namespace with these maps, held by an fd after its only process is gone.
fn user_namespace(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let mut stack = vec![0u8; 16 * 1024];
    // The child only pauses until killed: nothing in it allocates or takes a lock.
    let wait = Box::new(|| loop {
        // SAFETY: pause(2) has no preconditions.
        unsafe { libc::pause() };
    });
    // SAFETY: the child runs only `wait` on its own stack.
    let pid = unsafe {
        nix::sched::clone(
            wait,
            &mut stack,
            CloneFlags::CLONE_NEWUSER,
            Some(libc::SIGCHLD),
        )
    }
    .context("clone a user namespace")?;
    let opened = (|| {
        crate::idmap::write(pid, uid, gid)?;
        let path = format!("/proc/{pid}/ns/user");
        std::fs::File::open(&path)
            .map(OwnedFd::from)
            .with_context(|| format!("open {path}"))
    })();
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
    opened
}

/// A detached clone of the mount at `source`, seen through `userns`.
fn clone_idmapped(source: &Path, userns: &OwnedFd, recursive: bool) -> Result<OwnedFd> {
    let c = CString::new(source.as_os_str().as_bytes())?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a plain syscall on a NUL-terminated path.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("clone the mount");
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let tree: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) };
    super::mounts::mount_setattr(&tree, MOUNT_ATTR_IDMAP, 0, Some(userns), recursive)
        .context("idmap it (does its filesystem support idmapped mounts?)")?;
    Ok(tree)
}

/// Move the detached `tree` onto the open destination `target`.
pub fn attach(tree: &OwnedFd, target: &OwnedFd) -> Result<()> {
    // SAFETY: valid fds and empty paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if rc != 0 {
        bail!(
            "move the idmapped mount into place: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requested_of(json: &str) -> Result<Vec<Option<Idmap>>> {
        let spec: Spec = serde_json::from_str(json).unwrap();
        requested(&spec, json.as_bytes())
    }

    #[test]
    fn null_or_absent_mounts_request_nothing() {
        assert!(requested_of(r#"{"ociVersion":"1.2.0","mounts":null}"#)
            .unwrap()
            .is_empty());
        assert!(requested_of(r#"{"ociVersion":"1.2.0"}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_bare_idmap_option_takes_the_containers_maps() {
        let json = r#"{"ociVersion":"1.2.0",
            "mounts":[{"destination":"/a","type":"bind","source":"/tmp","options":["bind","idmap"]},
                      {"destination":"/b","type":"tmpfs","source":"tmpfs"}],
            "linux":{"uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
                     "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}}"#;
        let maps = requested_of(json).unwrap();
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].as_ref().unwrap().uid[0].host_id(), 1000);
        assert!(maps[1].is_none());
    }

    #[test]
    fn an_idmapped_mount_that_is_not_a_bind_is_refused() {
        let json = r#"{"ociVersion":"1.2.0","mounts":[{"destination":"/a","type":"tmpfs",
            "source":"tmpfs","uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}]}"#;
        let err = requested_of(json).err().unwrap().to_string();
        assert!(err.contains("mounts[0]"), "{err}");
    }
}
