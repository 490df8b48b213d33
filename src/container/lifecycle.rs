//! start, kill, delete and the derived status.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::path::Path;

use super::{hook_state, wait_gone, Paths};
use crate::idmap::IdMaps;
use crate::rootfs::layers;
use crate::state::{self, Lock, State, Status, EXEC_FIFO};
use crate::{fsutil, hooks};

pub fn load(paths: &Paths, id: &str) -> Result<State> {
    State::load(&paths.root, id)
}

pub fn status_of(paths: &Paths, st: &State) -> Status {
    let frozen = || super::cgroup::of_state(st).is_some_and(|cg| cg.is_frozen().unwrap_or(false));
    st.status(&state::container_dir(&paths.root, &st.id), frozen)
}

/// Release the init of a created container; returns once it has executed the user's process.
pub fn start(paths: &Paths, id: &str) -> Result<()> {
    let (_lock, st) = locked(paths, id)?;
    let dir = state::container_dir(&paths.root, id);
    match status_of(paths, &st) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        other => bail!("cannot start an already {other} container"),
    }
    let fifo_path = dir.join(EXEC_FIFO);
    use nix::fcntl::OFlag;
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::Error::ENXIO => anyhow::anyhow!("cannot start container {id}: container not running"),
        e => anyhow::Error::new(e).context("open the exec fifo"),
    })?;
    nix::unistd::write(&fifo, b"0").context("write the exec fifo")?;
    // init closes its end on execve (close-on-exec): wait for that, so poststart runs after.
    loop {
        let mut fds = [nix::poll::PollFd::new(
            fifo.as_fd(),
            nix::poll::PollFlags::empty(),
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).context("wait for the container to start"),
        }
    }
    std::fs::remove_file(&fifo_path).context("remove the exec fifo")?;
    let spec = st.spec()?;
    if let Some(list) = spec.hooks().as_ref().and_then(|h| h.poststart().as_deref()) {
        hooks::run_warning("poststart", list, &hook_state(&st, Status::Running, st.pid));
    }
    Ok(())
}

pub fn parse_signal(name: &str) -> Result<Signal> {
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow::anyhow!("invalid signal {name:?}"));
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>()
        .map_err(|_| anyhow::anyhow!("invalid signal {name:?}"))
}

pub fn kill(paths: &Paths, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let st = load(paths, id)?;
    let status = status_of(paths, &st);
    if matches!(status, Status::Stopped | Status::Creating) && !all {
        bail!("container not running");
    }
    if all {
        match super::cgroup::of_state(&st) {
            Some(cg) => return cg.kill_all(sig),
            // Init's SIGKILL ends every process of its pid namespace: the same as --all.
            None if sig == Signal::SIGKILL && own_pid_namespace(&st)? => {}
            None if status == Status::Stopped => return Ok(()),
            None => return Err(super::cgroup::missing(id, "kill --all")),
        }
    }
    // pid 0 would signal our own process group.
    if status != Status::Stopped && st.pid > 0 {
        match send(Pid::from_raw(st.pid), sig) {
            // It exited (and was reaped) since its status was read: the same answer as before.
            Err(nix::Error::ESRCH) => bail!("container not running"),
            sent => sent.with_context(|| format!("kill {} {sig}", st.pid))?,
        }
    }
    Ok(())
}

/// Whether the container has a pid namespace of its own (not joined by path).
fn own_pid_namespace(st: &State) -> Result<bool> {
    let spec = st.spec()?;
    let nss = spec.linux().as_ref().and_then(|l| l.namespaces().clone());
    Ok(nss
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()))
}

/// The container's lock and its state as of holding it (a create or delete that held the lock
/// before may have changed it).
fn locked(paths: &Paths, id: &str) -> Result<(Lock, State)> {
    load(paths, id)?;
    let lock = Lock::exclusive(&state::container_dir(&paths.root, id))
        .map_err(|_| state::not_found(id))?;
    Ok((lock, load(paths, id)?))
}

/// Remove everything the runtime made for the container. Refused while it runs, unless `force`.
/// With `force` a container that does not exist is not an error (delete is idempotent), and the
/// directory of a create that died before writing any state is removed either way (as runc).
pub fn delete(paths: &Paths, id: &str, force: bool) -> Result<()> {
    state::validate_id(id)?;
    let dir = state::container_dir(&paths.root, id);
    let lock = match Lock::exclusive(&dir) {
        Ok(lock) => lock,
        Err(_) if !dir.exists() => {
            return if force {
                Ok(())
            } else {
                Err(state::not_found(id))
            };
        }
        Err(e) => return Err(e),
    };
    if !dir.join(state::STATE_FILE).exists() {
        // Holding the lock: no create is writing here.
        remove_state_dir(&dir)?;
        return if force {
            Ok(())
        } else {
            Err(state::not_found(id))
        };
    }
    let st = load(paths, id)?;
    delete_locked(paths, &dir, st, force, lock)
}

fn delete_locked(paths: &Paths, dir: &Path, st: State, force: bool, _lock: Lock) -> Result<()> {
    let id = &st.id;
    // We hold the lock, so a state still `creating` is a create that died: nothing runs as init.
    let status = match st.phase {
        Status::Creating => Status::Stopped,
        _ => status_of(paths, &st),
    };
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        other => bail!("cannot delete container {id} that is not stopped: {other}"),
    }
    let cgroup = super::cgroup::of_state(&st);
    if status != Status::Stopped {
        let _ = send(Pid::from_raw(st.pid), Signal::SIGKILL);
        if status == Status::Paused {
            // A frozen process cannot act on SIGKILL until its cgroup is thawed.
            if let Some(cg) = &cgroup {
                cg.thaw()?;
            }
        }
        if !wait_gone(st.pid, None) {
            bail!("container {id}: init {} did not die after SIGKILL", st.pid);
        }
    }
    if let Some(cg) = &cgroup {
        // Processes left behind by init (in its pid namespace they die with it; without one not).
        cg.kill_all(Signal::SIGKILL)?;
        cg.destroy()?;
    }
    if let Some(h) = &st.host_root {
        crate::rootfs::detach_host_root(h)?;
    }
    let spec = st.spec();
    if let Some(l) = &st.layers {
        let maps = spec.as_ref().ok().and_then(IdMaps::of);
        layers::remove(l, maps.as_ref())?;
    }
    remove_state_dir(dir)?;
    if let Ok(spec) = spec {
        if let Some(list) = spec.hooks().as_ref().and_then(|h| h.poststop().as_deref()) {
            hooks::run_warning("poststop", list, &hook_state(&st, Status::Stopped, 0));
        }
    }
    Ok(())
}

fn remove_state_dir(dir: &Path) -> Result<()> {
    fsutil::remove_tree(dir)
}
