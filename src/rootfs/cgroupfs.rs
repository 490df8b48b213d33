//! A `cgroup` mount in the spec: the host's hierarchies as the container should see them. With a
//! cgroup namespace the kernel scopes fresh mounts to the container's cgroup; without one, the
//! container's own cgroup directories are bound in, never the host's root.

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::mounts::{fd_path, open_in_root, remount_bind, Kind, MountOptions};
use super::RootPlan;

struct Hierarchy {
    mount_point: PathBuf,
    fstype: String,
    /// Super options naming the controllers (e.g. "cpu", "name=systemd").
    controllers: String,
}

fn host_hierarchies() -> Result<Vec<Hierarchy>> {
    let info = crate::fsutil::read_kernel_file("/proc/self/mountinfo").context("read mountinfo")?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or_default();
        let super_opts = r.nth(1).unwrap_or_default();
        if (fstype == "cgroup" || fstype == "cgroup2") && mount_point.starts_with("/sys/fs/cgroup")
        {
            let controllers = super_opts
                .split(',')
                .filter(|o| *o != "rw" && *o != "ro")
                .collect::<Vec<_>>()
                .join(",");
            out.push(Hierarchy {
                mount_point: mount_point.into(),
                fstype: fstype.into(),
                controllers,
            });
        }
    }
    Ok(out)
}

pub fn mount_all(root: &OwnedFd, dest: &Path, opts: &MountOptions, plan: &RootPlan) -> Result<()> {
    let flags = opts.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let readonly = opts.flags.contains(MsFlags::MS_RDONLY);
    let hierarchies = host_hierarchies()?;
    let unified_only = matches!(hierarchies.as_slice(), [h] if h.fstype == "cgroup2");
    let top = open_in_root(root.as_fd(), dest, Some(Kind::Dir))?;
    if !unified_only {
        mount(
            Some("tmpfs"),
            fd_path(&top).as_str(),
            Some("tmpfs"),
            flags,
            Some("mode=755"),
        )
        .context("mount tmpfs for the cgroup hierarchies")?;
    }
    for h in &hierarchies {
        let target = if unified_only {
            dest.to_path_buf()
        } else {
            dest.join(
                h.mount_point
                    .strip_prefix("/sys/fs/cgroup")
                    .unwrap_or(&h.mount_point),
            )
        };
        let fd = open_in_root(root.as_fd(), &target, Some(Kind::Dir))?;
        let path = fd_path(&fd);
        if plan.cgroup_ns {
            let data = (!h.controllers.is_empty()).then_some(h.controllers.as_str());
            mount(
                Some(h.fstype.as_str()),
                path.as_str(),
                Some(h.fstype.as_str()),
                flags,
                data,
            )
            .with_context(|| format!("mount {} at {}", h.fstype, target.display()))?;
        } else {
            let rel = plan.cgroup_path.as_deref().unwrap_or(Path::new("/"));
            let source = h.mount_point.join(rel.strip_prefix("/").unwrap_or(rel));
            mount(
                Some(&source),
                path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("bind {}", source.display()))?;
        }
        if readonly {
            let fd = open_in_root(root.as_fd(), &target, None)?;
            remount_bind(&fd_path(&fd), flags | MsFlags::MS_RDONLY)?;
        }
    }
    if readonly && !unified_only {
        let top = open_in_root(root.as_fd(), dest, None)?;
        let all = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags;
        mount(
            None::<&str>,
            fd_path(&top).as_str(),
            None::<&str>,
            all,
            None::<&str>,
        )
        .context("remount the cgroup tmpfs read-only")?;
    }
    Ok(())
}
