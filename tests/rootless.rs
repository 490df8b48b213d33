//! Rootless mode as a real unprivileged user (the test user of tests/common/user.rs): the
//! --rootless flag, where a user's state goes by default, and the refusal to run setuid.

mod common;
use common::{give_to_user, run_as_user, text, Sandbox, BIN};
use std::path::Path;

/// A sandbox whose directory the test user owns, with its private XDG_RUNTIME_DIR and HOME.
fn user_sandbox() -> Sandbox {
    let rt = Sandbox::new();
    give_to_user(&rt.dir);
    for d in ["xdg", "home"] {
        std::fs::create_dir(rt.path(d)).unwrap();
        give_to_user(&rt.path(d));
    }
    rt
}

fn user_env(rt: &Sandbox) -> Vec<(&'static str, std::path::PathBuf)> {
    vec![
        ("XDG_RUNTIME_DIR", rt.path("xdg")),
        ("HOME", rt.path("home")),
    ]
}

fn as_user(rt: &Sandbox, args: &[&str]) -> std::process::Output {
    let env = user_env(rt);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    run_as_user(BIN, args, &env)
}

#[test]
fn user_state_defaults_to_xdg_runtime_dir() {
    let rt = user_sandbox();
    let out = as_user(&rt, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = as_user(&rt, &["state", "probe"]);
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    // A container directory planted in $XDG_RUNTIME_DIR/minirunc is the one `state` reads.
    std::fs::create_dir_all(rt.path("xdg/minirunc/probe")).unwrap();
    std::fs::write(rt.path("xdg/minirunc/probe/state.json"), "not json").unwrap();
    let out = as_user(&rt, &["state", "probe"]);
    assert!(!out.status.success());
    assert!(
        !text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn user_without_xdg_runtime_dir_is_told_to_pass_root() {
    let rt = user_sandbox();
    let home = rt.path("home");
    let out = run_as_user(BIN, &["list"], &[("HOME", &home)]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("XDG_RUNTIME_DIR") && err.contains("--root"),
        "{err}"
    );
    let root = rt.path("state");
    let out = run_as_user(
        BIN,
        &["--root", root.to_str().unwrap(), "list"],
        &[("HOME", &home)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn rootless_flag_values() {
    let rt = user_sandbox();
    let out = as_user(&rt, &["--rootless=maybe", "list"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("maybe") && err.contains("true, false or auto"),
        "{err}"
    );
    for v in ["true", "false", "auto"] {
        let out = as_user(&rt, &[&format!("--rootless={v}"), "list"]);
        assert!(out.status.success(), "{v}: {}", text(&out.stderr));
    }
}

#[test]
fn creating_a_container_as_a_user_is_refused_clearly() {
    let rt = user_sandbox();
    let bundle = rt.bundle(&["--rootless"], |_| {});
    give_to_user(&bundle);
    let out = as_user(
        &rt,
        &["create", "--bundle", bundle.to_str().unwrap(), &rt.id()],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("rootless containers are not supported yet"),
        "{err}"
    );
}

#[test]
fn a_setuid_install_is_refused() {
    let rt = user_sandbox();
    let copy = rt.path("minirunc-setuid");
    std::fs::copy(BIN, &copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let env = user_env(&rt);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let out = run_as_user(copy.to_str().unwrap(), &["list"], &env);
    assert!(!out.status.success(), "a setuid copy ran");
    assert!(
        text(&out.stderr).contains("setuid"),
        "{}",
        text(&out.stderr)
    );
}
