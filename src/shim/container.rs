//! One container of the shim: its bundle, its runtime, its init and exec processes, and the
//! runtime commands that create, start and remove them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::binary_log;
use crate::console::ConsoleSocket;
use crate::exits::Exits;
use crate::process::{Exit, Process};
use crate::relay;
use crate::runtime::Runtime;
use crate::stdio::{self, ContainerIo};
use containerd_shim::api::Options;
use minirunc::cgroups::Cgroup;
use minirunc::container::cgroup;
use minirunc::state::State;

/// How long Delete waits for the init that `delete --force` killed (it was never started).
const KILLED_INIT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: Runtime,
    pub init: Arc<Process>,
    /// Where Stats reads and the OOM watcher listens; none for a container without a cgroup.
    pub cgroup: Option<Cgroup>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
}

impl Container {
    /// `minirunc create`: the init exists, stopped before the user's program, when it returns.
    pub fn create(
        id: &str,
        bundle: &Path,
        runtime: Runtime,
        options: &Options,
        init: Process,
        exits: &Exits,
    ) -> Result<Container, String> {
        let pid_file = bundle.join("init.pid");
        let pid_arg = pid_file.to_string_lossy();
        let mut args = vec![
            "create",
            "--bundle",
            path_str(bundle)?,
            "--pid-file",
            &pid_arg,
        ];
        if options.no_pivot_root {
            args.push("--no-pivot");
        }
        if options.no_new_keyring {
            args.push("--no-new-keyring");
        }
        let init = Arc::new(init);
        if let Err(e) = spawn_process(&runtime, bundle, &args, &pid_file, id, &init, exits) {
            // The runtime may have made the container before the failure: remove it.
            let _ = runtime.run(bundle, &["delete", "--force", id]);
            return Err(e);
        }
        // The runtime's state says where it put the cgroup (cgroupsPath resolved).
        let cgroup = State::load(runtime.root(), id)
            .ok()
            .and_then(|state| cgroup::of_state(&state));
        Ok(Container {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            runtime,
            init,
            cgroup,
            execs: Mutex::default(),
        })
    }

    /// `minirunc start`: the init runs the user's program.
    pub fn start(&self) -> Result<(), String> {
        self.runtime.run(&self.bundle, &["start", &self.id])?;
        Ok(())
    }

    /// `minirunc exec --detach` of an exec process added earlier.
    pub fn start_exec(&self, exec: &Arc<Process>, exits: &Exits) -> Result<(), String> {
        let name = &exec.exec_id;
        let spec_file = self.bundle.join(format!("exec-{name}.json"));
        let pid_file = self.bundle.join(format!("exec-{name}.pid"));
        fs::write(&spec_file, &exec.spec)
            .map_err(|e| format!("write {}: {e}", spec_file.display()))?;
        let args = [
            "exec",
            "--process",
            path_str(&spec_file)?,
            "--detach",
            "--pid-file",
            path_str(&pid_file)?,
        ];
        let spawned = spawn_process(
            &self.runtime,
            &self.bundle,
            &args,
            &pid_file,
            &self.id,
            exec,
            exits,
        );
        let _ = fs::remove_file(&spec_file);
        let _ = fs::remove_file(&pid_file);
        spawned
    }

    /// `minirunc delete --force` (the init exited, or was never started), and the exit to report.
    pub fn delete(&self, exits: &Exits) -> Result<Exit, String> {
        if let Err(e) = self
            .runtime
            .run(&self.bundle, &["delete", "--force", &self.id])
        {
            if !e.contains("does not exist") {
                return Err(e);
            }
        }
        let exit = self.init.wait_timeout(KILLED_INIT_TIMEOUT);
        let pid = self.init.state().pid as i32;
        exits.lock().remove(&pid);
        exit.ok_or_else(|| format!("init {pid} of {} did not exit", self.id))
    }

    pub fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.execs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The init (empty exec id) or an exec process.
    pub fn process(&self, exec_id: &str) -> Option<Arc<Process>> {
        match exec_id {
            "" => Some(self.init.clone()),
            id => self.execs().get(id).cloned(),
        }
    }
}

/// Run a runtime command that makes `process` (create, exec; `args` without the container id)
/// with its stdio or terminal, and register its pid for the exit watcher. The exit table stays
/// locked from the spawn on (exits.rs).
fn spawn_process(
    runtime: &Runtime,
    bundle: &Path,
    args: &[&str],
    pid_file: &Path,
    id: &str,
    process: &Arc<Process>,
    exits: &Exits,
) -> Result<(), String> {
    let io = &process.io;
    let mut args = args.to_vec();
    let console = if io.terminal {
        let socket = ConsoleSocket::new().map_err(|e| format!("console socket: {e}"))?;
        Some(socket)
    } else {
        None
    };
    if let Some(socket) = &console {
        args.extend(["--console-socket", path_str(socket.path())?]);
    }
    args.push(id);
    let (stdio, log) = match console {
        Some(_) if binary_log::is_binary(&io.stdout) => {
            return Err("a binary:// logger takes no terminal's output".to_string())
        }
        Some(_) => (ContainerIo::null(), None),
        None => stdio::open(io, id, runtime.namespace())?,
    };
    let mut table = exits.lock();
    runtime.run_with_io(bundle, &args, stdio)?;
    *process.log.lock().unwrap_or_else(|e| e.into_inner()) = log;
    let text = fs::read_to_string(pid_file)
        .map_err(|e| format!("read the pid file {}: {e}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("pid file {}: not a pid: {text:?}", pid_file.display()))?;
    table.insert(pid, (id.to_string(), process.clone()));
    process.state().pid = pid as u32;
    if let Some(socket) = console {
        let master = socket.receive().map_err(|e| format!("terminal: {e}"))?;
        relay::copy(&master, &io.stdin, &io.stdout).map_err(|e| format!("terminal: {e}"))?;
        *process.console.lock().unwrap_or_else(|e| e.into_inner()) = Some(master);
    }
    Ok(())
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{}: not UTF-8", path.display()))
}
