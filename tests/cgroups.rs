//! Real cgroup tests (root): resources reach the kernel files, limits are enforced on processes,
//! the freezer freezes, stats and pids are real, and destroy leaves nothing behind.
//! v1/hybrid tests use the host layout; v2 tests use the cgroup2 mount through `with_root`.

mod common;

use minirunc::cgroups::{Cgroup, Layout};
use oci_spec::runtime::LinuxResources;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const UNIFIED_ROOT: &str = "/sys/fs/cgroup/unified";

fn unique_path(name: &str) -> PathBuf {
    let n = common::next();
    PathBuf::from(format!("/minirunc-test-{}-{n}-{name}", std::process::id()))
}

/// A test cgroup and its processes; dropping it kills the processes and removes the cgroup.
struct Fixture {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Fixture {
    fn host(name: &str) -> Fixture {
        let cg = Cgroup::new(Some(&unique_path(name)), "unused").unwrap();
        Fixture {
            cg,
            children: Vec::new(),
        }
    }

    fn v2(name: &str) -> Option<Fixture> {
        let root = Path::new(UNIFIED_ROOT);
        if !root.join("cgroup.controllers").exists() {
            common::cannot_run(&format!("no cgroup2 mount at {UNIFIED_ROOT}"));
            return None;
        }
        let cg = Cgroup::with_root(root, Some(&unique_path(name)), "unused").unwrap();
        assert_eq!(cg.layout(), Layout::Unified);
        Some(Fixture {
            cg,
            children: Vec::new(),
        })
    }

