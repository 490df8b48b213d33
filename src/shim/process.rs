//! A container's init or exec process as the shim tracks it: status, pid and exit.

use std::os::fd::OwnedFd;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::binary_log::BinaryLog;
use containerd_shim::api::Status;
use containerd_shim::protos::events::task::TaskIO;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;

#[derive(Clone)]
pub struct Exit {
    pub status: u32,
    pub at: Timestamp,
}

/// Takes the exit once there is one: how Wait is answered without holding a thread (server.rs).
pub type Waiter = Box<dyn FnOnce(&Exit) + Send>;

pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit: Option<Exit>,
    /// Start is between running the runtime and publishing the start event: an exit reaped
    /// meanwhile is published by Start, after its own event (exits.rs).
    pub starting: bool,
    waiters: Vec<Waiter>,
}

pub struct Process {
    /// The exec id; empty for the container's init.
    pub exec_id: String,
    /// The stdio containerd asked for.
    pub io: TaskIO,
    /// An exec's process spec (JSON), as containerd sent it.
    pub spec: Vec<u8>,
    /// The pty master of a terminal process, for ResizePty (console.rs).
    pub console: Mutex<Option<OwnedFd>>,
    /// The `binary://` logger reading its output (binary_log.rs).
    pub log: Mutex<Option<BinaryLog>>,
    state: Mutex<State>,
    exited: Condvar,
}

impl Process {
    pub fn new(exec_id: &str, io: TaskIO, spec: Vec<u8>) -> Process {
        Process {
            exec_id: exec_id.to_string(),
            io,
            spec,
            console: Mutex::default(),
            log: Mutex::default(),
            state: Mutex::new(State {
                status: Status::CREATED,
                pid: 0,
                exit: None,
                starting: false,
                waiters: Vec::new(),
            }),
            exited: Condvar::new(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Running from now on, unless it already exited.
    pub fn set_running(&self) {
        let mut state = self.state();
        if state.exit.is_none() {
            state.status = Status::RUNNING;
        }
    }

    /// Record the exit status reaped for this process and hand it to its waiters. Returns
    /// whether the caller publishes the exit event now (false while Start is still publishing
    /// its own).
    pub fn set_exited(&self, status: u32) -> bool {
        let exit = Exit {
            status,
            at: Timestamp::now(),
        };
        let mut state = self.state();
        state.status = Status::STOPPED;
        state.exit = Some(exit.clone());
        let waiters = std::mem::take(&mut state.waiters);
        let publish = !state.starting;
        drop(state);
        self.exited.notify_all();
        for waiter in waiters {
            waiter(&exit);
        }
        publish
    }

    /// Give the exit to `waiter`: now if the process has exited, else when it does.
    pub fn on_exit(&self, waiter: Waiter) {
        let mut state = self.state();
        match state.exit.clone() {
            Some(exit) => {
                drop(state);
                waiter(&exit);
            }
            None => state.waiters.push(waiter),
        }
    }

    /// The process is being deleted: let its logger, if any, finish.
    pub fn finish_log(&self) {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(log) = log {
            log.finish();
        }
    }

    /// Wait at most `timeout` for the exit.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Exit> {
        let state = self.state();
        let (state, _) = self
            .exited
            .wait_timeout_while(state, timeout, |s| s.exit.is_none())
            .unwrap_or_else(|e| e.into_inner());
        state.exit.clone()
    }
}
