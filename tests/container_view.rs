//! What the container's process saw (root): a shell inside prints its namespaces, mounts, ids,
//! capabilities, limits and files, and the tests compare that with the spec and the host.

mod common;

use common::{add_bind, text, Sandbox};
use serde_json::json;
use std::os::fd::{FromRawFd, OwnedFd};

const NAMESPACES: [&str; 6] = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];

fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// `for n in NAMESPACES; do readlink /proc/self/ns/$n; done` as a script.
fn ns_script() -> String {
    format!(
        "for n in {}; do readlink /proc/self/ns/$n; done",
        NAMESPACES.join(" ")
    )
}

#[test]
fn own_namespaces_and_pid_1() {
    let rt = Sandbox::new();
    let out = rt.sh_ok(&format!("echo $$; {}", ns_script()), |_| {});
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    for (ns, inside) in NAMESPACES.iter().zip(&lines[1..]) {
        let host = ns_link("self", ns);
        assert!(inside.starts_with(&format!("{ns}:[")), "{inside}");
        assert_ne!(*inside, host, "{ns} namespace is the host's");
    }
}

#[test]
fn mounts_of_the_default_spec() {
    let rt = Sandbox::new();
    let out = rt.sh_ok("cat /proc/self/mountinfo", |_| {});
    // mountinfo: id parent major:minor root mountpoint options ... - fstype source superoptions
    let find = |dest: &str| -> (String, String) {
        let line = out
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(dest))
            .unwrap_or_else(|| panic!("{dest} not mounted:\n{out}"));
        let (head, tail) = line.split_once(" - ").unwrap();
        let opts = head.split(' ').nth(5).unwrap().to_string();
        (tail.split(' ').next().unwrap().to_string(), opts)
    };
    assert_eq!(find("/proc").0, "proc");
    assert_eq!(find("/dev").0, "tmpfs");
    assert_eq!(find("/dev/pts").0, "devpts");
    assert_eq!(find("/dev/shm").0, "tmpfs");
    assert_eq!(find("/dev/mqueue").0, "mqueue");
    let (fs, opts) = find("/sys");
    assert_eq!(fs, "sysfs");
    assert!(opts.split(',').any(|o| o == "ro"), "/sys is {opts}");
    let (_, opts) = find("/dev/shm");
    for o in ["nosuid", "noexec", "nodev"] {
        assert!(
            opts.split(',').any(|x| x == o),
            "/dev/shm lacks {o}: {opts}"
        );
    }
}

#[test]
fn user_groups_and_umask() {
    let rt = Sandbox::new();
    let out = rt.sh_ok("id -u; id -g; id -G; umask", |c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 23});
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1001");
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["10", "1001", "20"], "{out}");
    assert_eq!(lines[3], "0027");
}

#[test]
fn capabilities_exactly_the_specs() {
    let rt = Sandbox::new();
    let out = rt.sh_ok("grep -E '^(Cap|NoNewPrivs)' /proc/self/status", |c| {
        let kill = json!(["CAP_KILL"]);
        c["process"]["capabilities"] = json!({"bounding": kill, "effective": kill,
            "permitted": kill, "inheritable": kill, "ambient": kill});
    });
    // CAP_KILL is bit 5.
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{set}:\t0000000000000020")),
            "{set}: {out}"
        );
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[test]
fn hostname_env_cwd_rlimits_oom() {
    let rt = Sandbox::new();
    let script = "hostname; cat /proc/sys/kernel/domainname; echo \"$FOO\"; pwd; \
                  ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj";
    let out = rt.sh_ok(script, |c| {
        c["hostname"] = "mrt-host".into();
        c["domainname"] = "mrt.example".into();
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
        c["process"]["cwd"] = "/tmp".into();
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768}]);
        c["process"]["oomScoreAdj"] = 123.into();
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "mrt-host",
            "mrt.example",
            "bar baz",
            "/tmp",
            "512",
            "768",
            "123"
        ]
    );
}

