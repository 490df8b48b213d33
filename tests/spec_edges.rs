//! Edges of the runtime spec that platforms hit (root propagation, device types, special
//! filesystems over symlinks): each test runs a real container and checks what it saw and what
//! the host keeps.

mod common;

use common::{host_mounts, is_within, Mount, Sandbox};
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn sh(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(st.success(), "{args:?}: {st}");
}

fn add_caps(c: &mut serde_json::Value, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        let list = c["process"]["capabilities"][set].as_array_mut().unwrap();
        list.extend(caps.iter().map(|&c| json!(c)));
    }
}

/// The line of the container's `/` in its mountinfo.
const ROOT_LINE: &str = "awk '$5 == \"/\"' /proc/self/mountinfo";

/// Host mounts within the sandbox (its layers, its rootfs): other tests mount elsewhere meanwhile.
fn sandbox_mounts(env: &Sandbox) -> Vec<String> {
    let dir = env.path("");
    host_mounts()
        .into_iter()
        .filter(|m| is_within(m, &dir))
        .collect()
}

/// Kubernetes' Bidirectional volumes: `rootfsPropagation: rshared` with an `rshared` volume.
/// The root is pivoted (pivot_root refuses a shared root) and shared inside; a mount the
/// container makes in the volume reaches the host; none of the runtime's own mounts does, though
/// the rootfs is a peer of a shared host mount.
#[test]
fn rshared_root_propagates_only_through_shared_volumes() {
    let env = Sandbox::new();
    let host = env.path("host");
    std::fs::create_dir(&host).unwrap();
    env.keep_mount(Mount::new("tmpfs", "tmpfs", &host, "").expect("tmpfs"));
    sh(&["mount", "--make-shared", host.to_str().unwrap()]);
    let rootfs = host.join("rootfs");
    sh(&[
        "cp",
        "-a",
        common::rootfs().to_str().unwrap(),
        rootfs.to_str().unwrap(),
    ]);
    // Mounted, as containerd mounts a snapshot: the runtime makes only this mount private in the
    // container's namespace (a rootfs directory of the volume's mount would take it along).
    let _root_mount = Mount::bind(&rootfs, &rootfs);
    let vol = host.join("vol");
    std::fs::create_dir_all(vol.join("sub")).unwrap();
    let before: Vec<String> = host_mounts();
    let script = format!("mount -t tmpfs bidi /vol/sub && {ROOT_LINE}");
    let out = env.sh_ok(&script, |c| {
        c["root"]["path"] = json!(rootfs);
        c["annotations"] = json!({"org.minirunc.rootfs.mode": "direct"});
        c["linux"]["rootfsPropagation"] = json!("rshared");
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "rshared"],
        }));
        add_caps(c, &["CAP_SYS_ADMIN"]);
    });
    assert!(
        out.contains(" shared:"),
        "the container's / is not shared: {out}"
    );
    let sub = vol.join("sub");
    let new: Vec<String> = host_mounts()
        .into_iter()
        .filter(|m| is_within(m, &host) && !before.contains(m))
        .collect();
    // The container's mount, propagated back: undone before any assertion can fail.
    let propagated = new.iter().any(|m| Path::new(m) == sub);
    if propagated {
        sh(&["umount", sub.to_str().unwrap()]);
    }
    assert!(
        propagated,
        "the volume's mount did not reach the host: {new:?}"
    );
    assert_eq!(new.len(), 1, "runtime mounts reached the host: {new:?}");
}

/// Every propagation value creates a working container; the host's table is unchanged.
#[test]
fn every_root_propagation_value_runs() {
    let env = Sandbox::new();
    for value in [
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ] {
        let before = sandbox_mounts(&env);
        let out = env.sh_ok(ROOT_LINE, |c| {
            c["linux"]["rootfsPropagation"] = json!(value);
        });
        let flag = match value.trim_start_matches('r') {
            "shared" => " shared:",
            "unbindable" => " unbindable",
            _ => " - ",
        };
        assert!(out.contains(flag), "{value}: {out}");
        if flag == " - " {
            assert!(
                !out.contains("shared:") && !out.contains("unbindable"),
                "{value}: {out}"
            );
        }
        assert_eq!(
            before,
            sandbox_mounts(&env),
            "{value}: the host's mounts changed"
        );
    }
    let err = env.fails(&[
        "run",
        "--bundle",
        env.bundle(&["true"], |c| {
            c["linux"]["rootfsPropagation"] = json!("bogus")
        })
        .to_str()
        .unwrap(),
        &env.id(),
    ]);
    assert!(
        err.contains("linux.rootfsPropagation") && err.contains("bogus"),
        "{err}"
    );
}

