//! cgroup v2 (unified): one directory, controllers enabled from the parent, resources converted
//! from their v1 meaning the way runc does, and cgroup.freeze.

use super::convert::{
    blkio_weight_to_io_weight, cpu_max, pids_max, shares_to_weight, v2_limit, v2_swap,
};
use super::fs;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};
use std::collections::HashMap;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

type Writes = Vec<(String, String)>;

/// The limit in force in one of the cgroup's files, for values an update leaves out.
type Current<'a> = &'a dyn Fn(&str) -> Result<Option<i64>>;

/// The first field of a v2 limit file as a number; `max`, or no such file, is None.
fn current_limit(dir: &Path, file: &str) -> Result<Option<i64>> {
    let path = dir.join(file);
    let text = match crate::fsutil::read_kernel_file(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cgroup: read {}", path.display())),
    };
    match text.split_whitespace().next() {
        None | Some("max") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .with_context(|| format!("cgroup: parse {}: {v:?}", path.display())),
    }
}

/// Makes `controllers` (those the parent offers) available in every level from `root` down to
/// `leaf`, by enabling them in each ancestor's cgroup.subtree_control. Only missing ones are written.
pub fn enable_controllers(root: &Path, leaf: &Path, wanted: Option<&[&str]>) -> Result<()> {
    let rel = leaf.strip_prefix(root).unwrap_or(Path::new(""));
    let mut parent = root.to_path_buf();
    for component in rel.components() {
        let available = fs::read(&parent, "cgroup.controllers")?;
        let enabled = fs::read(&parent, "cgroup.subtree_control")?;
        let missing: Vec<String> = available
            .split_whitespace()
            .filter(|c| wanted.is_none_or(|w| w.contains(c)))
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            fs::write(&parent, "cgroup.subtree_control", &missing.join(" "))?;
        }
        parent.push(component);
    }
    Ok(())
}

/// Applies every resource of `r` to the v2 cgroup `dir`; with `update`, a value left out keeps
/// the one in force (a new cgroup has none to read).
pub fn apply(dir: &Path, r: &LinuxResources, update: bool) -> Result<()> {
    let mut writes = Writes::new();
    let current = |file: &str| match update {
        true => current_limit(dir, file),
        false => Ok(None),
    };
    if let Some(m) = r.memory() {
        memory(m, &current, &mut writes)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c, &current, &mut writes)?;
    }
    if let Some(v) = r.pids().and_then(|p| pids_max(p.limit())) {
        writes.push(("pids.max".into(), v));
    }
    if let Some(b) = r.block_io() {
        io(dir, b, &mut writes);
    }
    if let Some(limits) = r.hugepage_limits() {
        hugetlb(limits, &mut writes);
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            bail!("cgroup network (net_cls/net_prio): not available on cgroup v2");
        }
    }
    for (file, value) in &writes {
        fs::write(dir, file, value)?;
    }
    if let Some(unified) = r.unified() {
        write_unified(dir, unified)?;
    }
    if let Some(rules) = r.devices().as_deref().filter(|d| !d.is_empty()) {
        super::devices_bpf::attach(dir, rules)?;
    }
    Ok(())
}

/// Writes hugetlb limits only (used on hybrid hosts where hugetlb lives on the unified mount).
pub fn apply_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    let mut writes = Writes::new();
    hugetlb(limits, &mut writes);
    writes
        .iter()
        .try_for_each(|(file, value)| fs::write(dir, file, value))
}

/// The OCI `unified` map: file name to content, written as given. Names must stay in `dir`.
pub fn write_unified(dir: &Path, unified: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<_> = unified.keys().collect();
    keys.sort();
    for key in keys {
        if key.contains('/')
            || key.starts_with('.')
            || key == "cgroup.procs"
            || key == "cgroup.threads"
        {
            bail!("cgroup unified key {key:?}: not a resource file");
        }
        fs::write(dir, key, &unified[key])?;
    }
    Ok(())
}

