//! The container's process before it becomes the user's program: init (builds the root, then
//! waits for `start`) or an exec'd process (already inside). Everything that the process
//! needs from the host (sync socket, exec fifo, console socket) is an fd opened before fork.

use anyhow::{anyhow, bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Process, Spec};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::{exec_path, Launch, Role};
use crate::sync::{Channel, Message};
use crate::{hooks, rootfs, seccomp, security};

pub fn run(launch: &Launch, chan: Channel) -> ! {
    let result = match &launch.role {
        Role::Init {
            plan,
            exec_fifo,
            no_pivot,
        } => container_init(launch, &chan, plan, exec_fifo, *no_pivot),
        Role::Exec { .. } => exec_process(launch, &chan),
    };
    // Only reached on failure: success ends in execve.
    let err = result
        .err()
        .unwrap_or_else(|| anyhow!("the container process returned"));
    chan.send_error(&err);
    unsafe { libc::_exit(1) }
}

fn container_init(
    launch: &Launch,
    chan: &Channel,
    plan: &rootfs::RootPlan,
    exec_fifo: &OwnedFd,
    no_pivot: bool,
) -> Result<()> {
    let spec = launch.spec;
    nix::unistd::setsid().context("setsid")?;
    // Devices and mount points are created with exact modes; the user's umask comes later.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let root = rootfs::prepare(spec, plan)?;
    let hooks = spec.hooks().as_ref();
    if hooks.is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some()) {
        chan.send(&Message::MountsReady)?;
        chan.expect(&Message::HooksDone)?;
    }
    if let Some(list) = hooks.and_then(|h| h.create_container().as_deref()) {
        hooks::run(
            "createContainer",
            list,
            &launch.hook_state,
            process_env(spec),
        )?;
    }
    let shared_root = rootfs::requested_propagation(spec)
        .is_some_and(|f| f.contains(nix::mount::MsFlags::MS_SHARED));
    if plan.mount_ns {
        rootfs::switch_root(&root, no_pivot, shared_root)?;
    } else {
        rootfs::chroot_into(&root)?;
    }
    // sysctl before readonlyPaths: the default spec makes /proc/sys read-only.
    set_kernel_params(spec)?;
    rootfs::finish(spec)?;
    let program = prepare_process(launch, chan)?;
    chan.send(&Message::Ready)?;
    // Only a recorded init may wait for start; EOF here means the runtime died (sync step 7).
    chan.expect(&Message::Proceed)?;
    wait_for_start(exec_fifo)?;
    if let Some(list) = hooks.and_then(|h| h.start_container().as_deref()) {
        hooks::run(
            "startContainer",
            list,
            &launch.hook_state,
            process_env(spec),
        )?;
    }
    program.exec(chan)
}

/// The container process's environment: what a createContainer or startContainer hook without
/// an `env` of its own runs with.
fn process_env(spec: &oci_spec::runtime::Spec) -> &[String] {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().as_deref())
        .unwrap_or_default()
}

fn exec_process(launch: &Launch, chan: &Channel) -> Result<()> {
    if launch.console.is_some() {
        nix::unistd::setsid().context("setsid")?;
    }
    let program = prepare_process(launch, chan)?;
    chan.send(&Message::Ready)?;
    if let Role::Exec {
        join_cgroup_late: true,
        ..
    } = launch.role
    {
        // The runtime moves it into the (perhaps frozen) cgroup, then lets it go (sync step 6a).
        chan.expect(&Message::Proceed)?;
    }
    program.exec(chan)
}

/// sysctl, hostname and domainname: only meaningful inside the new namespaces.
fn set_kernel_params(spec: &Spec) -> Result<()> {
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for (key, value) in sysctl {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            std::fs::write(&path, value).with_context(|| format!("linux.sysctl {key}={value}"))?;
        }
    }
    if let Some(name) = spec.hostname() {
        nix::unistd::sethostname(name).with_context(|| format!("hostname {name:?}"))?;
    }
    if let Some(name) = spec.domainname() {
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("domainname {name:?}"));
        }
    }
    Ok(())
}

/// A process ready to execve: everything that can fail has been checked.
struct Program {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    /// A seccomp filter still to load: the last thing before execve.
    seccomp: Option<libseccomp::ScmpFilterContext>,
}

