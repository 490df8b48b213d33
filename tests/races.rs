//! Races an orchestrator produces: two creates of one id, kill/delete against a container that
//! exits by itself, two starts, many lifecycles at once, delete while exec runs.

#[path = "reliability/helpers.rs"]
mod helpers;

use helpers::{assert_clean, base_config, unique, Sandbox};
use std::process::Output;
use std::time::Duration;

fn sandbox_running(label: &str, args: &[&str]) -> (Sandbox, String) {
    let sb = Sandbox::new(label);
    let mut cfg = base_config();
    cfg["process"]["args"] = serde_json::json!(args);
    sb.write_config(&cfg);
    let bundle = sb.bundle.to_string_lossy().into_owned();
    (sb, bundle)
}

/// Run `a` and `b` at the same time.
fn both(sb: &Sandbox, a: &[&str], b: &[&str]) -> (Output, Output) {
    let limit = Duration::from_secs(20);
    let (ca, cb) = (sb.spawn(a), sb.spawn(b));
    (ca.finish(limit), cb.finish(limit))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn two_creates_of_one_id() {
    let (sb, bundle) = sandbox_running("race-create", &["/bin/sleep", "100"]);
    for _ in 0..10 {
        let id = unique("race-create");
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
        assert_eq!(sb.status(&id).as_deref(), Some("created"));
        sb.ok(&["start", &id]);
        assert_eq!(sb.status(&id).as_deref(), Some("running"));
        sb.ok(&["delete", "--force", &id]);
        assert_clean(&sb, &id, "two creates");
    }
}

#[test]
fn kill_and_delete_race_a_container_exiting_by_itself() {
    let (sb, bundle) = sandbox_running("race-exit", &["/bin/sleep", "0.02"]);
    for i in 0..10 {
        let id = unique("race-exit");
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
        assert_eq!(sb.status(&id), None);
        assert_clean(&sb, &id, "kill/delete vs exit");
    }
}

#[test]
fn start_twice_at_once() {
    let (sb, bundle) = sandbox_running("race-start", &["/bin/sleep", "100"]);
    for _ in 0..5 {
        let id = unique("race-start");
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
        assert_eq!(sb.status(&id).as_deref(), Some("running"));
        sb.ok(&["delete", "--force", &id]);
        assert_clean(&sb, &id, "two starts");
    }
}

#[test]
fn fifty_lifecycles_in_parallel() {
    let (sb, bundle) = sandbox_running("race-many", &["/bin/true"]);
    let ids: Vec<String> = (0..50).map(|_| unique("race-many")).collect();
    let children: Vec<_> = ids
        .iter()
        .map(|id| sb.spawn(&["run", "--bundle", &bundle, id]))
        .collect();
    let failures: Vec<String> = children
        .into_iter()
        .zip(&ids)
        .filter_map(|(c, id)| {
            let o = c.finish(Duration::from_secs(60));
            (!o.status.success()).then(|| format!("{id}: {} {}", o.status, stderr(&o)))
        })
        .collect();
    assert!(failures.is_empty(), "failed runs:\n{}", failures.join("\n"));
    for id in &ids {
        assert_clean(&sb, id, "parallel lifecycles");
    }
}

#[test]
fn delete_force_while_exec_runs() {
    let (sb, bundle) = sandbox_running("race-exec", &["/bin/sleep", "100"]);
    let id = unique("race-exec");
    sb.ok(&["create", "--bundle", &bundle, &id]);
    sb.ok(&["start", &id]);
    let exec = sb.spawn(&["exec", &id, "/bin/sleep", "100"]);
    // The exec'd sleep is inside once the container has two processes.
    let cg = helpers::cgroups_named(&id);
    let in_container = || {
        cg.iter()
            .filter(|d| d.contains("unified") || d.contains("pids"))
            .filter_map(|d| std::fs::read_to_string(format!("{d}/cgroup.procs")).ok())
            .any(|procs| procs.lines().count() >= 2)
    };
    assert!(
        helpers::eventually(Duration::from_secs(5), in_container),
        "{id}: exec never started"
    );
    sb.ok(&["delete", "--force", &id]);
    let out = exec.finish(Duration::from_secs(10));
    assert!(!stderr(&out).contains("panicked"), "exec: {}", stderr(&out));
    assert_clean(&sb, &id, "delete during exec");
}

/// Probes exec into one container many times at once (as a kubelet does): the exec'd process
/// must never speak on the sync channel before the intermediate has reported its pid.
#[test]
fn many_execs_at_once() {
    let (sb, bundle) = sandbox_running("race-execs", &["/bin/sleep", "100"]);
    let id = unique("race-execs");
    sb.ok(&["create", "--bundle", &bundle, &id]);
    sb.ok(&["start", &id]);
    for round in 0..10 {
        let detached: Vec<_> = (0..8)
            .map(|_| sb.spawn(&["exec", "--detach", &id, "/bin/true"]))
            .collect();
        let failures: Vec<String> = detached
            .into_iter()
            .map(|c| c.finish(Duration::from_secs(30)))
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
    assert_clean(&sb, &id, "many execs");
}
