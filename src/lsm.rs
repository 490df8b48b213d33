//! AppArmor profiles and SELinux labels of the container process, with runc's behaviour on a
//! host that lacks the LSM: a requested profile or process label is an error (runc 1.1 fails
//! the same way), a `linux.mountLabel` is ignored (runc formats it away when SELinux is off).

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Process;

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuse what this host cannot apply, before anything touches the disk.
pub fn check(process: &Process) -> Result<()> {
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            bail!("process.apparmorProfile {p:?}: AppArmor is not enabled on this host");
        }
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            bail!("process.selinuxLabel {l:?}: SELinux is disabled or not supported on this host");
        }
    }
    Ok(())
}

/// Ask the kernel to switch profile and label at the coming execve.
pub fn set_exec_labels(process: &Process) -> Result<()> {
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let path = if std::path::Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        std::fs::write(path, format!("exec {p}"))
            .with_context(|| format!("process.apparmorProfile {p:?}: write {path}"))?;
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        std::fs::write("/proc/self/attr/exec", l)
            .with_context(|| format!("process.selinuxLabel {l:?}: write /proc/self/attr/exec"))?;
    }
    Ok(())
}