impl Program {
    fn exec(self, chan: &Channel) -> Result<()> {
        if let Some(filter) = &self.seccomp {
            load_seccomp(filter, chan)?;
        }
        let err = nix::unistd::execve(&self.path, &self.args, &self.env).unwrap_err();
        Err(anyhow::Error::new(err).context(format!("exec {:?}", self.path)))
    }
}

fn cstrings(list: &[String], what: &str) -> Result<Vec<CString>> {
    list.iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| anyhow!("{what}: {s:?} contains a NUL byte")))
        .collect()
}

/// Load the filter; with a listener, hand the notify fd to the runtime and wait until it is passed on.
fn load_seccomp(filter: &libseccomp::ScmpFilterContext, chan: &Channel) -> Result<()> {
    if let Some(fd) = seccomp::load(filter)? {
        chan.send(&Message::SeccompFd(fd.as_raw_fd()))?;
        chan.expect(&Message::Proceed)?;
    }
    Ok(())
}

/// The part common to init and exec: limits, terminal, fds, user, capabilities, cwd, and the
/// seccomp filter at the latest point its profile allows.
fn prepare_process(launch: &Launch, chan: &Channel) -> Result<Program> {
    let process: &Process = launch.process;
    let seccomp_spec = launch
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref());
    let mut filter = seccomp_spec.map(seccomp::build).transpose()?;
    // In every process of the container, init and exec'd ones alike.
    let personality = launch
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref());
    if let Some(p) = personality {
        security::set_personality(p)?;
    }
    let memory_policy = launch
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref());
    if let Some(p) = memory_policy {
        security::set_memory_policy(p)?;
    }
    let nnp = process.no_new_privileges() == Some(true);
    // Without no_new_privs, loading needs CAP_SYS_ADMIN: do it before the capabilities go (as runc).
    // A listener must get its fd during create, before init waits on the exec fifo.
    let listener = seccomp_spec.is_some_and(|s| s.listener_path().is_some());
    security::apply_limits(process)?;
    if let Some(console) = &launch.console {
        crate::tty::setup(console)?;
    }
    close_host_fds(launch.preserve_fds)?;
    let args = process.args().as_deref().unwrap_or_default();
    let env = process.env().as_deref().unwrap_or_default();
    let path = exec_path::resolve(args.first().map(String::as_str).unwrap_or_default(), env)?;
    let (args, env) = (
        cstrings(args, "process.args")?,
        cstrings(env, "process.env")?,
    );
    if !nnp {
        if let Some(f) = filter.take() {
            load_seccomp(&f, chan)?;
        }
    }
    security::switch_user(process)?;
    let cwd = process.cwd();
    nix::unistd::chdir(cwd)
        .with_context(|| format!("chdir to cwd ({}) set in config.json failed", cwd.display()))?;
    if nnp {
        security::set_no_new_privs()?;
    }
    if listener {
        if let Some(f) = filter.take() {
            load_seccomp(&f, chan)?;
        }
    }
    crate::lsm::set_exec_labels(process)?;
    if let Some(cpus) = process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_deref())
    {
        security::set_affinity(cpus)?;
    }
    Ok(Program {
        path,
        args,
        env,
        seccomp: filter,
    })
}

/// Mark every fd from 3+N on close-on-exec, so nothing of the host but stdio and the
/// preserved fds reaches the container; the preserved ones lose their close-on-exec flag.
fn close_host_fds(preserve: u32) -> Result<()> {
    let first = 3 + preserve;
    if unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) } != 0 {
        return Err(std::io::Error::last_os_error()).context("close_range");
    }
    for fd in 3..first {
        if unsafe { libc::fcntl(fd as i32, libc::F_SETFD, 0) } != 0 {
            bail!("--preserve-fds: fd {fd} is not open");
        }
    }
    Ok(())
}

/// Block until `start` writes to the exec fifo (init holds its read end).
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("wait on the exec fifo"),
        }
    }
    let mut byte = [0u8; 1];
    let n = nix::unistd::read(fifo, &mut byte).context("read the exec fifo")?;
    if n != 1 {
        bail!("the exec fifo closed without a start");
    }
    Ok(())
}
