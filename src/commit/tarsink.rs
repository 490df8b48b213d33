//! Turns walked entries into tar records: GNU headers with numeric owners, PAX records for
//! xattrs and sub-second mtimes, hard links, and in diff mode overlay's whiteouts as OCI's.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::Mode as FileMode;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::progress::Progress;
use super::walk::{Entry, Visitor};
use super::xattr::{overlay_prefix, Target, Xattrs};
use super::{CommitOptions, Summary};

const OUT_BUFFER: usize = 1 << 20;
const COPY_BUFFER: usize = 256 << 10;
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every file as it is.
    Tree,
    /// An overlay upper dir: whiteouts and opaque dirs become OCI whiteout entries.
    Diff,
}

/// Counts (and optionally hashes) the uncompressed tar stream.
struct Meter<'w> {
    inner: &'w mut dyn Write,
    bytes: u64,
    hash: Option<Sha256>,
}

impl Write for Meter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        if let Some(h) = &mut self.hash {
            h.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) struct TarSink<'w> {
    tar: tar::Builder<BufWriter<Meter<'w>>>,
    mode: Mode,
    subsecond: bool,
    copy_buf: Vec<u8>,
    /// First archived path of each file with several links.
    links: HashMap<(u64, u64), Vec<u8>>,
    xattrs: Xattrs,
    pax: Vec<u8>,
    name: Vec<u8>,
    summary: Summary,
    progress: Progress,
}

impl<'w> TarSink<'w> {
    /// `hash`: also compute the sha256 of the uncompressed tar (an OCI layer's diff_id).
    pub(crate) fn new(
        sink: &'w mut dyn Write,
        mode: Mode,
        opts: &CommitOptions,
        hash: bool,
    ) -> Self {
        let meter = Meter {
            inner: sink,
            bytes: 0,
            hash: hash.then(Sha256::new),
        };
        TarSink {
            tar: tar::Builder::new(BufWriter::with_capacity(OUT_BUFFER, meter)),
            mode,
            subsecond: opts.subsecond_mtime,
            copy_buf: vec![0; COPY_BUFFER],
            links: HashMap::new(),
            xattrs: Xattrs::default(),
            pax: Vec::new(),
            name: Vec::new(),
            summary: Summary::default(),
            progress: Progress::new(opts.progress),
        }
    }

    /// Ends the archive; gives the summary and, when asked for, the sha256 hex digest.
    pub(crate) fn finish(self) -> Result<(Summary, Option<String>)> {
        let buffered = self.tar.into_inner().context("ending tar stream")?;
        let meter = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .context("flushing tar stream")?;
        let mut summary = self.summary;
        summary.tar_bytes = meter.bytes;
        let mut progress = self.progress;
        progress.done(summary.entries, summary.file_bytes);
        Ok((summary, meter.hash.map(|h| hex(&h.finalize()))))
    }

    fn emit(&mut self, e: &Entry, file: Option<File>) -> Result<()> {
        let st = e.stat;
        let mut header = Header::new_gnu();
        header.set_mode(st.mode & 0o7777);
        header.set_uid(u64::from(st.uid));
        header.set_gid(u64::from(st.gid));
        header.set_mtime(u64::try_from(st.mtime).unwrap_or(0));
        header.set_size(0);
        set_name(&mut self.name, e.rel, st.kind() == libc::S_IFDIR);
        self.write_pax(st.mtime, st.mtime_nsec)?;
        let path = Path::new(OsStr::from_bytes(&self.name));
        // Any non-directory can have several names; later ones become link entries.
        if st.nlink > 1 && st.kind() != libc::S_IFDIR {
            if let Some(first) = self.links.get(&st.id) {
                header.set_entry_type(EntryType::Link);
                let first = Path::new(OsStr::from_bytes(first));
                self.tar.append_link(&mut header, path, first)?;
                return Ok(());
            }
            self.links.insert(st.id, e.rel.to_vec());
        }
        match st.kind() {
            libc::S_IFREG => {
                header.set_entry_type(EntryType::Regular);
                header.set_size(st.size);
                self.tar.append_data(&mut header, path, io::empty())?;
                if let Some(f) = file {
                    self.copy_data(f, st.size)?;
                }
            }
            libc::S_IFDIR => {
                header.set_entry_type(EntryType::Directory);
                self.tar.append_data(&mut header, path, io::empty())?;
            }
            libc::S_IFLNK => {
                let target = readlinkat(e.parent, e.name).context("reading symlink")?;
                header.set_entry_type(EntryType::Symlink);
                self.tar
                    .append_link(&mut header, path, Path::new(&target))?;
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                header.set_entry_type(match st.kind() {
                    libc::S_IFCHR => EntryType::Char,
                    libc::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                });
                header.set_device_major(st.rdev.0)?;
                header.set_device_minor(st.rdev.1)?;
                self.tar.append_data(&mut header, path, io::empty())?;
            }
            other => bail!("unsupported file type {other:o}"),
        }
        Ok(())
    }

