//! `exec`: a new process in a running container. It joins every namespace of the container's
//! init and its cgroup before it runs any of its own code.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Process, Spec};
use std::os::fd::OwnedFd;

use super::{load, seccomp_handoff, status_of, Paths};
use crate::process::{self, Launch, Role};
use crate::state::{State, Status};

/// Start `process` in container `id`; returns its host pid once it has executed.
pub fn exec(
    paths: &Paths,
    id: &str,
    process: &Process,
    console: Option<OwnedFd>,
    preserve_fds: u32,
) -> Result<i32> {
    let st = load(paths, id)?;
    match status_of(paths, &st) {
        Status::Running | Status::Created => {}
        Status::Paused => bail!("cannot exec in a paused container"),
        _ => bail!("cannot exec in a stopped container: container not running"),
    }
    let spec: Spec = serde_json::from_str(st.config.get()).context("the saved config.json")?;
    let launch = Launch {
        spec: &spec,
        process,
        role: Role::Exec { init_pid: st.pid },
        console,
        preserve_fds,
        hook_state: String::new(),
    };
    let mut rt = ExecRuntime {
        spec: &spec,
        state: &st,
        cgroup: super::cgroup::of_state(&st),
    };
    process::spawn(&launch, &mut rt).map(|(pid, _)| pid)
}

struct ExecRuntime<'a> {
    spec: &'a Spec,
    state: &'a State,
    cgroup: Option<crate::cgroups::Cgroup>,
}

impl process::Runtime for ExecRuntime<'_> {
    fn cgroup(&self) -> Option<&crate::cgroups::Cgroup> {
        self.cgroup.as_ref()
    }

    fn has_create_hooks(&self) -> bool {
        false
    }

    fn run_create_hooks(&mut self, _init_pid: i32) -> Result<()> {
        Ok(())
    }

    fn seccomp_listener(&mut self, pid: i32, fd: OwnedFd) -> Result<()> {
        seccomp_handoff(self.spec, self.state, Status::Running, pid, fd)
    }
}
