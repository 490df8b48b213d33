//! Records the commit `minirunc --version` prints (MINIRUNC_COMMIT) and the compiler (MINIRUNC_RUSTC),
//! and hands the linker the hot path's function order (link/hot.order).
//!
//! The commit, first found of: the MINIRUNC_COMMIT environment variable (packagers), git when this
//! directory is the top of a git checkout (full sha, `-dirty` when tracked files differ from HEAD),
//! else `unknown (built without git)`. Only git's HEAD, the branch's ref, the index and the sources
//! make this script run again: a commit or a checkout updates the line, an ordinary build does not
//! ask git anything.
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MINIRUNC_COMMIT");
    let commit = match std::env::var("MINIRUNC_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => from_git().unwrap_or_else(|| "unknown (built without git)".to_string()),
    };
    println!("cargo:rustc-env=MINIRUNC_COMMIT={commit}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = run(&rustc, &["--version"]).unwrap_or_default();
    let version = version.split_whitespace().nth(1).unwrap_or("unknown");
    println!("cargo:rustc-env=MINIRUNC_RUSTC={version}");
    hot_order();
}

/// The functions bench/hot-order.sh saw the hot path run go first in .text, so that the pages
/// every process of a lifecycle faults in hold them and little else (see that script). lld reads
/// the list; names it does not find, after code changes, are skipped without a warning.
fn hot_order() {
    let order = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hot.order");
    println!("cargo:rerun-if-changed={}", order.display());
    if order.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            order.display()
        );
    }
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git(args: &[&str]) -> Option<String> {
    let mut all = vec!["-C", env!("CARGO_MANIFEST_DIR")];
    all.extend_from_slice(args);
    run("git", &all)
}

fn from_git() -> Option<String> {
    // A tarball unpacked inside some other repository must not take that repository's commit.
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).canonicalize().ok()?;
    if Path::new(&top).canonicalize().ok()? != here {
        return None;
    }
    let sha = git(&["rev-parse", "HEAD"])?;
    let mut watch = vec!["HEAD".to_string(), "index".into(), "packed-refs".into()];
    watch.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watch {
        if let Some(p) = git(&["rev-parse", "--git-path", &name]) {
            // A path that does not exist would make cargo run this script on every build.
            if Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    for p in ["src", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])?;
    Some(if dirty.is_empty() {
        sha
    } else {
        format!("{sha}-dirty")
    })
}
