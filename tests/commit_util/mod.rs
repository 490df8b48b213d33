//! Helpers for the commit tests: tree listings with owners, xattrs and times, and a small OCI
//! layer applier.

#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

pub fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap();
    assert!(st.success(), "{cmd} {args:?} failed: {st}");
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a live value slice.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 65536];
    // SAFETY: buffer pointer and length describe a live slice.
    let n = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let mut out = BTreeMap::new();
    if n <= 0 {
        return out;
    }
    for name in names[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        let cname = CString::new(name).unwrap();
        let mut value = vec![0u8; 65536];
        // SAFETY: as above.
        let len = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(len >= 0, "lgetxattr {}", path.display());
        value.truncate(len as usize);
        out.insert(String::from_utf8_lossy(name).into_owned(), value);
    }
    out
}

/// Sets atime and mtime (with nanoseconds) without following a symlink.
pub fn set_mtime(path: &Path, secs: i64, nsec: i64) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: nsec,
    };
    // SAFETY: NUL-terminated path and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            [t, t].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", path.display());
}

/// What a listing compares.
#[derive(Clone, Copy)]
pub struct Compare {
    pub dir_mtime: bool,
    pub nsec: bool,
}

/// One line per entry: type, mode, owner, size, mtime, rdev, link target, xattrs, content
/// digest, and which other entry it is a hard link of.
pub fn listing(root: &Path, cmp: Compare) -> BTreeMap<String, String> {
    listing_skipping(root, cmp, &[])
}

/// `listing`, not descending into the directories in `skip` (root-relative, e.g. `proc`):
/// they are listed themselves, as a tar of a container's view keeps mount points.
pub fn listing_skipping(root: &Path, cmp: Compare, skip: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut first_of_inode: BTreeMap<u64, String> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let md = fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            let mut line = format!("mode={:o} uid={} gid={}", md.mode(), md.uid(), md.gid());
            let mtime_wanted = !ft.is_symlink() && (cmp.dir_mtime || !ft.is_dir());
            if mtime_wanted {
                line += &format!(" mtime={}", md.mtime());
                if cmp.nsec {
                    line += &format!(".{:09}", md.mtime_nsec());
                }
            }
            if ft.is_file() {
                let mut data = Vec::new();
                fs::File::open(&path)
                    .unwrap()
                    .read_to_end(&mut data)
                    .unwrap();
                line += &format!(" size={} sum={:x}", md.size(), checksum(&data));
            }
            if !ft.is_dir() && md.nlink() > 1 {
                let first = first_of_inode.entry(md.ino()).or_insert(rel.clone());
                line += &format!(" linkgroup={first}");
            }
            if ft.is_symlink() {
                line += &format!(" -> {}", fs::read_link(&path).unwrap().display());
            }
            if ft.is_char_device() || ft.is_block_device() {
                line += &format!(" rdev={}", md.rdev());
            }
            for (k, v) in xattrs(&path) {
                line += &format!(" xattr:{k}={v:?}");
            }
            if ft.is_dir() && !skip.contains(&rel.as_str()) {
                stack.push(path.clone());
            }
            out.insert(rel, line);
        }
    }
    out
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a: enough to tell contents apart in a test.
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

pub fn assert_same(expected: &BTreeMap<String, String>, got: &BTreeMap<String, String>) {
    for (k, v) in expected {
        assert_eq!(Some(v), got.get(k), "entry {k}");
    }
    for k in got.keys() {
        assert!(expected.contains_key(k), "unexpected entry {k}");
    }
}

/// Extracts with GNU tar, keeping owners, modes and xattrs.
pub fn gnu_extract(archive: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    let (a, d) = (archive.to_str().unwrap(), dest.to_str().unwrap());
    run(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-xpf",
            a,
            "-C",
            d,
        ],
    );
}

/// Applies an uncompressed OCI layer over `dest` following the image spec's whiteout rules.
pub fn apply_layer(layer: &Path, dest: &Path) {
    let mut archive = tar::Archive::new(fs::File::open(layer).unwrap());
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let name = path
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let parent = dest.join(path.parent().unwrap_or(Path::new("")));
        if name == b".wh..wh..opq" {
            // Opaque: what lower layers put here goes; this layer's entries follow.
            for child in fs::read_dir(&parent).unwrap() {
                remove_any(&child.unwrap().path());
            }
        } else if let Some(hidden) = name.strip_prefix(b".wh.") {
            remove_any(&parent.join(std::ffi::OsStr::from_bytes(hidden)));
        } else {
            let target = dest.join(&path);
            let is_dir = entry.header().entry_type().is_dir();
            if let Ok(md) = fs::symlink_metadata(&target) {
                if !(is_dir && md.is_dir()) {
                    remove_any(&target);
                }
            }
            let mut attrs = Vec::new();
            if let Some(pax) = entry.pax_extensions().unwrap() {
                for ext in pax {
                    let ext = ext.unwrap();
                    if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        attrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
            let kind = entry.header().entry_type();
            if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
                // The tar crate writes these as empty files: make the node here.
                make_device(&target, entry.header());
            } else {
                assert!(entry.unpack_in(dest).unwrap(), "unpack {}", path.display());
            }
            // The tar crate is built without its xattr feature: set them here.
            for (name, value) in attrs {
                set_xattr(&target, &name, &value).unwrap();
            }
        }
    }
}

fn make_device(path: &Path, h: &tar::Header) {
    let t = h.entry_type();
    let (kind, dev) = if t.is_fifo() {
        (libc::S_IFIFO, 0)
    } else {
        let dev = libc::makedev(
            h.device_major().unwrap().unwrap(),
            h.device_minor().unwrap().unwrap(),
        );
        let kind = if t.is_character_special() {
            libc::S_IFCHR
        } else {
            libc::S_IFBLK
        };
        (kind, dev)
    };
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated path.
    let r = unsafe { libc::mknod(p.as_ptr(), kind | h.mode().unwrap(), dev) };
    assert_eq!(r, 0, "mknod {}", path.display());
    std::os::unix::fs::lchown(
        path,
        Some(h.uid().unwrap() as u32),
        Some(h.gid().unwrap() as u32),
    )
    .unwrap();
    // mknod applies the umask: set the mode exactly.
    fs::set_permissions(
        path,
        std::os::unix::fs::PermissionsExt::from_mode(h.mode().unwrap()),
    )
    .unwrap();
    set_mtime(path, h.mtime().unwrap() as i64, 0);
}

fn remove_any(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path).unwrap(),
        Ok(_) => fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}
