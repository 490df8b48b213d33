//! Real containers for the security tests: a private state root and data root per test, a busybox
//! bundle with the static attack helper, configs from the default spec edited as JSON, and a
//! Drop guard that force-deletes the test's containers and removes its directory.

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_minirunc");
const DEFAULT_CONFIG: &str = include_str!("../../src/commands/default-config.json");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The static attack helper, compiled once per test run (None: no static C toolchain).
pub fn attack_helper() -> Option<&'static Path> {
    static HELPER: OnceLock<Option<PathBuf>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mrt-attack");
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/security/attack.c");
            let tmp = out.with_extension(format!("tmp{}", std::process::id()));
            let ok = Command::new("gcc")
                .args(["-static", "-O", "-Wall", "-o"])
                .arg(&tmp)
                .arg(src)
                .status()
                .is_ok_and(|s| s.success());
            (ok && std::fs::rename(&tmp, &out).is_ok()).then_some(out)
        })
        .as_deref()
}

/// One test's world; everything it made goes away on drop.
pub struct Env {
    pub dir: PathBuf,
    ids: Vec<String>,
}

impl Env {
    pub fn new() -> Env {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/minirunc-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Env {
            dir,
            ids: Vec::new(),
        }
    }

    /// A container id unique to this test, remembered for cleanup.
    pub fn id(&mut self, name: &str) -> String {
        let id = format!(
            "mrt-sec-{}-{}-{name}",
            std::process::id(),
            self.dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .rsplit('-')
                .next()
                .unwrap()
        );
        self.ids.push(id.clone());
        id
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(self.dir.join("state"))
            .arg("--data-root")
            .arg(self.dir.join("data"));
        c.stdin(Stdio::null());
        c
    }

    /// Run minirunc with these arguments and collect its output (through files: a created
    /// container's init keeps the runtime's stdio open until it exits).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        self.output(c)
    }

    pub fn output(&self, mut c: Command) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (out, err) = (
            self.dir.join(format!("out{n}")),
            self.dir.join(format!("err{n}")),
        );
        c.stdout(std::fs::File::create(&out).unwrap());
        c.stderr(std::fs::File::create(&err).unwrap());
        let status = c.status().unwrap();
        let output = Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        };
        let _ = std::fs::remove_file(out);
        let _ = std::fs::remove_file(err);
        output
    }

    /// A bundle named `name`: busybox rootfs (plus the attack helper when built) and `config`.
    pub fn bundle(&self, name: &str, config: &Value) -> PathBuf {
        let b = self.dir.join(name);
        let rootfs = b.join("rootfs");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mkrootfs.sh");
        let st = Command::new("sh")
            .arg(script)
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(st.success(), "mkrootfs.sh {}", rootfs.display());
        if let Some(helper) = attack_helper() {
            std::fs::copy(helper, rootfs.join("bin/attack")).unwrap();
        }
        self.write_config(&b, config);
        b
    }

    pub fn write_config(&self, bundle: &Path, config: &Value) {
        let mut config = config.clone();
        config["root"]["path"] = bundle.join("rootfs").to_string_lossy().into();
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
    }

    /// `run` a bundle to completion: (exit code, stdout + stderr).
    pub fn run_bundle(&self, bundle: &Path, id: &str) -> (i32, String) {
        let out = self.run(&["run", "--bundle", bundle.to_str().unwrap(), id]);
        (out.status.code().unwrap_or(-1), text(&out))
    }

    /// `run` with extra fds of the runtime: `fds[i]` becomes fd `3 + i` in minirunc.
    pub fn run_with_fds(&self, args: &[&str], fds: Vec<std::fs::File>) -> Output {
        use std::os::fd::AsRawFd;
        let mut c = self.cmd();
        c.args(args);
        let first_free = 3 + fds.len() as i32;
        // No allocation after fork: a fixed array for the moved fds.
        assert!(fds.len() <= 8, "run_with_fds takes up to 8 fds");
        unsafe {
            c.pre_exec(move || {
                // Move them above the target range first (a file may already sit on a target
                // number), then into place: dup2 to another number clears close-on-exec.
                let mut moved = [-1; 8];
                for (f, slot) in fds.iter().zip(moved.iter_mut()) {
                    *slot = libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, first_free);
                    if *slot < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (i, &fd) in moved[..fds.len()].iter().enumerate() {
                    if libc::dup2(fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        self.output(c)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.run(&["delete", "--force", id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The default spec (what `minirunc spec` writes) made non-interactive, running `args`.
pub fn config(args: &[&str]) -> Value {
    let mut c: Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
    c["process"]["terminal"] = false.into();
    c["process"]["args"] = args.into();
    c["root"]["readonly"] = false.into();
    c
}

/// A `sh -c` config.
pub fn shell(script: &str) -> Value {
    config(&["sh", "-c", script])
}

/// The host pid of a container's init, from `state`.
pub fn init_pid(env: &Env, id: &str) -> i32 {
    let out = env.run(&["state", id]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("state {id}: {}", text(&out)));
    v["pid"].as_i64().unwrap() as i32
}

/// SHA-256 of a file, hex.
pub fn hash(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = std::fs::read(path).unwrap();
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Print the skip reason and tell the caller to return.
pub fn skip_without_helper() -> bool {
    if attack_helper().is_none() {
        println!("SKIP: gcc -static (libc6-dev) is needed to build tests/security/attack.c");
        return true;
    }
    false
}
