//! `--systemd-cgroup`: cgroupsPath in systemd's `slice:prefix:name` form, placed where systemd
//! puts such a unit (`/a.slice/a-b.slice/prefix-name.scope`). minirunc writes that directory
//! through cgroupfs itself; it does not ask systemd over D-Bus to register the scope.

use anyhow::{bail, Result};
use std::path::PathBuf;

/// The cgroupfs path of a systemd-style cgroupsPath (absent: `system.slice:minirunc:<id>`,
/// as runc defaults to `system.slice:runc:<id>`).
pub fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<PathBuf> {
    let given = cgroups_path.unwrap_or_default();
    let (slice, prefix, name) = match given.split(':').collect::<Vec<_>>()[..] {
        [""] => ("", "minirunc", id),
        [slice, prefix, name] => (slice, prefix, name),
        _ => bail!(
            "cgroupsPath {given:?}: with --systemd-cgroup it must have the form slice:prefix:name"
        ),
    };
    let mut path = expand_slice(if slice.is_empty() {
        "system.slice"
    } else {
        slice
    })?;
    if name.ends_with(".slice") {
        // A slice as the container's own cgroup: it nests in the parent slice by its name.
        return expand_slice(name);
    }
    if name.is_empty() || name.contains('/') {
        bail!("cgroupsPath {given:?}: the name part must be a plain unit name");
    }
    path.push(match prefix {
        "" => format!("{name}.scope"),
        p => format!("{p}-{name}.scope"),
    });
    Ok(path)
}

/// `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice` (`-.slice` is the root), systemd's rule.
fn expand_slice(slice: &str) -> Result<PathBuf> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        bail!("cgroupsPath: {slice:?} is not a systemd slice (name.slice)");
    };
    let mut path = PathBuf::from("/");
    if stem == "-" {
        return Ok(path);
    }
    if stem.is_empty() || stem.contains('/') || stem.split('-').any(str::is_empty) {
        bail!("cgroupsPath: {slice:?} is not a valid systemd slice name");
    }
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_land_where_systemd_puts_them() {
        let cases = [
            ("system.slice:docker:abc", "/system.slice/docker-abc.scope"),
            (
                "kubepods-besteffort-pod12.slice:cri-containerd:abc",
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope",
            ),
            ("machine.slice:libpod:abc", "/machine.slice/libpod-abc.scope"),
            (":runc:abc", "/system.slice/runc-abc.scope"),
            ("-.slice::abc", "/abc.scope"),
            ("system.slice:x:my-sub.slice", "/my.slice/my-sub.slice"),
        ];
        for (given, want) in cases {
            assert_eq!(
                resolve(Some(given), "id").unwrap(),
                PathBuf::from(want),
                "{given}"
            );
        }
        assert_eq!(
            resolve(None, "c1").unwrap(),
            PathBuf::from("/system.slice/minirunc-c1.scope")
        );
    }

    #[test]
    fn other_forms_are_refused_naming_the_path() {
        for bad in [
            "/plain/path",
            "a:b",
            "a.slice:b:c:d",
            "foo:p:n",
            "a--b.slice:p:n",
            "x.slice:p:",
        ] {
            let err = resolve(Some(bad), "id").unwrap_err().to_string();
            assert!(err.contains("cgroupsPath"), "{bad}: {err}");
        }
    }
}
