//! Writes `minirunc::commit::write_oci_archive` for manual checks with real clients:
//! `commit_oci OUT NAME:TAG UPPER LOWER... ` (gzip layers; Cmd /bin/sh).

use std::fs::File;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use minirunc::commit::{write_oci_archive, CommitOptions, Compression, ImageConfig};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, name_tag, upper, lowers @ ..] = args.as_slice() else {
        bail!("usage: commit_oci OUT NAME:TAG UPPER LOWER...");
    };
    let Some((name, tag)) = name_tag.rsplit_once(':') else {
        bail!("image name {name_tag} has no :TAG");
    };
    let image = ImageConfig {
        name: name.into(),
        tag: tag.into(),
        cmd: vec!["/bin/sh".into()],
        env: vec!["PATH=/bin:/usr/bin".into()],
        ..ImageConfig::default()
    };
    let lowers: Vec<PathBuf> = lowers.iter().map(PathBuf::from).collect();
    let opts = CommitOptions {
        compression: Compression::Gzip,
        progress: true,
        ..CommitOptions::default()
    };
    let file = File::create(out).with_context(|| format!("creating {out}"))?;
    write_oci_archive(&lowers, upper.as_ref(), &image, file, &opts)
}