    /// Copies exactly `size` bytes (zeros if the file shrank) and pads to a tar block.
    fn copy_data(&mut self, mut file: File, size: u64) -> Result<()> {
        let out = self.tar.get_mut();
        let mut left = size;
        while left > 0 {
            let want = self
                .copy_buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match file.read(&mut self.copy_buf[..want]) {
                Ok(0) => {
                    // Shrank while being read: keep the archive valid, as GNU tar does.
                    self.copy_buf[..want].fill(0);
                    want
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            out.write_all(&self.copy_buf[..n])?;
            left -= n as u64;
        }
        let pad = (512 - size % 512) % 512;
        out.write_all(&[0; 512][..pad as usize])?;
        self.summary.file_bytes += size;
        Ok(())
    }

    /// Writes a PAX extended header for the next entry if it has xattrs or a fractional mtime.
    fn write_pax(&mut self, mtime: i64, nsec: u32) -> Result<()> {
        self.pax.clear();
        if self.subsecond && nsec != 0 {
            pax_record(
                &mut self.pax,
                b"mtime",
                format!("{mtime}.{nsec:09}").as_bytes(),
            );
        }
        for (name, value) in self.xattrs.iter() {
            if name.starts_with(overlay_prefix()) {
                continue;
            }
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax_record(&mut self.pax, &key, value);
        }
        if self.pax.is_empty() {
            return Ok(());
        }
        let mut header = Header::new_ustar();
        header.set_path("././@PaxHeader")?;
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_size(self.pax.len() as u64);
        header.set_cksum();
        self.tar.append(&header, &self.pax[..])?;
        Ok(())
    }

    /// An empty regular file named `<dir of rel>/<prefix><name>`: OCI's whiteout forms.
    fn write_marker(&mut self, dir: &[u8], name: &[u8], e: &Entry) -> Result<()> {
        self.name.clear();
        if !dir.is_empty() {
            self.name.extend_from_slice(dir);
            self.name.push(b'/');
        }
        self.name.extend_from_slice(name);
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(0);
        header.set_mtime(u64::try_from(e.stat.mtime).unwrap_or(0));
        let path = Path::new(OsStr::from_bytes(&self.name));
        self.tar.append_data(&mut header, path, io::empty())?;
        self.summary.entries += 1;
        Ok(())
    }

    /// Diff mode: writes a whiteout in place of `e` if it is one; true when it was.
    fn overlay_whiteout(&mut self, e: &Entry) -> Result<bool> {
        let st = e.stat;
        let device_whiteout = st.kind() == libc::S_IFCHR && st.rdev == (0, 0);
        let xattr_whiteout =
            st.kind() == libc::S_IFREG && self.xattrs.overlay("whiteout").is_some();
        if self.xattrs.overlay("redirect").is_some() {
            bail!("redirected directory (mount the overlay with redirect_dir=off)");
        }
        if self.xattrs.overlay("metacopy").is_some() {
            bail!("metadata-only copy-up (mount the overlay with metacopy=off)");
        }
        if !(device_whiteout || xattr_whiteout) {
            return Ok(false);
        }
        let (dir, base) = split(e.rel);
        let mut name = WHITEOUT_PREFIX.to_vec();
        name.extend_from_slice(base);
        self.write_marker(dir, &name, e)?;
        Ok(true)
    }
}

impl Visitor for TarSink<'_> {
    fn visit(&mut self, e: &Entry) -> Result<()> {
        let kind = e.stat.kind();
        if kind == libc::S_IFSOCK {
            return Ok(()); // tar has no socket type; a socket is recreated by its server anyway
        }
        let file = if kind == libc::S_IFREG {
            // O_NONBLOCK: should the file be swapped for a fifo meanwhile, do not hang on it.
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
            match openat(e.parent, e.name, flags, FileMode::empty()) {
                Ok(fd) => Some(File::from(fd)),
                Err(nix::errno::Errno::ENOENT) => return Ok(()), // deleted since the stat
                Err(err) => return Err(err).context("opening file"),
            }
        } else {
            None
        };
        let target = match (&file, e.dir) {
            (Some(f), _) => Target::Fd(f.as_fd()),
            (None, Some(d)) => Target::Fd(d),
            (None, None) => Target::Path(e.abs),
        };
        match self.xattrs.read(target) {
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            other => other.context("reading xattrs")?,
        }
        if self.mode == Mode::Diff && self.overlay_whiteout(e)? {
            return Ok(());
        }
        self.emit(e, file)?;
        self.summary.entries += 1;
        if self.mode == Mode::Diff
            && kind == libc::S_IFDIR
            && self.xattrs.overlay("opaque") == Some(b"y")
        {
            self.write_marker(e.rel, OPAQUE_MARKER, e)?;
        }
        self.progress
            .update(self.summary.entries, self.summary.file_bytes);
        Ok(())
    }
}

/// Archive name of an entry: `./` for the root, a trailing slash for directories.
fn set_name(name: &mut Vec<u8>, rel: &[u8], is_dir: bool) {
    name.clear();
    if rel.is_empty() {
        name.extend_from_slice(b"./");
        return;
    }
    name.extend_from_slice(rel);
    if is_dir {
        name.push(b'/');
    }
}

fn split(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (b"", rel),
    }
}

/// Appends one PAX record, `<len> <key>=<value>\n`, where len counts its own digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for value_len in [0usize, 1, 5, 6, 7, 90, 94, 95, 96, 994, 995, 996, 10_000] {
            let mut out = Vec::new();
            pax_record(&mut out, b"k", &vec![b'v'; value_len]);
            let space = out.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..space]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "value length {value_len}");
        }
    }
}
