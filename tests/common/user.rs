//! The unprivileged user the rootless tests run the runtime as: created here when missing (CI runs
//! `make test` as root on a clean host), with subordinate id ranges for multi-id mappings.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const ROOTLESS_USER: &str = "minirunc-rootless";

/// The test user's uid and gid, the user created first if missing (no password, no home).
pub fn rootless_user() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        if passwd_ids(ROOTLESS_USER).is_none() {
            // Another test binary may create it at the same moment: status 9 is "already exists".
            let st = Command::new("useradd")
                .args([
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    ROOTLESS_USER,
                ])
                .status()
                .expect("useradd");
            assert!(st.success() || st.code() == Some(9), "useradd: {st}");
        }
        passwd_ids(ROOTLESS_USER).expect("useradd wrote no /etc/passwd entry")
    })
}

/// The uid and gid of `name` in /etc/passwd, where useradd puts it. Not getpwnam: the test
/// binaries are static, and a static glibc that does not find a user in the file goes on to
/// nsswitch's next source (libnss_systemd on Debian), which it cannot load: it crashes.
fn passwd_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| (f[2].parse().unwrap(), f[3].parse().unwrap()))
    })
}

/// Gives `dir` to the test user, so the runtime running as that user can write there.
pub fn give_to_user(dir: &Path) {
    let (uid, gid) = rootless_user();
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
}

/// `bin args` run as the test user with exactly `env` (nothing of root's environment leaks in).
pub fn run_as_user(bin: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
    user_command(bin, args, env).output().expect("runuser")
}

/// The command `run_as_user` runs, not yet run: run it through `Sandbox::output` when a
/// container may outlive it (a detached one keeps the stdout and stderr it got).
pub fn user_command(bin: &str, args: &[&str], env: &[(&str, &Path)]) -> Command {
    rootless_user();
    let mut c = Command::new("runuser");
    c.args(["-u", ROOTLESS_USER, "--", "env", "-i", "PATH=/usr/bin:/bin"]);
    for (k, v) in env {
        c.arg(format!("{k}={}", v.display()));
    }
    c.arg(bin).args(args);
    c
}