    /// Starts `script` under busybox sh, moves it into the cgroup, then lets it run: the script's
    /// first `read` holds it until it is inside. Returns its pid.
    fn spawn(&mut self, script: &str) -> i32 {
        let child = Command::new("/bin/busybox")
            .args(["sh", "-c", &format!("read go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.children.push(child);
        self.cg.add_pid(pid).unwrap();
        let child = self.children.last_mut().unwrap();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        pid
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // A frozen process only dies once thawed; background processes are not our children.
        let _ = self.cg.thaw();
        let _ = self.cg.kill_all(nix::sys::signal::Signal::SIGKILL);
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.cg.destroy();
    }
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// Applying `json` must fail with an error starting with `prefix`.
fn assert_apply_fails(cg: &Cgroup, json: &str, prefix: &str) {
    let err = cg.apply(&resources(json)).unwrap_err().to_string();
    assert!(err.starts_with(prefix), "{err}");
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_string()
}

fn dir_of(cg: &Cgroup, file: &str) -> PathBuf {
    cg.dirs()
        .into_iter()
        .find(|d| d.join(file).exists())
        .unwrap_or_else(|| panic!("no hierarchy has {file}"))
        .to_path_buf()
}

/// A created cgroup on the host layout with `resources` (JSON), or None (printing why) on a v2-only host.
fn v1_fixture(name: &str, resources_json: Option<&str>) -> Option<Fixture> {
    let f = Fixture::host(name);
    if f.cg.layout() == Layout::Unified {
        common::cannot_run("host is cgroup v2 only; v1 tests need v1 hierarchies");
        return None;
    }
    f.cg.create(resources_json.map(resources).as_ref()).unwrap();
    Some(f)
}

/// utime+stime of a process in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn v1_resources_reach_kernel_files() {
    let Some(f) = v1_fixture("res", None) else {
        return;
    };
    let r = resources(
        r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296,
                   "kernel": 50331648, "kernelTCP": 16777216, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000,
                "realtimePeriod": 1000000, "realtimeRuntime": 1000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 10},
        "blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 300}]},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    }"#,
    );
    f.cg.apply(&r).unwrap();
    let cg = &f.cg;
    let expect = [
        ("memory.limit_in_bytes", "67108864"),
        ("memory.soft_limit_in_bytes", "33554432"),
        ("memory.memsw.limit_in_bytes", "100663296"),
        ("memory.kmem.tcp.limit_in_bytes", "16777216"),
        ("memory.swappiness", "10"),
        ("cpu.shares", "512"),
        ("cpu.cfs_quota_us", "50000"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.rt_period_us", "1000000"),
        ("cpu.rt_runtime_us", "1000"),
        ("cpuset.cpus", "0"),
        ("cpuset.mems", "0"),
        ("pids.max", "10"),
        ("blkio.throttle.read_bps_device", "254:0 1048576"),
        ("blkio.throttle.write_iops_device", "254:0 300"),
        ("devices.list", "c 1:3 rwm"),
    ];
    for (file, value) in expect {
        assert_eq!(read(&dir_of(cg, file), file), value, "{file}");
    }
    // Kernels since 5.16 accept a kmem limit write but keep it unlimited (kmem limits are gone).
    let kmem = read(
        &dir_of(cg, "memory.kmem.limit_in_bytes"),
        "memory.kmem.limit_in_bytes",
    );
    if kmem != "50331648" {
        assert!(kmem.parse::<u64>().unwrap() > 1 << 60, "{kmem}");
        println!("SKIP: memory.kmem.limit_in_bytes: this kernel accepts but ignores kmem limits");
    }
    // Update: -1 is written as unlimited, and lowering swap with the limit keeps the order valid.
    cg.apply(&resources(
        r#"{"memory": {"limit": 33554432, "swap": 33554432}, "pids": {"limit": -1}}"#,
    ))
    .unwrap();
    assert_eq!(
        read(
            &dir_of(cg, "memory.memsw.limit_in_bytes"),
            "memory.memsw.limit_in_bytes"
        ),
        "33554432"
    );
    assert_eq!(read(&dir_of(cg, "pids.max"), "pids.max"), "max");
    cg.apply(&resources(r#"{"memory": {"limit": -1}}"#))
        .unwrap();
    let mem = dir_of(cg, "memory.limit_in_bytes");
    assert!(read(&mem, "memory.limit_in_bytes").parse::<u64>().unwrap() > 1 << 60);
    assert!(
        read(&mem, "memory.memsw.limit_in_bytes")
            .parse::<u64>()
            .unwrap()
            > 1 << 60
    );
}

#[test]
fn v1_optional_controllers_apply_or_say_why() {
    let Some(f) = v1_fixture("opt", None) else {
        return;
    };
    let weight = resources(r#"{"blockIO": {"weight": 500}}"#);
    match f.cg.apply(&weight) {
        Ok(()) => {
            let dir = dir_of(&f.cg, "blkio.throttle.read_bps_device");
            let file = ["blkio.weight", "blkio.bfq.weight"]
                .into_iter()
                .find(|n| dir.join(n).exists())
                .unwrap();
            assert!(read(&dir, file).contains("500"), "{file}");
        }
        Err(e) => {
            assert!(e.to_string().contains("weight"), "{e}");
            println!("SKIP: blkio weight: no CFQ/BFQ weight file on this host: {e}");
        }
    }
    let net = resources(r#"{"network": {"classID": 1048577}}"#);
    match f.cg.apply(&net) {
        Ok(()) => assert_eq!(
            read(&dir_of(&f.cg, "net_cls.classid"), "net_cls.classid"),
            "1048577"
        ),
        Err(e) => {
            assert!(e.to_string().contains("net_cls"), "{e}");
            println!("SKIP: network classID: net_cls not mounted: {e}");
        }
    }
    let sizes = Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB");
    if !sizes.exists() {
        println!("SKIP: no 2MB huge pages on this host");
        return;
    }
    f.cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
    ))
    .unwrap();
    let file = ["hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max"]
        .into_iter()
        .find(|n| f.cg.dirs().iter().any(|d| d.join(n).exists()))
        .unwrap();
    assert_eq!(read(&dir_of(&f.cg, file), file), "4194304");
}

#[test]
fn refused_value_names_key_and_errno() {
    let Some(f) = v1_fixture("bad", None) else {
        return;
    };
    assert_apply_fails(
        &f.cg,
        r#"{"memory": {"swappiness": 1000}}"#,
        "cgroup memory.swappiness: write \"1000\": Invalid argument",
    );
}

#[test]
fn process_joins_every_hierarchy_and_is_listed() {
    let Some(mut f) = v1_fixture("join", None) else {
        return;
    };
    let pid = f.spawn("exec sleep 30");
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = f.cg.path().to_str().unwrap();
    for line in text.lines() {
        let (_, controllers_and_path) = line.split_once(':').unwrap();
        let (controllers, path) = controllers_and_path.split_once(':').unwrap();
        if controllers.contains("net_") || controllers.contains("perf_event") {
            continue;
        }
        assert_eq!(path, want, "hierarchy {controllers:?} in {text}");
    }
    assert_eq!(f.cg.pids().unwrap(), vec![pid]);
}

#[test]
fn pids_limit_makes_fork_fail() {
    let Some(mut f) = v1_fixture("pids", Some(r#"{"pids": {"limit": 2}}"#)) else {
        return;
    };
    f.spawn("for i in 1 2 3 4; do sleep 1 >/dev/null 2>&1 & done; echo forked");
    let child = f.children.pop().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Resource temporarily unavailable"),
        "stderr: {stderr}"
    );
}

#[test]
fn memory_hog_is_oom_killed() {
    let mem = r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#;
    let Some(mut f) = v1_fixture("oom", Some(mem)) else {
        return;
    };
    f.spawn("exec tail /dev/zero");
    let mut child = f.children.pop().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(f.cg.oom_count().unwrap() >= 1);
}

fn assert_freeze_stops_and_thaw_resumes(f: &mut Fixture) {
    let pid = f.spawn("while :; do :; done");
    std::thread::sleep(Duration::from_millis(50));
    f.cg.freeze().unwrap();
    assert!(f.cg.is_frozen().unwrap());
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(pid), before, "a frozen process must not run");
    f.cg.thaw().unwrap();
    assert!(!f.cg.is_frozen().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(cpu_ticks(pid) > before, "a thawed process runs again");
}

#[test]
fn freeze_stops_process_and_thaw_resumes() {
    let Some(mut f) = v1_fixture("freeze", None) else {
        return;
    };
    assert_freeze_stops_and_thaw_resumes(&mut f);
}

#[test]
fn stats_report_real_usage() {
    let Some(mut f) = v1_fixture("stats", Some(r#"{"pids": {"limit": 50}}"#)) else {
        return;
    };
    f.spawn(
        "x=$(busybox seq 1 30000); i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 30",
    );
    std::thread::sleep(Duration::from_millis(400));
    let s = f.cg.stats().unwrap();
    assert!(s.memory.usage.usage > 0, "{s:?}");
    assert!(!s.memory.raw.is_empty());
    assert!(
        s.cpu.usage.total > 0 && !s.cpu.usage.percpu.is_empty(),
        "{s:?}"
    );
    assert_eq!((s.pids.current, s.pids.limit), (1, 50));
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
}

#[test]
fn destroy_removes_every_directory() {
    let Some(mut f) = v1_fixture("destroy", None) else {
        return;
    };
    let dirs: Vec<PathBuf> = f.cg.dirs().into_iter().map(Path::to_path_buf).collect();
    assert!(dirs.iter().all(|d| d.is_dir()));
    // A child cgroup made by the container goes too.
    std::fs::create_dir(dirs[0].join("inner")).unwrap();
    f.spawn("exec sleep 30");
    let mut child = f.children.pop().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    f.cg.destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} remains", d.display());
    }
    f.cg.destroy().unwrap();
}

// ---- cgroup v2 through the unified mount ----

#[test]
fn v2_process_freeze_pids_and_destroy() {
    let Some(mut f) = Fixture::v2("v2freeze") else {
        return;
    };
    f.cg.create(None).unwrap();
    assert_freeze_stops_and_thaw_resumes(&mut f);
    let pid = f.children[0].id() as i32;
    assert_eq!(f.cg.pids().unwrap(), vec![pid]);
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        text.lines()
            .any(|l| l == format!("0::{}", f.cg.path().display())),
        "{text}"
    );
    let s = f.cg.stats().unwrap();
    assert!(s.cpu.usage.total > 0 && s.cpu.usage.user > 0, "{s:?}");
    let dir = f.cg.dirs()[0].to_path_buf();
    f.children[0].kill().unwrap();
    f.children[0].wait().unwrap();
    f.cg.destroy().unwrap();
    assert!(!dir.exists());
}

#[test]
fn v2_unified_map_and_hugetlb() {
    let Some(f) = Fixture::v2("v2res") else {
        return;
    };
    f.cg.create(Some(&resources(
        r#"{"unified": {"cgroup.max.descendants": "3"}}"#,
    )))
    .unwrap();
    let dir = f.cg.dirs()[0].to_path_buf();
    assert_eq!(read(&dir, "cgroup.max.descendants"), "3");
    let err =
        f.cg.apply(&resources(r#"{"unified": {"../x": "1"}}"#))
            .unwrap_err();
    assert!(err.to_string().contains("../x"), "{err}");
    if !dir.join("hugetlb.2MB.max").exists() {
        println!("SKIP: hugetlb controller (2MB) not available on the cgroup2 mount");
        return;
    }
    f.cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": -1}]}"#,
    ))
    .unwrap();
    assert_eq!(read(&dir, "hugetlb.2MB.max"), "max");
    f.cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 8388608}]}"#,
    ))
    .unwrap();
    assert_eq!(read(&dir, "hugetlb.2MB.max"), "8388608");
    assert!(f.cg.stats().unwrap().hugetlb.contains_key("2MB"));
}

