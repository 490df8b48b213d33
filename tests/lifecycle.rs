//! The lifecycle through the real binary (root): create/start/state/kill/delete with the state
//! JSON at every step, run's exit status, list, spec, --version, option order, logging and the
//! pid file.

mod common;

use common::{rootfs, text, Sandbox};
use serde_json::Value;
use std::time::{Duration, Instant};

fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
        && s[..4].parse::<u32>().is_ok_and(|y| y >= 2024)
}

/// A shell that exits 7 on SIGTERM (as PID 1 it ignores signals it has no handler for).
const TRAP_TERM: &[&str] = &["sh", "-c", "trap 'exit 7' TERM; sleep 1000 & wait"];

#[test]
fn lifecycle_and_state_json() {
    let rt = Sandbox::new();
    for signal in ["TERM", "SIGKILL", "9", "15"] {
        let bundle = rt.bundle(TRAP_TERM, |_| {});
        let id = rt.id();
        let pid_file = rt.path(&format!("{id}.pid"));
        rt.ok(&[
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ]);
        let st = rt.state(&id);
        assert_eq!(st["status"], "created");
        assert_eq!(st["id"], id.as_str());
        assert!(
            st["ociVersion"].as_str().unwrap().starts_with("1.2"),
            "{st}"
        );
        let pid = st["pid"].as_i64().unwrap();
        assert!(pid > 0);
        assert_eq!(st["bundle"], bundle.to_str().unwrap());
        assert_eq!(st["rootfs"], rootfs().to_str().unwrap());
        assert!(is_rfc3339(st["created"].as_str().unwrap()), "{st}");
        // The pid file: a bare decimal, no newline, the state's pid, a live process.
        let written = std::fs::read_to_string(&pid_file).unwrap();
        assert_eq!(written, pid.to_string());
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

        rt.ok(&["start", &id]);
        let st = rt.state(&id);
        assert_eq!(st["status"], "running");
        assert_eq!(st["pid"].as_i64(), Some(pid));

        rt.ok(&["kill", &id, signal]);
        let st = rt.wait_status(&id, "stopped");
        assert_eq!(st["pid"], 0, "{st}");
        rt.ok(&["delete", &id]);
        let err = rt.fails(&["state", &id]);
        assert!(err.contains("does not exist"), "{err}");
        rt.assert_clean(&id);
    }
}

#[test]
fn kill_without_signal_sends_term() {
    let rt = Sandbox::new();
    let id = rt.create(TRAP_TERM, |_| {});
    rt.ok(&["start", &id]);
    rt.ok(&["kill", &id]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    rt.assert_clean(&id);
}

#[test]
fn run_exits_with_the_containers_status() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["sh", "-c", "echo out; echo err >&2; exit 3"], |_| {});
    let id = rt.id();
    let o = rt.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "err\n");
    rt.assert_clean(&id);
}

#[test]
fn run_killed_exits_128_plus_signal() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["sleep", "1000"], |_| {});
    let id = rt.id();
    let run = rt.spawn(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    // Wait for the state dir to exist and the container to run before killing it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rt.run(&["state", &id]).status.success() {
        assert!(Instant::now() < deadline, "never created");
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.wait_status(&id, "running");
    rt.ok(&["kill", &id, "KILL"]);
    assert_eq!(run.finish().status.code(), Some(128 + 9));
    rt.assert_clean(&id);
}

#[test]
fn run_detach_leaves_it_running() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["sleep", "1000"], |_| {});
    let id = rt.id();
    let started = Instant::now();
    rt.ok(&["run", "--detach", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["delete", "--force", &id]);
    rt.assert_clean(&id);
}

#[test]
fn list_table_and_json() {
    let rt = Sandbox::new();
    let created = rt.create(&["sleep", "1000"], |_| {});
    let running = rt.running(|_| {});
    let table = rt.ok(&["list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    for (id, status) in [(&created, "created"), (&running, "running")] {
        let row = lines.iter().find(|l| l.starts_with(id.as_str())).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[2], status, "{row}");
        assert_eq!(cols[1], rt.state(id)["pid"].to_string());
    }
    let json: Value = serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        let id = r["id"].as_str().unwrap();
        assert!(id == created || id == running);
        assert_eq!(r["status"], rt.state(id)["status"]);
    }
    let mut ids = [created.clone(), running.clone()];
    ids.sort();
    assert_eq!(rt.ok(&["list", "-q"]), format!("{}\n", ids.join("\n")));
}

