//! containerd's task service (`containerd.task.v2.Task` over ttrpc) on the shim's containers.
//! Errors reach containerd as ttrpc statuses whose message says what failed and why; the
//! runtime's own reason comes from its JSON log (runtime.rs).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use containerd_shim::{
    api, error,
    protos::api::ProcessInfo,
    protos::events::task::{
        TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM,
        TaskPaused, TaskResumed, TaskStart,
    },
    protos::protobuf::Message,
    protos::ttrpc::{get_status, Code, Error},
    synchronous::util,
    warn, Task, TtrpcContext, TtrpcResult,
};

use crate::console;
use crate::container::Container;
use crate::events::Events;
use crate::exits::Exits;
use crate::metrics;
use crate::oom::OomWatcher;
use crate::process::{Exit, Process};
use crate::rootfs;
use crate::runtime::Runtime;

pub struct Service {
    namespace: String,
    events: Arc<Events>,
    exits: Arc<Exits>,
    /// None if the watcher could not start (logged): OOMs then go unreported.
    oom: Option<Arc<OomWatcher>>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// Shutdown came with no task left: the server stops once it has answered (server.rs).
    exiting: AtomicBool,
}

/// Answers a Wait once the process has exited (server.rs).
pub type WaitReply = Box<dyn FnOnce(TtrpcResult<api::WaitResponse>) + Send>;

fn status(code: Code, message: impl ToString) -> Error {
    Error::RpcStatus(get_status(code, message))
}

/// A runtime command failed; `why` is the runtime's own message (runtime.rs).
fn runtime_failed(verb: &str, why: String) -> Error {
    status(Code::UNKNOWN, format!("OCI runtime {verb} failed: {why}"))
}

impl Service {
    pub fn new(events: Events, namespace: &str) -> Service {
        let events = Arc::new(events);
        let exits = Arc::new(Exits::default());
        let publisher = events.clone();
        let watching = exits.watch(move |id, process| publish_exit(&publisher, id, process));
        if let Err(e) = watching {
            error!("{e}");
        }
        let publisher = events.clone();
        let oom = OomWatcher::start(move |id| {
            publisher.publish(TaskOOM {
                container_id: id.to_string(),
                ..Default::default()
            })
        })
        .map_err(|e| error!("{e}"))
        .ok();
        Service {
            namespace: namespace.to_string(),
            events,
            exits,
            oom,
            containers: Mutex::default(),
            exiting: AtomicBool::new(false),
        }
    }

    pub fn exiting(&self) -> bool {
        self.exiting.load(Ordering::SeqCst)
    }

    /// Wait, without a thread: `reply` gets the exit when the process has one.
    pub fn wait(&self, req: &api::WaitRequest, reply: WaitReply) {
        match self.process(&req.id, &req.exec_id) {
            Ok((_, process)) => process.on_exit(Box::new(move |exit| {
                reply(Ok(api::WaitResponse {
                    exit_status: exit.status,
                    exited_at: Some(exit.at.clone()).into(),
                    ..Default::default()
                }))
            })),
            Err(e) => reply(Err(e)),
        }
    }

