//! The runtime's own attack surface (issue 6): each test runs the attack from inside a real
//! container and asserts it is blocked; where it makes sense a control runs the same attack
//! against a weakened setting and shows that it would have succeeded.

mod common;
#[path = "security/helpers.rs"]
mod helpers;
#[path = "security/isolation.rs"]
mod isolation;
#[path = "seccomp/moby.rs"]
#[allow(dead_code)]
mod moby;
#[path = "security/seccomp_e2e.rs"]
mod seccomp_e2e;

use common::{output_text, spec_config, Sandbox, BIN};
use helpers::{bundle, run_bundle, shell};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Poll `cat FILE` inside the container until its output contains `want`.
fn wait_for(env: &Sandbox, id: &str, file: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = output_text(&env.run(&["exec", id, "cat", file]));
        if out.contains(want) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shared libraries of the runtime binary copied into a rootfs, so that the container can
/// execute the host binary through /proc/self/exe as an attacker's image would allow.
fn add_runtime_libs(rootfs: &Path) {
    let out = std::process::Command::new("ldd").arg(BIN).output().unwrap();
    for lib in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dest = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dest).unwrap();
    }
}

/// Attack `comm` (a process in container `id` holding some binary) with `attack exe`.
/// `release` runs in the container once the attacker holds the exe, to let the victim exit.
fn exe_attack(env: &Sandbox, id: &str, victim: &[&str], comm: &str, release: &[&str]) -> String {
    let _ = env.run(&["exec", id, "rm", "-f", "/tmp/out", "/tmp/fifo"]);
    assert!(env
        .run(&["exec", id, "mkfifo", "/tmp/fifo"])
        .status
        .success());
    let victim = env.spawn(&[&["exec", id], victim].concat());
    let script = format!("/bin/attack exe {comm} >/tmp/out 2>&1");
    let out = env.run(&["exec", "--detach", id, "sh", "-c", &script]);
    assert!(out.status.success(), "exec attack: {}", output_text(&out));
    let held = wait_for(env, id, "/tmp/out", "holding");
    // Release the victim (it blocks opening the fifo) and let the attacker reopen its fd.
    let _ = env.run(&[&["exec", id], release].concat());
    victim.finish();
    let result = wait_for(env, id, "/tmp/out", "reopen_path_write=");
    assert!(
        held.contains("holding"),
        "attacker never held the exe: {held}"
    );
    result
}

/// CVE-2019-5736: a container process executes the host runtime through /proc/self/exe; another
/// container process keeps its exe open and, once it exited, reopens it for writing.
#[test]
fn runtime_binary_cannot_be_overwritten_through_proc_exe() {
    if helpers::skip_without_helper() {
        return;
    }
    let env = Sandbox::new();
    let id = env.id();
    let b = bundle(&env, "b", &spec_config(&["sleep", "600"]));
    add_runtime_libs(&b.join("rootfs"));
    std::fs::copy(b.join("rootfs/bin/attack"), b.join("rootfs/bin/victim")).unwrap();
    let before = helpers::hash(Path::new(BIN));
    assert!(env
        .run(&["create", "--bundle", b.to_str().unwrap(), &id])
        .status
        .success());
    assert!(env.run(&["start", &id]).status.success());

    // Control: the same attack against a binary of the container's own works.
    let victim = ["/bin/victim", "sleep", "2000"];
    let control = exe_attack(&env, &id, &victim, "victim", &["true"]);
    assert!(control.contains("reopen_write=ok"), "control: {control}");

    // The real thing: the runtime binary itself, held by an exec'd /proc/self/exe.
    let victim = ["/proc/self/exe", "--log=/tmp/fifo", "state", "none"];
    let result = exe_attack(&env, &id, &victim, "exe", &["cat", "/tmp/fifo"]);
    assert!(result.contains("open_read=ok"), "attack setup: {result}");
    // While the victim runs the kernel refuses with ETXTBSY (or EROFS); afterwards only the
    // read-only mount stands between the attacker and the host binary.
    assert!(!result.contains("direct_write=ok"), "{result}");
    for what in ["reopen_write", "reopen_path_write"] {
        assert!(
            result.contains(&format!("{what}=EROFS")),
            "{what} not refused with EROFS: {result}"
        );
    }
    assert_eq!(
        helpers::hash(Path::new(BIN)),
        before,
        "the host binary changed"
    );
}

/// Before `start`, init is still the runtime's image: nothing in the container may read its
/// memory or environment or trace it. After start it is the user's program (the control).
#[test]
fn init_cannot_be_inspected_before_exec() {
    if helpers::skip_without_helper() {
        return;
    }
    let env = Sandbox::new();
    let id = env.id();
    let b = bundle(&env, "b", &spec_config(&["sleep", "600"]));
    assert!(env
        .run(&["create", "--bundle", b.to_str().unwrap(), &id])
        .status
        .success());
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert!(status.contains("Uid:\t0"), "{status}");
    let peek = output_text(&env.run(&["exec", &id, "/bin/attack", "peek", "1"]));
    for what in ["environ", "mem", "ptrace"] {
        assert!(
            peek.contains(&format!("{what}=EACCES")) || peek.contains(&format!("{what}=EPERM")),
            "{what} of the created init not refused: {peek}"
        );
    }
    assert!(env.run(&["start", &id]).status.success());
    let peek = output_text(&env.run(&["exec", &id, "/bin/attack", "peek", "1"]));
    assert!(
        peek.contains("environ=ok") && peek.contains("mem=ok"),
        "control after start: {peek}"
    );
}

