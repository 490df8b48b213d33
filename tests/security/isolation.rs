//! What the container sees of the host: fds, working directory, mount destinations, /proc, /sys.

use crate::common::{output_text, spec_config, Sandbox};
use crate::helpers::{bundle, run_bundle, shell, write_config};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

/// The fds of the container's shell (its own listing fd excluded), one number per line.
const LIST_FDS: &str = "ls /proc/$$/fd; true";

fn fd_numbers(out: &str) -> Vec<u32> {
    out.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// No fd of the runtime reaches the container except stdio and `--preserve-fds`.
#[test]
fn no_host_fd_leaks_into_the_container() {
    let env = Sandbox::new();
    let b = bundle(&env, "b", &shell(LIST_FDS));
    let bundle = b.to_str().unwrap();
    let config_file = b.join("config.json");
    let host_files = || -> Vec<OwnedFd> {
        (0..3)
            .map(|_| File::open(&config_file).unwrap().into())
            .collect()
    };
    let id = env.id();
    let out = env.run_with_fds(&["run", "--bundle", bundle, &id], host_files());
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(fd_numbers(&String::from_utf8_lossy(&out.stdout)), [0, 1, 2]);
    // Control: the same fds with --preserve-fds 3 are visible, so the listing can see them.
    let id = env.id();
    let args = ["run", "--preserve-fds", "3", "--bundle", bundle, &id];
    let out = env.run_with_fds(&args, host_files());
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        fd_numbers(&String::from_utf8_lossy(&out.stdout)),
        [0, 1, 2, 3, 4, 5]
    );
}

/// Fds the caller did not open are refused, before the runtime opens fds of its own that could
/// take those numbers (its state-dir lock passed into init once deadlocked `start`).
#[test]
fn passed_fds_must_be_the_callers() {
    let env = Sandbox::new();
    let b = bundle(&env, "b", &shell(LIST_FDS));
    for verb in ["run", "create"] {
        let id = env.id();
        let args = [
            verb,
            "--preserve-fds",
            "3",
            "--bundle",
            b.to_str().unwrap(),
            &id,
        ];
        let out = env.run_with_fds(&args, Vec::new());
        assert!(!out.status.success(), "{verb}: {}", output_text(&out));
        assert!(
            output_text(&out).contains("--preserve-fds: fd 3 is not open"),
            "{}",
            output_text(&out)
        );
        assert!(
            !env.dir.join("state").join(&id).exists(),
            "{verb} left a state dir"
        );
    }
}

/// CVE-2024-21626: a cwd of /proc/self/fd/N must not land in a directory of the host, for
/// init (process.cwd) and for exec (--cwd), whichever fd numbers the runtime has open.
#[test]
fn cwd_through_proc_self_fd_cannot_reach_the_host() {
    let env = Sandbox::new();
    let host = env.dir.join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("mrt-host-marker"), "host").unwrap();
    let host_dirs =
        || -> Vec<OwnedFd> { (0..4).map(|_| File::open(&host).unwrap().into()).collect() };
    let b = bundle(&env, "b", &shell("ls -a; pwd"));
    for n in 3..10 {
        let mut c = shell("ls -a; pwd");
        c["process"]["cwd"] = format!("/proc/self/fd/{n}").into();
        write_config(&b, &c);
        let id = env.id();
        let out = env.run_with_fds(&["run", "--bundle", b.to_str().unwrap(), &id], host_dirs());
        let out = output_text(&out);
        assert!(
            !out.contains("mrt-host-marker"),
            "cwd fd {n} reached the host: {out}"
        );
    }
    write_config(&b, &spec_config(&["sleep", "600"]));
    let id = env.id();
    assert!(env
        .run(&["create", "--bundle", b.to_str().unwrap(), &id])
        .status
        .success());
    assert!(env.run(&["start", &id]).status.success());
    for n in 3..10 {
        let cwd = format!("/proc/self/fd/{n}");
        let args = ["exec", "--cwd", &cwd, &id, "sh", "-c", "ls -a; pwd"];
        let out = output_text(&env.run_with_fds(&args, host_dirs()));
        assert!(
            !out.contains("mrt-host-marker"),
            "exec --cwd fd {n} reached the host: {out}"
        );
    }
    // Control: the marker is what a host directory listing shows.
    let out = std::process::Command::new("ls")
        .arg("-a")
        .current_dir(&host)
        .output()
        .unwrap();
    assert!(output_text(&out).contains("mrt-host-marker"));
}

