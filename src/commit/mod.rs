//! `minirunc commit`: a container's filesystem as a tar, an OCI layer or an OCI image archive.
//!
//! Everything here works on directories; finding a container's layers is the caller's job.
//! Output streams: memory stays flat however large the tree (one directory listing per level
//! of depth, plus the paths of files that have more than one link).
//!
//! Rules shared by every walk:
//! - Entries are sorted by name, so the same tree gives the same archive.
//! - Mount points are cut: anything on another mount than the walked root, and every path in
//!   `skip`, is left out; when it is a directory it stays as an empty directory (owner and mode
//!   as seen), so the image keeps `/proc`, `/sys`, a volume's mount point.
//! - overlay's own `trusted.overlay.*` xattrs (`user.overlay.*` when a user commits) are never
//!   copied.
//! - A file that shrinks while being read is padded with zeros, one that grows is cut at the
//!   size seen at stat time, one deleted meanwhile is left out: the archive stays valid while
//!   the container runs (it then holds what was on disk at the time, file by file).
//! - Sockets are left out (tar has no type for them).
//!
//! Output: any `Write + Send` (compression runs on scoped threads). For stdout pass a `File`
//! on fd 1 rather than `Stdout`, which is line-buffered and not `Send` when locked.

mod compress;
mod container;
mod oci;
mod progress;
mod tarsink;
mod walk;
mod xattr;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use container::{commit_container, parse_image_name, Commit};
pub use oci::{write_oci_archive, ImageConfig};

/// Compression of the whole output stream (tar or layer blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    /// Parallel gzip (independent blocks on all cores, one gzip member: any gunzip reads it).
    Gzip,
    /// Multithreaded zstd.
    Zstd,
}

/// How to write.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    pub compression: Compression,
    /// Compression level; `None` picks the format's default (gzip 6, zstd 3).
    pub level: Option<i32>,
    /// Compression threads; 0 means one per core.
    pub threads: usize,
    /// Show bytes and files on stderr, when stderr is a terminal.
    pub progress: bool,
    /// Store sub-second mtimes (a PAX record per entry whose mtime has nanoseconds).
    pub subsecond_mtime: bool,
    /// Where `write_oci_archive` keeps each layer blob while its digest is computed
    /// (anonymous files, gone when closed); default: the system temp dir.
    pub temp_dir: Option<PathBuf>,
}

impl Default for CommitOptions {
    fn default() -> Self {
        CommitOptions {
            compression: Compression::None,
            level: None,
            threads: 0,
            progress: false,
            subsecond_mtime: true,
            temp_dir: None,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tar entries written (files, directories, links, whiteouts...).
    pub entries: u64,
    /// Bytes of regular file contents.
    pub file_bytes: u64,
    /// Size of the uncompressed tar stream.
    pub tar_bytes: u64,
}

/// Writes the whole tree under `root` (the container's merged root) as a tar to `out`.
///
/// `skip` holds paths as the container sees them (`/proc`, `/sys`, `/dev`, volume
/// destinations); a relative path means the same. They, and anything on another mount than
/// `root` itself, are cut as described in the module docs.
pub fn write_tree<W: Write + Send>(
    root: &Path,
    skip: &[PathBuf],
    out: W,
    opts: &CommitOptions,
) -> Result<Summary> {
    let skip = walk::normalize_skip(skip)?;
    let (summary, _) = compress::with_compressor(out, opts, |sink| {
        let mut tar = tarsink::TarSink::new(sink, tarsink::Mode::Tree, opts, false);
        walk::walk(root, &skip, true, &mut tar)
            .with_context(|| format!("writing tar of {}", root.display()))?;
        Ok(tar.finish()?.0)
    })?;
    Ok(summary)
}

/// Writes the changes held in an overlay upper dir as an OCI layer: whiteouts (char device
/// 0/0, or a file with `trusted.overlay.whiteout`; `user.` as a user) become `.wh.<name>`, opaque directories
/// (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry.
///
/// The overlay must have been mounted with `redirect_dir=off` and `metacopy=off` (the
/// default on Debian): a redirected directory or a metadata-only copy-up refers to data in
/// the lower layers that the upper dir does not hold, and is refused with an error.
pub fn write_diff<W: Write + Send>(upper: &Path, out: W, opts: &CommitOptions) -> Result<Summary> {
    let (summary, _) = compress::with_compressor(out, opts, |sink| {
        let mut tar = tarsink::TarSink::new(sink, tarsink::Mode::Diff, opts, false);
        walk::walk(upper, &[], false, &mut tar)
            .with_context(|| format!("writing layer of {}", upper.display()))?;
        Ok(tar.finish()?.0)
    })?;
    Ok(summary)
}
