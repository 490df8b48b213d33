//! OCI image archive: an image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) as a
//! tar stream, the form `ctr image import`, `podman load` and `umoci` read.
//!
//! Each layer is written once to an anonymous temp file while both its digests are computed
//! (the uncompressed `diff_id` and the blob's own), then copied into the archive: the blob's
//! size must be known before its tar header, and memory stays flat.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::compress::with_compressor;
use super::tarsink::{hex, Mode, TarSink};
use super::walk::walk;
use super::{CommitOptions, Compression};

const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The image's name and the run settings stored in its config.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// Repository, e.g. `localhost/myapp` or `docker.io/library/myapp`.
    pub name: String,
    pub tag: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// Working directory; empty leaves it unset.
    pub cwd: String,
    /// `uid[:gid]` or a user name; empty leaves it unset.
    pub user: String,
}

/// A blob written to a temp file, with what the manifest needs to know of it.
struct Blob {
    file: File,
    digest: String,
    size: u64,
}

/// Hashes and counts what passes through to the file.
struct HashingFile {
    file: File,
    hash: Sha256,
    size: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes an OCI image archive to `out`. `lowers` are the read-only layers, topmost first as
/// in overlay's `lowerdir=` option; `upper` holds the container's changes. Every directory
/// becomes one layer (lowers with overlay whiteouts are handled like the upper), so the image
/// stacks exactly as the overlay did, and a bundle's base layer has the same digest in every
/// commit of it.
pub fn write_oci_archive<W: Write + Send>(
    lowers: &[PathBuf],
    upper: &Path,
    image: &ImageConfig,
    out: W,
    opts: &CommitOptions,
) -> Result<()> {
    let temp_dir = opts.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let created = crate::logging::rfc3339(SystemTime::now());
    let mut archive = tar::Builder::new(BufWriter::with_capacity(1 << 20, out));
    add_dir(&mut archive, "blobs/")?;
    add_dir(&mut archive, "blobs/sha256/")?;
    let mut written = HashSet::new();
    let (mut layers, mut diff_ids, mut history) = (Vec::new(), Vec::new(), Vec::new());
    for dir in lowers.iter().rev().map(PathBuf::as_path).chain([upper]) {
        let (blob, diff_id) = layer_blob(dir, &temp_dir, opts)
            .with_context(|| format!("writing layer of {}", dir.display()))?;
        layers.push(json!({
            "mediaType": layer_media_type(opts.compression),
            "digest": blob.digest,
            "size": blob.size,
        }));
        diff_ids.push(Value::String(diff_id));
        history.push(json!({ "created": created, "created_by": format!("minirunc commit {}", dir.display()) }));
        add_blob(&mut archive, &mut written, blob)?;
    }
    let config = json!({
        "created": created,
        "architecture": oci_arch(),
        "os": "linux",
        "config": run_config(image),
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": history,
    });
    let config = add_json(&mut archive, &mut written, &temp_dir, &config)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": { "mediaType": MEDIA_CONFIG, "digest": config.0, "size": config.1 },
        "layers": layers,
    });
    let manifest = add_json(&mut archive, &mut written, &temp_dir, &manifest)?;
    let full_name = format!("{}:{}", image.name, image.tag);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest.0,
            "size": manifest.1,
            // The full name in both: podman names the image after ref.name as it is, so a
            // bare tag there would load as `localhost/<tag>:latest`.
            "annotations": {
                "org.opencontainers.image.ref.name": full_name,
                "io.containerd.image.name": full_name,
            },
        }],
    });
    add_file(&mut archive, "index.json", &serde_json::to_vec(&index)?)?;
    add_file(
        &mut archive,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    archive
        .into_inner()
        .context("ending OCI archive")?
        .flush()
        .context("flushing OCI archive")?;
    Ok(())
}

fn run_config(image: &ImageConfig) -> Value {
    let mut config = serde_json::Map::new();
    if !image.cmd.is_empty() {
        config.insert("Cmd".into(), json!(image.cmd));
    }
    if !image.env.is_empty() {
        config.insert("Env".into(), json!(image.env));
    }
    if !image.cwd.is_empty() {
        config.insert("WorkingDir".into(), json!(image.cwd));
    }
    if !image.user.is_empty() {
        config.insert("User".into(), json!(image.user));
    }
    Value::Object(config)
}

/// Writes the layer of `dir` to a temp file; gives the blob and its uncompressed digest.
fn layer_blob(dir: &Path, temp_dir: &Path, opts: &CommitOptions) -> Result<(Blob, String)> {
    let file = temp_file(temp_dir)?;
    let sink = HashingFile {
        file,
        hash: Sha256::new(),
        size: 0,
    };
    let (diff_id, sink) = with_compressor(sink, opts, |w| {
        let mut tar = TarSink::new(w, Mode::Diff, opts, true);
        walk(dir, &[], false, &mut tar)?;
        let (_, digest) = tar.finish()?;
        digest.context("layer digest was not computed")
    })?;
    let blob = Blob {
        file: sink.file,
        digest: format!("sha256:{}", hex(&sink.hash.finalize())),
        size: sink.size,
    };
    Ok((blob, format!("sha256:{diff_id}")))
}

/// Serializes `value` as a blob; gives its digest and size.
fn add_json<W: Write>(
    archive: &mut tar::Builder<W>,
    written: &mut HashSet<String>,
    temp_dir: &Path,
    value: &Value,
) -> Result<(String, u64)> {
    let bytes = serde_json::to_vec(value)?;
    let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
    let mut file = temp_file(temp_dir)?;
    file.write_all(&bytes)
        .context("writing JSON blob to temp file")?;
    let blob = Blob {
        file,
        digest: digest.clone(),
        size: bytes.len() as u64,
    };
    add_blob(archive, written, blob)?;
    Ok((digest, bytes.len() as u64))
}

fn add_blob<W: Write>(
    archive: &mut tar::Builder<W>,
    written: &mut HashSet<String>,
    mut blob: Blob,
) -> Result<()> {
    if !written.insert(blob.digest.clone()) {
        return Ok(()); // identical layers share one blob
    }
    blob.file.rewind().context("rewinding blob temp file")?;
    let hex_part = blob.digest.trim_start_matches("sha256:");
    let mut header = file_header(blob.size);
    archive
        .append_data(
            &mut header,
            format!("blobs/sha256/{hex_part}"),
            BufReader::with_capacity(1 << 20, blob.file),
        )
        .with_context(|| format!("adding blob {}", blob.digest))
}

fn add_file<W: Write>(archive: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut header = file_header(data.len() as u64);
    archive
        .append_data(&mut header, path, data)
        .with_context(|| format!("adding {path}"))
}

fn add_dir<W: Write>(archive: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    archive
        .append_data(&mut header, path, io::empty())
        .with_context(|| format!("adding {path}"))
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header
}

/// An unnamed file in `dir` (O_TMPFILE): nothing is left behind whatever happens.
fn temp_file(dir: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .with_context(|| format!("creating temp file in {}", dir.display()))
}

fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// GOARCH names, which the image spec uses.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
