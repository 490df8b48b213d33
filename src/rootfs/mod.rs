//! The container's filesystem, built by init inside its own mount namespace: the root (the
//! copy-on-write overlay or the caller's rootfs as it is), the spec's mounts, devices, then
//! pivot_root and the masked and read-only paths. The host never holds any of these mounts,
//! except for a container without a mount namespace (the spec lets one inherit the runtime's):
//! its root is mounted in the host's table, entered with chroot, and detached by delete.

mod cgroupfs;
mod devices;
pub mod idmapped;
pub mod layers;
pub mod mounts;
pub mod owner;
mod pivot;
pub mod reclaim;

pub use pivot::{chroot_into, finish, switch_root};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Mount, Spec};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::state::{HostRoot, Layers};
use mounts::{fd_path, open_in_root, parse_options, Kind};

/// What init needs to know to build the root.
pub struct RootPlan {
    pub bundle: PathBuf,
    /// The bundle's root.path, absolute.
    pub rootfs: PathBuf,
    /// Some: mount an overlay with these layers; None: use `rootfs` as it is.
    pub layers: Option<Layers>,
    /// The container's cgroup, for cgroup mounts without a cgroup namespace.
    pub cgroup_path: Option<PathBuf>,
    pub cgroup_ns: bool,
    /// False: no mount namespace of its own, so the mounts are made in the host's table.
    pub mount_ns: bool,
    /// The detached idmapped clone of each idmapped mount's source, by index in `mounts`.
    pub idmaps: Vec<Option<OwnedFd>>,
    /// Built for a user (or root of a non-initial user namespace): overlay gets `userxattr`.
    pub rootless: bool,
}

/// The root propagation the spec asks for (`linux.rootfsPropagation`), applied to the new `/`
/// once the whole filesystem is built (see `finish`).
pub fn requested_propagation(spec: &Spec) -> Option<MsFlags> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mounts::propagation)
}

/// Build the root filesystem and return its path (still seen from the host's root).
///
/// In a mount namespace of its own, no mount made here may reach the host. `/` becomes a slave
/// (it receives the host's mount events, never sends any), or, for a shared root, stays shared
/// with the host's peer groups: volumes bound from host paths must join them for Kubernetes'
/// Bidirectional mounts. Then the mount holding the root's source is made private in this
/// namespace, so the root mount and everything mounted under it stay here.
pub fn prepare(spec: &Spec, plan: &RootPlan) -> Result<PathBuf> {
    let linux = spec.linux().as_ref();
    let root = if plan.mount_ns {
        isolate_namespace(spec, plan)?;
        mount_root(plan)?
    } else {
        // The host's `/` keeps its propagation; the container's mounts, all below its root
        // mount, do not reach the host's other namespaces once that one is private.
        let root = mount_root(plan)?;
        mount(
            None::<&str>,
            &root,
            None::<&str>,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None::<&str>,
        )
        .context("make the container's root mount private")?;
        root
    };
    let root_fd = open(
        &root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", root.display()))?;
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let idmap = plan.idmaps.get(i).and_then(Option::as_ref);
        mount_one(&root_fd, m, plan, idmap)
            .with_context(|| format!("mounts[{i}] {}", m.destination().display()))?;
    }
    devices::create(
        &root_fd,
        linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default(),
    )?;
    Ok(root)
}

/// `/` of the new mount namespace becomes a slave, or stays shared for a shared root (see
/// `prepare`), and then the mount holding the root's source is made private.
fn isolate_namespace(spec: &Spec, plan: &RootPlan) -> Result<()> {
    let shared = requested_propagation(spec).is_some_and(|f| f.contains(MsFlags::MS_SHARED));
    let first = if shared {
        MsFlags::MS_SHARED | MsFlags::MS_REC
    } else {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    };
    mount(None::<&str>, "/", None::<&str>, first, None::<&str>)
        .context("set the propagation of / in the container's mount namespace")?;
    if shared {
        let source = plan
            .layers
            .as_ref()
            .map_or(plan.rootfs.clone(), |l| l.dir.join("merged"));
        make_mount_private(&source)?;
    }
    Ok(())
}

/// Detach a container's root from the host's mount table, and every mount below it with it:
/// only the mount the container made (when create died before seeing it, the one stacked on
/// the mount that was there before), never a mount of the caller's.
pub fn detach_host_root(root: &HostRoot) -> Result<()> {
    if !root.path.exists() {
        return Ok(());
    }
    let top = crate::fsutil::mount_id(&root.path)?;
    let ours = match root.mount {
        Some(id) => top == id,
        None => top != root.mount_below,
    };
    if ours {
        umount2(&root.path, MntFlags::MNT_DETACH)
            .with_context(|| format!("detach the container's root {}", root.path.display()))?;
    }
    Ok(())
}

