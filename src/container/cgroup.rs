//! The container's cgroup as the lifecycle sees it: which one, and the device rules every
//! container needs in addition to the spec's (runc allows the same defaults).

use anyhow::Result;
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
