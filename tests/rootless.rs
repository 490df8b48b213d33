//! Rootless mode as a real unprivileged user (the test user of tests/common/user.rs): the
//! --rootless flag, where a user's state goes by default, the refusal to run setuid, and real
//! containers run by the user: their lifecycle, single-id and multi-range mappings, no cgroup,
//! the bad inputs, and that the user can remove everything afterwards.

mod common;
use common::{give_to_user, rootless_user, run_as_user, text, user_command, Sandbox, BIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A sandbox whose directory the test user owns, with its private XDG_RUNTIME_DIR and HOME.
fn user_sandbox() -> Sandbox {
    let rt = Sandbox::new();
    give_to_user(&rt.dir);
    for d in ["xdg", "home"] {
        std::fs::create_dir(rt.path(d)).unwrap();
        give_to_user(&rt.path(d));
    }
    rt
}

fn user_env(rt: &Sandbox) -> Vec<(&'static str, std::path::PathBuf)> {
    vec![
        ("XDG_RUNTIME_DIR", rt.path("xdg")),
        ("HOME", rt.path("home")),
    ]
}

fn as_user(rt: &Sandbox, args: &[&str]) -> std::process::Output {
    let env = user_env(rt);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    run_as_user(BIN, args, &env)
}

#[test]
fn user_state_defaults_to_xdg_runtime_dir() {
    let rt = user_sandbox();
    let out = as_user(&rt, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = as_user(&rt, &["state", "probe"]);
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    // A container directory planted in $XDG_RUNTIME_DIR/minirunc is the one `state` reads.
    std::fs::create_dir_all(rt.path("xdg/minirunc/probe")).unwrap();
    std::fs::write(rt.path("xdg/minirunc/probe/state.json"), "not json").unwrap();
    let out = as_user(&rt, &["state", "probe"]);
    assert!(!out.status.success());
    assert!(
        !text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn user_without_xdg_runtime_dir_is_told_to_pass_root() {
    let rt = user_sandbox();
    let home = rt.path("home");
    let out = run_as_user(BIN, &["list"], &[("HOME", &home)]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("XDG_RUNTIME_DIR") && err.contains("--root"),
        "{err}"
    );
    let root = rt.path("state");
    let out = run_as_user(
        BIN,
        &["--root", root.to_str().unwrap(), "list"],
        &[("HOME", &home)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn rootless_flag_values() {
    let rt = user_sandbox();
    let out = as_user(&rt, &["--rootless=maybe", "list"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("maybe") && err.contains("true, false or auto"),
        "{err}"
    );
    for v in ["true", "false", "auto"] {
        let out = as_user(&rt, &[&format!("--rootless={v}"), "list"]);
        assert!(out.status.success(), "{v}: {}", text(&out.stderr));
    }
}

#[test]
fn a_setuid_install_is_refused() {
    let rt = user_sandbox();
    let copy = rt.path("minirunc-setuid");
    std::fs::copy(BIN, &copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let env = user_env(&rt);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let out = run_as_user(copy.to_str().unwrap(), &["list"], &env);
    assert!(!out.status.success(), "a setuid copy ran");
    assert!(
        text(&out.stderr).contains("setuid"),
        "{}",
        text(&out.stderr)
    );
}

/// A user's world for real containers: the sandbox of `user_sandbox`, a busybox root the user
/// owns (as an image in the user's storage would be), and on drop every container the user
/// left force-deleted as that user.
struct UserWorld {
    rt: Sandbox,
    rootfs: PathBuf,
}

impl UserWorld {
    fn new() -> UserWorld {
        let rt = user_sandbox();
        let rootfs = rt.rootfs_copy("rootfs");
        let (uid, gid) = rootless_user();
        let st = std::process::Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(st.success(), "chown -R the rootfs: {st}");
        UserWorld { rt, rootfs }
    }

    /// `minirunc ARGS` as the user, within the sandbox's deadline, with `extra` environment
    /// after the default.
    fn run_env(&self, args: &[&str], extra: &[(&str, &Path)]) -> std::process::Output {
        let mut env = user_env(&self.rt);
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_path_buf())));
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        self.rt.output(user_command(BIN, args, &env))
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_env(args, &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "minirunc {args:?} as the user failed ({}): {}{}",
            out.status,
            text(&out.stderr),
            text(&out.stdout)
        );
        text(&out.stdout)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "minirunc {args:?} as the user succeeded: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// The config `spec --rootless` writes for the user, on the user's root, running `args`,
    /// after `edit`; returns the bundle.
    fn bundle(&self, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let dir = self.rt.path(&format!("bundle-{}", common::next()));
        std::fs::create_dir(&dir).unwrap();
        give_to_user(&dir);
        self.ok(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()]);
        let path = dir.join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = json!(args);
        c["root"]["path"] = self.rootfs.to_str().unwrap().into();
        c["root"]["readonly"] = false.into();
        edit(&mut c);
        std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        dir
    }

    fn wait_stopped(&self, id: &str) {
        let stopped = common::eventually(Duration::from_secs(10), || {
            self.ok(&["state", id]).contains("\"stopped\"")
        });
        assert!(stopped, "{id} did not stop");
    }

    /// SIGKILL, wait for stopped, delete: nothing of `id` may be left.
    fn kill_delete_clean(&self, id: &str) {
        self.ok(&["kill", id, "KILL"]);
        self.wait_stopped(id);
        self.ok(&["delete", id]);
        self.assert_clean(id);
    }

    fn state_dir(&self) -> PathBuf {
        self.rt.path("xdg/minirunc")
    }

    fn data_dir(&self) -> PathBuf {
        self.rt.path("home/.local/share/minirunc")
    }

    /// Nothing of the user's containers is left: no state, no layers, no process.
    fn assert_clean(&self, id: &str) {
        for dir in [self.state_dir(), self.data_dir()] {
            let left: Vec<_> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "{id}: left in {}: {left:?}", dir.display());
        }
        let gone = common::eventually(Duration::from_secs(3), || {
            common::processes_naming(id).is_empty()
        });
        assert!(
            gone,
            "{id}: processes left: {:?}",
            common::processes_naming(id)
        );
    }
}

impl Drop for UserWorld {
    fn drop(&mut self) {
        for e in std::fs::read_dir(self.state_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            self.run(&["delete", "--force", &id]);
        }
    }
}

/// Maps container ids 0 to the user and 1..65537 to the user's subordinate range (useradd gave
/// the test user one), with what a container needs to chown: CAP_CHOWN and friends.
fn multi_range(c: &mut Value) {
    let (uid, gid) = rootless_user();
    let (sub_uid, sub_gid) = (subordinate("/etc/subuid"), subordinate("/etc/subgid"));
    c["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": uid, "size": 1},
        {"containerID": 1, "hostID": sub_uid, "size": 65536},
    ]);
    c["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": gid, "size": 1},
        {"containerID": 1, "hostID": sub_gid, "size": 65536},
    ]);
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_SETUID",
        "CAP_SETGID"
    ]);
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set] = caps.clone();
    }
}

