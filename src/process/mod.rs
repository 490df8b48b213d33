//! The process model: the runtime forks an intermediate, which creates or joins the namespaces
//! and forks the container's process (init, or an exec'd process), then exits. No re-execution
//! of the runtime binary and no threads before a fork. See `sync` for the messages.

mod exec_path;
mod init;
mod intermediate;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::{Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd};

use crate::cgroups::Cgroup;
use crate::rootfs::RootPlan;
use crate::sync::{self, Channel, Message};

/// What the forked process becomes.
pub enum Role {
    /// The container's init: builds the root, then waits on the exec fifo for `start`.
    Init {
        plan: RootPlan,
        exec_fifo: OwnedFd,
        no_pivot: bool,
    },
    /// A process joining the running container whose init has this host pid. With
    /// `join_cgroup_late` (exec --ignore-paused, container paused) the runtime moves it into the
    /// cgroup only after its last message (`Ready`), since a frozen cgroup would stop it
    /// mid-protocol; it then waits for `Proceed`, and gets it once the cgroup is thawed. Until
    /// `Ready` it runs in the caller's cgroup: its setup is charged there and not to pids.max.
    Exec {
        init_pid: i32,
        join_cgroup_late: bool,
    },
}

pub struct Launch<'a> {
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub role: Role,
    /// A connected console socket, when the process has a terminal.
    pub console: Option<OwnedFd>,
    /// Fds 3..3+N pass to the process unchanged.
    pub preserve_fds: u32,
    /// The state JSON given to hooks run inside the container.
    pub hook_state: String,
}

/// Callbacks into the runtime at the moments the protocol defines.
pub trait Runtime {
    /// The container's cgroup, which the intermediate joins before it forks the process.
    fn cgroup(&self) -> Option<&Cgroup>;
    /// Init's mounts are ready (host pid of init): run prestart and createRuntime hooks.
    fn run_create_hooks(&mut self, init_pid: i32) -> Result<()>;
    /// Whether `run_create_hooks` has anything to do (saves a round trip when not).
    fn has_create_hooks(&self) -> bool;
    /// The process loaded a seccomp filter with a listener: hand its notify fd on.
    fn seccomp_listener(&mut self, pid: i32, fd: OwnedFd) -> Result<()>;
}

