//! Runs a probe in a forked child that has loaded a seccomp filter, and collects what it saw.

use libseccomp::ScmpFilterContext;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};
use std::io::Read;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};

/// Exit code of a child whose `load` failed.
pub const LOAD_FAILED: i32 = 100;
const PANICKED: i32 = 101;

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The child exited; `results` are what the probe reported, in order.
    Exited {
        code: i32,
        results: Vec<i64>,
    },
    Killed {
        signal: Signal,
        results: Vec<i64>,
    },
}

impl Outcome {
    /// The probe's results of a child that exited normally (panics otherwise).
    pub fn results(self) -> Vec<i64> {
        match self {
            Outcome::Exited { code: 0, results } => results,
            other => panic!("child did not exit cleanly: {other:?}"),
        }
    }
}

/// The child's end of the report pipe. `push` is one write(2) and nothing closes it (the child
/// `_exit`s), so probes can run under filters that allow almost nothing.
pub struct Report(RawFd);

impl Report {
    pub fn push(&mut self, value: i64) {
        let bytes = value.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live stack buffer to an fd we own.
        unsafe { libc::write(self.0, bytes.as_ptr().cast(), bytes.len()) };
    }
}

/// A raw syscall's result as the child reports it: the return value, or -errno.
pub fn ret(r: libc::c_long) -> i64 {
    if r == -1 {
        -i64::from(nix::errno::Errno::last_raw())
    } else {
        r
    }
}

/// Fork; in the child load `filter` (with `before_load` run first) and run `probe`.
pub fn run_with(
    filter: &ScmpFilterContext,
    before_load: impl FnOnce(),
    probe: impl FnOnce(&mut Report, Option<OwnedFd>),
) -> Outcome {
    let (rx, tx) = pipe().expect("pipe");
    // SAFETY: the child only loads the filter, runs the probe and _exits; glibc keeps malloc
    // usable after fork in a threaded parent.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(rx);
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                no_core_dumps();
                before_load();
                match minirunc::seccomp::load(filter) {
                    Ok(notify) => {
                        probe(&mut Report(tx.into_raw_fd()), notify);
                        0
                    }
                    Err(e) => {
                        eprintln!("child: {e:#}");
                        LOAD_FAILED
                    }
                }
            }))
            .unwrap_or(PANICKED);
            // SAFETY: leaves the forked child without running the test harness's code.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(tx);
            let mut bytes = Vec::new();
            std::fs::File::from(rx)
                .read_to_end(&mut bytes)
                .expect("read report");
            let results = bytes
                .chunks_exact(8)
                .map(|c| i64::from_ne_bytes(c.try_into().expect("8 bytes")))
                .collect();
            match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, code) => Outcome::Exited { code, results },
                WaitStatus::Signaled(_, signal, _) => Outcome::Killed { signal, results },
                other => panic!("unexpected wait status {other:?}"),
            }
        }
    }
}

pub fn run(filter: &ScmpFilterContext, probe: impl FnOnce(&mut Report)) -> Outcome {
    run_with(filter, || {}, |report, _| probe(report))
}

/// SIGSYS kills would otherwise leave core files behind.
fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
}
