//! Reclaiming copy-on-write layers that outlived their container's state: a caller removed its
//! `--root` (test suites and some orchestrators do) or the host crashed (`/run` is gone, the
//! data root is not).
//!
//! When: every `create`, `run` and `delete` sweeps its own `--root`'s layers (one readdir of
//! `<data root>/<key>` and a stat of `<root>/<id>` per layer: nothing more unless a layer has no
//! state), and `minirunc gc` sweeps a whole data root.
//!
//! What goes: a layer whose owner record (owner.rs) names a state directory that is gone, and
//! whose container runs no more; with it that container's empty cgroup, as `delete` would. Kept: a layer whose container may still run, one that is or
//! holds a mount point on the host, and one without a record that is more than a half-made
//! layer (an older minirunc made it, or the data root is not ours): none of these is deleted.
//!
//! How: judging a layer and moving it aside (a rename in the same directory) happen under an
//! flock on the data root, which `layers::claim` holds too while it makes a layer: a sweep never
//! judges a half-made layer, and a create never has its new layer removed. The slow removal
//! happens afterwards on the moved-aside name, `~reclaim.<pid>.<start time>.<n>` (no id has a
//! `~`); one left by a remover that died is taken over by the next sweep.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::owner::Owner;
use crate::fsutil::{is_mount_point, remove_tree};
use crate::state::{self, Lock};

const ASIDE: &str = "~reclaim.";
/// The only entry of a layer whose create died between making it and writing its record.
const RECORD_TMP: &str = ".owner.json.tmp";

/// What a sweep did with a layer whose state is gone.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Removed (with `dry_run`: would be).
    Reclaimed,
    /// Kept: its container may still use it, for this reason.
    InUse(String),
    /// Kept: it has no owner record but has content.
    NoRecord,
    /// It could not be removed, for this reason.
    Failed(String),
}

#[derive(Debug)]
pub struct Report {
    pub dir: PathBuf,
    pub owner: Option<Owner>,
    pub verdict: Verdict,
}

impl Report {
    /// One line for `minirunc gc` and the log.
    pub fn describe(&self, dry_run: bool) -> String {
        let dir = self.dir.display();
        let whose = self.owner.as_ref().map_or(String::new(), |o| {
            format!(" (container {} of --root {})", o.id, o.root.display())
        });
        match &self.verdict {
            Verdict::Reclaimed if dry_run => format!("would reclaim {dir}{whose}"),
            Verdict::Reclaimed => format!("reclaimed {dir}{whose}"),
            Verdict::InUse(why) => format!("kept {dir}{whose}: {why}"),
            Verdict::NoRecord => format!(
                "kept {dir}: it has no owner record (an older minirunc made it): \
                 remove it by hand once no container uses it"
            ),
            Verdict::Failed(why) => format!("could not reclaim {dir}{whose}: {why}"),
        }
    }
}

/// Sweep the layers of the containers of `root`: the hot path of create, run and delete.
pub fn sweep_root(data_root: &Path, root: &Path) -> Result<Vec<Report>> {
    let key = super::layers::key_dir(data_root, root);
    let names = match entries(&key) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", key.display())),
    };
    // A layer whose state directory exists is its container's business (delete removes it).
    let suspects: Vec<_> = names
        .into_iter()
        .filter(|n| !state::container_dir(root, &n.to_string_lossy()).exists())
        .collect();
    if suspects.is_empty() {
        return Ok(Vec::new());
    }
    sweep(data_root, &key, suspects, false)
}

/// Sweep every layer of the data root (`minirunc gc`).
pub fn gc(data_root: &Path, dry_run: bool) -> Result<Vec<Report>> {
    let keys = std::fs::read_dir(data_root)
        .with_context(|| format!("--data-root {}", data_root.display()))?;
    let mut reports = Vec::new();
    for key in keys {
        let key = key.with_context(|| format!("--data-root {}", data_root.display()))?;
        // Only directories named as `layers::key_dir` names them: anything else is not ours.
        let name = key.file_name();
        let hex = name.len() == 16
            && name
                .as_encoded_bytes()
                .iter()
                .all(|b| b.is_ascii_hexdigit());
        if !hex || !key.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let names =
            entries(&key.path()).with_context(|| format!("read {}", key.path().display()))?;
        reports.extend(sweep(data_root, &key.path(), names, dry_run)?);
    }
    Ok(reports)
}