    fn containers(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn container(&self, id: &str) -> TtrpcResult<Arc<Container>> {
        self.containers()
            .get(id)
            .cloned()
            .ok_or_else(|| status(Code::NOT_FOUND, format!("container {id} not found")))
    }

    fn process(&self, id: &str, exec_id: &str) -> TtrpcResult<(Arc<Container>, Arc<Process>)> {
        let container = self.container(id)?;
        let process = container.process(exec_id).ok_or_else(|| {
            status(
                Code::NOT_FOUND,
                format!("process {exec_id} of {id} not found"),
            )
        })?;
        Ok((container, process))
    }

    /// Run `minirunc VERB ID` on the container.
    fn run_verb(&self, id: &str, verb: &str) -> TtrpcResult<Arc<Container>> {
        let container = self.container(id)?;
        container
            .runtime
            .run(&container.bundle, &[verb, id])
            .map_err(|e| runtime_failed(verb, e))?;
        Ok(container)
    }

    /// Start is over: publish the exit reaped meanwhile, after Start's own event.
    fn end_start(&self, id: &str, process: &Process) {
        let exited = {
            let mut state = process.state();
            state.starting = false;
            state.exit.is_some()
        };
        if exited {
            publish_exit(&self.events, id, process);
        }
    }
}

fn publish_exit(events: &Events, id: &str, process: &Process) {
    let state = process.state();
    let Some(exit) = state.exit.clone() else {
        return;
    };
    let pid = state.pid;
    drop(state);
    events.publish(TaskExit {
        container_id: id.to_string(),
        id: if process.exec_id.is_empty() {
            id
        } else {
            &process.exec_id
        }
        .to_string(),
        pid,
        exit_status: exit.status,
        exited_at: Some(exit.at).into(),
        ..Default::default()
    });
}

/// The runc shim's options (`containerd.runc.v1.Options`: BinaryName, Root, SystemdCgroup, ...)
/// when containerd sends them; other option types leave the defaults.
fn runtime_options(req: &api::CreateTaskRequest) -> TtrpcResult<api::Options> {
    match req.options.as_ref() {
        Some(any) if any.type_url.ends_with("containerd.runc.v1.Options") => {
            api::Options::parse_from_bytes(&any.value)
                .map_err(|e| status(Code::INVALID_ARGUMENT, format!("runtime options: {e}")))
        }
        _ => Ok(api::Options::default()),
    }
}

impl Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if !req.checkpoint.is_empty() {
            return Err(status(
                Code::UNIMPLEMENTED,
                "restore from a checkpoint is not implemented by minirunc",
            ));
        }
        if self.containers().contains_key(&req.id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        let options = runtime_options(&req)?;
        let bundle = Path::new(&req.bundle);
        // The `delete` command finds the runtime's root here after the shim is gone.
        util::write_options(&req.bundle, &options)
            .map_err(|e| status(Code::INTERNAL, format!("write the runtime options: {e}")))?;
        let runtime = Runtime::new(&options, &self.namespace);
        let io = TaskIO {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            ..Default::default()
        };
        rootfs::mount_all(bundle, &req.rootfs).map_err(|e| status(Code::UNKNOWN, e))?;
        let init = Process::new("", io.clone(), Vec::new());
        let container = Container::create(&req.id, bundle, runtime, &options, init, &self.exits)
            .map_err(|e| {
                let _ = rootfs::unmount(bundle);
                runtime_failed("create", e)
            })?;
        let pid = container.init.state().pid;
        if let (Some(oom), Some(cgroup)) = (&self.oom, &container.cgroup) {
            if let Err(e) = oom.watch(&req.id, cgroup) {
                warn!("{e}");
            }
        }
        self.containers()
            .insert(req.id.clone(), Arc::new(container));
        self.events.publish(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(io).into(),
            pid,
            ..Default::default()
        });
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let (container, process) = self.process(&req.id, &req.exec_id)?;
        {
            let mut state = process.state();
            if state.status != api::Status::CREATED || state.starting {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("process {} of {} was started already", req.exec_id, req.id),
                ));
            }
            state.starting = true;
        }
        let started = if req.exec_id.is_empty() {
            container.start()
        } else {
            container.start_exec(&process, &self.exits)
        };
        if let Err(e) = started {
            self.end_start(&req.id, &process);
            let verb = if req.exec_id.is_empty() {
                "start"
            } else {
                "exec"
            };
            return Err(runtime_failed(verb, e));
        }
        process.set_running();
        let pid = process.state().pid;
        if req.exec_id.is_empty() {
            self.events.publish(TaskStart {
                container_id: req.id.clone(),
                pid,
                ..Default::default()
            });
        } else {
            self.events.publish(TaskExecStarted {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                pid,
                ..Default::default()
            });
        }
        self.end_start(&req.id, &process);
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let (container, process) = self.process(&req.id, &req.exec_id)?;
        let (status_now, pid) = {
            let state = process.state();
            (state.status, state.pid)
        };
        if matches!(status_now, api::Status::RUNNING | api::Status::PAUSED) {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!(
                    "cannot delete process {} of {}: it is running",
                    req.exec_id, req.id
                ),
            ));
        }
        let exit = if req.exec_id.is_empty() {
            if let Some(oom) = &self.oom {
                oom.unwatch(&req.id);
            }
            let exit = container
                .delete(&self.exits)
                .map_err(|e| runtime_failed("delete", e))?;
            // The container's processes are gone: its loggers read the last of their output.
            container.init.finish_log();
            container
                .execs()
                .values()
                .for_each(|exec| exec.finish_log());
            rootfs::unmount(&container.bundle).map_err(|e| status(Code::UNKNOWN, e))?;
            self.containers().remove(&req.id);
            self.events.publish(TaskDelete {
                container_id: req.id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: Some(exit.at.clone()).into(),
                ..Default::default()
            });
            exit
        } else {
            container.execs().remove(&req.exec_id);
            process.finish_log();
            // An exec that was added but never started has no exit: report it as now.
            process.state().exit.clone().unwrap_or_else(|| Exit {
                status: 0,
                at: containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp::now(
                ),
            })
        };
        Ok(api::DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: Some(exit.at).into(),
            ..Default::default()
        })
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let container = self.container(&req.id)?;
        if container.init.state().exit.is_some() {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("container {} is not running", req.id),
            ));
        }
        let io = TaskIO {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            ..Default::default()
        };
        let spec = req
            .spec
            .as_ref()
            .map(|any| any.value.clone())
            .unwrap_or_default();
        {
            let mut execs = container.execs();
            if execs.contains_key(&req.exec_id) {
                return Err(status(
                    Code::ALREADY_EXISTS,
                    format!("exec {} of {} already exists", req.exec_id, req.id),
                ));
            }
            execs.insert(
                req.exec_id.clone(),
                Arc::new(Process::new(&req.exec_id, io, spec)),
            );
        }
        self.events.publish(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let (container, process) = self.process(&req.id, &req.exec_id)?;
        let state = process.state();
        let exit = state.exit.clone();
        Ok(api::StateResponse {
            id: req.id.clone(),
            bundle: container.bundle.to_string_lossy().into_owned(),
            pid: state.pid,
            status: state.status.into(),
            stdin: process.io.stdin.clone(),
            stdout: process.io.stdout.clone(),
            stderr: process.io.stderr.clone(),
            terminal: process.io.terminal,
            exit_status: exit.as_ref().map_or(0, |e| e.status),
            exited_at: exit.map(|e| e.at).into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let (container, process) = self.process(&req.id, &req.exec_id)?;
        let (pid, exited) = {
            let state = process.state();
            (state.pid, state.exit.is_some())
        };
        if exited && !req.all {
            return Err(status(Code::NOT_FOUND, "process already finished"));
        }
        if !req.exec_id.is_empty() {
            // As the Go shim does: an exec is signalled directly, not through the runtime.
            let signal = nix::sys::signal::Signal::try_from(req.signal as i32).map_err(|e| {
                status(
                    Code::INVALID_ARGUMENT,
                    format!("signal {}: {e}", req.signal),
                )
            })?;
            return match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal) {
                Ok(()) => Ok(api::Empty::new()),
                Err(nix::errno::Errno::ESRCH) => {
                    Err(status(Code::NOT_FOUND, "process already finished"))
                }
                Err(e) => Err(status(
                    Code::UNKNOWN,
                    format!("kill exec {}: {e}", req.exec_id),
                )),
            };
        }
        let signal = req.signal.to_string();
        let mut args = vec!["kill"];
        if req.all {
            args.push("--all");
        }
        args.extend([req.id.as_str(), signal.as_str()]);
        match container.runtime.run(&container.bundle, &args) {
            Ok(_) => Ok(api::Empty::new()),
            Err(e)
                if ["not running", "does not exist", "no such process"]
                    .iter()
                    .any(|gone| e.to_lowercase().contains(gone)) =>
            {
                Err(status(
                    Code::NOT_FOUND,
                    format!("process already finished: {e}"),
                ))
            }
            Err(e) => Err(runtime_failed("kill", e)),
        }
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let container = self.container(&req.id)?;
        let out = container
            .runtime
            .run(&container.bundle, &["ps", "--format", "json", &req.id])
            .map_err(|e| runtime_failed("ps", e))?;
        let pids: Vec<u32> = serde_json::from_slice(&out).map_err(|e| {
            status(
                Code::UNKNOWN,
                format!("OCI runtime ps: not a list of pids: {e}"),
            )
        })?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let container = self.run_verb(&req.id, "pause")?;
        container.init.state().status = api::Status::PAUSED;
        self.events.publish(TaskPaused {
            container_id: req.id.clone(),
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        let container = self.run_verb(&req.id, "resume")?;
        container.init.set_running();
        self.events.publish(TaskResumed {
            container_id: req.id.clone(),
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let container = self.container(&req.id)?;
        // containerd sends the runtime-spec LinuxResources as JSON inside the Any.
        let resources = req
            .resources
            .as_ref()
            .map(|any| any.value.as_slice())
            .unwrap_or(b"{}");
        container
            .runtime
            .run_with_input(
                &container.bundle,
                &["update", "--resources=-", &req.id],
                resources,
            )
            .map_err(|e| runtime_failed("update", e))?;
        Ok(api::Empty::new())
    }

    /// The container reads containerd's stdin FIFO itself: its EOF comes when containerd closes
    /// its writer, with nothing for the shim to close (stdio.rs).
    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        self.process(&req.id, &req.exec_id)?;
        Ok(api::Empty::new())
    }

    fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let (_, process) = self.process(&req.id, &req.exec_id)?;
        let console = process.console.lock().unwrap_or_else(|e| e.into_inner());
        let master = console.as_ref().ok_or_else(|| {
            status(
                Code::FAILED_PRECONDITION,
                format!("process {} of {} has no terminal", req.exec_id, req.id),
            )
        })?;
        console::resize(master, req.width, req.height)
            .map_err(|e| status(Code::UNKNOWN, format!("resize the terminal: {e}")))?;
        Ok(api::Empty::new())
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let container = self.container(&req.id)?;
        let cgroup = container.cgroup.as_ref().ok_or_else(|| {
            status(
                Code::FAILED_PRECONDITION,
                format!("container {} has no cgroup to read stats from", req.id),
            )
        })?;
        let stats = metrics::collect(cgroup)
            .map_err(|e| status(Code::UNKNOWN, format!("stats of container {}: {e}", req.id)))?;
        Ok(api::StatsResponse {
            stats: Some(stats).into(),
            ..Default::default()
        })
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(status(
            Code::UNIMPLEMENTED,
            "checkpoint is not implemented by minirunc",
        ))
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self
            .containers()
            .get(&req.id)
            .map_or(0, |c| c.init.state().pid);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: concat!("containerd-shim-minirunc-v1 ", env!("CARGO_PKG_VERSION")).into(),
            ..Default::default()
        })
    }

    /// containerd asks once it has no task left here; with tasks left, the shim stays.
    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        if self.containers().is_empty() {
            self.exiting.store(true, Ordering::SeqCst);
        }
        Ok(api::Empty::new())
    }
}
