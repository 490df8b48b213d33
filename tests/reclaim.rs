//! Layers never outlive their container: a caller drops its `--root` with a live and a dead
//! container in it; the dead one's layer (and cgroup) is reclaimed by the next create or
//! delete of that root and by `minirunc gc`, the live one's only once it has been killed.
//! Real containers through the built binary (run as root), each test in its own Sandbox.

mod common;

use common::{cgroup_dirs, eventually, Mount, Sandbox};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A root dropped by its caller with two containers: `dead` has exited, `live` still runs.
/// Dropping it kills the live container (if the test has not) and reclaims what is left, so a
/// failing test leaves nothing behind.
struct Dropped<'a> {
    env: &'a Sandbox,
    dead: String,
    dead_layer: PathBuf,
    live: String,
    live_pid: i32,
    live_layer: PathBuf,
}

impl Drop for Dropped<'_> {
    fn drop(&mut self) {
        if !self.killed() {
            eprintln!("init {} of {} did not die", self.live_pid, self.live);
        }
        let _ = self.env.run(&["gc"]);
    }
}

impl Dropped<'_> {
    /// SIGKILL the live container's init; whether it is gone (a zombie is) within 10s.
    fn killed(&self) -> bool {
        // SAFETY: a plain kill(2) of the container's init, recorded while it ran.
        unsafe { libc::kill(self.live_pid, libc::SIGKILL) };
        eventually(Duration::from_secs(10), || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.live_pid));
            stat.map_or(true, |s| {
                s.rsplit_once(')').is_some_and(|(_, r)| r.starts_with(" Z"))
            })
        })
    }

    fn kill_live(&self) {
        assert!(
            self.killed(),
            "init {} of {} did not die",
            self.live_pid,
            self.live
        );
    }

    fn assert_all_clean(&self) {
        self.env.assert_clean(&self.dead);
        self.env.assert_clean(&self.live);
    }
}

fn layer_of(env: &Sandbox, id: &str) -> PathBuf {
    let st = env.state(id);
    let dir = st["layers"]["dir"].as_str().expect("a copy-on-write layer");
    PathBuf::from(dir)
}

/// Start a container that exits and one that runs, then remove the state root as a test
/// suite's cleanup would.
fn drop_root(env: &Sandbox) -> Dropped<'_> {
    let dead = env.id();
    env.ok(&[
        "run",
        "--bundle",
        env.bundle(&["true"], |_| {}).to_str().unwrap(),
        "--keep",
        &dead,
    ]);
    let dead_layer = layer_of(env, &dead);
    let live = env.running(|_| {});
    let live_pid = env.state(&live)["pid"].as_i64().unwrap() as i32;
    let live_layer = layer_of(env, &live);
    std::fs::remove_dir_all(&env.root).unwrap();
    let dropped = Dropped {
        env,
        dead,
        dead_layer,
        live,
        live_pid,
        live_layer,
    };
    assert!(dropped.dead_layer.join("upper").is_dir());
    assert!(dropped.live_layer.join("upper").is_dir());
    dropped
}

#[test]
fn the_next_create_reclaims_the_dead_layer_and_delete_the_killed_one() {
    let env = Sandbox::new();
    let d = drop_root(&env);
    let next = env.create(&["true"], |_| {});
    assert!(
        !d.dead_layer.exists(),
        "create left {}",
        d.dead_layer.display()
    );
    assert!(
        cgroup_dirs(&d.dead).is_empty(),
        "create left the dead cgroup"
    );
    assert!(
        d.live_layer.join("upper").is_dir(),
        "create took a live layer"
    );
    env.ok(&["delete", &next]);
    assert!(
        d.live_layer.join("upper").is_dir(),
        "delete took a live layer"
    );

    d.kill_live();
    env.ok(&["delete", "--force", "never-created"]);
    assert!(
        !d.live_layer.exists(),
        "delete left {}",
        d.live_layer.display()
    );
    d.assert_all_clean();
}

