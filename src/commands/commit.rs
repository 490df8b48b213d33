//! `minirunc commit`: flags to a `commit::Commit`, and the output file (or stdout).

use std::fs::File;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cli::CommitArgs;
use crate::commit::{commit_container, parse_image_name, Commit, CommitOptions, Compression};
use crate::container::{self, Paths};
use crate::idmap::IdMaps;
use crate::state::Status;
use crate::userns::{self, Entry};

pub fn commit(paths: &Paths, a: &CommitArgs) -> Result<i32> {
    let what = match (a.diff, a.format.as_str(), &a.name) {
        (true, "oci-archive", _) => {
            bail!("--diff writes one layer, --format oci-archive a whole image: choose one")
        }
        (_, "tar", Some(_)) => bail!("--name names an image: use it with --format oci-archive"),
        (true, _, _) => Commit::Diff,
        (false, "oci-archive", name) => {
            let default = format!("localhost/{}", a.id.to_ascii_lowercase());
            let (name, tag) = parse_image_name(name.as_deref().unwrap_or(&default))?;
            Commit::OciArchive { name, tag }
        }
        _ => Commit::Tree,
    };
    let compression = match a.compress.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        _ => Compression::None,
    };
    let opts = CommitOptions {
        compression,
        progress: true,
        ..Default::default()
    };
    let commit = |out: &File| {
        as_container_root(paths, &a.id, || {
            commit_container(paths, &a.id, &what, out, &opts)
        })
    };
    if a.output.as_os_str() == "-" {
        if std::io::stdout().is_terminal() {
            bail!("refusing to write an archive to a terminal: redirect stdout or name a file");
        }
        let out = File::from(nix::unistd::dup(std::io::stdout()).context("dup stdout")?);
        commit(&out)?;
    } else {
        write_atomically(&a.output, commit)?;
    }
    Ok(0)
}

/// A user reads a container's files as the container's root: in its user namespace while it
/// runs, else in a new one with its mappings. The files of its other ids are then readable,
/// and their owners are the ids the container gave them, which the image must record.
fn as_container_root(paths: &Paths, id: &str, work: impl FnOnce() -> Result<()>) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return work();
    }
    let st = container::load(paths, id)?;
    let spec: oci_spec::runtime::Spec =
        serde_json::from_str(st.config.get()).context("the saved config.json")?;
    let Some(maps) = IdMaps::of(&spec) else {
        return work();
    };
    match container::status_of(paths, &st) {
        Status::Stopped => userns::as_root_in(Entry::New(&maps), work),
        _ => userns::as_root_in(Entry::Join(st.pid), work),
    }
}

/// Writes to a temp file next to `path` and renames it into place: an interrupted or failed
/// commit never leaves a truncated archive under the requested name.
fn write_atomically(path: &Path, f: impl FnOnce(&File) -> Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("output {}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.minirunc-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let written = f(&file).and_then(|()| {
        file.sync_all()
            .with_context(|| format!("sync {}", tmp.display()))
    });
    match written {
        Ok(()) => std::fs::rename(&tmp, path)
            .with_context(|| format!("rename {} to {}", tmp.display(), path.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
