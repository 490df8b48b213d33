//! The cgroup verbs end to end (root): real containers run by the built binary, each test with its
//! own --root, bundle and busybox rootfs, checked against the host's cgroup files and processes.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_minirunc");
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
            println!("SKIP: {why}");
            return;
        }
    };
}

/// One container: its state root, bundle and a host directory mounted at /out. Dropping it
/// force-deletes the container and removes everything, even when the test failed.
struct Ctr {
    root: PathBuf,
    id: String,
    bundle: PathBuf,
    out: PathBuf,
}

impl Ctr {
    /// A bundle running `script` under sh; `edit` may change the config further.
    fn new(script: &str, edit: impl FnOnce(&mut Value)) -> Ctr {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let root = PathBuf::from(format!("/tmp/minirunc-test-{pid}-{n}"));
        let ctr = Ctr {
            bundle: root.join("bundle"),
            out: root.join("out"),
            id: format!("mrt-{pid}-{n}"),
            root,
        };
        std::fs::create_dir_all(&ctr.out).unwrap();
        let rootfs = ctr.bundle.join("rootfs");
        let made = Command::new("sh")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mkrootfs.sh"))
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(made.success(), "mkrootfs.sh failed");
        std::fs::create_dir_all(rootfs.join("out")).unwrap();
        ctr.ok(&["spec", "--bundle", ctr.bundle.to_str().unwrap()]);
        let path = ctr.bundle.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["sh", "-c", script]);
        let bind = json!({"destination": "/out", "type": "bind", "source": ctr.out,
                          "options": ["rbind", "rw"]});
        config["mounts"].as_array_mut().unwrap().push(bind);
        edit(&mut config);
        std::fs::write(&path, config.to_string()).unwrap();
        ctr
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(self.root.join("state"))
            .arg("--data-root")
            .arg(self.root.join("data"))
            .args(args);
        c
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a verb that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args, "");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "minirunc {args:?} failed: {err}");
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs a verb that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args, "");
        assert!(!o.status.success(), "minirunc {args:?} succeeded");
        String::from_utf8(o.stderr).unwrap()
    }

    /// create + start. The container inherits create's stdio: /dev/null and a stderr file, so no
    /// pipe of ours stays open in it.
    fn start(&self) {
        let err = std::fs::File::create(self.root.join("container.err")).unwrap();
        let bundle = self.bundle.to_str().unwrap();
        let status = self
            .cmd(&["create", "--bundle", bundle, &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .unwrap();
        assert!(status.success(), "create failed: {}", self.stderr());
        self.ok(&["start", &self.id]);
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.root.join("container.err")).unwrap_or_default()
    }

    fn state(&self) -> Value {
        serde_json::from_str(&self.ok(&["state", &self.id])).unwrap()
    }

    fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
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

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = self.run(&["delete", "--force", &self.id], "");
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Polls `f` until it returns Some, for up to `secs` seconds.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ps_json(c: &Ctr) -> Vec<i32> {
    serde_json::from_str(&c.ok(&["ps", "--format", "json", &c.id])).unwrap()
}

#[test]
fn pause_freezes_and_resume_continues() {
    require_host!();
    let c = Ctr::new("i=0; while :; do i=$((i+1)); echo $i >/out/n; done", |_| {});
    c.start();
    let count = || c.read_out("n").trim().parse::<u64>().ok();
    wait_for(5, "the counter to start", count);
    assert!(c.fails(&["resume", &c.id]).contains("container not paused"));
    c.ok(&["pause", &c.id]);
    assert_eq!(c.status(), "paused");
    assert_eq!(c.cg_file("freezer", "freezer.state"), "FROZEN");
    let frozen = c.read_out("n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.read_out("n"), frozen, "the counter advanced while paused");
    assert!(c.fails(&["pause", &c.id]).contains("container not running"));
    c.ok(&["resume", &c.id]);
    assert_eq!(c.status(), "running");
    let before: u64 = frozen.trim().parse().unwrap_or(0);
    wait_for(5, "the counter to continue", || {
        count().filter(|&n| n > before + 100)
    });
}

#[test]
fn delete_force_of_a_paused_container_thaws_and_kills_it() {
    require_host!();
    let c = Ctr::new("sleep 1000", |_| {});
    c.start();
    c.ok(&["pause", &c.id]);
    assert_eq!(c.status(), "paused");
    // Frozen processes act on SIGKILL only once thawed: without the thaw, delete gives up
    // waiting for init and fails.
    c.ok(&["delete", "--force", &c.id]);
    assert!(c.fails(&["state", &c.id]).contains("does not exist"));
}

#[test]
fn ps_lists_exactly_the_container_pids_and_delete_removes_every_cgroup() {
    require_host!();
    let c = Ctr::new("sleep 1000 & wait", |_| {});
    c.start();
    let pids = wait_for(5, "init and its sleep", || {
        Some(ps_json(&c)).filter(|p| p.len() == 2)
    });
    let init = c.state()["pid"].as_i64().unwrap() as i32;
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
    let table = c.ok(&["ps", &c.id]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].split_whitespace().any(|f| f == "PID"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines.iter().any(|l| l.ends_with("sleep 1000")), "{table}");
    let custom = c.ok(&["ps", &c.id, "-o", "pid,comm"]);
    let mut listed: Vec<i32> = custom
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, pids, "{custom}");
    // An exec'd process joins the cgroup, so ps lists it too.
    let exec = c
        .cmd(&["exec", "--detach", &c.id, "sleep", "999"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(exec.success());
    wait_for(5, "the exec'd sleep in ps", || {
        Some(ps_json(&c)).filter(|p| p.len() == 3 && p.starts_with(&pids[..1]))
    });

    c.ok(&["delete", "--force", &c.id]);
    for entry in std::fs::read_dir(CGROUP_ROOT).unwrap().flatten() {
        let dir = entry.path().join("minirunc").join(&c.id);
        assert!(!dir.exists(), "{} remains after delete", dir.display());
    }
    let err = c.fails(&["ps", "--format", "json", &c.id]);
    assert!(is_missing(&err, &c.id), "{err}");
}

#[test]
fn update_changes_live_limits() {
    require_host!();
    let c = Ctr::new("exec sleep 1000", |_| {});
    c.start();
    c.ok(&["update", "--memory", "64m", "--pids-limit", "20", &c.id]);
    assert_eq!(c.cg_file("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(c.cg_file("pids", "pids.max"), "20");

    let json = r#"{"memory":{"limit":33554432},"cpu":{"shares":512},"pids":{"limit":-1},
                   "devices":[{"allow":true,"access":"rwm"}]}"#;
    let o = c.run(&["update", "--resources=-", &c.id], json);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(c.cg_file("memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(c.cg_file("cpu", "cpu.shares"), "512");
    assert_eq!(c.cg_file("pids", "pids.max"), "max");
    // Devices in the JSON are ignored, like runc: the spec's deny-all still holds.
    assert!(!c.cg_file("devices", "devices.list").contains("a *:* rwm"));

    let file = c.root.join("resources.json");
    std::fs::write(&file, r#"{"memory":{"reservation":16777216}}"#).unwrap();
    c.ok(&["update", "--resources", file.to_str().unwrap(), &c.id]);
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
    wait_for(5, "init and its sleep", || {
        Some(ps_json(&c)).filter(|p| p.len() == 2)
    });
    let out = c.ok(&["events", "--stats", &c.id]);
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

/// Lines of a child's stdout, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
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
    let status = c
        .cmd(&["run", "--bundle", bundle, &c.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(137));
}

#[test]
fn events_streams_stats_and_oom_until_the_container_stops() {
    require_host!();
    let c = memory_hog();
    c.start();
    let mut events = c
        .cmd(&["events", "--interval", "200ms", &c.id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut events);
    let first = lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(first.starts_with(r#"{"type":"stats""#), "{first}");
    std::fs::write(c.out.join("go"), "").unwrap();
    // events ends by itself once the container has stopped.
    let rest: Vec<String> =
        std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(10)).ok()).collect();
    assert!(events.wait().unwrap().success());
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
    let refused = wait_for(5, "a refused fork in pids.events", || {
        let events = c.cg_file("pids", "pids.events");
        let n: u64 = events.strip_prefix("max ")?.parse().ok()?;
        (n > 0).then_some(n)
    });
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
        let err = c.fails(&[verb, &c.id]);
        assert!(is_missing(&err, &c.id), "{verb}: {err}");
    }
    c.start();
    wait_for(5, "the container to stop", || {
        (c.status() == "stopped").then_some(())
    });
    for args in [
        vec!["pause", &c.id],
        vec!["events", "--stats", &c.id],
        vec!["update", "--memory", "64m", &c.id],
    ] {
        assert!(c.fails(&args).contains("container not running"), "{args:?}");
    }
    assert!(c.fails(&["resume", &c.id]).contains("container not paused"));
}