/// Why the layer at `dir`, whose state is gone, must stay; None when it may go.
pub fn keep_reason(dir: &Path, owner: Option<&Owner>) -> Option<Verdict> {
    match owner {
        Some(o) => {
            if let Some(why) = o.in_use() {
                return Some(Verdict::InUse(why));
            }
        }
        None if !half_made(dir) => return Some(Verdict::NoRecord),
        None => {}
    }
    // The overlay is never mounted on the host by minirunc; someone else's mount is kept.
    for path in [dir.to_path_buf(), dir.join("merged")] {
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            _ => {}
        }
        match is_mount_point(&path) {
            Ok(false) => {}
            Ok(true) => {
                let why = format!("{} is a mount point on the host", path.display());
                return Some(Verdict::InUse(why));
            }
            Err(e) => return Some(Verdict::InUse(format!("{e:#}"))),
        }
    }
    None
}

/// Rename the layer `dir` aside in its directory, for `remove_aside` once the lock is released.
/// The caller holds the data root's lock and has judged the layer stale.
pub fn move_aside(dir: &Path) -> Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let me = std::process::id() as i32;
    let start = state::proc_stat(me).map_or(0, |(_, t)| t);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let aside = dir.with_file_name(format!("{ASIDE}{me}.{start}.{n}"));
    std::fs::rename(dir, &aside)
        .with_context(|| format!("move {} aside to {}", dir.display(), aside.display()))?;
    Ok(aside)
}

/// Remove a moved-aside layer; never through a mount point.
pub fn remove_aside(aside: &Path) -> Result<()> {
    remove_tree(aside)
}

/// Judge `names` (entries of the key directory `key`) under the data root's lock, move the
/// stale ones aside, then remove them without the lock.
fn sweep(data_root: &Path, key: &Path, names: Vec<OsString>, dry_run: bool) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    let mut aside = Vec::new();
    {
        let _lock = Lock::exclusive(data_root)?;
        for name in names {
            let dir = key.join(&name);
            if std::fs::symlink_metadata(&dir).is_err() {
                continue; // removed meanwhile
            }
            let (owner, keep) = match remover_of(&name.to_string_lossy()) {
                // Moved aside by a remover that still works on it: its business.
                Some((pid, start)) if state::process_is(pid, start) => continue,
                Some(_) => (None, None),
                None => {
                    let owner = Owner::load(&dir);
                    if owner.as_ref().is_some_and(Owner::state_exists) {
                        continue;
                    }
                    let keep = keep_reason(&dir, owner.as_ref());
                    (owner, keep)
                }
            };
            match keep {
                Some(verdict) => reports.push(Report {
                    dir,
                    owner,
                    verdict,
                }),
                None if dry_run => reports.push(Report {
                    dir,
                    owner,
                    verdict: Verdict::Reclaimed,
                }),
                None => aside.push((move_aside(&dir)?, dir, owner)),
            }
        }
    }
    let removed_any = !aside.is_empty();
    for (path, dir, owner) in aside {
        let removed = remove_aside(&path).and_then(|()| match &owner {
            Some(o) => o.remove_cgroup(),
            None => Ok(()),
        });
        let verdict = match removed {
            Ok(()) => Verdict::Reclaimed,
            Err(e) => Verdict::Failed(format!("{e:#}")),
        };
        reports.push(Report {
            dir,
            owner,
            verdict,
        });
    }
    if removed_any {
        remove_key_if_empty(data_root, key)?;
    }
    Ok(reports)
}

/// Remove the key directory of a state root once it holds no layer (under the lock, which
/// `layers::claim` holds while it makes the directory and a layer in it).
pub fn remove_key_if_empty(data_root: &Path, key: &Path) -> Result<()> {
    let _lock = Lock::exclusive(data_root)?;
    let _ = std::fs::remove_dir(key); // fails while a layer is left: that is the point
    Ok(())
}

/// A layer whose create died before its record was written: empty, or only the record's
/// temp file. Nothing was ever mounted from it.
fn half_made(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries
        .map(|e| e.map(|e| e.file_name()))
        .all(|name| name.is_ok_and(|n| n == RECORD_TMP))
}

/// The (pid, start time) of the process that moved `name` aside; None when it is a layer.
fn remover_of(name: &str) -> Option<(i32, u64)> {
    let mut parts = name.strip_prefix(ASIDE)?.split('.');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    Some((pid, start))
}

fn entries(dir: &Path) -> std::io::Result<Vec<OsString>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_aside_names_name_their_remover_and_no_id() {
        assert_eq!(remover_of("~reclaim.12.345.0"), Some((12, 345)));
        assert_eq!(remover_of("mrt-1-2"), None);
        assert!(state::validate_id("~reclaim.12.345.0").is_err());
    }

    #[test]
    fn only_an_empty_or_record_less_layer_counts_as_half_made() {
        let dir = std::env::temp_dir().join(format!("minirunc-reclaim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(half_made(&dir));
        std::fs::write(dir.join(RECORD_TMP), "{").unwrap();
        assert!(half_made(&dir));
        std::fs::create_dir(dir.join("upper")).unwrap();
        assert!(!half_made(&dir));
        assert_eq!(keep_reason(&dir, None), Some(Verdict::NoRecord));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
