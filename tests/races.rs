//! Races an orchestrator produces: two creates of one id, kill/delete against a container that
//! exits by itself, two starts, many lifecycles at once, delete while exec runs.

mod common;
mod reliability;

use common::{cgroup_dirs, eventually, stderr, Sandbox};
use reliability::base_config;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn sandbox_running(args: &[&str]) -> (Sandbox, String) {
    let (sb, bundle) = reliability::sandbox();
    let mut cfg = base_config();
    cfg["process"]["args"] = serde_json::json!(args);
    sb.write_bundle("bundle", &cfg);
    (sb, bundle.to_string_lossy().into_owned())
}

/// Run `a` and `b` at the same time.
fn both(sb: &Sandbox, a: &[&str], b: &[&str]) -> (Output, Output) {
    let limit = Duration::from_secs(20);
    let (ca, cb) = (sb.spawn(a), sb.spawn(b));
    (ca.finish_within(limit), cb.finish_within(limit))
}

#[test]
fn two_creates_of_one_id() {
    let (sb, bundle) = sandbox_running(&["/bin/sleep", "100"]);
    for _ in 0..10 {
        let id = sb.id();
        let args = ["create", "--bundle", &bundle, &id];
        let (a, b) = both(&sb, &args, &args);
        assert!(
            a.status.success() != b.status.success(),
            "{id}: exactly one create must win: {} / {}",
            stderr(&a),
            stderr(&b)
        );
        let loser = if a.status.success() { &b } else { &a };
        assert!(
            stderr(loser).contains("exists"),
            "{id}: loser: {}",
            stderr(loser)
        );
        // The winner is intact: created, and it starts.
        assert_eq!(sb.try_status(&id).as_deref(), Some("created"));
        sb.ok(&["start", &id]);
        assert_eq!(sb.try_status(&id).as_deref(), Some("running"));
        sb.ok(&["delete", "--force", &id]);
        sb.assert_clean(&id);
    }
}

#[test]
fn kill_and_delete_race_a_container_exiting_by_itself() {
    let (sb, bundle) = sandbox_running(&["/bin/sleep", "0.02"]);
    for i in 0..10 {
        let id = sb.id();
        sb.ok(&["create", "--bundle", &bundle, &id]);
        sb.ok(&["start", &id]);
        std::thread::sleep(Duration::from_millis(i * 3));
        let (k, d) = both(&sb, &["kill", &id, "KILL"], &["delete", "--force", &id]);
        for o in [&k, &d] {
            assert!(!stderr(o).contains("panicked"), "{id}: {}", stderr(o));
        }
        // kill may lose to the exit or to delete; it must say so, not crash.
        if !k.status.success() {
            let e = stderr(&k);
            assert!(
                e.contains("not running") || e.contains("does not exist"),
                "{id}: kill: {e}"
            );
        }
        assert!(d.status.success(), "{id}: delete --force: {}", stderr(&d));
        assert_eq!(sb.try_status(&id), None);
        sb.assert_clean(&id);
    }
}

#[test]
fn start_twice_at_once() {
    let (sb, bundle) = sandbox_running(&["/bin/sleep", "100"]);
    for _ in 0..5 {
        let id = sb.id();
        sb.ok(&["create", "--bundle", &bundle, &id]);
        let (a, b) = both(&sb, &["start", &id], &["start", &id]);
        assert!(
            a.status.success() != b.status.success(),
            "{id}: exactly one start must win: {} / {}",
            stderr(&a),
            stderr(&b)
        );
        let loser = if a.status.success() { &b } else { &a };
        assert!(
            stderr(loser).contains("cannot start an already running container"),
            "{id}: loser: {}",
            stderr(loser)
        );
        assert_eq!(sb.try_status(&id).as_deref(), Some("running"));
        sb.ok(&["delete", "--force", &id]);
        sb.assert_clean(&id);
    }
}

#[test]
fn fifty_lifecycles_in_parallel() {
    let (sb, bundle) = sandbox_running(&["/bin/true"]);
    let ids: Vec<String> = (0..50).map(|_| sb.id()).collect();
    let children: Vec<_> = ids
        .iter()
        .map(|id| sb.spawn(&["run", "--bundle", &bundle, id]))
        .collect();
    let failures: Vec<String> = children
        .into_iter()
        .zip(&ids)
        .filter_map(|(c, id)| {
            let o = c.finish_within(Duration::from_secs(60));
            (!o.status.success()).then(|| format!("{id}: {} {}", o.status, stderr(&o)))
        })
        .collect();
    assert!(failures.is_empty(), "failed runs:\n{}", failures.join("\n"));
    for id in &ids {
        sb.assert_clean(id);
    }
}

#[test]
fn delete_force_while_exec_runs() {
    let (sb, bundle) = sandbox_running(&["/bin/sleep", "100"]);
    let id = sb.start_bundle(Path::new(&bundle), &[]);
    let exec = sb.spawn(&["exec", &id, "/bin/sleep", "100"]);
    // The exec'd sleep is inside once the container has two processes.
    let cg = cgroup_dirs(&id);
    let in_container = || {
        cg.iter()
            .filter(|d| {
                d.starts_with("/sys/fs/cgroup/unified") || d.starts_with("/sys/fs/cgroup/pids")
            })
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .any(|procs| procs.lines().count() >= 2)
    };
    assert!(
        eventually(Duration::from_secs(5), in_container),
        "{id}: exec never started"
    );
    sb.ok(&["delete", "--force", &id]);
    let out = exec.finish_within(Duration::from_secs(10));
    assert!(!stderr(&out).contains("panicked"), "exec: {}", stderr(&out));
    sb.assert_clean(&id);
}

/// Probes exec into one container many times at once (as a kubelet does): the exec'd process
/// must never speak on the sync channel before the intermediate has reported its pid.
#[test]
fn many_execs_at_once() {
    let (sb, bundle) = sandbox_running(&["/bin/sleep", "100"]);
    let id = sb.start_bundle(Path::new(&bundle), &[]);
    for round in 0..10 {
        let detached: Vec<_> = (0..8)
            .map(|_| sb.spawn(&["exec", "--detach", &id, "/bin/true"]))
            .collect();
        let failures: Vec<String> = detached
            .into_iter()
            .map(|c| c.finish_within(Duration::from_secs(30)))
            .filter(|o| !o.status.success())
            .map(|o| format!("round {round}: {} {}", o.status, stderr(&o)))
            .collect();
        assert!(
            failures.is_empty(),
            "failed execs:\n{}",
            failures.join("\n")
        );
    }
    sb.ok(&["delete", "--force", &id]);
    sb.assert_clean(&id);
}
