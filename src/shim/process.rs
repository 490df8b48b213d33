//! A container's init or exec process as the shim tracks it: status, pid and exit.

use std::os::fd::OwnedFd;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use containerd_shim::api::Status;
use containerd_shim::protos::events::task::TaskIO;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;

#[derive(Clone)]
pub struct Exit {
    pub status: u32,
    pub at: Timestamp,
}

pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit: Option<Exit>,
    /// Start is between running the runtime and publishing the start event: an exit reaped
    /// meanwhile is published by Start, after its own event (exits.rs).
    pub starting: bool,
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
            state: Mutex::new(State {
                status: Status::CREATED,
                pid: 0,
                exit: None,
                starting: false,
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

    /// Record the exit status reaped for this process and wake its waiters. Returns whether the
    /// caller publishes the exit event now (false while Start is still publishing its own).
    pub fn set_exited(&self, status: u32) -> bool {
        let mut state = self.state();
        state.status = Status::STOPPED;
        state.exit = Some(Exit {
            status,
            at: Timestamp::now(),
        });
        self.exited.notify_all();
        !state.starting
    }

    /// Block until the process has exited.
    pub fn wait(&self) -> Exit {
        let mut state = self.state();
        loop {
            if let Some(exit) = &state.exit {
                return exit.clone();
            }
            state = self.exited.wait(state).unwrap_or_else(|e| e.into_inner());
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