/// memory.max and memory.swap.max. OCI's swap is memory+swap while memory.swap.max holds swap
/// alone, so a value `update` leaves out is taken from the cgroup: swap alone is counted over the
/// memory limit in force, and a memory limit alone keeps memory+swap (as v1's memsw file and runc
/// do), refused like there when it exceeds it.
fn memory(m: &LinuxMemory, current: Current, writes: &mut Writes) -> Result<()> {
    if let Some(l) = m.limit() {
        writes.push(("memory.max".into(), v2_limit(l)));
    }
    let swap = match (m.limit(), m.swap().filter(|&s| s != 0)) {
        (None, Some(swap)) => v2_swap(swap, current("memory.max")?)?,
        (limit, Some(swap)) => v2_swap(swap, limit)?,
        // runc lifts the swap limit along with an unlimited memory limit.
        (Some(-1), None) => Some("max".into()),
        (Some(limit), None) if limit > 0 => {
            match (current("memory.max")?, current("memory.swap.max")?) {
                (Some(mem), Some(swap)) => v2_swap(mem + swap, Some(limit))?,
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(swap) = swap {
        writes.push(("memory.swap.max".into(), swap));
    }
    if let Some(r) = m.reservation() {
        writes.push(("memory.low".into(), v2_limit(r)));
    }
    if m.swappiness().is_some() {
        bail!("cgroup memory.swappiness: not available on cgroup v2");
    }
    if m.disable_oom_killer() == Some(true) {
        bail!("cgroup memory.oom_control (disableOOMKiller): not available on cgroup v2");
    }
    // kernel and kernelTCP limits have no v2 file; the kernel accounts them in memory.max.
    Ok(())
}

/// cpu.max holds quota and period: a period alone keeps the quota in force.
fn cpu(c: &LinuxCpu, current: Current, writes: &mut Writes) -> Result<()> {
    let weight = c.shares().map(shares_to_weight).filter(|&w| w != 0);
    if let Some(w) = weight {
        writes.push(("cpu.weight".into(), w.to_string()));
    }
    let quota = match (c.quota(), c.period()) {
        (None | Some(0), Some(period)) if period > 0 => current("cpu.max")?.or(Some(-1)),
        (quota, _) => quota,
    };
    if let Some(max) = cpu_max(quota, c.period()) {
        writes.push(("cpu.max".into(), max));
    }
    if let Some(b) = c.burst() {
        writes.push(("cpu.max.burst".into(), b.to_string()));
    }
    if let Some(i) = c.idle() {
        writes.push(("cpu.idle".into(), i.to_string()));
    }
    if c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0) {
        bail!("cgroup cpu.rt_runtime_us/cpu.rt_period_us (realtime): not available on cgroup v2");
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        writes.push(("cpuset.cpus".into(), cpus.to_string()));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        writes.push(("cpuset.mems".into(), mems.to_string()));
    }
    Ok(())
}

/// io.* files. With BFQ (io.bfq.weight present) the v1 weight is written unconverted, as runc does.
fn io(dir: &Path, b: &LinuxBlockIo, writes: &mut Writes) {
    let bfq = dir.join("io.bfq.weight").exists();
    let (file, convert): (&str, fn(u16) -> u64) = if bfq {
        ("io.bfq.weight", u64::from)
    } else {
        ("io.weight", blkio_weight_to_io_weight)
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        writes.push((file.into(), format!("default {}", convert(w))));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            writes.push((
                file.into(),
                format!("{}:{} {}", d.major(), d.minor(), convert(w)),
            ));
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for d in devices.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            writes.push((
                "io.max".into(),
                format!("{}:{} {key}={rate}", d.major(), d.minor()),
            ));
        }
    }
}

fn hugetlb(limits: &[LinuxHugepageLimit], writes: &mut Writes) {
    for l in limits {
        writes.push((
            format!("hugetlb.{}.max", l.page_size()),
            v2_limit(l.limit()),
        ));
    }
}

/// Writes cgroup.freeze and waits for cgroup.events to report the state reached.
pub fn set_freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "1" } else { "0" };
    fs::write(dir, "cgroup.freeze", want)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if is_frozen(dir)? == frozen {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "cgroup cgroup.freeze: {} did not reach frozen={want}",
                dir.display()
            );
        }
        sleep(Duration::from_millis(1));
    }
}

