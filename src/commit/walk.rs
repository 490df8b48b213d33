//! Depth-first walk of a tree in sorted order, one open directory and one listing per level.
//!
//! Children are stat'ed relative to their parent's descriptor (no path lookups from the root
//! for every file), and names live in one buffer per directory, not one allocation each.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// What the walk needs to know of a file, from one `statx`.
pub(crate) struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub rdev: (u32, u32),
    /// Device and inode: the identity of a file with several links.
    pub id: (u64, u64),
    pub nlink: u32,
    mnt_id: Option<u64>,
}

impl Stat {
    pub(crate) fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
}

/// One file met by the walk.
pub(crate) struct Entry<'a> {
    /// Path relative to the root, without a leading `./`; empty for the root itself.
    pub rel: &'a [u8],
    /// Absolute path, for calls that have no `*at` form.
    pub abs: &'a CStr,
    /// The directory holding it, and its name there.
    pub parent: BorrowedFd<'a>,
    pub name: &'a CStr,
    pub stat: &'a Stat,
    /// For a directory the walk descends into: its open descriptor.
    pub dir: Option<BorrowedFd<'a>>,
}

pub(crate) trait Visitor {
    fn visit(&mut self, entry: &Entry) -> Result<()>;
}

/// Turns container paths (`/proc`, `dev`, `/run/x/`) into root-relative bytes.
pub(crate) fn normalize_skip(skip: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    skip.iter()
        .map(|p| {
            let mut out = Vec::new();
            for c in p.components() {
                match c {
                    Component::Normal(n) => {
                        if !out.is_empty() {
                            out.push(b'/');
                        }
                        out.extend_from_slice(n.as_bytes());
                    }
                    Component::RootDir | Component::CurDir => {}
                    _ => bail!("skip path {} must not contain `..`", p.display()),
                }
            }
            Ok(out)
        })
        .collect()
}

struct Frame {
    dir: Dir,
    /// NUL-terminated names, and where each one starts, sorted by name.
    names: Vec<u8>,
    order: Vec<(u32, u32)>,
    next: usize,
    /// Length of the path buffer up to this directory (without a trailing slash).
    base: usize,
}

/// Walks `root`, calling `visitor` for each entry, parents before children. With
/// `include_root` the root itself comes first (as entry with an empty `rel`).
pub(crate) fn walk(
    root: &Path,
    skip: &[Vec<u8>],
    include_root: bool,
    visitor: &mut dyn Visitor,
) -> Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root_dir = Dir::open(root, flags, Mode::empty())
        .with_context(|| format!("opening directory {}", root.display()))?;
    let root_stat = statx(root_dir.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
        .with_context(|| format!("stat of {}", root.display()))?;
    let root_bytes = root.as_os_str().as_bytes();
    let mut path: Vec<u8> = root_bytes.strip_suffix(b"/").unwrap_or(root_bytes).to_vec();
    let rel_start = path.len() + 1;

    if include_root {
        let mut abs = root_bytes.to_vec();
        abs.push(0);
        let abs = CStr::from_bytes_with_nul(&abs)
            .with_context(|| format!("path {} holds a NUL byte", root.display()))?;
        let fd = root_dir.as_fd();
        visitor.visit(&Entry {
            rel: b"",
            abs,
            parent: fd,
            name: c".",
            stat: &root_stat,
            dir: Some(fd),
        })?;
    }

    let mut stack = vec![read_dir(root_dir, path.len())
        .with_context(|| format!("reading directory {}", root.display()))?];
    while let Some(frame) = stack.last_mut() {
        let Some(&(start, len)) = frame.order.get(frame.next) else {
            stack.pop();
            continue;
        };
        frame.next += 1;
        let frame: &Frame = frame;
        let parent = frame.dir.as_fd();
        let name_nul = &frame.names[start as usize..(start + len) as usize + 1];
        path.truncate(frame.base);
        path.push(b'/');
        path.extend_from_slice(name_nul);
        let name = CStr::from_bytes_with_nul(name_nul).context("directory entry name")?;
        let stat = match statx(parent.as_raw_fd(), name, 0) {
            Ok(s) => s,
            // Deleted since the listing (a running container): nothing to write.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e).with_context(|| format!("stat of {}", show(&path))),
        };
        let rel = &path[rel_start..path.len() - 1];
        let is_dir = stat.kind() == libc::S_IFDIR;
        let cut = skip.iter().any(|s| s == rel) || !same_mount(&root_stat, &stat);
        if cut && !is_dir {
            continue;
        }
        let sub = if is_dir && !cut {
            match Dir::openat(parent, name, flags | OFlag::O_NOFOLLOW, Mode::empty()) {
                Ok(d) => Some(d),
                Err(nix::errno::Errno::ENOENT) => continue, // removed since the stat
                Err(err) => {
                    return Err(err).with_context(|| format!("opening directory {}", show(&path)))
                }
            }
        } else {
            None
        };
        let abs = CStr::from_bytes_with_nul(&path).context("path")?;
        visitor
            .visit(&Entry {
                rel,
                abs,
                parent,
                name,
                stat: &stat,
                dir: sub.as_ref().map(Dir::as_fd),
            })
            .with_context(|| format!("archiving {}", show(&path)))?;
        if let Some(d) = sub {
            let base = path.len() - 1;
            let frame =
                read_dir(d, base).with_context(|| format!("reading directory {}", show(&path)))?;
            stack.push(frame);
        }
    }
    Ok(())
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path.strip_suffix(b"\0").unwrap_or(path)).into_owned()
}