#[test]
fn v2_missing_controller_is_a_clear_error() {
    let Some(f) = Fixture::v2("v2err") else {
        return;
    };
    f.cg.create(None).unwrap();
    let dir = f.cg.dirs()[0].to_path_buf();
    if dir.join("memory.max").exists() {
        f.cg.apply(&resources(r#"{"memory": {"limit": 67108864, "swap": -1}}"#))
            .unwrap();
        assert_eq!(read(&dir, "memory.max"), "67108864");
        return;
    }
    assert_apply_fails(
        &f.cg,
        r#"{"memory": {"limit": 67108864}}"#,
        "cgroup memory.max: write \"67108864\"",
    );
    println!("SKIP: memory controller is bound to v1; v2 memory.max only checked for its error");
}

#[test]
fn v2_device_rules_are_enforced_by_ebpf() {
    let Some(mut f) = Fixture::v2("v2dev") else {
        return;
    };
    let rules = r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}"#;
    f.cg.create(Some(&resources(rules))).unwrap();
    f.spawn("head -c 1 /dev/zero >/dev/null && echo zero; echo x >/dev/null && echo null");
    let out = f.children.pop().unwrap().wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        stdout, "null\n",
        "only /dev/null (1:3) is allowed; stderr: {stderr}"
    );
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}
