//! The cgroup verbs end to end (root): real containers run by the built binary, each test with its
//! own --root, bundle and busybox rootfs, checked against the host's cgroup files and processes.

mod common;

use common::{add_bind, make_rootfs, spec_config, text, wait_for, Sandbox};
use serde_json::{json, Value};
use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Why these tests cannot run here, if they cannot.
fn missing_feature() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not running as root".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox (busybox-static) is not installed".into());
    }
    ["memory", "pids", "freezer", "cpu"]
        .iter()
        .find(|c| !Path::new(CGROUP_ROOT).join(c).join("tasks").exists())
        .map(|c| format!("no cgroup v1 {c} hierarchy at {CGROUP_ROOT}/{c}"))
}

macro_rules! require_host {
    () => {
        if let Some(why) = missing_feature() {
            common::cannot_run(&why);
            return;
        }
    };
}

/// One container: a sandbox, a bundle with a busybox rootfs of its own, and a host directory
/// mounted at /out. Dropping it force-deletes the container and removes everything, even when
/// the test failed.
struct Ctr {
    sb: Sandbox,
    id: String,
    bundle: PathBuf,
    out: PathBuf,
    /// Where the container's stderr goes: that of its `create`.
    stderr: OnceCell<PathBuf>,
}

impl Ctr {
    /// A bundle running `script` under sh; `edit` may change the config further.
    fn new(script: &str, edit: impl FnOnce(&mut Value)) -> Ctr {
        let sb = Sandbox::new();
        let out = sb.path("out");
        std::fs::create_dir_all(&out).unwrap();
        let rootfs = sb.path("bundle/rootfs");
        make_rootfs(&rootfs);
        std::fs::create_dir_all(rootfs.join("out")).unwrap();
        let mut config = spec_config(&["sh", "-c", script]);
        // The root as `spec` writes it, read-only: the tests write only to /out.
        config["root"]["readonly"] = true.into();
        add_bind(&mut config, &out, "/out");
        edit(&mut config);
        Ctr {
            bundle: sb.write_bundle("bundle", &config),
            id: sb.id(),
            sb,
            out,
            stderr: OnceCell::new(),
        }
    }

    /// create + start. The container inherits create's stdio: /dev/null and files, so no pipe
    /// of ours stays open in it.
    fn start(&self) {
        let bundle = self.bundle.to_str().unwrap();
        let mut create = self.sb.spawn(&["create", "--bundle", bundle, &self.id]);
        self.stderr.set(create.keep_stderr()).unwrap();
        let status = create.finish_within(self.sb.deadline).status;
        assert!(status.success(), "create failed: {}", self.stderr());
        self.sb.ok(&["start", &self.id]);
    }