/// Make the mount holding `path` private in this namespace (only this namespace's copy).
fn make_mount_private(path: &Path) -> Result<()> {
    let mut at = path;
    while !crate::fsutil::is_mount_point(at)? {
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    mount(
        None::<&str>,
        at,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .with_context(|| format!("make the mount at {} private", at.display()))
}

fn mount_root(plan: &RootPlan) -> Result<PathBuf> {
    match &plan.layers {
        Some(layers) => {
            let merged = layers.dir.join("merged");
            let lowers: Vec<_> = layers
                .lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            let mut data = format!(
                "lowerdir={},upperdir={},workdir={},redirect_dir=nofollow,metacopy=off",
                lowers.join(":"),
                layers.dir.join("upper").display(),
                layers.dir.join("work").display()
            );
            // Mounted in a user's user namespace, overlay may not set trusted.* xattrs: it
            // keeps its opaque and whiteout marks in user.overlay.* (kernel 5.11+).
            if plan.rootless {
                data.push_str(",userxattr");
            }
            mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .with_context(|| format!("mount the copy-on-write root at {}", merged.display()))?;
            Ok(merged)
        }
        None => {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(
                Some(&plan.rootfs),
                &plan.rootfs,
                None::<&str>,
                flags,
                None::<&str>,
            )
            .with_context(|| format!("bind the root {}", plan.rootfs.display()))?;
            Ok(plan.rootfs.clone())
        }
    }
}

fn mount_one(root: &OwnedFd, m: &Mount, plan: &RootPlan, idmap: Option<&OwnedFd>) -> Result<()> {
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("none");
    if KERNEL_FILESYSTEMS.contains(&typ) {
        ensure_ordinary_directory(root, m.destination(), typ)?;
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return cgroupfs::mount_all(root, m.destination(), &opts, plan);
    }
    let bind = opts.flags.contains(MsFlags::MS_BIND);
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let target = if bind {
        let source = plan.bundle.join(&source);
        let kind = mounts::check_source(&source)?;
        let target = open_in_root(root.as_fd(), m.destination(), Some(kind))?;
        if let Some(tree) = idmap {
            idmapped::attach(tree, &target)?;
        } else {
            let flags = opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
            mount(
                Some(&source),
                fd_path(&target).as_str(),
                None::<&str>,
                flags,
                None::<&str>,
            )
            .with_context(|| format!("bind {}", source.display()))?;
        }
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        let target = reopen(root, m.destination())?;
        if !extra.is_empty() {
            mounts::remount_bind(&fd_path(&target), extra)?;
        }
        target
    } else {
        let target = open_in_root(root.as_fd(), m.destination(), Some(Kind::Dir))?;
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        mount(
            Some(&source),
            fd_path(&target).as_str(),
            Some(typ),
            opts.flags,
            data,
        )
        .with_context(|| format!("mount {typ}"))?;
        reopen(root, m.destination())?
    };
    for p in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(&target).as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .with_context(|| format!("set propagation {p:?}"))?;
    }
    if opts.attr_set != 0 || opts.attr_clr != 0 {
        mounts::set_recursive_attrs(&target, opts.attr_set, opts.attr_clr)?;
    }
    Ok(())
}

/// Filesystems through which the kernel exposes or controls itself.
const KERNEL_FILESYSTEMS: [&str; 6] = ["proc", "sysfs", "cgroup", "cgroup2", "mqueue", "devpts"];

/// A kernel filesystem must be mounted on a directory, never on a symlink the image placed at
/// its destination: procfs led elsewhere (`/proc -> /tmp/x`) is out of the paths an LSM profile
/// names (CVE-2019-19921). runc refuses proc and sysfs so; the others get the same care. A
/// missing destination is made as a directory; links in the parent path resolve in the root.
fn ensure_ordinary_directory(root: &OwnedFd, dest: &Path, typ: &str) -> Result<()> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Ok(());
    };
    let dir = match open_in_root(root.as_fd(), parent, None) {
        Ok(dir) => dir,
        Err(e) if e.downcast_ref() == Some(&nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    match nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(()),
        Ok(_) => bail!(
            "{typ} must be mounted on an ordinary directory: the root has a symlink or file there"
        ),
        Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(e).context("stat the destination"),
    }
}

/// A fresh fd for a destination, now that something is mounted on it.
fn reopen(root: &OwnedFd, dest: &Path) -> Result<OwnedFd> {
    open_in_root(root.as_fd(), dest, None)
}