#[test]
fn sysctl_in_the_network_namespace() {
    let rt = Sandbox::new();
    let out = rt.sh_ok("cat /proc/sys/net/ipv4/ip_forward", |c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    assert_eq!(out, "1\n");
}

#[test]
fn masked_and_readonly_paths() {
    let rt = Sandbox::new();
    let script = "if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo 0; fi; stat -c '%t:%T' /proc/keys; ls -A /sys/firmware | wc -l; \
        echo x > /proc/sys/kernel/domainname && echo wrote-sys; \
        echo h > /proc/sysrq-trigger && echo wrote-sysrq; \
        touch /rootfile && echo wrote-root; true";
    let (code, out, err) = rt.run_sh(script, |_| {});
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "/proc/kcore readable: {out}");
    assert_eq!(lines[1], "1:3", "/proc/keys is not /dev/null: {out}");
    assert_eq!(lines[2].trim(), "0", "/sys/firmware not empty: {out}");
    assert!(!out.contains("wrote-sys"), "{out}");
    assert!(!out.contains("wrote-sysrq"), "{out}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(
        out.contains("wrote-root"),
        "writable root refused: {out}{err}"
    );
}

/// Mount destinations through dangling symlinks of the image (`/var/run -> /run` with no
/// `/run`): the link's target is created inside the container's root, never in the image or
/// on the host, and the mount lands there, as with runc.
#[test]
fn mounts_through_dangling_symlinks() {
    let rt = Sandbox::new();
    let rootfs = rt.rootfs_copy("rootfs");
    std::os::unix::fs::symlink("/run", rootfs.join("varrun")).unwrap();
    std::os::unix::fs::symlink("../../made/deep", rootfs.join("rel")).unwrap();
    std::os::unix::fs::symlink("/../../../mrt-outside", rootfs.join("up")).unwrap();
    let vol = rt.path("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("f"), "volume\n").unwrap();
    let (code, out, err) = rt.run_sh(
        "cat /run/x/f; ls -d /made/deep /mrt-outside; grep -c ' /made/deep ' /proc/self/mountinfo",
        |c| {
            c["root"]["path"] = rootfs.to_str().unwrap().into();
            add_bind(c, &vol, "/varrun/x");
            let tmpfs = json!({"destination": "/rel", "type": "tmpfs", "source": "tmpfs"});
            c["mounts"].as_array_mut().unwrap().push(tmpfs.clone());
            let mut up = tmpfs;
            up["destination"] = "/up".into();
            c["mounts"].as_array_mut().unwrap().push(up);
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "volume\n/made/deep\n/mrt-outside\n1\n");
    for made in ["run", "made", "mrt-outside"] {
        assert!(!rootfs.join(made).exists(), "{made} created in the image");
    }
    assert!(
        !std::path::Path::new("/mrt-outside").exists(),
        "created on the host"
    );
}

#[test]
fn readonly_root() {
    let rt = Sandbox::new();
    let (code, out, err) = rt.run_sh("touch /rootfile && echo wrote; true", |c| {
        c["root"]["readonly"] = true.into();
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "");
    assert!(err.contains("Read-only file system"), "{err}");
}

#[test]
fn user_namespace_mappings() {
    let rt = Sandbox::new();
    let out = rt.sh_ok("cat /proc/self/uid_map /proc/self/gid_map; id -u", |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[2], ["0"]);
}

/// A network namespace bound at /run/netns/<name> by `ip netns add`, deleted on drop.
struct NetNs(String);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

#[test]
fn joins_a_namespace_by_path() {
    let name = format!("mrtns-{}-{}", std::process::id(), common::next());
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("SKIP: `ip netns add` (iproute2) is not available");
        return;
    }
    let ns = NetNs(name);
    let path = format!("/run/netns/{}", ns.0);
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&path).unwrap().ino();
    let rt = Sandbox::new();
    let out = rt.sh_ok("readlink /proc/self/ns/net", |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = path.clone().into();
            }
        }
    });
    assert_eq!(out.trim(), format!("net:[{ino}]"));
}

