//! Matching the exits that the reaper reports on the crate's monitor (every child, by pid)
//! to the shim's container processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use containerd_shim::{
    error,
    monitor::{Subject, Topic},
    synchronous::monitor::monitor_subscribe,
};

use crate::process::Process;

/// A container process by pid, with its container's id.
pub type Table = HashMap<i32, (String, Arc<Process>)>;

#[derive(Default)]
pub struct Exits {
    pids: Mutex<Table>,
}

impl Exits {
    /// The table, locked. Whoever runs a runtime command that makes a process holds it from
    /// the spawn until the new pid is in it: the watcher waits, so no exit goes unmatched.
    pub fn lock(&self) -> MutexGuard<'_, Table> {
        self.pids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watch exits from now on: `on_exit(container_id, process)` runs on the watcher thread
    /// after the process recorded its status, when its exit event is due (process.rs).
    pub fn watch<F>(self: &Arc<Self>, on_exit: F) -> Result<(), String>
    where
        F: Fn(&str, &Process) + Send + 'static,
    {
        let subscription = monitor_subscribe(Topic::All).map_err(|e| e.to_string())?;
        let exits = self.clone();
        thread::Builder::new()
            .name("exits".into())
            .spawn(move || {
                for event in subscription.rx.iter() {
                    let Subject::Pid(pid) = event.subject else {
                        continue;
                    };
                    // Other children (the runtime's own runs) are not in the table.
                    let Some((id, process)) = exits.lock().remove(&pid) else {
                        continue;
                    };
                    if process.set_exited(event.exit_code as u32) {
                        on_exit(&id, &process);
                    }
                }
                error!("exit watcher: the monitor closed");
            })
            .map_err(|e| format!("start the exit watcher: {e}"))?;
        Ok(())
    }
}
