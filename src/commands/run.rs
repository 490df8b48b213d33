//! `run`: create, start, wait and delete, exiting with the container's status.

use anyhow::Result;

use super::create_options;
use super::wait::{become_subreaper, block_signals, wait_forwarding};
use crate::cli::{Cli, RunArgs};
use crate::container::{self, Paths};
use crate::tty::LocalTerminal;

pub fn run(paths: &Paths, a: &RunArgs, cli: &Cli) -> Result<i32> {
    let id = &a.create.id;
    let mut opts = create_options(&a.create, cli);
    if a.create.detach {
        container::create(paths, id, &opts)?;
        return container::start(paths, id).map(|_| 0);
    }
    // init is reparented to us when the intermediate exits, so we can reap its status.
    become_subreaper()?;
    opts.local_terminal = true;
    let created = container::create(paths, id, &opts)?;
    let pid = created.pid;
    let terminal = created.console.map(LocalTerminal::attach).transpose()?;
    let set = block_signals()?;
    if let Err(e) = container::start(paths, id) {
        let _ = container::delete(paths, id, true);
        return Err(e);
    }
    let code = wait_forwarding(pid, &set, terminal.as_ref())?;
    if !a.keep {
        container::delete(paths, id, true)?;
    }
    Ok(code)
}