/// Whether `dir` or an ancestor below `root` has cgroup.freeze set, reached or not.
pub fn freeze_requested(root: &Path, dir: &Path) -> Result<bool> {
    for d in dir
        .ancestors()
        .take_while(|d| *d != root && d.starts_with(root))
    {
        if fs::read(d, "cgroup.freeze")?.trim() == "1" {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether cgroup.events says `frozen 1`.
pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fs::keyed(&fs::read(dir, "cgroup.events")?, "frozen") == Some(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The writes `memory` and `cpu` plan for the resources `r` over a cgroup holding `files`.
    fn plan(r: serde_json::Value, files: &[(&str, &str)]) -> Result<Writes> {
        let r: LinuxResources = serde_json::from_value(r).unwrap();
        let current = |file: &str| {
            let text = files
                .iter()
                .find(|(f, _)| *f == file)
                .map_or("max", |(_, t)| t);
            Ok(text
                .split(' ')
                .next()
                .filter(|v| *v != "max")
                .map(|v| v.parse().unwrap()))
        };
        let mut writes = Writes::new();
        if let Some(m) = r.memory() {
            memory(m, &current, &mut writes)?;
        }
        if let Some(c) = r.cpu() {
            cpu(c, &current, &mut writes)?;
        }
        Ok(writes)
    }

    fn w(pairs: &[(&str, &str)]) -> Writes {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn swap_alone_counts_over_the_memory_limit_in_force() {
        let files = [("memory.max", "134217728"), ("memory.swap.max", "max")];
        let writes = plan(json!({"memory": {"swap": 268435456}}), &files).unwrap();
        assert_eq!(writes, w(&[("memory.swap.max", "134217728")]));
        let err = plan(json!({"memory": {"swap": 268435456}}), &[]).unwrap_err();
        assert!(err.to_string().contains("without a memory limit"), "{err}");
    }

    #[test]
    fn memory_alone_keeps_memory_plus_swap() {
        let files = [
            ("memory.max", "134217728"),
            ("memory.swap.max", "134217728"),
        ];
        let writes = plan(json!({"memory": {"limit": 201326592}}), &files).unwrap();
        let want = [("memory.max", "201326592"), ("memory.swap.max", "67108864")];
        assert_eq!(writes, w(&want));
        // Above memory+swap (256M): refused, as the v1 kernel refuses it.
        assert!(plan(json!({"memory": {"limit": 536870912}}), &files).is_err());
        // Unlimited swap stays unlimited; a fresh cgroup gets the memory limit only.
        let files = [("memory.max", "134217728")];
        let writes = plan(json!({"memory": {"limit": 201326592}}), &files).unwrap();
        assert_eq!(writes, w(&[("memory.max", "201326592")]));
        let writes = plan(json!({"memory": {"limit": -1, "swap": 0}}), &files).unwrap();
        assert_eq!(
            writes,
            w(&[("memory.max", "max"), ("memory.swap.max", "max")])
        );
    }

    #[test]
    fn cpu_period_alone_keeps_the_quota() {
        let files = [("cpu.max", "20000 100000")];
        let writes = plan(json!({"cpu": {"period": 50000}}), &files).unwrap();
        assert_eq!(writes, w(&[("cpu.max", "20000 50000")]));
        let writes = plan(json!({"cpu": {"period": 50000}}), &[]).unwrap();
        assert_eq!(writes, w(&[("cpu.max", "max 50000")]));
        let writes = plan(json!({"cpu": {"quota": 30000}}), &files).unwrap();
        assert_eq!(writes, w(&[("cpu.max", "30000")]));
    }
}