    fn stderr(&self) -> String {
        let path = self.stderr.get();
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    fn status(&self) -> String {
        self.sb.status(&self.id)
    }

    /// A control file of the container's cgroup in a v1 hierarchy.
    fn cg_file(&self, controller: &str, file: &str) -> String {
        let path = Path::new(CGROUP_ROOT)
            .join(controller)
            .join("minirunc")
            .join(&self.id)
            .join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    fn read_out(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_default()
    }
}

fn ps_json(c: &Ctr) -> Vec<i32> {
    serde_json::from_str(&c.sb.ok(&["ps", "--format", "json", &c.id])).unwrap()
}

#[test]
fn pause_freezes_and_resume_continues() {
    require_host!();
    let c = Ctr::new("i=0; while :; do i=$((i+1)); echo $i >/out/n; done", |_| {});
    c.start();
    let count = || c.read_out("n").trim().parse::<u64>().ok();
    wait_for(Duration::from_secs(5), "the counter to start", count);
    assert!(c
        .sb
        .fails(&["resume", &c.id])
        .contains("container not paused"));
    c.sb.ok(&["pause", &c.id]);
    assert_eq!(c.status(), "paused");
    assert_eq!(c.cg_file("freezer", "freezer.state"), "FROZEN");
    let frozen = c.read_out("n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.read_out("n"), frozen, "the counter advanced while paused");
    assert!(c
        .sb
        .fails(&["pause", &c.id])
        .contains("container not running"));
    c.sb.ok(&["resume", &c.id]);
    assert_eq!(c.status(), "running");
    let before: u64 = frozen.trim().parse().unwrap_or(0);
    wait_for(Duration::from_secs(5), "the counter to continue", || {
        count().filter(|&n| n > before + 100)
    });
}

#[test]
fn exec_ignore_paused_starts_the_process_on_resume() {
    require_host!();
    let c = Ctr::new("sleep 1000", |_| {});
    c.start();
    c.sb.ok(&["pause", &c.id]);
    let err = c.sb.fails(&["exec", &c.id, "true"]);
    assert!(err.contains("cannot exec in a paused container"), "{err}");
    // -d returns once the process waits in the frozen cgroup, not when it runs.
    let pid_file = c.sb.path("exec.pid");
    let script = "cat /proc/self/cgroup >/out/cg; echo ran >/out/detached";
    let detached = c.sb.spawn(&[
        "exec",
        "--ignore-paused",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        script,
    ]);
    let o = detached.finish_within(Duration::from_secs(10));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let procs = c.cg_file("freezer", "cgroup.procs");
    assert!(procs.lines().any(|p| p == pid), "{pid} not in {procs}");
    // Without -d it waits for the process, which runs after resume.
    let attached =
        c.sb.spawn(&["exec", "--ignore-paused", &c.id, "echo", "attached"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.read_out("detached"), "", "ran while paused");
    assert_eq!(attached.stdout_so_far(), "", "ran while paused");
    assert_eq!(c.status(), "paused");
    c.sb.ok(&["resume", &c.id]);
    let o = attached.finish_within(Duration::from_secs(10));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "attached\n");
    wait_for(
        Duration::from_secs(5),
        "the detached process to run",
        || Some(c.read_out("detached")).filter(|s| s == "ran\n"),
    );
    // It ran in the container's cgroup (its own cgroup namespace: the root).
    let cg = c.read_out("cg");
    assert!(cg.contains(":freezer:/\n"), "{cg}");
    assert!(cg.lines().all(|l| l.ends_with(":/")), "{cg}");
}

/// `name` below the container's cgroup in every hierarchy (cpuset needs its cpus and mems).
fn make_sub_cgroups(c: &Ctr, name: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(CGROUP_ROOT).unwrap().flatten() {
        let parent = entry.path().join("minirunc").join(&c.id);
        if !parent.is_dir() {
            continue;
        }
        let dir = parent.join(name);
        std::fs::create_dir(&dir).unwrap();
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(parent.join(file)) {
                std::fs::write(dir.join(file), v.trim()).unwrap();
            }
        }
        dirs.push(dir);
    }
    dirs
}

#[test]
fn exec_cgroup_runs_the_process_in_a_sub_cgroup() {
    require_host!();
    let c = Ctr::new("sleep 1000", |_| {});
    c.start();
    let init = ps_json(&c);
    for (arg, want) in [
        ("sub", "--cgroup sub: sub-cgroup "),
        ("../x", "--cgroup ../x: must not contain '..'"),
        (
            "memory:a/../../x",
            "--cgroup memory:a/../../x: must not contain '..'",
        ),
        (
            "nosuch:sub",
            "--cgroup nosuch:sub: no cgroup hierarchy has controller",
        ),
    ] {
        let err = c.sb.fails(&["exec", "--cgroup", arg, &c.id, "true"]);
        assert!(err.contains(want), "--cgroup {arg}: {err}");
        assert_eq!(ps_json(&c), init, "--cgroup {arg} left a process");
    }
    let dirs = make_sub_cgroups(&c, "sub");
    let all =
        c.sb.ok(&["exec", "--cgroup", "sub", &c.id, "cat", "/proc/self/cgroup"]);
    assert_eq!(all.lines().count(), dirs.len(), "{all}");
    assert!(all.lines().all(|l| l.ends_with(":/sub")), "{all}");
    // A CONTROLLER: prefix moves only those hierarchies.
    let some = c.sb.ok(&[
        "exec",
        "--cgroup",
        "cpu,memory:sub",
        "--cgroup",
        ":/sub",
        &c.id,
        "cat",
        "/proc/self/cgroup",
    ]);
    for line in some.lines() {
        let controllers = line.split(':').nth(1).unwrap();
        let moved =
            controllers.is_empty() || controllers.split(',').any(|c| c == "cpu" || c == "memory");
        assert_eq!(line.ends_with(":/sub"), moved, "{some}");
    }
    // What the host sees: the process in the sub-cgroup's cgroup.procs, and in ps.
    let pid_file = c.sb.path("exec.pid");
    let pid_arg = pid_file.to_str().unwrap();
    c.sb.ok(&[
        "exec",
        "-d",
        "--cgroup",
        "sub",
        "--pid-file",
        pid_arg,
        &c.id,
        "sleep",
        "999",
    ]);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    for dir in &dirs {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), pid, "{}", dir.display());
    }
    assert!(ps_json(&c).contains(&pid.parse().unwrap()));
    c.sb.ok(&["delete", "--force", &c.id]);
    for dir in &dirs {
        assert!(!dir.exists(), "{} remains after delete", dir.display());
    }
}

