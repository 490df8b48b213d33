//! Committing a container: where its filesystem is seen from, and which writer gets it.
//!
//! The overlay is mounted by init inside the container's mount namespace only, so the host
//! never has the merged view. While init lives it is read through `/proc/<pid>/root` (the
//! container's root with its own mounts, which the walk cuts); once it has stopped, a
//! read-only overlay of the same layers is mounted in a private mount namespace of the
//! calling thread.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use super::{write_diff, write_oci_archive, write_tree, CommitOptions, ImageConfig};
use crate::container::{self, Paths};
use crate::rootfs::mounts::clone_mount;
use crate::state::{self, Layers, Lock, State, Status};

/// What to write.
#[derive(Debug, Clone)]
pub enum Commit {
    /// The merged root filesystem as a tar.
    Tree,
    /// The container's changes (its upper layer) as an OCI layer.
    Diff,
    /// An OCI image archive named `name:tag`; the run settings come from the container's
    /// config.json.
    OciArchive { name: String, tag: String },
}

/// Writes container `id` to `out`. The container is locked meanwhile (`delete` waits).
/// A stopped copy-on-write container moves the calling thread into a private mount
/// namespace (for the read-only overlay it mounts there).
pub fn commit_container<W: Write + Send>(
    paths: &Paths,
    id: &str,
    what: &Commit,
    out: W,
    opts: &CommitOptions,
) -> Result<()> {
    container::load(paths, id)?;
    let dir = state::container_dir(&paths.root, id);
    let _lock = Lock::exclusive(&dir).map_err(|_| state::not_found(id))?;
    // Loaded again under the lock: a delete that ran in between has removed it.
    let st = container::load(paths, id)?;
    let status = container::status_of(paths, &st);
    if status == Status::Creating {
        bail!("container {id} is still being created");
    }
    let spec = st.spec()?;
    let layers = || {
        st.layers.as_ref().with_context(|| {
            format!("container {id} has no copy-on-write layer (its rootfs is used directly): use --format tar without --diff")
        })
    };
    match what {
        Commit::Diff => {
            write_diff(&layers()?.dir.join("upper"), out, opts)?;
        }
        Commit::OciArchive { name, tag } => {
            let l = layers()?;
            let image = image_config(&spec, name, tag);
            write_oci_archive(&l.lowers, &l.dir.join("upper"), &image, out, opts)?;
        }
        Commit::Tree => {
            let view = View::open(&st, status)?;
            write_tree(&view.path, &skip_paths(&spec), out, opts)?;
        }
    }
    Ok(())
}

/// The runtime's own mounts, left out of a tree: proc, sys, dev and every spec mount.
fn skip_paths(spec: &Spec) -> Vec<PathBuf> {
    let mut skip: Vec<PathBuf> = ["/proc", "/sys", "/dev"].map(PathBuf::from).into();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        skip.push(m.destination().clone());
    }
    skip
}

/// The run settings of the committed image, from the container's process.
fn image_config(spec: &Spec, name: &str, tag: &str) -> ImageConfig {
    let mut image = ImageConfig {
        name: name.to_string(),
        tag: tag.to_string(),
        ..Default::default()
    };
    if let Some(p) = spec.process() {
        image.cmd = p.args().clone().unwrap_or_default();
        image.env = p.env().clone().unwrap_or_default();
        image.cwd = p.cwd().display().to_string();
        image.user = format!("{}:{}", p.user().uid(), p.user().gid());
    }
    image
}

/// The container's merged root, and what keeps it reachable until dropped.
struct View {
    path: PathBuf,
    _live_root: Option<OwnedFd>,
    _overlay: Option<ReadOnlyOverlay>,
}

impl View {
    fn open(st: &State, status: Status) -> Result<View> {
        if status != Status::Stopped {
            if let Some(fd) = live_root(st)? {
                return Ok(View {
                    path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
                    _live_root: Some(fd),
                    _overlay: None,
                });
            }
        }
        match &st.layers {
            Some(l) => {
                let overlay = ReadOnlyOverlay::mount(l)?;
                Ok(View {
                    path: overlay.0.clone(),
                    _live_root: None,
                    _overlay: Some(overlay),
                })
            }
            None => Ok(View {
                path: st.rootfs.clone(),
                _live_root: None,
                _overlay: None,
            }),
        }
    }
}