#[test]
fn devices_and_dev_symlinks() {
    let rt = Sandbox::new();
    let script = "stat -c '%F %t:%T %a' /dev/mrtnull; echo hi > /dev/mrtnull && echo written; \
        wc -c < /dev/mrtnull; for l in fd stdin stdout stderr; do readlink /dev/$l; done";
    let out = rt.sh_ok(script, |c| {
        c["linux"]["devices"] = json!([{"path": "/dev/mrtnull", "type": "c",
            "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0}]);
    });
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "character special file 1:3 666",
            "written",
            "0",
            "/proc/self/fd",
            "/proc/self/fd/0",
            "/proc/self/fd/1",
            "/proc/self/fd/2"
        ]
    );
}

#[test]
fn exec_joins_the_container() {
    let rt = Sandbox::new();
    let id = rt.running(|_| {});
    let init = rt.state(&id)["pid"].to_string();
    let out = rt.ok(&["exec", &id, "sh", "-c", &ns_script()]);
    for (ns, inside) in NAMESPACES.iter().zip(out.lines()) {
        assert_eq!(inside, ns_link(&init, ns), "{ns}");
    }
    let out = rt.ok(&[
        "exec",
        "--user",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(out, "1000\n1000\n");
    let out = rt.ok(&[
        "exec",
        "--env",
        "FOO=exec-env",
        &id,
        "sh",
        "-c",
        "echo $FOO",
    ]);
    assert_eq!(out, "exec-env\n");
    let out = rt.ok(&["exec", "--cwd", "/tmp", &id, "pwd"]);
    assert_eq!(out, "/tmp\n");
    let code = rt.run(&["exec", &id, "sh", "-c", "exit 5"]).status.code();
    assert_eq!(code, Some(5));

    let pid_file = rt.path("exec.pid");
    let p = pid_file.to_str().unwrap();
    rt.ok(&["exec", "--detach", "--pid-file", p, &id, "sleep", "1000"]);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert!(pid.parse::<i32>().is_ok(), "{pid:?}");
    assert_eq!(ns_link(&pid, "pid"), ns_link(&init, "pid"));
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.contains(&id),
        "exec'd process not in the container's cgroup: {cg}"
    );
    rt.ok(&["delete", "--force", &id]);
    rt.assert_clean(&id);
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn preserve_fds_passes_exactly_n() {
    let rt = Sandbox::new();
    let script = "echo through-fd3 >&3; [ -e /proc/self/fd/4 ] && echo fd4-open || echo fd4-closed";
    let bundle = rt.bundle(&["sh", "-c", script], |_| {});
    let id = rt.id();
    let (r, w) = pipe();
    let (_r2, w2) = pipe();
    let b = bundle.to_str().unwrap();
    let args = ["run", "--preserve-fds", "1", "--bundle", b, &id];
    // Our write ends go with the command (or the read below would never end).
    let o = rt.run_with_fds(&args, vec![w, w2]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "fd4-closed\n");
    let mut got = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut got).unwrap();
    assert_eq!(got, "through-fd3\n");
    rt.assert_clean(&id);
}

#[test]
fn personality_linux32_changes_the_machine_name() {
    let rt = Sandbox::new();
    let out = rt.sh_ok("uname -m", |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"})
    });
    assert_eq!(out.trim(), "i686", "LINUX32 personality not applied");
    let out = rt.sh_ok("uname -m", |_| {});
    assert_eq!(out.trim(), "x86_64");
}

/// The personality is the process's, not only what uname says: init, its children and exec'd
/// processes all run with PER_LINUX32 (0x0008 in /proc/<pid>/personality).
#[test]
fn personality_applies_to_every_process() {
    let rt = Sandbox::new();
    let id = rt.running(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"}));
    let seen = rt.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/personality /proc/self/personality; (cat /proc/self/personality)",
    ]);
    assert_eq!(seen, "00000008\n".repeat(3), "init, exec'd sh, its child");
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_cpu_affinity_final_pins_the_process() {
    let rt = Sandbox::new();
    let out = rt.sh_ok("grep Cpus_allowed_list /proc/self/status", |c| {
        c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"})
    });
    assert_eq!(out.split_whitespace().last(), Some("1"), "{out}");
}
