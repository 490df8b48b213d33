//! Extended attributes of one file, read into buffers reused from file to file.

use std::ffi::CStr;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Which file to read: an open descriptor, or a path whose last component is not followed.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    Fd(BorrowedFd<'a>),
    Path(&'a CStr),
}

#[derive(Default)]
pub(crate) struct Xattrs {
    names: Vec<u8>,
    values: Vec<u8>,
    scratch: Vec<u8>,
    list: Vec<(Range<usize>, Range<usize>)>,
}

impl Xattrs {
    /// Reads all attributes of `target`; a filesystem without xattrs gives none.
    pub(crate) fn read(&mut self, target: Target) -> io::Result<()> {
        self.list.clear();
        self.values.clear();
        fill(&mut self.names, |buf| list(target, buf))?;
        let mut start = 0;
        while let Some(len) = self.names[start..].iter().position(|&b| b == 0) {
            let end = start + len;
            let name = CStr::from_bytes_until_nul(&self.names[start..])
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            match fill(&mut self.scratch, |buf| get(target, name, buf)) {
                Ok(()) => {
                    let at = self.values.len();
                    self.values.extend_from_slice(&self.scratch);
                    self.list.push((start..end, at..self.values.len()));
                }
                // Removed between list and get: it is simply not there any more.
                Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
                Err(e) => return Err(e),
            }
            start = end + 1;
        }
        Ok(())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.list
            .iter()
            .map(|(n, v)| (&self.names[n.clone()], &self.values[v.clone()]))
    }

    pub(crate) fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// overlay's own attribute `key` (e.g. `opaque`), under `overlay_prefix`.
    pub(crate) fn overlay(&self, key: &str) -> Option<&[u8]> {
        let mut name = overlay_prefix().to_vec();
        name.extend_from_slice(key.as_bytes());
        self.get(&name)
    }
}

/// Where overlay keeps its own attributes: `trusted.overlay.` on root's mounts, `user.overlay.`
/// on a user's (`userxattr`; root's containers may set those themselves, so not for root).
pub(crate) fn overlay_prefix() -> &'static [u8] {
    match crate::rootless::host_root() {
        true => b"trusted.overlay.",
        false => b"user.overlay.",
    }
}

/// Calls `op` with `buf` grown until the result fits (sizes can change between calls).
fn fill(buf: &mut Vec<u8>, op: impl Fn(&mut [u8]) -> isize) -> io::Result<()> {
    if buf.capacity() < 256 {
        buf.reserve(256);
    }
    loop {
        let cap = buf.capacity();
        buf.resize(cap, 0);
        let n = op(buf);
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => buf.reserve(cap * 2),
            Some(libc::ENOTSUP) => {
                buf.clear();
                return Ok(());
            }
            _ => return Err(err),
        }
    }
}

fn list(target: Target, buf: &mut [u8]) -> isize {
    let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: the buffer pointer and length describe a live, writable slice.
    unsafe {
        match target {
            Target::Fd(fd) => libc::flistxattr(fd.as_raw_fd(), ptr, len),
            Target::Path(p) => libc::llistxattr(p.as_ptr(), ptr, len),
        }
    }
}

fn get(target: Target, name: &CStr, buf: &mut [u8]) -> isize {
    let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: as in `list`; `name` is NUL-terminated.
    unsafe {
        match target {
            Target::Fd(fd) => libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), ptr, len),
            Target::Path(p) => libc::lgetxattr(p.as_ptr(), name.as_ptr(), ptr, len),
        }
    }
}