#[test]
fn delete_force_of_a_paused_container_thaws_and_kills_it() {
    require_host!();
    let c = Ctr::new("sleep 1000", |_| {});
    c.start();
    c.sb.ok(&["pause", &c.id]);
    assert_eq!(c.status(), "paused");
    // Frozen processes act on SIGKILL only once thawed: without the thaw, delete gives up
    // waiting for init and fails.
    c.sb.ok(&["delete", "--force", &c.id]);
    assert!(c.sb.fails(&["state", &c.id]).contains("does not exist"));
}

#[test]
fn ps_lists_exactly_the_container_pids_and_delete_removes_every_cgroup() {
    require_host!();
    let c = Ctr::new("sleep 1000 & wait", |_| {});
    c.start();
    let pids = wait_for(Duration::from_secs(5), "init and its sleep", || {
        Some(ps_json(&c)).filter(|p| p.len() == 2)
    });
    let init = c.sb.state(&c.id)["pid"].as_i64().unwrap() as i32;
    assert!(pids.contains(&init), "init {init} missing from {pids:?}");
    for controller in ["pids", "memory", "freezer", "unified"] {
        let mut procs: Vec<i32> = c
            .cg_file(controller, "cgroup.procs")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        procs.sort_unstable();
        assert_eq!(procs, pids, "{controller}/cgroup.procs");
    }
    let table = c.sb.ok(&["ps", &c.id]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].split_whitespace().any(|f| f == "PID"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines.iter().any(|l| l.ends_with("sleep 1000")), "{table}");
    let custom = c.sb.ok(&["ps", &c.id, "-o", "pid,comm"]);
    let mut listed: Vec<i32> = custom
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, pids, "{custom}");
    // An exec'd process joins the cgroup, so ps lists it too.
    let exec = c.sb.run(&["exec", "--detach", &c.id, "sleep", "999"]);
    assert!(exec.status.success());
    wait_for(Duration::from_secs(5), "the exec'd sleep in ps", || {
        Some(ps_json(&c)).filter(|p| p.len() == 3 && p.starts_with(&pids[..1]))
    });

    c.sb.ok(&["delete", "--force", &c.id]);
    for entry in std::fs::read_dir(CGROUP_ROOT).unwrap().flatten() {
        let dir = entry.path().join("minirunc").join(&c.id);
        assert!(!dir.exists(), "{} remains after delete", dir.display());
    }
    let err = c.sb.fails(&["ps", "--format", "json", &c.id]);
    assert!(is_missing(&err, &c.id), "{err}");
}

