//! Creating and joining the spec's namespaces, done by the intermediate process. The user
//! namespace comes first (it owns the others); joining a PID or time namespace only affects
//! children, which is why init is forked afterwards.

use anyhow::{bail, Context, Result};
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::fs::File;
use std::os::fd::AsRawFd;

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name under /proc/<pid>/ns/.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn new_user_ns(namespaces: &[LinuxNamespace]) -> bool {
    namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
}

/// The host uid and gid of root in the user namespace the container creates, if it creates
/// one and maps root.
pub fn host_ids_of_root(spec: &oci_spec::runtime::Spec) -> Option<(u32, u32)> {
    let linux = spec.linux().as_ref()?;
    if !new_user_ns(linux.namespaces().as_deref().unwrap_or_default()) {
        return None;
    }
    let host_id_of_0 = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .find(|m| m.container_id() == 0 && m.size() > 0)
            .map(|m| m.host_id())
    };
    Some((
        host_id_of_0(linux.uid_mappings())?,
        host_id_of_0(linux.gid_mappings())?,
    ))
}

/// Join a namespace by path; a path that is no namespace of type `t` is named as such.
pub fn join(t: LinuxNamespaceType, path: &std::path::Path) -> Result<()> {
    let field = || format!("linux.namespaces: {} path {}", proc_name(t), path.display());
    let f = File::open(path).with_context(field)?;
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: an ioctl without argument on an fd we own.
    match unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) } {
        -1 => bail!("{}: not a namespace file", field()),
        n if n != flag(t).bits() => bail!("{}: not a {} namespace", field(), proc_name(t)),
        _ => {}
    }
    setns(&f, flag(t)).with_context(|| format!("setns {t:?} {}", path.display()))
}

/// Join the namespaces given by path, then create the new ones; the user namespace is
/// handled by the caller, before this.
pub fn enter_all(namespaces: &[LinuxNamespace]) -> Result<()> {
    let mut new = CloneFlags::empty();
    for ns in namespaces
        .iter()
        .filter(|n| n.typ() != LinuxNamespaceType::User)
    {
        match ns.path() {
            Some(path) => join(ns.typ(), path)?,
            None => new |= flag(ns.typ()),
        }
    }
    if !new.is_empty() {
        unshare(new).with_context(|| format!("unshare {new:?}"))?;
    }
    Ok(())
}

/// /proc/self/timens_offsets, opened for `set_time_offsets`.
pub fn open_time_offsets() -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/timens_offsets")
        .context("linux.timeOffsets: open /proc/self/timens_offsets")
}

/// Write the time namespace's clock offsets, all in one write (must happen before its first
/// process exists).
pub fn set_time_offsets(
    mut file: File,
    offsets: &std::collections::HashMap<String, oci_spec::runtime::LinuxTimeOffset>,
) -> Result<()> {
    let mut text = String::new();
    for (clock, off) in offsets {
        text += &format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        );
    }
    std::io::Write::write_all(&mut file, text.as_bytes()).context("linux.timeOffsets")
}
