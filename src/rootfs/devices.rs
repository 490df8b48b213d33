//! /dev inside the container: the default devices every program expects, the spec's
//! `linux.devices`, and the /dev symlinks.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::mounts::{fd_path, open_in_root, Kind};

/// (name, major, minor): runc's default set, all character devices with mode 0666.
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const SYMLINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

pub fn create(root: &OwnedFd, devices: &[LinuxDevice]) -> Result<()> {
    let dev = open_in_root(root.as_fd(), Path::new("/dev"), Some(Kind::Dir))?;
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = Path::new("/dev").join(name);
        make_node(root, &path, SFlag::S_IFCHR, major, minor, 0o666, None)?;
    }
    for (i, d) in devices.iter().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let mode = d.file_mode().unwrap_or(0o666);
        let owner = Some((d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
        make_node(
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            owner,
        )
        .with_context(|| format!("linux.devices[{i}] {}", d.path().display()))?;
    }
    for (name, target) in SYMLINKS {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name}")),
        }
    }
    Ok(())
}

/// mknod the device, or, where that is not allowed (a user namespace), bind the host's node.
fn make_node(
    root: &OwnedFd,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().context("device path has no file name")?;
    let dir = open_in_root(root.as_fd(), parent, Some(Kind::Dir))?;
    let perm = Mode::from_bits_truncate(mode);
    match mknodat(dir.as_fd(), name, kind, perm, makedev(major, minor)) {
        Ok(()) => {}
        Err(nix::Error::EEXIST) => return Ok(()),
        Err(nix::Error::EPERM) => return bind_host_node(root, path),
        Err(e) => return Err(e).with_context(|| format!("mknod {}", path.display())),
    }
    if let Some((uid, gid)) = owner {
        nix::unistd::fchownat(
            dir.as_fd(),
            name,
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

fn bind_host_node(root: &OwnedFd, path: &Path) -> Result<()> {
    let target = open_in_root(root.as_fd(), path, Some(Kind::File))?;
    mount(
        Some(path),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind the host's {}", path.display()))
}
