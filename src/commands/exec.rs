//! `exec`: the process from `--process FILE` or from the container's own process with the
//! command line's changes (runc's flags).

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Capability, Process};
use std::str::FromStr;

use super::wait::{become_subreaper, block_signals, wait_forwarding};
use crate::cli::ExecArgs;
use crate::container::{self, write_pid_file, Paths};

pub fn exec(paths: &Paths, a: &ExecArgs) -> Result<i32> {
    let process = build_process(paths, a)?;
    let mut local = None;
    let console = match (process.terminal() == Some(true), &a.console_socket) {
        (true, Some(path)) => Some(
            std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("--console-socket {}", path.display()))?
                .into(),
        ),
        (true, None) if !a.detach => {
            let (theirs, mine) = crate::tty::socket_pair()?;
            local = Some(mine);
            Some(theirs)
        }
        (true, None) => bail!("exec --detach with a terminal needs --console-socket"),
        (false, _) => None,
    };
    if !a.detach {
        become_subreaper()?;
    }
    let pid = container::exec(
        paths,
        &a.id,
        &process,
        console,
        a.preserve_fds,
        a.ignore_paused,
        &a.cgroups,
    )?;
    let terminal = local.map(crate::tty::LocalTerminal::attach).transpose()?;
    if let Some(path) = &a.pid_file {
        write_pid_file(path, pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    let set = block_signals()?;
    wait_forwarding(pid, &set, terminal.as_ref())
}

fn build_process(paths: &Paths, a: &ExecArgs) -> Result<Process> {
    if let Some(path) = &a.process {
        let raw = std::fs::read(path).with_context(|| format!("--process {}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_slice(&raw);
        let p: Process = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow!("--process {}: {}: {}", path.display(), e.path(), e.inner()))?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("--process {}: args must not be empty", path.display());
        }
        return Ok(p);
    }
    if a.args.is_empty() {
        bail!("exec: the command to run is missing (ID COMMAND [ARGS...])");
    }
    let st = container::load(paths, &a.id)?;
    let spec = st.spec()?;
    let mut p = spec
        .process()
        .clone()
        .context("process: missing in the container's config")?;
    p.set_args(Some(a.args.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.into());
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        user.set_uid(
            uid.parse()
                .map_err(|_| anyhow!("--user {u:?}: UID[:GID] must be numbers"))?,
        );
        user.set_gid(
            gid.parse()
                .map_err(|_| anyhow!("--user {u:?}: UID[:GID] must be numbers"))?,
        );
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let cap = Capability::from_str(name.trim_start_matches("CAP_"))
                .map_err(|_| anyhow!("--cap {name:?}: unknown capability"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}