fn same_mount(root: &Stat, st: &Stat) -> bool {
    match (root.mnt_id, st.mnt_id) {
        (Some(a), Some(b)) => a == b,
        // Kernels before 5.8 do not report mount ids: fall back to the device of directories.
        _ => st.kind() != libc::S_IFDIR || st.id.0 == root.id.0,
    }
}

fn read_dir(mut dir: Dir, base: usize) -> io::Result<Frame> {
    let mut names = Vec::new();
    let mut order = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let too_big = || io::Error::other("directory listing larger than 4 GiB");
        let start = u32::try_from(names.len()).map_err(|_| too_big())?;
        let len = u32::try_from(name.len()).map_err(|_| too_big())?;
        order.push((start, len));
        names.extend_from_slice(name);
        names.push(0);
    }
    order.sort_unstable_by(|a, b| {
        let name = |(s, l): &(u32, u32)| &names[*s as usize..(*s + *l) as usize];
        name(a).cmp(name(b))
    });
    Ok(Frame {
        dir,
        names,
        order,
        next: 0,
        base,
    })
}

fn statx(dirfd: RawFd, name: &CStr, flags: i32) -> io::Result<Stat> {
    let mut sx = MaybeUninit::<libc::statx>::zeroed();
    let flags = flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT;
    let mask = libc::STATX_BASIC_STATS | libc::STATX_MNT_ID;
    // SAFETY: `name` is NUL-terminated and `sx` is a writable statx buffer.
    let r = unsafe { libc::statx(dirfd, name.as_ptr(), flags, mask, sx.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx succeeded and filled the buffer (it was zeroed before anyway).
    let sx = unsafe { sx.assume_init() };
    Ok(Stat {
        mode: u32::from(sx.stx_mode),
        uid: sx.stx_uid,
        gid: sx.stx_gid,
        size: sx.stx_size,
        mtime: sx.stx_mtime.tv_sec,
        mtime_nsec: sx.stx_mtime.tv_nsec,
        rdev: (sx.stx_rdev_major, sx.stx_rdev_minor),
        id: (
            libc::makedev(sx.stx_dev_major, sx.stx_dev_minor),
            sx.stx_ino,
        ),
        nlink: sx.stx_nlink,
        mnt_id: (sx.stx_mask & libc::STATX_MNT_ID != 0).then_some(sx.stx_mnt_id),
    })
}
