//! Bad input (root): each case fails with a non-zero exit and one clear error naming the field
//! or argument, and leaves no state dir, mount, cgroup or process behind.

mod common;

use common::Sandbox;
use serde_json::{json, Value};

/// `create` of a bundle made by `edit` must fail with an error containing every one of `want`
/// (on one line), and leave nothing behind.
fn create_fails(edit: impl FnOnce(&mut Value), args: &[&str], want: &[&str]) {
    let rt = Sandbox::new();
    let bundle = rt.bundle(args, edit);
    let id = rt.id();
    let err = rt.fails(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_one_error(&err, want);
    rt.assert_clean(&id);
}

/// stderr is one line holding every piece of `want`.
fn assert_one_error(err: &str, want: &[&str]) {
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "not one error line: {err}"
    );
    for w in want {
        assert!(err.contains(w), "error lacks {w:?}: {err}");
    }
}

#[test]
fn malformed_config_json() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["true"], |_| {});
    std::fs::write(
        bundle.join("config.json"),
        "{\"ociVersion\": \"1.2.0\", \"process\": ",
    )
    .unwrap();
    let id = rt.id();
    let err = rt.fails(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_one_error(&err, &["config.json", "EOF"]);
    rt.assert_clean(&id);

    // A field of the wrong type is named by its path.
    create_fails(
        |c| c["process"]["user"]["uid"] = "root".into(),
        &["true"],
        &["config.json", "process.user.uid"],
    );
}

#[test]
fn missing_rootfs_and_rootfs_file() {
    create_fails(
        |c| c["root"]["path"] = "/nonexistent-mrt-rootfs".into(),
        &["true"],
        &["root.path", "no such file or directory"],
    );
    let file = std::env::temp_dir().join(format!("mrt-rootfs-file-{}", std::process::id()));
    std::fs::write(&file, "").unwrap();
    let path = file.to_str().unwrap().to_string();
    create_fails(
        |c| c["root"]["path"] = path.into(),
        &["true"],
        &["root.path", "not a directory"],
    );
    std::fs::remove_file(file).unwrap();
}

#[test]
fn missing_and_non_executable_program() {
    create_fails(
        |_| {},
        &["no-such-program"],
        &["no-such-program", "executable file not found in $PATH"],
    );
    // /etc/passwd exists in the rootfs and is not executable.
    create_fails(
        |_| {},
        &["/etc/passwd"],
        &["/etc/passwd", "permission denied"],
    );
}

#[test]
fn bad_ids() {
    let rt = Sandbox::new();
    let bundle = rt.bundle(&["true"], |_| {});
    let long = "x".repeat(2000);
    for id in ["..", "a/b", "", long.as_str()] {
        let err = rt.fails(&["create", "--bundle", bundle.to_str().unwrap(), id]);
        assert_one_error(&err, &["invalid container id"]);
        for verb in ["state", "start", "delete"] {
            let err = rt.fails(&[verb, id]);
            assert_one_error(&err, &["invalid container id"]);
        }
    }
    // Nothing reached the disk: not even the state root.
    assert!(
        std::fs::read_dir(&rt.root).map_or(true, |mut d| d.next().is_none()),
        "something was created under --root"
    );
}

#[test]
fn duplicate_id_keeps_the_first() {
    let rt = Sandbox::new();
    let id = rt.create(&["sleep", "1000"], |_| {});
    let pid = rt.state(&id)["pid"].clone();
    let bundle = rt.bundle(&["true"], |_| {});
    let err = rt.fails(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_one_error(&err, &["exists", &id]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn wrong_state_transitions() {
    let rt = Sandbox::new();
    let id = rt.running(|_| {});
    let err = rt.fails(&["start", &id]);
    assert_one_error(&err, &["running"]);
    let err = rt.fails(&["delete", &id]);
    assert_one_error(&err, &[&id, "running"]);
    assert_eq!(rt.status(&id), "running");

    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    let err = rt.fails(&["start", &id]);
    assert_one_error(&err, &["stopped"]);
    let err = rt.fails(&["kill", &id, "TERM"]);
    assert_one_error(&err, &["container not running"]);
    rt.ok(&["delete", &id]);
    rt.assert_clean(&id);
}

#[test]
fn unknown_id_does_not_exist() {
    let rt = Sandbox::new();
    let id = rt.id();
    for args in [
        vec!["state", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
        vec!["start", &id],
    ] {
        let err = rt.fails(&args);
        assert_one_error(&err, &["does not exist", &id]);
    }
}

#[test]
fn bad_mount_source() {
    create_fails(
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/mnt", "type": "bind",
                "source": "/nonexistent-mrt-source", "options": ["bind"]}));
        },
        &["true"],
        &[
            "mounts[",
            "/mnt",
            "/nonexistent-mrt-source",
            "no such file or directory",
        ],
    );
}

#[test]
fn bad_uid_maps() {
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let m = map.clone();
    create_fails(
        move |c| {
            c["linux"]["uidMappings"] = m.clone();
            c["linux"]["gidMappings"] = m;
        },
        &["true"],
        &["linux.uidMappings", "user namespace"],
    );
    create_fails(
        move |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([
                {"containerID": 0, "hostID": 100000, "size": 1000},
                {"containerID": 500, "hostID": 200000, "size": 1000}]);
            c["linux"]["gidMappings"] = map;
        },
        &["true"],
        &["uid_map"],
    );
}

#[test]
fn rlimit_that_cannot_be_raised() {
    create_fails(
        |c| {
            c["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2000000}]);
        },
        &["true"],
        &["process.rlimits", "RLIMIT_NOFILE"],
    );
}
