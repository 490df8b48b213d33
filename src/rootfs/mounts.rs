//! The spec's mounts: option parsing (runc's table) and mounting onto destinations that are
//! resolved inside the new root, so no symlink in the image can make a mount land on the host.

use anyhow::{bail, Context, Result};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

/// A mount's options, split the way the kernel wants them.
#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags that the options explicitly cleared (`rw`, `suid`, ...), relevant on remount.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    /// MOUNT_ATTR_* to set and clear recursively with mount_setattr.
    pub attr_set: u64,
    pub attr_clr: u64,
    pub data: String,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const MOUNT_ATTR_RELATIME: u64 = 0x0;
const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR__ATIME: u64 = 0x70;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Every option name `parse_options` understands (reported by `features`).
pub const OPTION_NAMES: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        attr_set: 0,
        attr_clr: 0,
        data: String::new(),
    };
    let mut data = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            other => {
                if let Some(p) = propagation(other) {
                    o.propagation.push(p);
                } else if let Some((set, clr)) = recursive_attr(other) {
                    o.attr_set |= set;
                    o.attr_clr |= clr;
                } else if !matches!(other, "tmpcopyup" | "idmap" | "ridmap") {
                    data.push(other);
                }
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.cleared.insert(clear);
    }
    o.data = data.join(",");
    o
}

