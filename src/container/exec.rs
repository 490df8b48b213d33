//! `exec`: a new process in a running container. It joins every namespace of the container's
//! init and its cgroup before it runs any of its own code.

use anyhow::{bail, Result};
use oci_spec::runtime::{Process, Spec};
use std::os::fd::OwnedFd;

use super::{load, seccomp_handoff, status_of, Paths};
use crate::process::{self, Launch, Role};
use crate::state::{State, Status};

/// Start `process` in container `id`, in the sub-cgroups `sub_cgroups` (exec --cgroup) names if
/// any; returns its host pid once it has executed, or in a paused container (`ignore_paused`)
/// once it waits in the frozen cgroup.
pub fn exec(
    paths: &Paths,
    id: &str,
    process: &Process,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    ignore_paused: bool,
    sub_cgroups: &[String],
) -> Result<i32> {
    let st = load(paths, id)?;
    let paused = match status_of(paths, &st) {
        Status::Running | Status::Created => false,
        Status::Paused if ignore_paused => true,
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => bail!("cannot exec in a stopped container: container not running"),
    };
    let cgroup = match (super::cgroup::of_state(&st), sub_cgroups) {
        (cg, []) => cg,
        (Some(cg), subs) => Some(cg.sub_cgroup(subs)?),
        (None, _) => bail!("--cgroup: container {id} has no cgroup"),
    };
    let spec = st.spec()?;
    let launch = Launch {
        spec: &spec,
        process,
        role: Role::Exec {
            init_pid: st.pid,
            join_cgroup_late: paused,
        },
        console,
        preserve_fds,
        hook_state: String::new(),
    };
    let mut rt = ExecRuntime {
        spec: &spec,
        state: &st,
        cgroup,
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
