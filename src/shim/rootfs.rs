//! The container's root filesystem from the mounts containerd sends with Create (overlay
//! layers, or a bind): mounted on `<bundle>/rootfs`, unmounted on Delete.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use containerd_shim::protos::api::Mount;
use minirunc::rootfs::mounts::parse_options;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Mount each of `mounts` on `<bundle>/rootfs`, in order; on failure, undo the ones done.
pub fn mount_all(bundle: &Path, mounts: &[Mount]) -> Result<(), String> {
    if mounts.is_empty() {
        return Ok(());
    }
    let target = bundle.join("rootfs");
    match fs::create_dir(&target) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => {
            return Err(format!("create {}: {e}", target.display()));
        }
        _ => {}
    }
    for m in mounts {
        if let Err(e) = mount_one(m, &target) {
            let _ = unmount(bundle);
            return Err(format!(
                "mount {} {} on {}: {e}",
                m.type_,
                m.source,
                target.display()
            ));
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<(), Errno> {
    let options = parse_options(&m.options);
    let data = (!options.data.is_empty()).then_some(options.data.as_str());
    let fstype = (!m.type_.is_empty() && m.type_ != "bind").then_some(m.type_.as_str());
    mount(Some(m.source.as_str()), target, fstype, options.flags, data)?;
    // A bind mount ignores MS_RDONLY until remounted.
    let ro_bind = MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    if options.flags.contains(ro_bind) {
        let flags = options.flags | MsFlags::MS_REMOUNT;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>)?;
    }
    Ok(())
}

/// Unmount everything stacked on `<bundle>/rootfs`. No mount there is not an error: `delete`
/// runs after failures at any point.
pub fn unmount(bundle: &Path) -> Result<(), String> {
    let target = bundle.join("rootfs");
    loop {
        match umount2(&target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => {
                umount2(&target, MntFlags::MNT_DETACH)
                    .map_err(|e| format!("unmount {}: {e}", target.display()))?;
            }
            Err(e) => return Err(format!("unmount {}: {e}", target.display())),
        }
    }
}
