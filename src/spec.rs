//! Load a bundle's config.json and reject what cannot work, naming the field, before anything
//! touches the disk.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// config.json larger than this is refused rather than read into memory.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Read and parse `<bundle>/config.json`. Returns the raw bytes too (kept in the state).
pub fn load(bundle: &Path) -> Result<(Spec, Vec<u8>)> {
    let path = bundle.join("config.json");
    let raw = read_config(&path)?;
    let mut spec = parse(&raw).with_context(|| path.display().to_string())?;
    for dest in absolute_destinations(&mut spec) {
        crate::logging::warn(&format!(
            "mount destination {} is not absolute: taken as relative to / (deprecated by the spec)",
            dest.display()
        ));
    }
    Ok((spec, raw))
}

/// The spec lets old configs give a mount destination relative to `/` (deprecated, but runc
/// and the tools that write such configs rely on it): make each absolute. Returns the ones
/// that were relative.
pub fn absolute_destinations(spec: &mut Spec) -> Vec<PathBuf> {
    let mut relative = Vec::new();
    let Some(mounts) = spec.mounts_mut() else {
        return relative;
    };
    for m in mounts.iter_mut().filter(|m| !m.destination().is_absolute()) {
        relative.push(m.destination().clone());
        let dest = Path::new("/").join(m.destination());
        m.set_destination(dest);
    }
    relative
}

/// Parse a config.json's bytes; a type error names the field's path (`process.args`).
pub fn parse(raw: &[u8]) -> Result<Spec> {
    // serde accepts a struct written as an array; config.json is an object.
    if raw.trim_ascii_start().first() == Some(&b'[') {
        bail!("invalid type: an array, expected a JSON object");
    }
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        if field == "." {
            anyhow!("{}", e.inner())
        } else {
            anyhow!("{field}: {}", e.inner())
        }
    })
}

fn read_config(path: &Path) -> Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO planted as config.json must not hang the runtime.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let meta = f.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else {
            "not a regular file"
        };
        bail!("{}: is {what}", path.display());
    }
    if meta.len() > MAX_CONFIG_BYTES {
        bail!(
            "{}: larger than {} MiB",
            path.display(),
            MAX_CONFIG_BYTES >> 20
        );
    }
    let mut raw = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut raw)?;
    Ok(raw)
}

/// The absolute path of the root filesystem.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| anyhow!("root: missing"))?;
    let path = bundle.join(root.path());
    let path =
        std::fs::canonicalize(&path).with_context(|| format!("root.path {}", path.display()))?;
    let meta = std::fs::metadata(&path).with_context(|| format!("root.path {}", path.display()))?;
    if !meta.is_dir() {
        bail!("root.path {}: not a directory", path.display());
    }
    Ok(path)
}

/// Checks that need the whole spec; field types were checked while parsing.
pub fn validate(spec: &Spec, need_process: bool) -> Result<()> {
    let major = spec.version().split('.').next().unwrap_or("");
    if major != "1" {
        bail!(
            "ociVersion {:?}: unsupported major version (want 1.x)",
            spec.version()
        );
    }
    if need_process {
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| anyhow!("process: missing"))?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("process.args: must not be empty");
        }
        for (i, r) in process.rlimits().iter().flatten().enumerate() {
            if r.soft() > r.hard() {
                bail!(
                    "process.rlimits[{i}] {:?}: soft {} is above hard {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                );
            }
        }
        for (what, list) in [("args", process.args()), ("env", process.env())] {
            if let Some(i) = list.iter().flatten().position(|s| s.contains('\0')) {
                bail!("process.{what}[{i}]: contains a NUL byte");
            }
        }
        if !process.cwd().is_absolute() {
            bail!("process.cwd {:?}: must be an absolute path", process.cwd());
        }
        crate::lsm::check(process)?;
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| anyhow!("linux: missing"))?;
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            bail!(
                "linux.namespaces[{i}]: duplicate namespace type {:?}",
                ns.typ()
            );
        }
    }
    let has = |t| seen.contains(&t);
    if spec.hostname().is_some() && !has(LinuxNamespaceType::Uts) {
        bail!("hostname: needs a uts namespace in linux.namespaces");
    }
    if let Some(h) = spec.hostname() {
        if h.len() > 64 {
            bail!("hostname: longer than 64 bytes");
        }
    }
    let maps = linux.uid_mappings().is_some() || linux.gid_mappings().is_some();
    if maps && !has(LinuxNamespaceType::User) {
        bail!("linux.uidMappings: needs a user namespace in linux.namespaces");
    }
    let user_ns_new = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if user_ns_new && (linux.uid_mappings().is_none() || linux.gid_mappings().is_none()) {
        bail!("linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
    }
    if linux.intel_rdt().is_some() {
        // The spec: a runtime that cannot apply it must fail (this host class has no resctrl).
        bail!("linux.intelRdt: Intel RDT (resctrl) is not supported");
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        // Silently leaving a device on the host would run the container without it.
        bail!("linux.netDevices: moving network devices into the container is not supported yet");
    }
    if let Some(p) = linux.rootfs_propagation() {
        if crate::rootfs::mounts::propagation(p).is_none() {
            bail!("linux.rootfsPropagation {p:?}: not one of private, rprivate, shared, rshared, slave, rslave, unbindable, runbindable");
        }
    }
    validate_hooks(spec)?;
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if !d.path().is_absolute() {
            bail!(
                "linux.devices[{i}].path {:?}: must be an absolute path",
                d.path()
            );
        }
    }
    for (key, _) in linux.sysctl().iter().flatten() {
        if key.contains("..") || key.contains('/') && key.starts_with('/') {
            bail!("linux.sysctl {key:?}: invalid name");
        }
    }
    Ok(())
}

/// Hook paths are run as given: a relative one would depend on the runtime's working directory.
fn validate_hooks(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                bail!(
                    "hooks.{kind}[{i}].path {:?}: must be an absolute path",
                    hook.path()
                );
            }
        }
    }
    Ok(())
}