#[test]
fn the_next_delete_reclaims_the_dead_layer_and_run_the_killed_one() {
    let env = Sandbox::new();
    let d = drop_root(&env);
    let out = env.run(&["delete", "never-created"]);
    assert!(
        !out.status.success(),
        "delete of a missing container succeeded"
    );
    assert!(
        !d.dead_layer.exists(),
        "delete left {}",
        d.dead_layer.display()
    );
    assert!(
        d.live_layer.join("upper").is_dir(),
        "delete took a live layer"
    );

    d.kill_live();
    let bundle = env.bundle(&["true"], |_| {});
    env.ok(&["run", "--bundle", bundle.to_str().unwrap(), &env.id()]);
    assert!(
        !d.live_layer.exists(),
        "run left {}",
        d.live_layer.display()
    );
    d.assert_all_clean();
}

#[test]
fn gc_reclaims_every_root_and_keeps_what_runs() {
    let env = Sandbox::new();
    let d = drop_root(&env);
    let dry = env.ok(&["gc", "--dry-run"]);
    assert!(
        d.dead_layer.join("upper").is_dir(),
        "--dry-run removed a layer"
    );
    let would = format!(
        "would reclaim {} (container {}",
        d.dead_layer.display(),
        d.dead
    );
    assert!(dry.contains(&would), "gc --dry-run said:\n{dry}");

    let out = env.ok(&["gc"]);
    let kept = format!(
        "kept {} (container {} of --root {}): its init (pid {}) runs",
        d.live_layer.display(),
        d.live,
        env.root.display(),
        d.live_pid
    );
    assert!(out.contains(&kept), "gc said:\n{out}");
    assert!(
        out.contains(&format!("reclaimed {}", d.dead_layer.display())),
        "gc said:\n{out}"
    );
    assert!(!d.dead_layer.exists());
    assert!(d.live_layer.join("upper").is_dir(), "gc took a live layer");

    d.kill_live();
    let out = env.ok(&["gc"]);
    assert!(
        out.contains(&format!("reclaimed {}", d.live_layer.display())),
        "gc said:\n{out}"
    );
    d.assert_all_clean();
}

#[test]
fn an_id_reused_while_its_dropped_container_runs_is_refused_then_starts_fresh() {
    let env = Sandbox::new();
    let first = env.id();
    let script = "echo old > /left-behind; sleep 1000";
    let bundle = env.bundle(&["sh", "-c", script], |_| {});
    let b = bundle.to_str().unwrap();
    env.ok(&["create", "--bundle", b, &first]);
    env.ok(&["start", &first]);
    let layer = layer_of(&env, &first);
    let pid = env.state(&first)["pid"].as_i64().unwrap() as i32;
    let written = eventually(Duration::from_secs(10), || {
        layer.join("upper/left-behind").exists()
    });
    assert!(written, "the first container did not write");
    std::fs::remove_dir_all(&env.root).unwrap();
    let d = Dropped {
        env: &env,
        dead: first.clone(),
        dead_layer: PathBuf::new(),
        live: first.clone(),
        live_pid: pid,
        live_layer: layer.clone(),
    };

    let err = env.fails(&["create", "--bundle", b, &first]);
    assert!(
        err.contains(&layer.display().to_string()) && err.contains("still in use"),
        "{err}"
    );
    assert!(
        env.try_status(&first).is_none(),
        "a refused create left state"
    );
    assert!(
        layer.join("upper/left-behind").exists(),
        "a refused create took the layer"
    );
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "a refused create hurt the container"
    );

    d.kill_live();
    env.ok(&["create", "--bundle", b, &first]);
    assert_eq!(layer_of(&env, &first), layer);
    assert!(
        !layer.join("upper/left-behind").exists(),
        "the new container got the old writes"
    );
    env.ok(&["delete", &first]);
    env.assert_clean(&first);
}

#[test]
fn a_layer_that_is_a_mount_point_is_kept() {
    let env = Sandbox::new();
    let d = drop_root(&env);
    d.kill_live();
    let merged = d.dead_layer.join("merged");
    let mount = Mount::bind(&merged, &merged);
    let out = env.ok(&["gc"]);
    let kept = format!("kept {}", d.dead_layer.display());
    assert!(
        out.contains(&kept) && out.contains("is a mount point"),
        "gc said:\n{out}"
    );
    assert!(d.dead_layer.join("upper").is_dir());
    drop(mount);
    env.ok(&["gc"]);
    d.assert_all_clean();
}
