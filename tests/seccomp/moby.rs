//! Docker's default profile (moby's own format) turned into an OCI `LinuxSeccomp` the way moby
//! does it for a default container: its capability set, this host's architecture and kernel.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

const PROFILE: &str = include_str!("../data/docker-default-seccomp.json");

/// Capabilities docker gives a container by default.
const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Go's name for this architecture and its seccomp name, or None where the helper has no map.
fn host_arch() -> Option<(&'static str, &'static str)> {
    match std::env::consts::ARCH {
        "x86_64" => Some(("amd64", "SCMP_ARCH_X86_64")),
        "aarch64" => Some(("arm64", "SCMP_ARCH_AARCH64")),
        _ => None,
    }
}

fn kernel_version() -> (u32, u32) {
    let uts = nix::sys::utsname::uname().expect("uname");
    let release = uts.release().to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// moby's includes/excludes filter for one entry.
fn applies(entry: &Value, go_arch: &str, kernel: (u32, u32)) -> bool {
    let has_cap = |c: &String| DOCKER_CAPS.contains(&c.as_str());
    let min_kernel = |v: &Value| {
        v.get("minKernel")
            .and_then(Value::as_str)
            .map(parse_version)
    };
    if let Some(ex) = entry.get("excludes") {
        if strings(ex, "arches").iter().any(|a| a == go_arch)
            || strings(ex, "caps").iter().any(has_cap)
            || min_kernel(ex).is_some_and(|min| kernel >= min)
        {
            return false;
        }
    }
    if let Some(inc) = entry.get("includes") {
        let arches = strings(inc, "arches");
        if (!arches.is_empty() && !arches.iter().any(|a| a == go_arch))
            || !strings(inc, "caps").iter().all(has_cap)
            || min_kernel(inc).is_some_and(|min| kernel < min)
        {
            return false;
        }
    }
    true
}

/// The converted profile, with `extra_allow` names allowed on top (the weakened variant), or
/// None when this host's architecture has no mapping here.
pub fn docker_default(extra_allow: &[&str]) -> Option<LinuxSeccomp> {
    let (go_arch, scmp_arch) = host_arch()?;
    let profile: Value = serde_json::from_str(PROFILE).expect("docker profile JSON");
    let kernel = kernel_version();
    let mut arches = vec![json!(scmp_arch)];
    for entry in profile["archMap"].as_array().expect("archMap") {
        if entry["architecture"] == scmp_arch {
            arches.extend(
                entry["subArchitectures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
    }
    let mut syscalls: Vec<Value> = profile["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|e| applies(e, go_arch, kernel))
        .map(|e| {
            let mut call = json!({"names": e["names"], "action": e["action"]});
            for key in ["errnoRet", "args"] {
                if let Some(v) = e.get(key) {
                    call[key] = v.clone();
                }
            }
            call
        })
        .collect();
    if !extra_allow.is_empty() {
        syscalls.push(json!({"names": extra_allow, "action": "SCMP_ACT_ALLOW"}));
    }
    let oci = json!({
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": arches,
        "syscalls": syscalls,
    });
    Some(serde_json::from_value(oci).expect("OCI seccomp from the docker profile"))
}
