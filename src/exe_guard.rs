//! The runtime binary as seen from containers (runc CVE-2019-5736 class).
//!
//! minirunc forks into containers without re-executing itself, so a container process that
//! executes `/proc/self/exe` (directly, through a symlink or a `#!/proc/self/exe` script) runs
//! the host's minirunc binary; any process of the container can then open `/proc/<pid>/exe`
//! and, once no minirunc runs any more, reopen it for writing and replace the host binary.
//! Before forking into a container the runtime therefore moves its own image onto a detached,
//! read-only bind mount of its binary: every reference the container can reach is on that
//! mount, and a write through it fails with EROFS. The mount belongs to no namespace, so no
//! one can make it writable again. Root swaps the image in place (`swap_image`: the same bytes,
//! mapped from the read-only view, then PR_SET_MM_MAP's exe_fd), which costs a few syscalls instead
//! of a second execve and dynamic link; where that is refused the runtime re-executes itself
//! from the read-only view. A user, who may not mount, re-executes from a memfd copy sealed
//! against writes (runc's original fix).

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

/// Set across the re-execution to stop a loop when the binary still is not read-only.
const MARKER: &str = "_MINIRUNC_EXE_GUARD";

/// Re-execute from a read-only view of the binary unless it already is one. Call first thing,
/// single-threaded, in every verb that forks into a container.
pub fn ensure_read_only_exe() -> Result<()> {
    let reexecuted = std::env::var_os(MARKER).is_some();
    // The variable must not reach hooks or anything the runtime runs later.
    std::env::remove_var(MARKER);
    if exe_is_read_only()? {
        if reexecuted {
            // execveat through an fd names the process after the fd number.
            prctl::set_name("minirunc")
                .map_err(|e| anyhow::anyhow!("prctl PR_SET_NAME: errno {e}"))?;
        }
        return Ok(());
    }
    if reexecuted {
        bail!("/proc/self/exe is still writable after re-executing from a read-only mount");
    }
    let tree = read_only_exe()?;
    // A user may not swap (CAP_SYS_ADMIN). Refused for root too (a mapping the swap does not
    // recognise, a kernel without checkpoint/restore), the process runs on, since every step
    // keeps the memory's contents, and re-executes instead.
    let root = nix::unistd::geteuid().is_root();
    if root && swap_image(&tree).is_ok() && exe_is_read_only()? {
        return Ok(());
    }
    std::env::set_var(MARKER, "1");
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("a command-line argument contains a NUL byte")?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .context("an environment variable contains a NUL byte")?;
    let err = nix::unistd::execveat(&tree, c"", &args, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH)
        .unwrap_err();
    Err(err).context("re-execute minirunc from its read-only mount")
}

/// Whether the running binary lies on a read-only mount (after the re-execution, or installed so)
/// or is a write-sealed memfd (the rootless re-execution).
fn exe_is_read_only() -> Result<bool> {
    let st = nix::sys::statvfs::statvfs("/proc/self/exe").context("statvfs /proc/self/exe")?;
    if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(true);
    }
    let exe = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    Ok(seals >= 0 && seals & libc::F_SEAL_WRITE != 0)
}

/// The binary to re-execute: a read-only detached mount, or for a user who may not mount (no
/// CAP_SYS_ADMIN over its mount namespace: a user, or root of a user namespace that does not
/// own it) a sealed in-memory copy, which no one can write either.
fn read_only_exe() -> Result<OwnedFd> {
    match read_only_clone() {
        Ok(fd) => Ok(fd),
        Err(e) if crate::rootless::host_root() => Err(e),
        Err(_) => sealed_copy(),
    }
}

/// A copy of the binary in a memfd sealed against any write, growth or shrinking.
fn sealed_copy() -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let fd = unsafe { libc::memfd_create(c"minirunc".as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for the runtime binary");
    }
    let mut copy = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut exe = std::fs::File::open("/proc/self/exe").context("open /proc/self/exe")?;
    std::io::copy(&mut exe, &mut copy).context("copy the runtime binary into a memfd")?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error()).context("seal the memfd copy of the binary");
    }
    Ok(copy.into())
}

