//! The container's cgroup as the lifecycle sees it: which one, and the device rules every
//! container needs in addition to the spec's (runc allows the same defaults).

use anyhow::{bail, Result};
use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResources, Spec,
};

use crate::cgroups::Cgroup;
use crate::state::State;

/// The cgroup linux.cgroupsPath names; with `systemd`, a `slice:prefix:name` path.
pub fn for_spec(spec: &Spec, id: &str, systemd: bool) -> Result<Cgroup> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    if systemd {
        let given = path.map(|p| p.to_string_lossy());
        let path = crate::cgroups::systemd_path::resolve(given.as_deref(), id)?;
        return Cgroup::new(Some(&path), id);
    }
    Cgroup::new(path, id)
}

/// The cgroup `create` makes, or None for a user who cannot create it (no delegated, writable
/// cgroup: a user on a v1 or hybrid host). As runc, that is silent unless the spec asks for
/// resources, which then cannot be applied: an error naming them.
pub fn for_create(spec: &Spec, id: &str, systemd: bool) -> Result<Option<Cgroup>> {
    let cgroup = for_spec(spec, id, systemd)?;
    if crate::rootless::host_root() || cgroup.writable_by_caller() {
        return Ok(Some(cgroup));
    }
    let asked = requested_resources(spec)?;
    if asked.is_empty() {
        return Ok(None);
    }
    bail!(
        "rootless: {} cannot be applied: user {} may not create the cgroup {} (no delegated \
         cgroup on this host); remove them from config.json",
        asked.join(", "),
        nix::unistd::geteuid(),
        cgroup.path().display()
    )
}

/// The `linux.resources` fields the spec sets, device rules aside (never applied rootless).
fn requested_resources(spec: &Spec) -> Result<Vec<String>> {
    let res = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let Some(res) = res else {
        return Ok(Vec::new());
    };
    let serde_json::Value::Object(fields) = serde_json::to_value(res)? else {
        return Ok(Vec::new());
    };
    let empty = |v: &serde_json::Value| {
        v.is_null()
            || v.as_object().is_some_and(|o| o.is_empty())
            || v.as_array().is_some_and(|a| a.is_empty())
    };
    Ok(fields
        .iter()
        .filter(|(k, v)| *k != "devices" && !empty(v))
        .map(|(k, _)| format!("linux.resources.{k}"))
        .collect())
}

/// Why `verb` cannot act on a container that has no cgroup (a user's, on a host without a
/// delegated cgroup).
pub fn missing(id: &str, verb: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "container {id:?} has no cgroup (created rootless on a host without a cgroup the user \
         may write): {verb} needs one"
    )
}

pub fn of_state(st: &State) -> Option<Cgroup> {
    let path = st.cgroup_path.as_deref()?;
    Cgroup::new(Some(path), &st.id).ok()
}

/// (type, major, minor): null, zero, full, random, urandom, tty, console, ptmx, and every pty.
const ALLOWED: [(LinuxDeviceType, Option<i64>, Option<i64>); 9] = [
    (LinuxDeviceType::C, Some(1), Some(3)),
    (LinuxDeviceType::C, Some(1), Some(5)),
    (LinuxDeviceType::C, Some(1), Some(7)),
    (LinuxDeviceType::C, Some(1), Some(8)),
    (LinuxDeviceType::C, Some(1), Some(9)),
    (LinuxDeviceType::C, Some(5), Some(0)),
    (LinuxDeviceType::C, Some(5), Some(1)),
    (LinuxDeviceType::C, Some(5), Some(2)),
    (LinuxDeviceType::C, Some(136), None),
];

fn rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

/// The spec's resources with the default device rules and the spec's own devices allowed after
/// its rules, as runc does, so a "deny all" in the spec still leaves /dev/null usable.
pub fn resources(spec: &Spec) -> Result<Option<LinuxResources>> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(None);
    };
    let Some(mut res) = linux.resources().clone() else {
        return Ok(None);
    };
    // A user's container gets only the device nodes the user already may open (bound from the
    // host), and a user may not attach device programs: no rules, as runc.
    if !nix::unistd::geteuid().is_root() {
        res.set_devices(None);
    }
    let mut rules = res.devices().clone().unwrap_or_default();
    if !rules.is_empty() {
        rules.push(rule(LinuxDeviceType::C, None, None, "m")?);
        rules.push(rule(LinuxDeviceType::B, None, None, "m")?);
        for (typ, major, minor) in ALLOWED {
            rules.push(rule(typ, major, minor, "rwm")?);
        }
        for d in linux.devices().iter().flatten() {
            rules.push(rule(d.typ(), Some(d.major()), Some(d.minor()), "rwm")?);
        }
        res.set_devices(Some(rules));
    }
    Ok(Some(res))
}
