//! Rootless mode: whether the runtime runs for an unprivileged user, and where such a user's
//! state and layers go by default (runc's `--rootless` and its `$XDG_RUNTIME_DIR` default).

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// `--rootless`: true, false, or auto (the default), decided for this run.
pub fn resolve(flag: Option<&str>) -> Result<bool> {
    match flag.unwrap_or("auto") {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(!nix::unistd::geteuid().is_root() || in_child_user_namespace()),
        other => bail!("--rootless: {other:?} is not true, false or auto"),
    }
}

/// Root of the initial user namespace: overlay's trusted.* attributes are for it alone (a
/// user, or root of a user's namespace, gets `userxattr` mounts).
pub fn host_root() -> bool {
    nix::unistd::geteuid().is_root() && !in_child_user_namespace()
}

/// Whether defaults go to the caller's own directories (`$XDG_RUNTIME_DIR`, `$XDG_DATA_HOME`):
/// for any non-root user, and for root of a user namespace that has an XDG_RUNTIME_DIR and is
/// not USER=root (rootless podman runs the runtime as root of the user's namespace, where
/// /run is not writable). runc decides its state root the same way.
pub fn user_directories() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    in_child_user_namespace()
        && std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty())
        && std::env::var_os("USER").is_none_or(|u| u != "root")
}

/// True inside a user namespace other than the initial one, whose uid_map is the identity of
/// the whole 32-bit range.
fn in_child_user_namespace() -> bool {
    let Ok(map) = crate::fsutil::read_kernel_file("/proc/self/uid_map") else {
        return false;
    };
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields != ["0", "0", "4294967295"]
}

/// A runtime installed setuid or setgid would hand the caller the owner's rights: refuse to run.
pub fn refuse_setid() -> Result<()> {
    let (ruid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
    let (rgid, egid) = (nix::unistd::getgid(), nix::unistd::getegid());
    if ruid != euid || rgid != egid {
        bail!(
            "minirunc is installed setuid or setgid (real uid {ruid} gid {rgid}, effective uid \
             {euid} gid {egid}): refusing to run; remove the bit (chmod u-s,g-s)"
        );
    }
    Ok(())
}

/// The state root for a non-root user who gave no --root: `$XDG_RUNTIME_DIR/minirunc`.
pub fn default_state_root() -> Result<PathBuf> {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir).join("minirunc")),
        None => bail!(
            "rootless: XDG_RUNTIME_DIR is not set, so there is no default state directory: \
             set it or pass --root"
        ),
    }
}

/// The data root for a non-root user who gave neither --data-root nor MINIRUNC_DATA_ROOT:
/// `$XDG_DATA_HOME/minirunc`, else `~/.local/share/minirunc`.
pub fn default_data_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir).join("minirunc"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("rootless: neither XDG_DATA_HOME nor HOME is set: pass --data-root")?;
    Ok(PathBuf::from(home).join(".local/share/minirunc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values() {
        assert!(resolve(Some("true")).unwrap());
        assert!(!resolve(Some("false")).unwrap());
        let err = resolve(Some("yes")).unwrap_err().to_string();
        assert!(err.contains("\"yes\""), "{err}");
    }
}
