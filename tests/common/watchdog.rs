//! Every run of the minirunc binary by the tests is a `Running`, and every wait for one goes
//! through `Running::wait_within`: past its deadline the process is killed and the test fails
//! naming the command line, how long it ran and what was still running (from /proc), so that a
//! deadlock fails in CI with a diagnosis instead of hanging the suite.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// How long a run of the binary may take unless the caller says less.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

/// How long a killed process gets to go away: one stuck in the kernel (D state) does not die
/// at SIGKILL, and waiting for it would be the hang the watchdog is for.
const REAP_GRACE: Duration = Duration::from_secs(5);

/// A started minirunc whose stdout and stderr go to files.
pub struct Running {
    child: Child,
    cmdline: String,
    started: Instant,
    stdout: PathBuf,
    stderr: PathBuf,
    keep_stderr: bool,
}

impl Running {
    /// Start `cmd` with stdout and stderr in the files `stdout` and `stderr`, not pipes: a
    /// created container keeps the runtime's stdio open, and reading a pipe to its end would
    /// wait for the container. The files are removed when the `Running` is dropped.
    pub fn start(mut cmd: Command, stdout: PathBuf, stderr: PathBuf) -> Running {
        cmd.stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let cmdline = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
        Running {
            child,
            cmdline,
            started: Instant::now(),
            stdout,
            stderr,
            keep_stderr: false,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What it has written to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Keep the stderr file after the drop (a container created now writes its stderr there
    /// too); returns its path.
    pub fn keep_stderr(&mut self) -> PathBuf {
        self.keep_stderr = true;
        self.stderr.clone()
    }

    /// Wait until `limit` after the start. Past it, SIGKILL it and return why, with the
    /// processes of the runtime and of this binary's containers as they were when it hung.
    pub fn wait_within(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait minirunc") {
                return Ok(status);
            }
            let elapsed = self.started.elapsed();
            if elapsed >= limit {
                let running = super::leaks::runtime_processes();
                let reaped = self.kill_and_reap();
                return Err(format!(
                    "minirunc did not finish within {limit:?}: killed after {elapsed:?}{}\n  \
                     command: {}\n  stderr so far: {}\n  processes still running then:\n    {}",
                    if reaped { "" } else { " (and it did not die)" },
                    self.cmdline,
                    std::fs::read_to_string(&self.stderr)
                        .unwrap_or_default()
                        .trim(),
                    running.join("\n    ")
                ));
            }
            std::thread::sleep(pause.min(limit - elapsed));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Wait (see `wait_within`, failing the test past `limit`) and collect the output.
    pub fn finish_within(mut self, limit: Duration) -> Output {
        let status = self
            .wait_within(limit)
            .unwrap_or_else(|why| panic!("{why}"));
        Output {
            status,
            stdout: std::fs::read(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read(&self.stderr).unwrap_or_default(),
        }
    }

    /// `finish_within` the default deadline.
    pub fn finish(self) -> Output {
        self.finish_within(DEFAULT_DEADLINE)
    }

    /// SIGKILL it now.
    pub fn kill(mut self) {
        self.kill_and_reap();
    }

    /// SIGKILL and reap; false when it is still there after `REAP_GRACE`.
    fn kill_and_reap(&mut self) -> bool {
        let _ = self.child.kill();
        let deadline = Instant::now() + REAP_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Not waited for (its test failed first): it must not outlive the test.
        if let Ok(None) = self.child.try_wait() {
            self.kill_and_reap();
        }
        let _ = std::fs::remove_file(&self.stdout);
        if !self.keep_stderr {
            let _ = std::fs::remove_file(&self.stderr);
        }
    }
}

/// `dir/minirunc-<n>.out` and `.err`: fresh output files for one run.
pub fn output_files(dir: &Path) -> (PathBuf, PathBuf) {
    let base = dir.join(format!("minirunc-{}", super::next()));
    (base.with_extension("out"), base.with_extension("err"))
}