/// A FIFO (`p`) and an unbuffered char device (`u`) in linux.devices, behind the default spec's
/// deny-all device rule: the cgroup takes no rule for the FIFO (it is no device to the kernel)
/// and a `c` rule for `u`; both nodes exist and work.
#[test]
fn fifo_and_unbuffered_char_devices() {
    let env = Sandbox::new();
    let script = "test -p /dev/mrt-fifo && echo fifo; echo x > /dev/mrt-null && echo null written";
    let out = env.sh_ok(script, |c| {
        assert!(c["linux"]["resources"]["devices"][0]["allow"] == false);
        c["linux"]["devices"] = json!([
            {"path": "/dev/mrt-fifo", "type": "p", "major": 0, "minor": 0, "fileMode": 438},
            {"path": "/dev/mrt-null", "type": "u", "major": 1, "minor": 3, "fileMode": 438},
        ]);
    });
    assert_eq!(out, "fifo\nnull written\n");
}

/// proc or sysfs at a destination the image made a symlink (`/proc -> /tmp/x`) is refused, as
/// runc does: procfs mounted elsewhere escapes LSM confinement (CVE-2019-19921). Nothing is left.
#[test]
fn kernel_filesystems_refuse_symlinked_destinations() {
    let env = Sandbox::new();
    for dir in ["proc", "sys"] {
        let rootfs = env.rootfs_copy(&format!("rootfs-{dir}"));
        std::fs::remove_dir(rootfs.join(dir)).unwrap();
        std::fs::create_dir_all(rootfs.join("tmp/x")).unwrap();
        std::os::unix::fs::symlink("/tmp/x", rootfs.join(dir)).unwrap();
        let bundle = env.bundle(&["true"], |c| c["root"]["path"] = json!(rootfs));
        let id = env.id();
        let err = env.fails(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
        assert!(
            err.contains(&format!("/{dir}"))
                && err.contains("must be mounted on an ordinary directory"),
            "{err}"
        );
        assert!(std::fs::read_dir(rootfs.join("tmp/x"))
            .unwrap()
            .next()
            .is_none());
        env.assert_clean(&id);
    }
}

/// `linux.memoryPolicy` (spec 1.3) is in effect: the container's mappings carry the policy in
/// /proc/self/numa_maps, in init and in an exec'd process. A node the host lacks is an error
/// naming the field, and leaves nothing.
#[test]
fn memory_policy_is_in_effect() {
    let env = Sandbox::new();
    for (mode, flags, seen) in [
        ("MPOL_BIND", json!([]), "bind:0"),
        (
            "MPOL_INTERLEAVE",
            json!(["MPOL_F_STATIC_NODES"]),
            "interleave=static:0",
        ),
        ("MPOL_PREFERRED", json!([]), "prefer:0"),
    ] {
        let id = env.running(|c| {
            c["linux"]["memoryPolicy"] = json!({"mode": mode, "nodes": "0", "flags": flags});
        });
        for pid in ["1", "self"] {
            let maps = env.ok(&["exec", &id, "cat", &format!("/proc/{pid}/numa_maps")]);
            let policy = |l: &str| l.split_whitespace().nth(1) == Some(seen);
            assert!(maps.lines().all(policy), "{mode} in {pid}:\n{maps}");
        }
        env.ok(&["delete", "--force", &id]);
    }
    let bundle = env.bundle(&["true"], |c| {
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "1000"});
    });
    let id = env.id();
    let err = env.fails(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(err.contains("linux.memoryPolicy"), "{err}");
    env.assert_clean(&id);
}

/// `timeOffsets` in a new time namespace, with and without a user namespace (which owns the
/// time namespace then): the container's boot time and monotonic clock are shifted.
#[test]
fn time_offsets_with_and_without_a_user_namespace() {
    let env = Sandbox::new();
    let year = 365 * 86400;
    for userns in [false, true] {
        let out = env.sh_ok("cut -d. -f1 /proc/uptime", |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(json!({"type": "time"}));
            if userns {
                ns.push(json!({"type": "user"}));
                let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                c["linux"]["uidMappings"] = map.clone();
                c["linux"]["gidMappings"] = map;
            }
            c["linux"]["timeOffsets"] = json!({
                "boottime": {"secs": year, "nanosecs": 0},
                "monotonic": {"secs": year, "nanosecs": 0},
            });
        });
        let uptime: i64 = out.trim().parse().unwrap();
        assert!(uptime >= year, "user namespace {userns}: uptime {uptime}");
    }
}

/// The optional fields (propagation) of the host's `/` in the host's mount table.
fn host_root_propagation() -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("/ in mountinfo");
    let fields: Vec<&str> = line.split(' ').collect();
    let end = fields.iter().position(|f| *f == "-").unwrap();
    fields[6..end].join(" ")
}

