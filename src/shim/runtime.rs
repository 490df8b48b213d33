//! Running the minirunc binary for one verb, with the global flags containerd's Go shim gives
//! runc: `--root <root>/<namespace> --log <bundle>/log.json --log-format json`.

use std::env;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim::{
    api::Options,
    monitor::Topic,
    synchronous::monitor::{monitor_subscribe, wait_pid},
};

use crate::stdio::ContainerIo;

/// The state root when the runtime options name none (the Go shim's is /run/containerd/runc).
const DEFAULT_ROOT: &str = "/run/containerd/minirunc";

pub struct Runtime {
    binary: PathBuf,
    /// containerd's namespace of the containers.
    namespace: String,
    root: PathBuf,
    systemd_cgroup: bool,
}

/// What the runtime process gets as stdio.
enum Io<'a> {
    /// The shim reads its stdout; stdin carries these bytes.
    Capture(&'a [u8]),
    /// A container process is made: it inherits these.
    Container(ContainerIo),
}

impl Runtime {
    pub fn new(options: &Options, namespace: &str) -> Runtime {
        let binary = if options.binary_name.is_empty() {
            default_binary()
        } else {
            PathBuf::from(&options.binary_name)
        };
        let root = match options.root.as_str() {
            "" => Path::new(DEFAULT_ROOT),
            root => Path::new(root),
        };
        Runtime {
            binary,
            namespace: namespace.to_string(),
            root: root.join(namespace),
            systemd_cgroup: options.systemd_cgroup,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The runtime's state root (`--root`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Run a verb and return its stdout.
    pub fn run(&self, bundle: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
        self.exec(bundle, args, Io::Capture(&[]))
    }

    /// Run a verb that reads `input` on its stdin (`update --resources=-`).
    pub fn run_with_input(&self, bundle: &Path, args: &[&str], input: &[u8]) -> Result<(), String> {
        self.exec(bundle, args, Io::Capture(input)).map(drop)
    }

    /// Run a verb that makes a container process (create, exec), which inherits `io`.
    pub fn run_with_io(&self, bundle: &Path, args: &[&str], io: ContainerIo) -> Result<(), String> {
        self.exec(bundle, args, Io::Container(io)).map(drop)
    }

    fn exec(&self, bundle: &Path, args: &[&str], io: Io) -> Result<Vec<u8>, String> {
        let log = bundle.join("log.json");
        // Only this run's errors count: the log accumulates over the container's life.
        let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).arg("--log").arg(&log);
        cmd.args(["--log-format", "json"]);
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd.args(args).current_dir(bundle).stderr(Stdio::null());
        let input = match io {
            Io::Capture(input) => {
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
                input
            }
            Io::Container(io) => {
                cmd.stdin(io.stdin).stdout(io.stdout).stderr(io.stderr);
                &[]
            }
        };
        // Subscribed before the spawn: the reaper (reaper.rs) may reap the child at once.
        let exited = monitor_subscribe(Topic::Pid).map_err(|e| e.to_string())?;
        let spawned = cmd.spawn();
        // The container's stdio now belongs to the child: the shim's copies must not keep the
        // FIFOs open (the reader would never see EOF).
        drop(cmd);
        let mut child = spawned.map_err(|e| format!("run {}: {e}", self.binary.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A runtime that fails early closes its stdin: its log says why, below.
            let _ = stdin.write_all(input);
        }
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_end(&mut out);
        }
        match wait_pid(child.id() as i32, exited) {
            0 => Ok(out),
            code => Err(last_error(&log, log_start).unwrap_or_else(|| {
                format!("{} {}: exit status {code}", self.binary.display(), args[0])
            })),
        }
    }
}

/// minirunc next to the shim binary (both come from one build), else from PATH.
fn default_binary() -> PathBuf {
    let beside = env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("minirunc")));
    match beside {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from("minirunc"),
    }
}

/// The message of the last `"level":"error"` line the runtime logged from `start` on.
fn last_error(log: &Path, start: u64) -> Option<String> {
    let mut text = String::new();
    let mut file = File::open(log).ok()?;
    file.seek(SeekFrom::Start(start)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["level"] == "error")
        .find_map(|entry| entry["msg"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::last_error;
    use std::fs;

    #[test]
    fn last_error_is_the_last_of_this_run() {
        let log = std::env::temp_dir().join(format!("shim-log-{}.json", std::process::id()));
        let earlier = "{\"level\":\"error\",\"msg\":\"an earlier run\"}\n";
        let this_run = concat!(
            "{\"level\":\"error\",\"msg\":\"first\"}\n",
            "{\"level\":\"error\",\"msg\":\"exec: \\\"x\\\": executable file not found\"}\n",
            "{\"level\":\"warning\",\"msg\":\"after\"}\n",
        );
        fs::write(&log, format!("{earlier}{this_run}")).unwrap();
        let found = last_error(&log, earlier.len() as u64);
        let none = last_error(&log, (earlier.len() + this_run.len()) as u64);
        fs::remove_file(&log).unwrap();
        assert_eq!(
            found.as_deref(),
            Some("exec: \"x\": executable file not found")
        );
        assert_eq!(none, None);
    }
}
