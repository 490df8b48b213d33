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
        if nix::unistd::User::from_name(ROOTLESS_USER)
            .unwrap()
            .is_none()
        {
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
        let user = nix::unistd::User::from_name(ROOTLESS_USER)
            .unwrap()
            .unwrap();
        (user.uid.as_raw(), user.gid.as_raw())
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