/// Capabilities exactly as the spec says (CVE-2022-29162): no inheritable or ambient set unless
/// configured; a non-root user has no effective capabilities unless ambient grants them.
#[test]
fn capabilities_are_exactly_the_spec() {
    let env = Sandbox::new();
    let caps = |env: &Sandbox, name: &str, process: serde_json::Value| -> String {
        let id = env.id();
        let mut c = shell("grep Cap /proc/self/status");
        for (k, v) in process.as_object().unwrap() {
            c["process"][k] = v.clone();
        }
        let b = bundle(env, name, &c);
        let (code, out) = run_bundle(env, &b, &id);
        assert_eq!(code, 0, "{out}");
        out
    };
    // Default spec: AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10).
    let root = caps(&env, "root", json!({}));
    for line in ["CapInh:\t0000000000000000", "CapAmb:\t0000000000000000"] {
        assert!(root.contains(line), "{root}");
    }
    for line in ["CapBnd:\t0000000020000420", "CapEff:\t0000000020000420"] {
        assert!(root.contains(line), "{root}");
    }
    let user = caps(&env, "user", json!({"user": {"uid": 1000, "gid": 1000}}));
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert!(
            user.contains(&format!("{set}:\t0000000000000000")),
            "{user}"
        );
    }
    // Control: ambient in the spec gives exactly that capability to the user.
    let nbs = json!(["CAP_NET_BIND_SERVICE"]);
    let amb = caps(
        &env,
        "ambient",
        json!({"user": {"uid": 1000, "gid": 1000}, "capabilities": {
            "bounding": nbs, "permitted": nbs, "inheritable": nbs, "effective": nbs, "ambient": nbs}}),
    );
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert!(amb.contains(&format!("{set}:\t0000000000000400")), "{amb}");
    }
}

/// Ids and paths from the command line: `../` and `/` in an id are refused before anything is
/// created; a relative `--root` means the same directory as its absolute form.
#[test]
fn ids_cannot_escape_the_state_or_data_dir() {
    let env = Sandbox::new();
    let b = bundle(&env, "b", &spec_config(&["true"]));
    let bundle = b.to_str().unwrap();
    let before = listing(&env.dir);
    for bad in [
        "../mrt-escape",
        "..",
        ".",
        "a/b",
        "/tmp/mrt-escape",
        "x/../../mrt-escape",
        "",
    ] {
        let out = env.run(&["create", "--bundle", bundle, bad]);
        assert!(!out.status.success(), "id {bad:?} accepted");
        assert_eq!(listing(&env.dir), before, "id {bad:?} created something");
    }
    assert!(!Path::new("/tmp/mrt-escape").exists());
    // Control: a plain id works, through a relative --root.
    let id = env.id();
    let mut relative = std::process::Command::new(BIN);
    relative.current_dir(&env.dir).args([
        "--root",
        "state",
        "--data-root",
        "data",
        "create",
        "--bundle",
        bundle,
        &id,
    ]);
    let out = env.output(relative);
    assert!(out.status.success(), "{}", output_text(&out));
    let state = env.run(&["state", &id]);
    assert!(
        state.status.success(),
        "absolute --root: {}",
        output_text(&state)
    );
}

/// Every path under `dir`, sorted (the bundle excluded).
fn listing(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.starts_with(dir.join("b")) {
                continue;
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            all.push(p.to_string_lossy().into_owned());
        }
    }
    all.sort();
    all
}

/// AppArmor and SELinux on a host without them: runc 1.1 fails on a process profile or label,
/// so does minirunc (naming the field); a mount label is ignored as runc does.
#[test]
fn lsm_settings_on_a_host_without_lsm() {
    if Path::new("/sys/fs/selinux/enforce").exists()
        || std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y")
    {
        common::cannot_run(
            "this host has AppArmor or SELinux enabled; the test is for hosts without",
        );
        return;
    }
    let env = Sandbox::new();
    let mut c = spec_config(&["true"]);
    c["process"]["apparmorProfile"] = "mrt-profile".into();
    let b = bundle(&env, "aa", &c);
    let id = env.id();
    let (code, out) = run_bundle(&env, &b, &id);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("apparmorProfile"), "{out}");
    let mut c = spec_config(&["true"]);
    c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0".into();
    let b = bundle(&env, "se", &c);
    let id = env.id();
    let (code, out) = run_bundle(&env, &b, &id);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("selinuxLabel"), "{out}");
    let mut c = spec_config(&["true"]);
    c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0".into();
    let b = bundle(&env, "ml", &c);
    let id = env.id();
    let (code, out) = run_bundle(&env, &b, &id);
    assert_eq!(code, 0, "mountLabel must be ignored: {out}");
}

/// `features` reports the seccomp vocabulary the runtime really supports.
#[test]
fn features_lists_seccomp_support() {
    let mut features = std::process::Command::new(BIN);
    features.arg("features");
    let out = Sandbox::new().output(features);
    assert!(out.status.success(), "{}", output_text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sc = &v["linux"]["seccomp"];
    assert_eq!(sc["enabled"], true);
    let has = |key: &str, name: &str| {
        sc[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == name))
    };
    for a in [
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_NOTIFY",
        "SCMP_ACT_LOG",
    ] {
        assert!(has("actions", a), "{a}: {sc}");
    }
    assert!(has("operators", "SCMP_CMP_MASKED_EQ"), "{sc}");
    assert!(
        has("archs", "SCMP_ARCH_X86_64") || has("archs", "SCMP_ARCH_AARCH64"),
        "{sc}"
    );
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["mountOptions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == "rbind")));
}
