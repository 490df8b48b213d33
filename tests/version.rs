//! `minirunc --version` and `-v`: runc's lines, with the commit the binary was built from.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_minirunc");

fn version(flag: &str) -> Vec<String> {
    let out = Command::new(BIN).arg(flag).output().expect("run minirunc");
    assert!(out.status.success(), "{flag}: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn version_prints_runc_shaped_lines() {
    let lines = version("--version");
    assert_eq!(
        lines[0],
        format!("minirunc version {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(lines[2], format!("spec: {}", minirunc::SPEC_VERSION));
    assert!(lines[3].starts_with("rust: 1."), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("libseccomp: 2.")),
        "{lines:?}"
    );
    assert_eq!(version("-v"), lines);
}

#[test]
fn commit_line_names_the_checkout() {
    let commit = version("--version")[1].clone();
    let commit = commit.strip_prefix("commit: ").expect("commit line");
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    match head {
        // Built from a checkout: the sha of HEAD at build time (the test binary is built with it).
        Some(o) => {
            let sha = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let bare = commit.strip_suffix("-dirty").unwrap_or(commit);
            assert!(
                std::env::var("MINIRUNC_COMMIT").is_ok() || bare == sha,
                "{commit} vs {sha}"
            );
        }
        None => assert_eq!(commit, "unknown (built without git)"),
    }
}
