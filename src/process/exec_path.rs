//! Finding the program to execute, with runc's error wording (podman and Docker map it to
//! exit codes 127 and 126).

use anyhow::{bail, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolve `arg0` like execvp, against PATH from the process's environment.
pub fn resolve(arg0: &str, env: &[String]) -> Result<CString> {
    if arg0.contains('/') {
        check(Path::new(arg0))?;
        return Ok(CString::new(arg0)?);
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = PathBuf::from(dir).join(arg0);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(CString::new(candidate.as_os_str().as_bytes())?);
            }
        }
    }
    bail!("exec: {arg0:?}: executable file not found in $PATH")
}

fn check(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => bail!("exec: {:?}: is a directory: permission denied", path),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            bail!("exec: {:?}: permission denied", path)
        }
        Ok(_) => Ok(()),
        Err(e) => bail!("exec: {:?}: {}", path, crate::errors::describe(&e)),
    }
}
