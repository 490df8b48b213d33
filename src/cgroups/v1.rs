//! cgroup v1: one directory per controller hierarchy. Resources, cpuset setup and the freezer.

use super::convert::{device_rule, pids_max, v1_limit};
use super::fs;
use super::Hierarchy;
use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The directory of `controller` for this container, or an error naming the resource that needs it.
pub fn dir<'a>(hs: &'a [Hierarchy], controller: &str, key: &str) -> Result<&'a Path> {
    super::find(hs, controller).ok_or_else(|| {
        anyhow!("cgroup {key}: the {controller} controller is not mounted on this host (cgroup v1)")
    })
}

/// Writes `(file, value)` pairs in order into the `controller` directory; nothing (not even the
/// lookup) happens when there is nothing to write.
fn write_list(hs: &[Hierarchy], controller: &str, writes: &[(String, String)]) -> Result<()> {
    let Some((first, _)) = writes.first() else {
        return Ok(());
    };
    let dir = dir(hs, controller, first)?;
    writes
        .iter()
        .try_for_each(|(file, value)| fs::write(dir, file, value))
}

/// Applies every v1 resource of `r` except hugetlb, which the caller routes (v1 or unified).
pub fn apply(hs: &[Hierarchy], r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(hs, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(hs, c)?;
    }
    if let Some(v) = r.pids().and_then(|p| pids_max(p.limit())) {
        write_list(hs, "pids", &[("pids.max".into(), v)])?;
    }
    if let Some(b) = r.block_io() {
        blkio(hs, b)?;
    }
    if let Some(n) = r.network() {
        network(hs, n)?;
    }
    if let Some(devices) = r.devices() {
        let writes: Vec<_> = devices
            .iter()
            .filter_map(|d| {
                let file = if d.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                Some((file.to_string(), device_rule(d)?))
            })
            .collect();
        write_list(hs, "devices", &writes)?;
    }
    Ok(())
}

fn memory(hs: &[Hierarchy], m: &LinuxMemory) -> Result<()> {
    let mut writes = Vec::new();
    let mut push = |file: &str, value: Option<i64>| {
        if let Some(v) = value {
            writes.push((file.to_string(), v1_limit(v)));
        }
    };
    push("memory.soft_limit_in_bytes", m.reservation());
    push("memory.kmem.limit_in_bytes", m.kernel());
    push("memory.kmem.tcp.limit_in_bytes", m.kernel_tcp());
    if let Some(s) = m.swappiness() {
        writes.push(("memory.swappiness".into(), s.to_string()));
    }
    if m.disable_oom_killer() == Some(true) {
        writes.push(("memory.oom_control".into(), "1".into()));
    }
    let limits = limit_writes(hs, m.limit(), m.swap())?;
    writes.splice(0..0, limits);
    write_list(hs, "memory", &writes)
}

/// memory.limit_in_bytes and memory.memsw.limit_in_bytes in an order the kernel accepts:
/// memsw may never drop below the limit, so it goes first when growing and last when shrinking.
fn limit_writes(
    hs: &[Hierarchy],
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<Vec<(String, String)>> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let (limit, mut swap) = match (limit, swap) {
        (None, None) => return Ok(Vec::new()),
        pair => pair,
    };
    let dir = dir(hs, "memory", LIMIT)?;
    // Like runc: an unlimited memory with unset swap lifts the swap limit too, when accounted.
    if limit == Some(-1) && swap.is_none() && dir.join(MEMSW).exists() {
        swap = Some(-1);
    }
    let entry = |file: &str, v: i64| (file.to_string(), v1_limit(v));
    Ok(match (limit, swap) {
        (Some(l), Some(s)) => {
            let current = fs::read_u64(dir, LIMIT)?;
            if s < 0 || current < s as u64 {
                vec![entry(MEMSW, s), entry(LIMIT, l)]
            } else {
                vec![entry(LIMIT, l), entry(MEMSW, s)]
            }
        }
        (Some(l), None) => vec![entry(LIMIT, l)],
        (None, Some(s)) => vec![entry(MEMSW, s)],
        (None, None) => Vec::new(),
    })
}

