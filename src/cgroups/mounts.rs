//! Finding the cgroup hierarchies mounted under a cgroup root, from /proc/self/mountinfo.

use super::Layout;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One cgroup v1 hierarchy: its mount point and the controllers bound to it
/// (a named hierarchy such as `name=systemd` has none but still tracks processes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    pub mount_point: PathBuf,
    pub controllers: Vec<String>,
}

/// The cgroup filesystems found under one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounts {
    pub layout: Layout,
    pub v1: Vec<V1Mount>,
    pub unified: Option<PathBuf>,
}

/// Mount options that are not controller names.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
];

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Finds the cgroup mounts at `root` (cgroup2 mounted on it: unified) or directly below it
/// (v1 hierarchies, plus a cgroup2 mount such as `unified`: hybrid).
pub fn detect(mountinfo: &str, root: &Path) -> Result<Mounts> {
    let mut v1 = Vec::new();
    let mut unified = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4).map(|f| PathBuf::from(unescape(f))) else {
            continue;
        };
        let mut right = right.split(' ');
        let (fstype, super_opts) = (right.next().unwrap_or(""), right.nth(1).unwrap_or(""));
        match fstype {
            "cgroup2" if mount_point == root => unified = Some(mount_point),
            "cgroup2" if mount_point.parent() == Some(root) && unified.is_none() => {
                unified = Some(mount_point)
            }
            "cgroup" if mount_point.parent() == Some(root) => {
                let controllers = super_opts
                    .split(',')
                    .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.contains('='))
                    .map(str::to_string)
                    .collect();
                // A later mount over the same point hides the earlier one.
                v1.retain(|m: &V1Mount| m.mount_point != mount_point);
                v1.push(V1Mount {
                    mount_point,
                    controllers,
                });
            }
            _ => {}
        }
    }
    let layout = match (&unified, v1.is_empty()) {
        (Some(u), _) if u == root => {
            v1.clear();
            Layout::Unified
        }
        (Some(_), false) => Layout::Hybrid,
        (None, false) => Layout::V1,
        (Some(_), true) => Layout::Unified,
        (None, true) => bail!(
            "no cgroup filesystem mounted at or below {}",
            root.display()
        ),
    };
    Ok(Mounts {
        layout,
        v1,
        unified,
    })
}

/// Reads /proc/self/mountinfo and detects the hierarchies under `root`.
pub fn detect_host(root: &Path) -> Result<Mounts> {
    let text = crate::fsutil::read_kernel_file("/proc/self/mountinfo")
        .context("read /proc/self/mountinfo")?;
    detect(&text, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:40 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_layout_lists_v1_controllers_and_unified() {
        let m = detect(HYBRID, Path::new("/sys/fs/cgroup")).unwrap();
        assert_eq!(m.layout, Layout::Hybrid);
        assert_eq!(
            m.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(m.v1.len(), 3);
        assert_eq!(m.v1[0].controllers, vec!["cpu", "cpuacct"]);
        assert!(
            m.v1[2].controllers.is_empty(),
            "name=systemd has no controller"
        );
    }

    #[test]
    fn cgroup2_at_root_is_unified_and_escapes_are_decoded() {
        let m = detect(HYBRID, Path::new("/sys/fs/cgroup/unified")).unwrap();
        assert_eq!(m.layout, Layout::Unified);
        assert!(m.v1.is_empty());
        let m = detect(HYBRID, Path::new("/mnt/my cg")).unwrap();
        assert_eq!(m.layout, Layout::Unified);
    }

    #[test]
    fn v1_only_and_missing_root() {
        let text: String = HYBRID
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            detect(&text, Path::new("/sys/fs/cgroup")).unwrap().layout,
            Layout::V1
        );
        assert!(detect(&text, Path::new("/nowhere")).is_err());
    }
}