/// A detached bind mount of the binary (open_tree OPEN_TREE_CLONE), made read-only.
fn read_only_clone() -> Result<OwnedFd> {
    let fd = crate::rootfs::mounts::clone_mount(None, c"/proc/self/exe")
        .context("open_tree /proc/self/exe (a detached bind mount of the runtime binary)")?;
    crate::rootfs::mounts::set_recursive_attrs(&fd, crate::rootfs::mounts::MOUNT_ATTR_RDONLY, 0)
        .with_context(|| {
            format!(
                "make the bind mount of the runtime binary (fd {}) read-only",
                fd.as_raw_fd()
            )
        })?;
    Ok(fd)
}

/// One mapping of the running binary, from /proc/self/maps.
struct ImageMapping {
    start: usize,
    len: usize,
    prot: libc::c_int,
    offset: libc::off_t,
    /// Holds pages written since mapped (relocations, statics): they are copied, not remapped.
    written: bool,
}

/// Make `image` (a read-only view of the running binary) the process's image without an execve:
/// map each clean mapping of the binary afresh from `image` (the same inode, so the same page
/// cache), copy each written one into anonymous memory at the same address, then point
/// /proc/self/exe at `image`. The kernel refuses the last step while any mapping of the old
/// file is left, so success means nothing in this process refers to the writable file.
fn swap_image(image: &OwnedFd) -> Result<()> {
    let file = std::fs::File::open(format!("/proc/self/fd/{}", image.as_raw_fd()))
        .context("open the read-only view of the runtime binary")?;
    let exe = std::fs::metadata("/proc/self/exe").context("stat /proc/self/exe")?;
    // maps, not smaps: smaps also walks the page tables to count pages; which mappings hold
    // written pages follows from the program headers instead.
    let maps =
        crate::fsutil::read_kernel_file("/proc/self/maps").context("read /proc/self/maps")?;
    let relro =
        relro_range().context("no PT_PHDR or PT_GNU_RELRO in the loaded program headers")?;
    let mappings = image_mappings(&maps, exe.dev(), exe.ino(), &relro)?;
    for m in &mappings {
        // SAFETY: the same bytes end up at the same addresses with the same protection; only
        // this thread runs, and nothing between the copy and the mremap writes to the mapping.
        unsafe {
            if m.written {
                copy_to_anonymous(m)?;
            } else {
                let addr = m.start as *mut libc::c_void;
                let flags = libc::MAP_PRIVATE | libc::MAP_FIXED;
                let got = libc::mmap(addr, m.len, m.prot, flags, file.as_raw_fd(), m.offset);
                if got != addr {
                    return Err(std::io::Error::last_os_error()).context("mmap the binary");
                }
            }
        }
    }
    set_exe_file(&file)
}

/// struct prctl_mm_map of <linux/prctl.h>.
#[repr(C)]
struct MmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: *const u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// Point /proc/self/exe at `file`. PR_SET_MM_MAP rather than PR_SET_MM_EXE_FILE: it asks for
/// CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE), which a runtime has, where the other asks for
/// CAP_SYS_RESOURCE, which hosts drop. It sets the whole memory layout at once, so it is given
/// the current one, from /proc/self/stat, and the auxv left alone (size 0).
fn set_exe_file(file: &std::fs::File) -> Result<()> {
    let stat =
        crate::fsutil::read_kernel_file("/proc/self/stat").context("read /proc/self/stat")?;
    // Fields after the command name, which may itself hold spaces and parentheses; field N of
    // proc_pid_stat(5) is at index N - 3.
    let rest = stat.rsplit_once(')').context("/proc/self/stat: no ')'")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("/proc/self/stat: field {n}"))
    };
    let mut map = MmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        brk: 0,
        start_stack: field(28)?,
        arg_start: field(48)?,
        arg_end: field(49)?,
        env_start: field(50)?,
        env_end: field(51)?,
        auxv: std::ptr::null(),
        auxv_size: 0,
        exe_fd: file.as_raw_fd() as u32,
    };
    // Read last, with no allocation after it: the kernel sets the break to this value.
    // SAFETY: brk(0) only reports the current break.
    map.brk = unsafe { libc::syscall(libc::SYS_brk, 0) } as u64;
    let size = std::mem::size_of::<MmMap>() as libc::c_ulong;
    let addr = &map as *const MmMap as libc::c_ulong;
    // SAFETY: the kernel reads `size` bytes of `map`, which lives across the call.
    if unsafe { libc::prctl(libc::PR_SET_MM, libc::PR_SET_MM_MAP, addr, size, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl PR_SET_MM_MAP exe_fd");
    }
    Ok(())
}

