//! Writes `minirunc::commit::write_tree` of a directory to a file, for timing against GNU tar:
//! `commit_tree ROOT OUT [none|gzip|zstd]` (OUT `-` is stdout).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use minirunc::commit::{write_tree, CommitOptions, Compression};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (root, out) = match args.as_slice() {
        [root, out, ..] => (PathBuf::from(root), out.as_str()),
        _ => bail!("usage: commit_tree ROOT OUT [none|gzip|zstd]"),
    };
    let compression = match args.get(2).map(String::as_str) {
        None | Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some(other) => bail!("unknown compression {other}"),
    };
    let opts = CommitOptions {
        compression,
        progress: true,
        ..CommitOptions::default()
    };
    let sink: Box<dyn Write + Send> = if out == "-" {
        // A File on fd 1 avoids Stdout's line buffering and lock.
        Box::new(File::from(std::io::stdout().as_fd().try_clone_to_owned()?))
    } else {
        Box::new(File::create(out).with_context(|| format!("creating {out}"))?)
    };
    let summary = write_tree(&root, &[], sink, &opts)?;
    eprintln!("{summary:?}");
    Ok(())
}