/// The first id of the test user's range in /etc/subuid or /etc/subgid.
fn subordinate(file: &str) -> u32 {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{}:", common::ROOTLESS_USER)))
        .unwrap_or_else(|| panic!("{file} has no range for {}", common::ROOTLESS_USER));
    line.split(':').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_user_runs_a_container_through_its_whole_lifecycle() {
    let w = UserWorld::new();
    let (uid, _) = rootless_user();
    let bundle = w.bundle(&["sh", "-c", "echo made > /made; exec sleep 1000"], |_| {});
    let id = w.rt.id();
    w.ok(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    let st: Value = serde_json::from_str(&w.ok(&["state", &id])).unwrap();
    assert_eq!(st["status"], "created");
    w.ok(&["start", &id]);
    let seen = w.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; cat /made",
    ]);
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines[0], "0", "{seen}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &uid.to_string(), "1"], "{seen}");
    assert_eq!(lines[2], "made", "{seen}");
    // Devices are the host's nodes bound in (no mknod in a user namespace): they work.
    w.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo x > /dev/null && head -c1 /dev/zero | wc -c",
    ]);
    assert!(w.ok(&["list"]).contains(&id));
    w.kill_delete_clean(&id);
}

#[test]
fn a_user_runs_a_container_in_the_foreground() {
    let w = UserWorld::new();
    let bundle = w.bundle(
        &["sh", "-c", "id -u; cat /proc/self/gid_map; exit 3"],
        |_| {},
    );
    let id = w.rt.id();
    let out = w.run(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (_, gid) = rootless_user();
    assert!(stdout.starts_with("0\n"), "{stdout}");
    let map: Vec<&str> = stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", &gid.to_string(), "1"], "{stdout}");
    w.assert_clean(&id);
}

#[test]
fn without_a_cgroup_the_cgroup_verbs_say_so() {
    let w = UserWorld::new();
    let bundle = w.bundle(&["sleep", "1000"], |_| {});
    let id = w.rt.id();
    w.ok(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &id]);
    for verb in [vec!["pause", &id], vec!["ps", &id]] {
        let err = w.fails(&verb);
        assert!(
            err.contains("has no cgroup") && err.contains(verb[0]),
            "{err}"
        );
    }
    let err = w.fails(&["kill", "--all", &id, "TERM"]);
    assert!(
        err.contains("has no cgroup") && err.contains("kill --all"),
        "{err}"
    );
    // SIGKILL to init ends its whole pid namespace: that --all needs no cgroup.
    w.ok(&["kill", "--all", &id, "KILL"]);
    w.wait_stopped(&id);
    w.ok(&["delete", &id]);
    w.assert_clean(&id);
}