/// Replace mapping `m` with an anonymous copy of its contents.
unsafe fn copy_to_anonymous(m: &ImageMapping) -> Result<()> {
    if m.prot & libc::PROT_READ == 0 {
        bail!(
            "an unreadable written mapping of the binary at {:#x}",
            m.start
        );
    }
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let copy = libc::mmap(std::ptr::null_mut(), m.len, rw, anon, -1, 0);
    if copy == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error()).context("mmap a copy of the binary's data");
    }
    std::ptr::copy_nonoverlapping(m.start as *const u8, copy as *mut u8, m.len);
    let moved = libc::mprotect(copy, m.len, m.prot) == 0
        && libc::mremap(
            copy,
            m.len,
            m.len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            m.start as *mut libc::c_void,
        ) == m.start as *mut libc::c_void;
    if !moved {
        let err = std::io::Error::last_os_error();
        libc::munmap(copy, m.len);
        return Err(err).context("move the copy of the binary's data into place");
    }
    Ok(())
}

/// The addresses the loader relocated and then made read-only (PT_GNU_RELRO): the only pages of
/// a read-only mapping of the binary that differ from the file.
fn relro_range() -> Option<std::ops::Range<usize>> {
    // SAFETY: getauxval only reads the auxiliary vector, whose AT_PHDR and AT_PHNUM describe
    // the program headers the kernel mapped with the binary; they stay mapped for its lifetime.
    let headers = unsafe {
        let phdr = libc::getauxval(libc::AT_PHDR) as *const libc::Elf64_Phdr;
        let phnum = libc::getauxval(libc::AT_PHNUM) as usize;
        if phdr.is_null() {
            return None;
        }
        std::slice::from_raw_parts(phdr, phnum)
    };
    let own = headers.iter().find(|h| h.p_type == libc::PT_PHDR)?;
    let load_bias = headers.as_ptr() as usize - own.p_vaddr as usize;
    let relro = headers.iter().find(|h| h.p_type == libc::PT_GNU_RELRO)?;
    let start = load_bias + relro.p_vaddr as usize;
    Some(start..start + relro.p_memsz as usize)
}

/// The mappings of the file with device `dev` and inode `ino` in maps text. Written ones are
/// those the process may write and those holding `relro`.
fn image_mappings(
    maps: &str,
    dev: u64,
    ino: u64,
    relro: &std::ops::Range<usize>,
) -> Result<Vec<ImageMapping>> {
    let want_dev = format!("{:02x}:{:02x}", libc::major(dev), libc::minor(dev));
    let want_ino = ino.to_string();
    let mut found = Vec::new();
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[3] != want_dev || f[4] != want_ino {
            continue;
        }
        let (start, end) = f[0].split_once('-').context("maps: a range without '-'")?;
        let start = usize::from_str_radix(start, 16).context("maps: range start")?;
        let end = usize::from_str_radix(end, 16).context("maps: range end")?;
        let perms = f[1].as_bytes();
        if perms.get(3) != Some(&b'p') {
            bail!("a shared mapping of the runtime binary at {start:#x}");
        }
        let flag = |i: usize, c: u8, p: libc::c_int| if perms[i] == c { p } else { 0 };
        let prot = flag(0, b'r', libc::PROT_READ)
            | flag(1, b'w', libc::PROT_WRITE)
            | flag(2, b'x', libc::PROT_EXEC);
        found.push(ImageMapping {
            start,
            len: end - start,
            prot,
            offset: libc::off_t::from_str_radix(f[2], 16).context("maps: offset")?,
            written: prot & libc::PROT_WRITE != 0 || (start < relro.end && relro.start < end),
        });
    }
    Ok(found)
}