#[test]
fn update_changes_live_limits() {
    require_host!();
    let c = Ctr::new("exec sleep 1000", |_| {});
    c.start();
    c.sb.ok(&["update", "--memory", "64m", "--pids-limit", "20", &c.id]);
    assert_eq!(c.cg_file("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(c.cg_file("pids", "pids.max"), "20");

    let json = r#"{"memory":{"limit":33554432},"cpu":{"shares":512},"pids":{"limit":-1},
                   "devices":[{"allow":true,"access":"rwm"}]}"#;
    let stdin = c.sb.path("resources-stdin.json");
    std::fs::write(&stdin, json).unwrap();
    let mut update = c.sb.command(&["update", "--resources=-", &c.id]);
    update.stdin(std::fs::File::open(&stdin).unwrap());
    let o = c.sb.output(update);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(c.cg_file("memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(c.cg_file("cpu", "cpu.shares"), "512");
    assert_eq!(c.cg_file("pids", "pids.max"), "max");
    // Devices in the JSON are ignored, like runc: the spec's deny-all still holds.
    assert!(!c.cg_file("devices", "devices.list").contains("a *:* rwm"));

    let file = c.sb.path("resources.json");
    std::fs::write(&file, r#"{"memory":{"reservation":16777216}}"#).unwrap();
    c.sb.ok(&["update", "--resources", file.to_str().unwrap(), &c.id]);
    assert_eq!(
        c.cg_file("memory", "memory.soft_limit_in_bytes"),
        "16777216"
    );
    assert_eq!(c.cg_file("memory", "memory.limit_in_bytes"), "33554432");
}

#[test]
fn events_stats_reports_real_usage() {
    require_host!();
    let c = Ctr::new("sleep 1000 & wait", |_| {});
    c.start();
    wait_for(Duration::from_secs(5), "init and its sleep", || {
        Some(ps_json(&c)).filter(|p| p.len() == 2)
    });
    let out = c.sb.ok(&["events", "--stats", &c.id]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let event: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], c.id.as_str());
    let data = &event["data"];
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{out}"
    );
    assert_eq!(data["pids"]["current"].as_u64(), Some(2), "{out}");
    assert!(data["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{out}");
}

/// A bundle whose process waits for /out/go, then eats memory beyond a 32 MiB limit (no swap).
fn memory_hog() -> Ctr {
    let limit = 32 << 20;
    let script = "while [ ! -e /out/go ]; do sleep 0.05; done; exec tail /dev/zero";
    Ctr::new(script, |cfg| {
        cfg["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit});
    })
}

#[test]
fn memory_hog_is_oom_killed_with_exit_137() {
    require_host!();
    let c = memory_hog();
    std::fs::write(c.out.join("go"), "").unwrap();
    let bundle = c.bundle.to_str().unwrap();
    let run = c.sb.run(&["run", "--bundle", bundle, &c.id]);
    assert_eq!(run.status.code(), Some(137));
}

#[test]
fn events_streams_stats_and_oom_until_the_container_stops() {
    require_host!();
    let c = memory_hog();
    c.start();
    let events = c.sb.spawn(&["events", "--interval", "200ms", &c.id]);
    let first = wait_for(Duration::from_secs(5), "the first event", || {
        let so_far = events.stdout_so_far();
        so_far.split_once('\n').map(|(line, _)| line.to_string())
    });
    assert!(first.starts_with(r#"{"type":"stats""#), "{first}");
    std::fs::write(c.out.join("go"), "").unwrap();
    // events ends by itself once the container has stopped.
    let out = events.finish();
    assert!(out.status.success());
    let rest: Vec<String> = text(&out.stdout)
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    let oom = format!(r#"{{"type":"oom","id":"{}"}}"#, c.id);
    assert!(rest.contains(&oom), "no oom event in {rest:?}");
    let oom_control = c.cg_file("memory", "memory.oom_control");
    assert!(oom_control.contains("oom_kill 1"), "{oom_control}");
    assert_eq!(c.status(), "stopped");
}

#[test]
fn pids_limit_stops_forks() {
    require_host!();
    let script = "for i in 1 2 3 4 5 6 7 8; do sleep 1000 & done; wait";
    let c = Ctr::new(script, |cfg| {
        cfg["linux"]["resources"]["pids"] = json!({"limit": 4});
    });
    c.start();
    let refused = wait_for(
        Duration::from_secs(5),
        "a refused fork in pids.events",
        || {
            let events = c.cg_file("pids", "pids.events");
            let n: u64 = events.strip_prefix("max ")?.parse().ok()?;
            (n > 0).then_some(n)
        },
    );
    assert!(refused >= 1);
    let procs = c.cg_file("pids", "cgroup.procs");
    assert!(procs.lines().count() <= 4, "over the limit: {procs}");
    assert!(c.stderr().contains("fork"), "stderr: {}", c.stderr());
}

/// The error for a container that does not exist (the text log format escapes the quotes).
fn is_missing(stderr: &str, id: &str) -> bool {
    stderr.contains(&format!(r#"container \"{id}\" does not exist"#))
}

#[test]
fn verbs_refuse_missing_and_stopped_containers() {
    require_host!();
    let c = Ctr::new("true", |_| {});
    for verb in ["pause", "resume", "events", "update", "ps"] {
        let err = c.sb.fails(&[verb, &c.id]);
        assert!(is_missing(&err, &c.id), "{verb}: {err}");
    }
    c.start();
    c.sb.wait_status(&c.id, "stopped");
    for args in [
        vec!["pause", &c.id],
        vec!["events", "--stats", &c.id],
        vec!["update", "--memory", "64m", &c.id],
    ] {
        assert!(
            c.sb.fails(&args).contains("container not running"),
            "{args:?}"
        );
    }
    assert!(c
        .sb
        .fails(&["resume", &c.id])
        .contains("container not paused"));
}