fn cpu(hs: &[Hierarchy], c: &LinuxCpu) -> Result<()> {
    let mut writes = Vec::new();
    let mut push = |file: &str, value: Option<String>| {
        if let Some(v) = value {
            writes.push((file.to_string(), v));
        }
    };
    push(
        "cpu.shares",
        c.shares().filter(|&s| s != 0).map(|s| s.to_string()),
    );
    // The period goes before the quota, and the rt period before the rt runtime, as the
    // kernel checks each new value against the other.
    push(
        "cpu.cfs_period_us",
        c.period().filter(|&p| p != 0).map(|p| p.to_string()),
    );
    push(
        "cpu.cfs_quota_us",
        c.quota().filter(|&q| q != 0).map(v1_limit),
    );
    push("cpu.cfs_burst_us", c.burst().map(|b| b.to_string()));
    push(
        "cpu.rt_period_us",
        c.realtime_period()
            .filter(|&p| p != 0)
            .map(|p| p.to_string()),
    );
    push(
        "cpu.rt_runtime_us",
        c.realtime_runtime()
            .filter(|&r| r != 0)
            .map(|r| r.to_string()),
    );
    push("cpu.idle", c.idle().map(|i| i.to_string()));
    write_list(hs, "cpu", &writes)?;
    let mut sets = Vec::new();
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        sets.push(("cpuset.cpus".to_string(), cpus.to_string()));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        sets.push(("cpuset.mems".to_string(), mems.to_string()));
    }
    write_list(hs, "cpuset", &sets)
}

fn blkio(hs: &[Hierarchy], b: &LinuxBlockIo) -> Result<()> {
    let mut writes = Vec::new();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        writes.push(("weight".to_string(), w.to_string()));
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        writes.push(("blkio.leaf_weight".to_string(), w.to_string()));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            writes.push((
                "weight_device".into(),
                format!("{}:{} {w}", d.major(), d.minor()),
            ));
        }
        if let Some(w) = d.leaf_weight() {
            writes.push((
                "blkio.leaf_weight_device".into(),
                format!("{}:{} {w}", d.major(), d.minor()),
            ));
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, devices) in throttles {
        for d in devices.iter().flatten() {
            writes.push((
                file.to_string(),
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            ));
        }
    }
    if writes.is_empty() {
        return Ok(());
    }
    // CFQ's blkio.weight is gone from current kernels; BFQ offers blkio.bfq.weight instead.
    let dir = dir(hs, "blkio", &writes[0].0)?;
    let scheduler = if dir.join("blkio.weight").exists() {
        "blkio."
    } else {
        "blkio.bfq."
    };
    for (file, _) in &mut writes {
        if !file.starts_with("blkio.") {
            *file = format!("{scheduler}{file}");
        }
    }
    writes
        .iter()
        .try_for_each(|(file, value)| fs::write(dir, file, value))
}

fn network(hs: &[Hierarchy], n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        write_list(hs, "net_cls", &[("net_cls.classid".into(), id.to_string())])?;
    }
    let prios: Vec<_> = n
        .priorities()
        .iter()
        .flatten()
        .map(|p| {
            (
                "net_prio.ifpriomap".to_string(),
                format!("{} {}", p.name(), p.priority()),
            )
        })
        .collect();
    write_list(hs, "net_prio", &prios)
}

/// hugetlb.<size>.limit_in_bytes for each limit, in the v1 hugetlb hierarchy.
pub fn hugetlb(dir: &Path, limits: &[oci_spec::runtime::LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        fs::write(
            dir,
            &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
            &v1_limit(l.limit()),
        )?;
    }
    Ok(())
}

/// A new v1 cpuset starts with empty cpus and mems, and adding a process to it then fails with
/// ENOSPC: copy the parent's values down every level from the hierarchy root to `leaf`.
pub fn init_cpuset(root: &Path, leaf: &Path) -> Result<()> {
    let rel = leaf.strip_prefix(root).unwrap_or(Path::new(""));
    let mut parent = root.to_path_buf();
    for component in rel.components() {
        let child = parent.join(component);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read(&child, file)?.trim().is_empty() {
                fs::write(&child, file, fs::read(&parent, file)?.trim())?;
            }
        }
        parent = child;
    }
    Ok(())
}

/// Sets freezer.state and waits until the kernel reports the state reached.
pub fn set_freezer(dir: &Path, state: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        fs::write(dir, "freezer.state", state)?;
        if fs::read(dir, "freezer.state")?.trim() == state {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "cgroup freezer.state: {} did not reach {state}",
                dir.display()
            );
        }
        sleep(Duration::from_millis(1));
    }
}