#[test]
fn resources_a_user_cannot_apply_are_named() {
    let w = UserWorld::new();
    let bundle = w.bundle(&["true"], |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 10},
            "devices": [{"allow": false, "access": "rwm"}]});
    });
    let id = w.rt.id();
    let err = w.fails(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(
        err.contains("linux.resources.memory") && err.contains("linux.resources.pids"),
        "{err}"
    );
    assert!(
        !err.contains("devices"),
        "device rules are not applied rootless: {err}"
    );
    w.assert_clean(&id);
    // Device rules alone are skipped, as runc does.
    let bundle = w.bundle(&["true"], |c| {
        c["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    });
    w.ok(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    w.assert_clean(&id);
}

#[test]
fn multi_range_mappings_go_through_newuidmap() {
    let w = UserWorld::new();
    let script = "cat /proc/self/uid_map; echo x > /owned; chown 1000:1000 /owned; \
                  mkdir /private; echo y > /private/f; chown -R 1000:1000 /private; \
                  chmod 700 /private; ls -ln /owned";
    let bundle = w.bundle(&["sh", "-c", script], multi_range);
    let id = w.rt.id();
    w.ok(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    w.ok(&["start", &id]);
    let st: Value = serde_json::from_str(&w.ok(&["state", &id])).unwrap();
    let upper = PathBuf::from(st["rootfsWrites"].as_str().unwrap());
    w.wait_stopped(&id);
    // Id 1000 inside is the 1000th id of the user's subordinate range on the host.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(upper.join("owned")).unwrap();
    let sub = subordinate("/etc/subuid");
    assert_eq!(
        meta.uid(),
        sub + 999,
        "owner on the host of a file chowned to 1000 inside"
    );
    assert_eq!(meta.gid(), subordinate("/etc/subgid") + 999);
    let private = std::fs::metadata(upper.join("private")).unwrap();
    assert_eq!((private.uid(), private.mode() & 0o777), (sub + 999, 0o700));
    // The user removes what the container's ids own, with no help from root.
    w.ok(&["delete", &id]);
    w.assert_clean(&id);
}

#[test]
fn a_multi_range_mapping_without_newuidmap_is_refused_clearly() {
    let w = UserWorld::new();
    let bundle = w.bundle(&["true"], multi_range);
    let id = w.rt.id();
    let empty = w.rt.path("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let out = w.run_env(
        &["create", "--bundle", bundle.to_str().unwrap(), &id],
        &[("PATH", &empty)],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("linux.uidMappings") && err.contains("newuidmap") && err.contains("uidmap"),
        "{err}"
    );
    w.assert_clean(&id);
}

#[test]
fn a_range_the_user_does_not_own_is_refused_clearly() {
    let w = UserWorld::new();
    let bundle = w.bundle(&["true"], |c| {
        multi_range(c);
        c["linux"]["uidMappings"][1]["hostID"] = 4_000_000.into();
    });
    let id = w.rt.id();
    let err = w.fails(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(
        err.contains("linux.uidMappings") && err.contains("4000000") && err.contains("/etc/subuid"),
        "{err}"
    );
    w.assert_clean(&id);
}

/// `tar -tv --numeric-owner` of `archive`: (owner "uid/gid", path) per entry.
fn tar_owners(archive: &Path) -> Vec<(String, String)> {
    let out = std::process::Command::new("tar")
        .args(["-tvf"])
        .arg(archive)
        .arg("--numeric-owner")
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].to_string(), f[5].trim_start_matches("./").to_string())
        })
        .collect()
}

#[test]
fn a_user_commits_a_rootless_copy_on_write_container() {
    let w = UserWorld::new();
    let script = "echo x > /owned; chown 1000:1000 /owned; mkdir /private; echo y > /private/f; \
                  chown -R 1000:1000 /private; chmod 700 /private; rm /bin/true; \
                  rm -r /etc; mkdir /etc; echo new > /etc/only; exec sleep 1000";
    let bundle = w.bundle(&["sh", "-c", script], multi_range);
    let id = w.rt.id();
    w.ok(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(common::eventually(Duration::from_secs(10), || {
        w.run(&["exec", &id, "test", "-e", "/etc/only"])
            .status
            .success()
    }));
    // Running: read in the container's user namespace, the whole tree.
    let tree = w.rt.path("tree.tar");
    w.ok(&["commit", &id, tree.to_str().unwrap()]);
    let entries = tar_owners(&tree);
    let owner = |list: &[(String, String)], path: &str| {
        list.iter()
            .find(|(_, p)| p == path)
            .unwrap_or_else(|| panic!("{path} not in {list:?}"))
            .0
            .clone()
    };
    assert_eq!(owner(&entries, "owned"), "1000/1000");
    assert_eq!(owner(&entries, "private/f"), "1000/1000");
    assert!(
        !entries.iter().any(|(_, p)| p == "bin/true"),
        "a removed file was committed"
    );
    w.ok(&["kill", &id, "KILL"]);
    w.wait_stopped(&id);
    // Stopped: the layer alone, read in a new user namespace with the container's mappings.
    let diff = w.rt.path("diff.tar");
    w.ok(&["commit", "--diff", &id, diff.to_str().unwrap()]);
    let entries = tar_owners(&diff);
    assert_eq!(owner(&entries, "owned"), "1000/1000");
    assert_eq!(owner(&entries, "private/f"), "1000/1000");
    owner(&entries, "bin/.wh.true");
    owner(&entries, "etc/.wh..wh..opq");
    w.ok(&["delete", &id]);
    w.assert_clean(&id);
}

/// `minirunc ARGS` as root of a new user namespace of the user, with exactly `env`: how rootless
/// podman runs its runtime (in the namespace its pause process holds).
fn as_user_namespace_root(
    w: &UserWorld,
    args: &[&str],
    env: &[(&str, &Path)],
) -> std::process::Output {
    let mut full = vec!["--user", "--map-root-user", BIN];
    full.extend(args);
    w.rt.output(user_command("unshare", &full, env))
}

#[test]
fn root_of_a_user_namespace_keeps_state_in_the_users_directories() {
    let w = UserWorld::new();
    let bundle = w.bundle(&["sleep", "1000"], |c| {
        // Already in the user's namespace, as under rootless podman: the spec makes none.
        let linux = c["linux"].as_object_mut().unwrap();
        linux["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "user");
        linux.remove("uidMappings");
        linux.remove("gidMappings");
    });
    let (xdg, home) = (w.rt.path("xdg"), w.rt.path("home"));
    let full: [(&str, &Path); 2] = [("XDG_RUNTIME_DIR", &xdg), ("HOME", &home)];
    // podman runs start, kill and delete with XDG_RUNTIME_DIR as the whole environment.
    let xdg_only: [(&str, &Path); 1] = [("XDG_RUNTIME_DIR", &xdg)];
    let id = w.rt.id();
    let ok = |args: &[&str], env: &[(&str, &Path)]| {
        let out = as_user_namespace_root(&w, args, env);
        assert!(
            out.status.success(),
            "minirunc {args:?} as root of the user's namespace failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    ok(
        &["create", "--bundle", bundle.to_str().unwrap(), &id],
        &full,
    );
    assert!(w.state_dir().join(&id).join("state.json").exists());
    ok(&["start", &id], &xdg_only);
    let st: Value = serde_json::from_str(&ok(&["state", &id], &xdg_only)).unwrap();
    assert_eq!(st["status"], "running");
    // Root of the user's namespace may not write the host's cgroups: there is none.
    let out = as_user_namespace_root(&w, &["ps", &id], &xdg_only);
    assert!(
        text(&out.stderr).contains("has no cgroup"),
        "{}",
        text(&out.stderr)
    );
    ok(&["kill", &id, "KILL"], &xdg_only);
    w.wait_stopped(&id);
    ok(&["delete", &id], &xdg_only);
    w.assert_clean(&id);
}

/// The pty master the runtime sends over the console socket `listener` (one SCM_RIGHTS fd).
fn receive_master(listener: &std::os::unix::net::UnixListener) -> std::fs::File {
    let (conn, _) = listener.accept().unwrap();
    minirunc::tty::receive_master(&conn).unwrap().into()
}

/// What the terminal behind `master` shows until a line `until` (at most 10 s).
fn read_terminal(master: std::fs::File, until: &str) -> String {
    use std::io::Read;
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = until.to_string();
    std::thread::spawn(move || {
        let (mut master, mut seen) = (master, String::new());
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if seen.lines().any(|l| l.trim_end() == wanted) {
                break;
            }
        }
        let _ = tx.send(seen);
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("no line {until:?} on the terminal within 10 s"))
}

/// A console socket in the sandbox that the user may connect to.
fn user_console_socket(w: &UserWorld, name: &str) -> (PathBuf, std::os::unix::net::UnixListener) {
    let path = w.rt.path(name);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    give_to_user(&path);
    (path, listener)
}

#[test]
fn a_user_gets_terminals_over_the_console_socket() {
    let w = UserWorld::new();
    let script = "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; exec sleep 1000";
    let bundle = w.bundle(&["sh", "-c", script], |c| {
        c["process"]["terminal"] = true.into();
    });
    let id = w.rt.id();
    let (sock, listener) = user_console_socket(&w, "console.sock");
    let (b, s) = (bundle.to_str().unwrap(), sock.to_str().unwrap());
    w.ok(&["create", "--bundle", b, "--console-socket", s, &id]);
    let master = receive_master(&listener);
    w.ok(&["start", &id]);
    let seen = read_terminal(master, "stdio-is-a-tty");
    assert!(seen.starts_with("/dev/pts/0"), "{seen}");
    // exec -t: a second terminal, from the container's devpts.
    let (sock, listener) = user_console_socket(&w, "exec.sock");
    let exec = [
        "exec",
        "-t",
        "--console-socket",
        sock.to_str().unwrap(),
        "-d",
        &id,
    ];
    let mut args = exec.to_vec();
    args.extend(["sh", "-c", "tty; echo exec-done"]);
    w.ok(&args);
    let seen = read_terminal(receive_master(&listener), "exec-done");
    assert!(seen.starts_with("/dev/pts/1"), "{seen}");
    w.kill_delete_clean(&id);
}

#[test]
fn a_users_hooks_run_as_the_user_and_in_the_container() {
    let w = UserWorld::new();
    let log = w.rt.path("hooks.log");
    std::fs::write(&log, "").unwrap();
    give_to_user(&log);
    let line = |name: &str| {
        let script = format!("echo {name} $(id -u) >> {}", log.display());
        json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
    };
    let bundle = w.bundle(&["true"], |c| {
        c["hooks"] = json!({
            "createRuntime": [line("createRuntime")],
            "createContainer": [line("createContainer")],
            "poststart": [line("poststart")],
            "poststop": [line("poststop")],
            // Inside the container (after the root switch): its own file, on its root.
            "startContainer": [{"path": "/bin/sh",
                "args": ["sh", "-c", "id -u > /start-container"]}],
        });
    });
    let id = w.rt.id();
    w.ok(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    let st: Value = serde_json::from_str(&w.ok(&["state", &id])).unwrap();
    let upper = PathBuf::from(st["rootfsWrites"].as_str().unwrap());
    w.ok(&["start", &id]);
    w.wait_stopped(&id);
    assert_eq!(
        std::fs::read_to_string(upper.join("start-container")).unwrap(),
        "0\n",
        "startContainer's id inside"
    );
    w.ok(&["delete", &id]);
    // The runtime's own hooks run as the user; createContainer in the container's namespaces,
    // where the user is root.
    let (uid, _) = rootless_user();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("createRuntime {uid}\ncreateContainer 0\npoststart {uid}\npoststop {uid}\n")
    );
    w.assert_clean(&id);
}
