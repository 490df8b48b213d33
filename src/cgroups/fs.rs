//! Reading and writing cgroup control files, with errors that name the file and the value.

use anyhow::{anyhow, Context, Result};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

/// Text of an I/O error without Rust's "(os error N)" suffix, as the kernel would name it.
fn errno_text(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

/// Writes `value` to the control file `dir/file` in one write(2), never creating the file:
/// a missing file means the controller is absent and must not turn into an EACCES from O_CREAT.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let result = OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|err| failed(&path, file, &format!("write {value:?}"), &err))
}

/// Opens the control file `dir/file` for writing, never creating it (as `write`), for a write
/// made later or by another process.
pub fn open_for_write(dir: &Path, file: &str) -> Result<OwnedFd> {
    let path = dir.join(file);
    let opened = OpenOptions::new().write(true).open(&path);
    opened
        .map(OwnedFd::from)
        .map_err(|err| failed(&path, file, "open", &err))
}

/// "cgroup FILE: WHAT: ERROR (PATH)", with a hint where the file is missing.
fn failed(path: &Path, file: &str, what: &str, err: &std::io::Error) -> anyhow::Error {
    let hint = if err.kind() == ErrorKind::NotFound {
        " (controller not available here)"
    } else {
        ""
    };
    anyhow!(
        "cgroup {file}: {what}: {}{hint} ({})",
        errno_text(err),
        path.display()
    )
}

/// Reads a control file as a string.
pub fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    crate::fsutil::read_kernel_file(&path)
        .with_context(|| format!("cgroup: read {}", path.display()))
}

/// Reads a control file holding one number; `max` (cgroup v2 for unlimited) reads as u64::MAX.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let text = read(dir, file)?;
    parse_u64(text.trim()).with_context(|| format!("cgroup: parse {}", dir.join(file).display()))
}

/// Parses a counter value, `max` meaning unlimited.
pub fn parse_u64(text: &str) -> Result<u64> {
    if text == "max" {
        return Ok(u64::MAX);
    }
    text.parse::<u64>()
        .with_context(|| format!("not a number: {text:?}"))
}

/// Parses `key value` lines (memory.stat, cpu.stat, memory.events ...) and returns the value of `key`.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| parse_u64(v.trim()).ok()).flatten()
    })
}

/// Creates `dir` and its missing parents; returns the directories created, top first,
/// so callers can initialise only what they made.
pub fn mkdir_all(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut created = Vec::new();
    let mut missing = Vec::new();
    let mut cur = dir;
    loop {
        match std::fs::create_dir(cur) {
            Ok(()) => {
                created.push(cur.to_path_buf());
                break;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => break,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                missing.push(cur.to_path_buf());
                cur = cur
                    .parent()
                    .ok_or_else(|| anyhow!("cgroup: no parent for {}", dir.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("cgroup: mkdir {}", cur.display())),
        }
    }
    for path in missing.into_iter().rev() {
        match std::fs::create_dir(&path) {
            Ok(()) => created.push(path),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cgroup: mkdir {}", path.display())),
        }
    }
    Ok(created)
}

/// Removes a cgroup directory and any child cgroups, deepest first. EBUSY (a process still
/// exiting) is retried briefly; a directory already gone is fine.
pub fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cgroup: list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cgroup: list {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    let mut delay = Duration::from_millis(1);
    for _ in 0..10 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e).with_context(|| format!("cgroup: rmdir {}", dir.display())),
        }
    }
    std::fs::remove_dir(dir)
        .with_context(|| format!("cgroup: rmdir {} (still busy)", dir.display()))
}

/// Reads the pids in `dir/cgroup.procs` and in every child cgroup below it.
pub fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let text = match crate::fsutil::read_kernel_file(dir.join("cgroup.procs")) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("cgroup: read {}/cgroup.procs", dir.display()))
        }
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        out.push(
            line.parse()
                .with_context(|| format!("cgroup: bad pid {line:?} in {}", dir.display()))?,
        );
    }
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("cgroup: list {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("cgroup: list {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            procs_recursive(&entry.path(), out)?;
        }
    }
    Ok(())
}