/// A spec without a mount namespace inherits the runtime's: the root is mounted in the host's
/// table and entered with chroot (init and exec'd processes alike), writes go to the container's
/// upper layer, the host's `/` keeps its propagation, and delete removes every mount it made.
#[test]
fn a_container_without_a_mount_namespace() {
    let env = Sandbox::new();
    let propagation = host_root_propagation();
    let no_mount_ns = |c: &mut serde_json::Value| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
    };
    // A create that fails after the root is mounted in the host's table leaves none of it.
    let (failed, ok) = env.try_create(&env.bundle(&["true"], |c| {
        no_mount_ns(c);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/x", "type": "nosuchfs", "source": "none",
        }));
    }));
    assert!(!ok, "a mount of type nosuchfs was accepted");
    assert_eq!(sandbox_mounts(&env), Vec::<String>::new(), "mounts left");
    env.assert_clean(&failed);

    let script = "echo init > /from-init; exec sleep 1000";
    let id = env.start_bundle(&env.bundle(&["sh", "-c", script], no_mount_ns), &[]);
    let seen = common::wait_for(std::time::Duration::from_secs(10), "init's write", || {
        let o = env.run(&["exec", &id, "cat", "/from-init"]);
        o.status.success().then(|| common::text(&o.stdout))
    });
    assert_eq!(seen.trim(), "init");
    let listing = env.ok(&["exec", &id, "ls", "/"]);
    let mut image: Vec<String> = std::fs::read_dir(common::rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .chain(["from-init".to_string()])
        .collect();
    image.sort();
    let mut inside: Vec<String> = listing.split_whitespace().map(String::from).collect();
    inside.sort();
    assert_eq!(inside, image, "exec does not see the container's root");
    assert!(
        !common::rootfs().join("from-init").exists(),
        "the image was written"
    );

    let mounts = sandbox_mounts(&env);
    assert!(
        mounts.iter().any(|m| m.ends_with("/merged/proc")),
        "the container's mounts are not in the host's table: {mounts:?}"
    );
    assert!(
        mounts.iter().all(|m| is_within(m, &env.data_root)),
        "mounts outside the container's layer: {mounts:?}"
    );
    assert_eq!(host_root_propagation(), propagation, "the host's / changed");

    env.ok(&["delete", "--force", &id]);
    assert_eq!(sandbox_mounts(&env), Vec::<String>::new(), "mounts left");
    assert_eq!(host_root_propagation(), propagation, "the host's / changed");
    env.assert_clean(&id);
}

/// A relative mount destination (deprecated, still allowed by the spec for old configs) is
/// relative to `/`, as runc takes it, with a warning; exec and commit read it the same way.
#[test]
fn a_relative_mount_destination_is_relative_to_the_root() {
    let env = Sandbox::new();
    let (code, out, err) = env.run_sh(
        "awk '$5 == \"/rel\" { print $9 }' /proc/self/mountinfo",
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "rel", "type": "tmpfs", "source": "tmpfs",
            }));
        },
    );
    assert_eq!((code, out.trim()), (0, "tmpfs"), "stderr: {err}");
    assert!(err.contains("rel is not absolute"), "no warning: {err}");
}

/// Idmapped bind mounts (spec 1.2): a mount's own maps, and a bare `idmap` option taking the
/// container's user namespace maps, so a volume owned by host root is root's inside.
#[test]
fn idmapped_bind_mounts() {
    use std::os::unix::fs::MetadataExt;
    let env = Sandbox::new();
    let vol = env.path("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("root-file"), "").unwrap();
    std::fs::write(vol.join("user-file"), "").unwrap();
    std::os::unix::fs::chown(vol.join("user-file"), Some(1000), Some(1000)).unwrap();
    let owners = "ls -ln /vol | awk 'NF > 3 { print $9, $3, $4 }'";

    // Host root's files appear as 1000 through the mount's maps; unmapped ids as the overflow id.
    let out = env.sh_ok(owners, |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/vol", "type": "bind", "source": vol, "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        }));
    });
    assert_eq!(out, "root-file 1000 1000\nuser-file 65534 65534\n");

    // In a user namespace mapping 0 to 100000, `idmap` makes the volume's ids the container's:
    // what its root writes is host root's on disk. Its copy-on-write root is writable too.
    let script = format!("{owners} && touch /vol/new /in-root");
    let out = env.sh_ok(&script, |c| {
        let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps;
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", "idmap"],
        }));
    });
    assert_eq!(out, "root-file 0 0\nuser-file 1000 1000\n");
    let new = std::fs::metadata(vol.join("new")).unwrap();
    assert_eq!((new.uid(), new.gid()), (0, 0));
}
