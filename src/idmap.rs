//! The uid_map and gid_map of a new user namespace, written by the runtime from outside it.
//!
//! Root writes any mapping directly. A user may only map their own id, as a single line, and for
//! gid_map only once `setgroups` is denied (the kernel's rule: otherwise the user could drop a
//! group that denies them access). Any other mapping (the user's subordinate ranges) goes through
//! the setuid helpers newuidmap/newgidmap of shadow's uidmap package, which allow exactly the
//! ranges /etc/subuid and /etc/subgid grant the user.

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;
use std::path::PathBuf;

/// Which map: its /proc file, the spec field, the helper, the subordinate id file.
#[derive(Clone, Copy)]
pub enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Kind::Uid => "linux.uidMappings",
            Kind::Gid => "linux.gidMappings",
        }
    }

    fn helper(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }

    fn subid_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }

    fn own_id(self) -> u32 {
        match self {
            Kind::Uid => nix::unistd::geteuid().as_raw(),
            Kind::Gid => nix::unistd::getegid().as_raw(),
        }
    }
}

/// Write both maps of the user namespace that process `pid` created.
pub fn write(pid: Pid, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    write_one(pid, Kind::Uid, uids)?;
    write_one(pid, Kind::Gid, gids)
}

fn write_one(pid: Pid, kind: Kind, maps: &[LinuxIdMapping]) -> Result<()> {
    let privileged = nix::unistd::geteuid().is_root();
    if !privileged && maps.is_empty() {
        bail!(
            "{}: empty: a user namespace created by a user needs at least the user's own id \
             ({}) mapped",
            kind.field(),
            kind.own_id()
        );
    }
    let own_only = maps.len() == 1 && maps[0].size() == 1 && maps[0].host_id() == kind.own_id();
    if privileged || own_only {
        if !privileged && matches!(kind, Kind::Gid) {
            let path = format!("/proc/{pid}/setgroups");
            std::fs::write(&path, "deny").with_context(|| format!("write {path} (deny)"))?;
        }
        return write_direct(pid, kind, maps);
    }
    run_helper(pid, kind, maps)
}

fn describe(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}", m.container_id(), m.host_id(), m.size()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_direct(pid: Pid, kind: Kind, maps: &[LinuxIdMapping]) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = format!("/proc/{pid}/{}", kind.file());
    std::fs::write(&path, &text)
        .with_context(|| format!("{}: write {path} ({})", kind.field(), describe(maps)))
}

/// `newuidmap PID inside outside count...`: the helper checks the ranges against the
/// subordinate id file and writes the map.
fn run_helper(pid: Pid, kind: Kind, maps: &[LinuxIdMapping]) -> Result<()> {
    let Some(helper) = find_on_path(kind.helper()) else {
        bail!(
            "{} ({}): mapping more than the user's own id needs {}, which is not on PATH \
             (install the uidmap package)",
            kind.field(),
            describe(maps),
            kind.helper()
        );
    };
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
    }
    let out = std::process::Command::new(&helper)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("run {}", helper.display()))?;
    if !out.status.success() {
        bail!(
            "{} ({}): {} refused the mapping ({}): {}; the ranges user {} may map are in {}",
            kind.field(),
            describe(maps),
            kind.helper(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            kind.own_id(),
            kind.subid_file()
        );
    }
    Ok(())
}

/// The first executable `name` in the directories of PATH.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok())
}

/// A container's id mappings, kept to reach the files its ids own after it is gone.
pub struct IdMaps {
    pub uids: Vec<LinuxIdMapping>,
    pub gids: Vec<LinuxIdMapping>,
}

impl IdMaps {
    /// The mappings of the user namespace the spec creates; None when it creates none.
    pub fn of(spec: &oci_spec::runtime::Spec) -> Option<IdMaps> {
        let linux = spec.linux().as_ref()?;
        let nss = linux.namespaces().as_deref().unwrap_or_default();
        if !crate::namespaces::new_user_ns(nss) {
            return None;
        }
        Some(IdMaps {
            uids: linux.uid_mappings().clone().unwrap_or_default(),
            gids: linux.gid_mappings().clone().unwrap_or_default(),
        })
    }
}
