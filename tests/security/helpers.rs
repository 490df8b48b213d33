//! Bundles for the security tests: a busybox rootfs of their own with the static attack helper,
//! configs from the default spec edited as JSON.

use crate::common::{make_rootfs, output_text, spec_config, Sandbox};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// A bundle named `name` in the sandbox: busybox rootfs (plus the attack helper when built)
/// and `config`.
pub fn bundle(env: &Sandbox, name: &str, config: &Value) -> PathBuf {
    let b = env.path(name);
    let rootfs = b.join("rootfs");
    make_rootfs(&rootfs);
    if let Some(helper) = attack_helper() {
        std::fs::copy(helper, rootfs.join("bin/attack")).unwrap();
    }
    write_config(&b, config);
    b
}

/// `config` as the config.json of `bundle`, on the bundle's own rootfs.
pub fn write_config(bundle: &Path, config: &Value) {
    let mut config = config.clone();
    config["root"]["path"] = bundle.join("rootfs").to_string_lossy().into();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
}

/// `run` a bundle to completion: (exit code, stdout + stderr).
pub fn run_bundle(env: &Sandbox, bundle: &Path, id: &str) -> (i32, String) {
    let out = env.run(&["run", "--bundle", bundle.to_str().unwrap(), id]);
    (out.status.code().unwrap_or(-1), output_text(&out))
}

/// A `sh -c` config.
pub fn shell(script: &str) -> Value {
    spec_config(&["sh", "-c", script])
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
        crate::common::cannot_run(
            "gcc -static (libc6-dev) is needed to build tests/security/attack.c",
        );
        return true;
    }
    false
}
