//! One function per verb: flags in, the library's answer out, runc's output shapes.

mod cgroup_verbs;
mod commit;
mod events;
mod exec;
mod features;
mod gc;
mod run;
mod update;
mod wait;

pub use cgroup_verbs::{pause, ps, resume};
pub use commit::commit;
pub use events::events;
pub use exec::exec;
pub use features::features;
pub use gc::gc;
pub use run::run;
pub use update::update;

use anyhow::{bail, Context, Result};
use std::io::Write;

use crate::cli::{Cli, CreateArgs, ListArgs, SpecArgs};
use crate::container::{self, CreateOptions, Paths};

/// A create's options: its own flags, and the global ones (`cli`) that apply to every container.
pub fn create_options(a: &CreateArgs, cli: &Cli) -> CreateOptions {
    CreateOptions {
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        local_terminal: false,
        no_pivot: a.no_pivot,
        preserve_fds: a.passed_fds(),
        rootfs_mode: a.rootfs_mode.clone(),
        default_rootfs_mode: cli.default_rootfs_mode.clone(),
        systemd_cgroup: cli.systemd_cgroup,
    }
}

pub fn create(paths: &Paths, a: &CreateArgs, cli: &Cli) -> Result<i32> {
    container::create(paths, &a.id, &create_options(a, cli)).map(|_| 0)
}

pub fn state(paths: &Paths, id: &str) -> Result<i32> {
    let st = container::load(paths, id)?;
    let status = container::status_of(paths, &st);
    println!("{}", serde_json::to_string_pretty(&st.to_oci_json(status))?);
    Ok(0)
}

pub fn list(paths: &Paths, a: &ListArgs) -> Result<i32> {
    let mut rows = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&paths.root) {
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if let Ok(st) = container::load(paths, &id) {
                let status = container::status_of(paths, &st);
                rows.push(st.to_oci_json(status));
            }
        }
    }
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let mut out = std::io::stdout().lock();
    if a.format == "json" {
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else if a.quiet {
        for r in &rows {
            writeln!(out, "{}", r["id"].as_str().unwrap_or_default())?;
        }
    } else {
        let cell = |r: &serde_json::Value, k: &str| match &r[k] {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
        let keys = ["id", "pid", "status", "bundle", "created", "owner"];
        let table: Vec<Vec<String>> =
            std::iter::once(header.iter().map(|s| s.to_string()).collect())
                .chain(
                    rows.iter()
                        .map(|r| keys.iter().map(|k| cell(r, k)).collect()),
                )
                .collect();
        let widths: Vec<usize> = (0..keys.len())
            .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        for row in table {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            writeln!(out, "{}", line.join("   ").trim_end())?;
        }
    }
    Ok(0)
}

const DEFAULT_CONFIG: &str = include_str!("default-config.json");

pub fn spec(a: &SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut spec: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG)?;
    if a.rootless {
        // runc's rootless default: the caller mapped to root in a new user namespace, no network
        // or cgroup namespace, no cgroup writes, the host's /sys bound read-only in place of sysfs.
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let linux = &mut spec["linux"];
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        let namespaces = linux["namespaces"].as_array_mut().context("namespaces")?;
        namespaces.retain(|n| n["type"] != "network" && n["type"] != "cgroup");
        namespaces.push(serde_json::json!({"type": "user"}));
        linux.as_object_mut().context("linux")?.remove("resources");
        let mounts = spec["mounts"].as_array_mut().context("mounts")?;
        for m in mounts.iter_mut() {
            if m["type"] == "sysfs" {
                *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            } else if m["type"] == "devpts" {
                m["options"] = serde_json::json!([
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620"
                ]);
            }
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&spec)? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}