/// The root of the container's init, or None when init has exited: a detached copy of that one
/// mount, without the container's own mounts, so that a mount point shows the directory beneath
/// it - what the container's filesystem holds - and not the root of e.g. sysfs, whose mode and
/// times are the kernel's and change as it adds entries. The copy also keeps the root alive if
/// the container stops during the commit. A root that cannot be copied (an unbindable
/// propagation) is read through /proc/<pid>/root, its mount points as mounted.
fn live_root(st: &State) -> Result<Option<OwnedFd>> {
    let open_dir = |path: &str, flags| match open(path, flags | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ESRCH) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("open {path}")),
    };
    let root_path = format!("/proc/{}/root", st.pid);
    let Some(root) = open_dir(&root_path, OFlag::O_PATH | OFlag::O_DIRECTORY)? else {
        return Ok(None);
    };
    let Some(ns) = open_dir(&format!("/proc/{}/ns/mnt", st.pid), OFlag::O_RDONLY)? else {
        return Ok(None);
    };
    // Checked after the opens: a reused pid would have given another process's root.
    if !state::process_is(st.pid, st.init_start_time) {
        return Ok(None);
    }
    Ok(Some(copy_in_namespace(&ns, &root)?.unwrap_or(root)))
}

/// `clone_mount` of `root`, a mount of namespace `ns`: open_tree copies only mounts of the
/// caller's namespace, so this thread enters `ns` for the call and then comes back.
fn copy_in_namespace(ns: &OwnedFd, root: &OwnedFd) -> Result<Option<OwnedFd>> {
    let ours = open(
        "/proc/thread-self/ns/mnt",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open /proc/thread-self/ns/mnt")?;
    // Joining a mount namespace needs a filesystem context (root, cwd) of this thread alone.
    unshare(CloneFlags::CLONE_FS).context("unshare the filesystem context")?;
    setns(ns, CloneFlags::CLONE_NEWNS).context("join the container's mount namespace")?;
    let copy = clone_mount(Some(root.as_fd()), c"");
    setns(&ours, CloneFlags::CLONE_NEWNS).context("return to the runtime's mount namespace")?;
    Ok(copy.ok())
}

/// A read-only overlay of a stopped container's layers on its (unused) `merged` dir, in a
/// private mount namespace: the container's upper dir becomes the top lower layer, there is
/// no upper or work dir, so nothing is written and nothing conflicts with a later mount.
struct ReadOnlyOverlay(PathBuf);

impl ReadOnlyOverlay {
    fn mount(layers: &Layers) -> Result<ReadOnlyOverlay> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .context("unshare the mount namespace to mount the container's layers")?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .context("make / private in the commit's mount namespace")?;
        let upper = layers.dir.join("upper");
        let lowers: Vec<String> = std::iter::once(upper.as_path())
            .chain(layers.lowers.iter().map(PathBuf::as_path))
            .map(escape_layer)
            .collect();
        let mut data = format!("lowerdir={}", lowers.join(":"));
        // A user's layers keep overlay's marks in user.overlay.* (see `rootfs::prepare`).
        if !crate::rootless::host_root() {
            data.push_str(",userxattr");
        }
        let target = layers.dir.join("merged");
        mount(
            Some("overlay"),
            &target,
            Some("overlay"),
            MsFlags::MS_RDONLY,
            Some(data.as_str()),
        )
        .with_context(|| {
            format!(
                "mount the container's layers read-only on {} ({data})",
                target.display()
            )
        })?;
        Ok(ReadOnlyOverlay(target))
    }
}

impl Drop for ReadOnlyOverlay {
    fn drop(&mut self) {
        // Only in this thread's private namespace; it goes with the process anyway.
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// overlay splits `lowerdir` at `:` and the options at `,`; a backslash escapes both.
fn escape_layer(path: &Path) -> String {
    let mut out = String::new();
    for c in path.display().to_string().chars() {
        if matches!(c, '\\' | ':' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits `NAME[:TAG]` (a `:` before the last `/` is a registry port, not a tag).
pub fn parse_image_name(s: &str) -> Result<(String, String)> {
    let last_slash = s.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match s[last_slash..].rfind(':') {
        Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
        None => (s, "latest"),
    };
    if name.is_empty() || tag.is_empty() {
        bail!("--name {s:?}: expected NAME:TAG, e.g. localhost/myapp:1.0");
    }
    Ok((name.to_string(), tag.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_at_the_tag_not_the_port() {
        let p = |s| parse_image_name(s).unwrap();
        assert_eq!(p("app"), ("app".into(), "latest".into()));
        assert_eq!(
            p("localhost/app:1.0"),
            ("localhost/app".into(), "1.0".into())
        );
        assert_eq!(p("reg:5000/app"), ("reg:5000/app".into(), "latest".into()));
        assert!(parse_image_name(":x").is_err());
        assert!(parse_image_name("app:").is_err());
    }

    #[test]
    fn layer_paths_escape_overlay_separators() {
        assert_eq!(escape_layer(Path::new("/a:b,c\\d")), "/a\\:b\\,c\\\\d");
    }
}