pub fn propagation(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// The recursive options (`rro`, `rnosuid`, ...) applied with mount_setattr: (set, clear).
fn recursive_attr(opt: &str) -> Option<(u64, u64)> {
    Some(match opt {
        "rro" => (MOUNT_ATTR_RDONLY, 0),
        "rrw" => (0, MOUNT_ATTR_RDONLY),
        "rnosuid" => (MOUNT_ATTR_NOSUID, 0),
        "rsuid" => (0, MOUNT_ATTR_NOSUID),
        "rnodev" => (MOUNT_ATTR_NODEV, 0),
        "rdev" => (0, MOUNT_ATTR_NODEV),
        "rnoexec" => (MOUNT_ATTR_NOEXEC, 0),
        "rexec" => (0, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "rdiratime" => (0, MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
        "rnorelatime" => (0, MOUNT_ATTR__ATIME),
        "rnoatime" => (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
        "ratime" => (0, MOUNT_ATTR__ATIME),
        "rstrictatime" => (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
        "rnosymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        "rsymfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// What to create at a missing mount destination.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Dir,
    File,
}

const IN_ROOT: ResolveFlag = ResolveFlag::RESOLVE_IN_ROOT.union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

/// openat2(2), tried again on EAGAIN: with RESOLVE_IN_ROOT or RESOLVE_BENEATH the kernel gives up
/// on a `..` (its own or a symlink's) whenever a rename or mount happened anywhere meanwhile -
/// other containers starting - and asks the caller to retry. The bound only stops a livelock.
fn openat2<P: ?Sized + nix::NixPath>(
    dir: BorrowedFd,
    path: &P,
    how: OpenHow,
) -> nix::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(dir, path, how) {
            Err(nix::Error::EAGAIN) if tries < 1000 => tries += 1,
            done => return done,
        }
    }
}

/// Open `path` (absolute, inside the container) beneath `root`, creating the missing parts:
/// symlinks are followed as if `root` were `/`, so they can never leave it.
pub fn open_in_root(root: BorrowedFd, path: &Path, create: Option<Kind>) -> Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(IN_ROOT);
    match (openat2(root, path, how), create) {
        (Ok(fd), _) => Ok(fd),
        (Err(nix::Error::ENOENT), Some(kind)) => create_in_root(root, path, kind)
            .with_context(|| format!("create {} in the container", path.display())),
        (Err(e), _) => Err(e).with_context(|| format!("open {} in the container", path.display())),
    }
}

/// The slow path of `open_in_root`: walk `path` from `root` one component at a time, creating
/// what is missing. A symlink, dangling or not, is expanded in place with `root` as `/` and
/// `..` stopping there (what runc does), so a missing link target is created inside the root.
fn create_in_root(root: BorrowedFd, path: &Path, kind: Kind) -> Result<OwnedFd> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    fn parts(p: &Path) -> impl Iterator<Item = OsString> + '_ {
        p.components().filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
    }
    let mut todo: VecDeque<OsString> = parts(path).collect();
    // The directories walked so far, top first; empty: at the root.
    let mut walked: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            walked.pop();
            continue;
        }
        let dir = walked.last().map_or(root, |d| d.as_fd());
        match nix::fcntl::readlinkat(dir, name.as_os_str()) {
            Ok(target) => {
                links += 1;
                if links > 40 {
                    return Err(nix::Error::ELOOP.into());
                }
                let target = Path::new(&target);
                if target.is_absolute() {
                    walked.clear();
                }
                for (i, part) in parts(target).enumerate() {
                    todo.insert(i, part);
                }
                continue;
            }
            Err(nix::Error::EINVAL) => {} // there, and not a symlink
            Err(nix::Error::ENOENT) => {
                let made = if todo.is_empty() && kind == Kind::File {
                    let flags =
                        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
                    nix::fcntl::openat(
                        dir,
                        name.as_os_str(),
                        flags,
                        Mode::from_bits_truncate(0o755),
                    )
                    .map(drop)
                } else {
                    nix::sys::stat::mkdirat(dir, name.as_os_str(), Mode::from_bits_truncate(0o755))
                };
                match made {
                    Ok(()) | Err(nix::Error::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        // One component, which must not have turned into a symlink meanwhile.
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH);
        walked.push(openat2(dir, name.as_os_str(), how)?);
    }
    match walked.pop() {
        Some(fd) => Ok(fd),
        None => Ok(openat2(
            root,
            ".",
            OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC),
        )?),
    }
}

/// The path through which the kernel reaches an O_PATH fd (valid while /proc is the host's).
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// A detached copy of the mount at `path` (relative to `dir`, default the working directory;
/// empty: `dir` itself), without the mounts below it: open_tree(2) with OPEN_TREE_CLONE. Only
/// mounts of the caller's mount namespace can be copied.
pub fn clone_mount(dir: Option<BorrowedFd>, path: &std::ffi::CStr) -> std::io::Result<OwnedFd> {
    let dir = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    // SAFETY: a plain syscall on a valid fd and NUL-terminated path.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}

/// Recursive attributes on the mount at `fd`, through mount_setattr(2).
pub fn set_recursive_attrs(fd: &OwnedFd, set: u64, clr: u64) -> Result<()> {
    mount_setattr(fd, set, clr, None, true)
}

/// mount_setattr(2) on the mount at `fd` (and those below it if `recursive`); `userns` for
/// MOUNT_ATTR_IDMAP.
pub fn mount_setattr(
    fd: &OwnedFd,
    set: u64,
    clr: u64,
    userns: Option<&OwnedFd>,
    recursive: bool,
) -> Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: a valid fd, an empty path and a struct of the size given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("mount_setattr");
    }
    Ok(())
}

/// Bind-remount `target` with `flags` added, keeping the flags the kernel locked on it
/// (a remount that drops nosuid/nodev/noexec of a locked mount fails with EPERM).
pub fn remount_bind(target: &str, flags: MsFlags) -> Result<()> {
    let st = nix::sys::statvfs::statvfs(target).with_context(|| format!("statvfs {target}"))?;
    let mut keep = MsFlags::empty();
    let f = st.flags();
    use nix::sys::statvfs::FsFlags as F;
    for (fs, ms) in [
        (F::ST_NOSUID, MsFlags::MS_NOSUID),
        (F::ST_NODEV, MsFlags::MS_NODEV),
        (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (F::ST_NOATIME, MsFlags::MS_NOATIME),
        (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (F::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            keep |= ms;
        }
    }
    let all = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep | flags;
    mount(None::<&str>, target, None::<&str>, all, None::<&str>)
        .with_context(|| format!("remount {target} ({:?})", flags))
}

/// Fail clearly when a bind source does not exist: runc's wording, which callers match on.
pub fn check_source(source: &Path) -> Result<Kind> {
    match std::fs::metadata(source) {
        Ok(m) if m.is_dir() => Ok(Kind::Dir),
        Ok(_) => Ok(Kind::File),
        Err(e) => bail!(
            "mount source {}: {}",
            source.display(),
            crate::errors::describe(&e)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn splits_flags_propagation_attrs_and_data() {
        let o = opts(&[
            "nosuid", "ro", "rbind", "rslave", "rro", "mode=755", "size=64k",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.attr_set, MOUNT_ATTR_RDONLY);
        assert_eq!(o.data, "mode=755,size=64k");
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = opts(&["ro", "rw", "noexec", "exec"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(!o.flags.contains(MsFlags::MS_NOEXEC));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }
}