/// Fork the intermediate and drive the protocol until the process is ready; returns its host pid
/// and the runtime's end of the channel (init waits on it for step 7).
pub fn spawn(launch: &Launch, rt: &mut dyn Runtime) -> Result<(i32, Channel)> {
    let (parent, child) = sync::pair()?;
    let late = matches!(
        launch.role,
        Role::Exec {
            join_cgroup_late: true,
            ..
        }
    );
    // The intermediate starts in the cgroup2 directory and moves itself into the v1 ones, so
    // that no migration waits for a grace period (see `Cgroup::open_v1_tasks`).
    let join_now = rt.cgroup().filter(|_| !late);
    let v1_tasks = match join_now {
        Some(cg) => cg.open_v1_tasks()?,
        None => Vec::new(),
    };
    match fork_into(join_now.and_then(Cgroup::open_v2_dir))? {
        (ForkResult::Child, _) => {
            drop(parent);
            intermediate::run(launch, child, v1_tasks)
        }
        (
            ForkResult::Parent {
                child: intermediate,
            },
            in_v2,
        ) => {
            drop((child, v1_tasks));
            let mut init_pid = None;
            let joined = match join_now {
                Some(cg) if !in_v2 => cg.add_pid_to_v2(intermediate.as_raw()),
                _ => Ok(()),
            };
            let result =
                joined.and_then(|()| drive(launch, rt, &parent, intermediate, &mut init_pid));
            if result.is_err() {
                if let Some(pid) = init_pid {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let _ = kill(intermediate, Signal::SIGKILL);
                let _ = waitpid(intermediate, None);
            }
            result.map(|pid| (pid, parent))
        }
    }
}

fn drive(
    launch: &Launch,
    rt: &mut dyn Runtime,
    chan: &Channel,
    intermediate: Pid,
    init_pid: &mut Option<i32>,
) -> Result<i32> {
    let linux = launch.spec.linux().as_ref();
    let namespaces = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    if matches!(launch.role, Role::Init { .. }) && crate::namespaces::new_user_ns(namespaces) {
        chan.expect(&Message::UserNsCreated)?;
        let linux = linux.context("linux: missing")?;
        crate::idmap::write(
            intermediate,
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )?;
    }
    chan.send(&Message::Proceed)?;
    let pid = match chan.recv()? {
        Some(Message::InitPid(pid)) => pid,
        Some(Message::Error { errno, message }) => {
            return Err(sync::ChildError { errno, message }.into())
        }
        None => bail!(
            "the intermediate process {} before it reported the container process's pid",
            how_it_ended(intermediate)
        ),
        other => bail!("sync channel: expected the process's pid, got {other:?}"),
    };
    *init_pid = Some(pid);
    waitpid(intermediate, None).context("wait for the intermediate process")?;
    if matches!(launch.role, Role::Init { .. }) && rt.has_create_hooks() {
        chan.expect(&Message::MountsReady)?;
        rt.run_create_hooks(pid)?;
        chan.send(&Message::HooksDone)?;
    }
    loop {
        match chan.recv()? {
            Some(Message::Ready) => break,
            Some(Message::SeccompFd(fd)) => {
                rt.seccomp_listener(pid, take_fd(pid, fd)?)?;
                chan.send(&Message::Proceed)?;
            }
            Some(Message::Error { errno, message }) => {
                return Err(sync::ChildError { errno, message }.into())
            }
            None => bail!(
                "the container process {} before it was ready",
                how_it_ended(Pid::from_raw(pid))
            ),
            other => bail!("sync channel: expected Ready, got {other:?}"),
        }
    }
    if let Role::Exec {
        join_cgroup_late, ..
    } = launch.role
    {
        if join_cgroup_late {
            if let Some(cg) = rt.cgroup() {
                cg.add_pid(pid)?;
            }
            chan.send(&Message::Proceed)?;
            // Frozen, it reaches execve only after `resume`: waiting for that could be forever.
            // An execve failure then goes to its stderr (the checks before `Ready` passed). A
            // pause after this check makes the wait below last until resume, as runc's does.
            if rt
                .cgroup()
                .is_some_and(|cg| cg.is_freezing().unwrap_or(false))
            {
                return Ok(pid);
            }
        }
        // The socket closes on a successful execve; anything else is the exec's error.
        if let Some(Message::Error { errno, message }) = chan.recv()? {
            return Err(sync::ChildError { errno, message }.into());
        }
    }
    Ok(pid)
}

/// Fork the intermediate; with a cgroup2 directory, start it there (clone3 CLONE_INTO_CGROUP),
/// which spares the migration into it and the RCU grace period a migration waits for. The
/// bool says whether it started there; should clone3 fail, a plain fork follows and the
/// migration reports any real error.
fn fork_into(v2_dir: Option<OwnedFd>) -> Result<(ForkResult, bool)> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    if let Some(dir) = v2_dir {
        // SAFETY: an all-zero clone_args is valid (no flags); the fields set are plain values.
        let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
        args.flags = CLONE_INTO_CGROUP;
        args.exit_signal = libc::SIGCHLD as u64;
        args.cgroup = dir.as_raw_fd() as u64;
        // SAFETY: as for fork, the runtime is single-threaded here and the child only runs our
        // own code; clone3 without CLONE_VM gives the child a copy of the address space.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut libc::clone_args,
                std::mem::size_of::<libc::clone_args>(),
            )
        };
        match pid {
            0 => return Ok((ForkResult::Child, true)),
            p if p > 0 => {
                let child = Pid::from_raw(p as i32);
                return Ok((ForkResult::Parent { child }, true));
            }
            _ => {}
        }
    }
    // SAFETY: the runtime is single-threaded here; the child only runs our own code and exits.
    let forked = unsafe { fork() }.context("fork the intermediate process")?;
    Ok((forked, false))
}

/// Duplicate fd `fd` of process `pid` into the runtime (pidfd_getfd).
fn take_fd(pid: i32, fd: i32) -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(std::io::Error::last_os_error()).context("pidfd_open");
    }
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        return Err(std::io::Error::last_os_error())
            .context("pidfd_getfd of the seccomp notify fd");
    }
    Ok(unsafe { OwnedFd::from_raw_fd(got as i32) })
}

/// "was killed by SIGKILL" or "exited with status N", for a child that closed the channel early.
fn how_it_ended(child: Pid) -> String {
    use nix::sys::wait::WaitStatus;
    match waitpid(child, None) {
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
        Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
        _ => "exited".to_string(),
    }
}
