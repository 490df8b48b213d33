//! Crashes mid-way: `create`, the container's init and `delete` killed with SIGKILL at random
//! points. Afterwards `state` tells the truth, `delete --force` succeeds (twice), nothing is
//! left on the host and the bind-mounted volume's files are intact.

mod common;
mod reliability;

use common::{eventually, processes_naming, Sandbox};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reliability::base_config;
use std::path::PathBuf;
use std::time::Duration;

/// A deterministic pseudo-random sequence (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A sandbox whose config bind-mounts a host directory holding one file, `keep`; with the
/// bundle's path.
fn with_volume(args: &[&str]) -> (Sandbox, String, PathBuf) {
    let (sb, bundle) = reliability::sandbox();
    let vol = sb.path("volume");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("keep"), "precious").unwrap();
    let mut cfg = base_config();
    cfg["process"]["args"] = serde_json::json!(args);
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "destination": "/vol", "type": "none", "source": vol, "options": ["rbind"]
        }));
    sb.write_bundle("bundle", &cfg);
    (sb, bundle.to_string_lossy().into_owned(), vol)
}

/// `state` answers quickly with something true: no container, or created/stopped (a create
/// that is gone must not stay `creating`).
fn assert_truthful_state(sb: &Sandbox, id: &str) -> Option<String> {
    let mut status = None;
    let settled = eventually(Duration::from_secs(2), || {
        status = sb.try_status(id);
        status.as_deref() != Some("creating")
    });
    assert!(
        settled,
        "{id}: still `creating` after its create was killed"
    );
    if let Some(s) = &status {
        assert!(matches!(s.as_str(), "created" | "stopped"), "{id}: {s}");
    }
    status
}

fn force_delete_twice_and_check(sb: &Sandbox, id: &str, vol: &std::path::Path, what: &str) {
    sb.ok(&["delete", "--force", id]);
    sb.ok(&["delete", "--force", id]);
    sb.assert_clean(id);
    assert_eq!(
        std::fs::read_to_string(vol.join("keep")).unwrap(),
        "precious",
        "{what}: volume data"
    );
}

#[test]
fn create_killed_at_random_points() {
    let (sb, bundle, vol) = with_volume(&["/bin/sleep", "100"]);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let id = sb.id();
        let child = sb.spawn(&["create", "--bundle", &bundle, &id]);
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        child.kill();
        let status = assert_truthful_state(&sb, &id);
        if status.as_deref() != Some("created") {
            // An init its runtime never recorded must not outlive it (sync step 7).
            let gone = eventually(Duration::from_secs(3), || processes_naming(&id).is_empty());
            assert!(gone, "{id}: orphans {:?}", processes_naming(&id));
        }
        *outcomes
            .entry(status.unwrap_or("absent".into()))
            .or_insert(0) += 1;
        force_delete_twice_and_check(&sb, &id, &vol, "create killed");
    }
    println!("create killed: outcomes {outcomes:?}");
}

#[test]
fn init_killed_during_create() {
    let (sb, bundle, vol) = with_volume(&["/bin/sleep", "100"]);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..20 {
        let id = sb.id();
        let child = sb.spawn(&["create", "--bundle", &bundle, &id]);
        // Kill whatever of the container exists after a random delay: intermediate or init.
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        for p in processes_naming(&id) {
            let pid: i32 = p.split(':').next().unwrap().parse().unwrap();
            if pid != child.pid() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let out = child.finish_within(Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{id}: {stderr}");
        if !out.status.success() {
            // A failed create undoes itself.
            assert_eq!(sb.try_status(&id), None, "{id}: failed create left state");
        }
        assert_truthful_state(&sb, &id);
        force_delete_twice_and_check(&sb, &id, &vol, "init killed");
    }
}

#[test]
fn delete_killed_halfway() {
    let (sb, bundle, vol) = with_volume(&["/bin/sleep", "100"]);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..15 {
        let id = sb.id();
        sb.ok(&["create", "--bundle", &bundle, &id]);
        sb.ok(&["start", &id]);
        let child = sb.spawn(&["delete", "--force", &id]);
        std::thread::sleep(Duration::from_micros(rng.below(15_000)));
        child.kill();
        force_delete_twice_and_check(&sb, &id, &vol, "delete killed");
    }
}