/// CVE-2021-30465 class: symlinks in the image as mount destinations, masked and read-only
/// paths are resolved inside the rootfs; nothing is mounted on or written to the host.
#[test]
fn symlinked_mount_destinations_stay_inside_the_rootfs() {
    let env = Sandbox::new();
    let marker = env.dir.join("hostmark");
    std::fs::create_dir(&marker).unwrap();
    std::fs::write(marker.join("secret"), "hostsecret").unwrap();
    let script = "touch /mnt/evil/pwn1 /mnt/evil2/pwn2 /mnt/evilro/pwn3; cat /etc/evilmask; \
                  ls /mnt/evil /mnt/evil2; true";
    let mut c = shell(script);
    let tmpfs =
        |dest: &str| serde_json::json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"});
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .extend([tmpfs("/mnt/evil"), tmpfs("/mnt/evil2")]);
    c["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push("/etc/evilmask".into());
    c["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push("/mnt/evilro".into());
    let b = bundle(&env, "b", &c);
    let rootfs = b.join("rootfs");
    std::fs::create_dir_all(rootfs.join("mnt")).unwrap();
    let up = "../".repeat(12) + marker.to_str().unwrap().trim_start_matches('/');
    std::os::unix::fs::symlink(&marker, rootfs.join("mnt/evil")).unwrap();
    std::os::unix::fs::symlink(&up, rootfs.join("mnt/evil2")).unwrap();
    std::os::unix::fs::symlink(&marker, rootfs.join("mnt/evilro")).unwrap();
    std::os::unix::fs::symlink(marker.join("secret"), rootfs.join("etc/evilmask")).unwrap();
    // The links' targets exist inside the rootfs too, so the mounts can succeed there.
    std::fs::create_dir_all(rootfs.join(marker.strip_prefix("/").unwrap())).unwrap();
    // Control: followed on the host, the links do lead to the marker directory.
    assert_eq!(
        std::fs::canonicalize(rootfs.join("mnt/evil2")).unwrap(),
        marker
    );

    let id = env.id();
    let out = env.run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", output_text(&out));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(marker.to_str().unwrap()),
        "host mount: {mountinfo}"
    );
    assert!(env.run(&["start", &id]).status.success());
    env.wait_status(&id, "stopped");
    let names: Vec<_> = std::fs::read_dir(&marker)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        ["secret"],
        "the container wrote into the host directory"
    );
    assert_eq!(
        std::fs::read_to_string(marker.join("secret")).unwrap(),
        "hostsecret"
    );
    std::fs::write(marker.join("still-writable"), "x").expect("host dir made read-only");
}

/// /proc and /sys: masked paths masked, /proc/sys and /proc/sysrq-trigger read-only, /sys
/// read-only. The control drops the protections of /proc/sys and shows the write lands.
#[test]
fn proc_and_sys_are_masked_and_read_only() {
    let env = Sandbox::new();
    let script = "echo h > /proc/sysrq-trigger && echo SYSRQ-WRITTEN; \
                  echo mrt > /proc/sys/kernel/hostname && echo SYSCTL-WRITTEN; \
                  echo 1 > /sys/kernel/profiling && echo SYS-WRITTEN; \
                  touch /sys/mrt && echo SYS-CREATED; \
                  echo kcore=$(head -c 16 /proc/kcore | wc -c); \
                  echo acpi=$(ls /proc/acpi | wc -l); \
                  grep -c . /proc/keys; true";
    let b = bundle(&env, "b", &shell(script));
    let id = env.id();
    let (code, out) = run_bundle(&env, &b, &id);
    assert_eq!(code, 0, "{out}");
    for bad in [
        "SYSRQ-WRITTEN",
        "SYSCTL-WRITTEN",
        "SYS-WRITTEN",
        "SYS-CREATED",
    ] {
        assert!(!out.contains(bad), "{bad}: {out}");
    }
    assert!(out.contains("kcore=0") && out.contains("acpi=0"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    // Control: without /proc/sys in readonlyPaths the (uts-namespaced) hostname sysctl is writable.
    let mut c = shell("echo mrt > /proc/sys/kernel/hostname && echo SYSCTL-WRITTEN; hostname");
    c["linux"]["readonlyPaths"] = serde_json::json!([]);
    c["process"]["capabilities"]["effective"] = serde_json::json!(["CAP_SYS_ADMIN"]);
    c["process"]["capabilities"]["permitted"] = serde_json::json!(["CAP_SYS_ADMIN"]);
    c["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_SYS_ADMIN"]);
    write_config(&b, &c);
    let id = env.id();
    let (code, out) = run_bundle(&env, &b, &id);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SYSCTL-WRITTEN"), "control: {out}");
    assert!(Path::new("/proc/sys/kernel/hostname").exists());
}
