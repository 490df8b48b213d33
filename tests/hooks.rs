//! OCI hooks through real containers: each runs at its moment, with the state on stdin, in the
//! namespaces the spec says; a failing or hung hook fails its step with the hook's path and
//! output, except poststop, which only warns.

mod common;

use common::Sandbox;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// A host hook: `/bin/sh -c SCRIPT` with the state JSON on stdin.
fn hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    let rt = Sandbox::new();
    let log = rt.path("hooks.log");
    let l = log.display().to_string();
    let line = |name: &str| {
        hook(&format!(
            "echo {name} $(cat | sed 's/.*\"status\": *\"\\([a-z]*\\)\".*/\\1/') >> {l}"
        ))
    };
    let bundle = rt.bundle(&["true"], |c| {
        c["hooks"] = json!({
            "prestart": [line("prestart")],
            "createRuntime": [line("createRuntime")],
            "createContainer": [line("createContainer")],
            "poststart": [line("poststart")],
            "poststop": [line("poststop")],
        });
    });
    let id = rt.id();
    rt.ok(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(
        read(&log),
        "prestart creating\ncreateRuntime creating\ncreateContainer creating\n"
    );
    rt.ok(&["start", &id]);
    assert!(
        read(&log).ends_with("poststart running\n"),
        "{}",
        read(&log)
    );
    rt.ok(&["delete", "--force", &id]);
    assert!(read(&log).ends_with("poststop stopped\n"), "{}", read(&log));
    rt.assert_clean(&id);
}

#[test]
fn create_container_hook_runs_in_the_container_namespaces() {
    let rt = Sandbox::new();
    let out = rt.path("ns");
    let script = format!(
        "readlink /proc/self/ns/uts /proc/self/ns/mnt > {}",
        out.display()
    );
    let bundle = rt.bundle(&["true"], |_| {});
    let mut c: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    c["hooks"] = json!({"createContainer": [hook(&script)]});
    std::fs::write(bundle.join("config.json"), c.to_string()).unwrap();
    let id = rt.id();
    rt.ok(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    let seen = read(&out);
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    for ns in ["uts", "mnt"] {
        let container = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert!(
            seen.contains(container.to_str().unwrap()),
            "{ns}: hook saw {seen:?}, init has {container:?}"
        );
        assert_ne!(container, host);
    }
}

#[test]
fn start_container_hook_runs_inside_the_container() {
    let rt = Sandbox::new();
    // The path is resolved in the container's root: the busybox sh, not the host's.
    let script = "echo started-in-$(hostname) > /tmp/marker";
    let bundle = rt.bundle(&["cat", "/tmp/marker"], |c| {
        c["hostname"] = "mrt-inside".into();
        c["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    });
    let id = rt.id();
    let o = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    assert_eq!(common::text(&o.stdout), "started-in-mrt-inside\n");
}

#[test]
fn a_failing_hook_fails_create_with_its_path_and_output_and_leaves_nothing() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["true"], |c| {
        c["hooks"] = json!({"createRuntime": [hook("echo out-text; echo err-text >&2; exit 3")]});
    });
    let id = rt.id();
    let err = rt.fails(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    for want in [
        "createRuntime hook #0 /bin/sh",
        "exit status 3",
        "out-text",
        "err-text",
    ] {
        assert!(err.contains(want), "{want:?} missing from {err:?}");
    }
    rt.assert_clean(&id);
}

#[test]
fn a_hook_past_its_timeout_is_killed_and_fails_create() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["true"], |c| {
        let mut h = hook("sleep 30");
        h["timeout"] = 1.into();
        c["hooks"] = json!({"prestart": [h]});
    });
    let id = rt.id();
    let t = Instant::now();
    let err = rt.fails(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the hook was not killed at its timeout"
    );
    assert!(err.contains("timed out after 1s"), "{err}");
    rt.assert_clean(&id);
}

/// A createContainer or startContainer hook without `env` runs with the container process's
/// environment (as runc and youki); one with `env` gets exactly its own.
#[test]
fn container_hooks_without_env_get_the_process_environment() {
    let rt = Sandbox::new();
    let dir = rt.path("out");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.display();
    let bundle = rt.bundle(&["true"], |c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push("MRT_HOOK_ENV=from-process".into());
        common::add_bind(c, &dir, "/out");
        let mut own = hook("echo $MRT_HOOK_ENV > /out/own");
        own["env"] = json!(["MRT_HOOK_ENV=own"]);
        c["hooks"] = json!({
            "createContainer": [hook(&format!("echo $MRT_HOOK_ENV > {d}/create"))],
            "startContainer": [hook("echo $MRT_HOOK_ENV > /out/start"), own],
        });
    });
    let id = rt.id();
    rt.ok(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(read(&dir.join("create")), "from-process\n");
    assert_eq!(read(&dir.join("start")), "from-process\n");
    assert_eq!(read(&dir.join("own")), "own\n");
}

/// poststart and poststop failures are warnings, and the hooks after a failed one still run.
#[test]
fn a_failing_poststop_hook_only_warns() {
    let rt = Sandbox::new();
    let after = rt.path("after");
    let bundle = rt.bundle(&["true"], |c| {
        let next = |name| hook(&format!("echo {name} >> {}", after.display()));
        c["hooks"] = json!({
            "poststop": [hook("exit 1"), next("poststop")],
            "poststart": [hook("exit 1"), next("poststart")],
        });
    });
    let id = rt.id();
    let o = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(
        o.status.success(),
        "run failed ({}): {}",
        o.status,
        common::text(&o.stderr)
    );
    assert!(
        common::text(&o.stderr).contains("poststop hook #0"),
        "{}",
        common::text(&o.stderr)
    );
    assert_eq!(read(&after), "poststart\npoststop\n");
    rt.assert_clean(&id);
}

#[test]
fn a_failing_start_container_hook_is_reported_on_the_container_stderr() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["true"], |c| {
        c["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    });
    let id = rt.id();
    let o = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the user's process ran despite the failed hook"
    );
    let err = common::text(&o.stderr);
    assert!(
        err.contains("startContainer hook #0 /bin/false: exit status 1"),
        "{err}"
    );
    rt.assert_clean(&id);
}