#[test]
fn spec_writes_a_config_that_runs() {
    let rt = Sandbox::new();
    let bundle = rt.path("specbundle");
    std::fs::create_dir(&bundle).unwrap();
    let b = bundle.to_str().unwrap();
    rt.ok(&["spec", "--bundle", b]);
    let err = rt.fails(&["spec", "--bundle", b]);
    assert!(err.contains("exists"), "{err}");
    // Only what a user changes after `spec`: no terminal, and the rootfs in place.
    let path = bundle.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["process"]["terminal"] = false.into();
    c["process"]["args"] = serde_json::json!(["true"]);
    std::fs::write(&path, c.to_string()).unwrap();
    std::os::unix::fs::symlink(rootfs(), bundle.join("rootfs")).unwrap();
    let id = rt.id();
    rt.ok(&["run", "--bundle", b, &id]);
    rt.assert_clean(&id);

    let rootless = rt.path("rootless");
    std::fs::create_dir(&rootless).unwrap();
    rt.ok(&["spec", "--rootless", "--bundle", rootless.to_str().unwrap()]);
    let c: Value =
        serde_json::from_slice(&std::fs::read(rootless.join("config.json")).unwrap()).unwrap();
    let ns = c["linux"]["namespaces"].as_array().unwrap();
    assert!(ns.iter().any(|n| n["type"] == "user"), "{c}");
    assert!(c["linux"]["uidMappings"]
        .as_array()
        .is_some_and(|m| !m.is_empty()));
    assert!(c["linux"]["gidMappings"]
        .as_array()
        .is_some_and(|m| !m.is_empty()));
    // runc's rootless default: no network or cgroup namespace, /sys bound read-only where sysfs
    // was, the cgroup and mqueue mounts kept.
    assert!(
        !ns.iter()
            .any(|n| n["type"] == "network" || n["type"] == "cgroup"),
        "{c}"
    );
    let mounts = c["mounts"].as_array().unwrap();
    let sys: Vec<_> = mounts
        .iter()
        .filter(|m| m["destination"] == "/sys")
        .collect();
    assert_eq!(sys.len(), 1, "{c}");
    assert_eq!(
        sys[0]["options"],
        serde_json::json!(["rbind", "nosuid", "noexec", "nodev", "ro"])
    );
    for dest in ["/sys/fs/cgroup", "/dev/mqueue"] {
        assert!(
            mounts.iter().any(|m| m["destination"] == dest),
            "{dest}: {c}"
        );
    }
    let runc = std::path::Path::new("/usr/sbin/runc");
    if runc.exists() {
        let theirs = rt.path("rootless-runc");
        std::fs::create_dir(&theirs).unwrap();
        let st = std::process::Command::new(runc)
            .args(["spec", "--rootless", "--bundle", theirs.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success());
        let r: Value =
            serde_json::from_slice(&std::fs::read(theirs.join("config.json")).unwrap()).unwrap();
        assert_eq!(r["mounts"], c["mounts"]);
        assert_eq!(r["linux"], c["linux"]);
    }
}

#[test]
fn options_after_the_id() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["sleep", "1000"], |_| {});
    let id = rt.id();
    let pid_file = rt.path("after.pid");
    rt.ok(&[
        "create",
        &id,
        "--bundle",
        bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]);
    assert_eq!(rt.status(&id), "created");
    assert!(pid_file.exists());
    rt.ok(&["delete", &id, "--force"]);
    rt.assert_clean(&id);
}

#[test]
fn json_log_has_one_error_line() {
    let rt = Sandbox::new();
    let log = rt.path("log.json");
    let id = rt.id();
    let err = rt.fails(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        &id,
    ]);
    let content = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines.len(), 1, "{content}");
    let line: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["level"], "error");
    let msg = line["msg"].as_str().unwrap();
    assert!(msg.contains("does not exist") && msg.contains(&id), "{msg}");
    assert!(line["time"].as_str().is_some_and(is_rfc3339), "{line}");
    assert_eq!(err.trim_end(), msg);
}
