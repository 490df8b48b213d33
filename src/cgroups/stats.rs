//! Container statistics in the shape of runc's `events --stats` "data" object (runc types/events.go).

use super::convert::hugepage_size_name;
use super::fs::{self, keyed, parse_u64};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq, Clone)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Reads a numeric file that may be absent (controller feature missing): absent reads as 0.
fn opt_u64(dir: &Path, file: &str) -> u64 {
    fs::read_u64(dir, file).unwrap_or(0)
}

/// Reads a keyed file that may be absent; absent reads as empty.
fn opt_text(dir: &Path, file: &str) -> String {
    fs::read(dir, file).unwrap_or_default()
}

/// Parses `key value` lines into a map (memory.stat -> raw).
fn keyed_map(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), parse_u64(v.trim()).ok()?))
        })
        .collect()
}

/// The host's huge page sizes as the hugetlb controller names them ("2MB", "1GB").
pub fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<(u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kib = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kib, hugepage_size_name(kib)))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, name)| name).collect()
}

// ---- cgroup v1 ----

/// v1 cpuacct: usage in ns; cpuacct.stat is in USER_HZ ticks, converted to ns as runc does.
pub fn v1_cpuacct(dir: &Path, cpu: &mut Cpu) -> Result<()> {
    cpu.usage.total = fs::read_u64(dir, "cpuacct.usage")?;
    cpu.usage.percpu = opt_text(dir, "cpuacct.usage_percpu")
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // SAFETY: sysconf has no memory effects; it only reads a constant.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        hz if hz > 0 => hz as u64,
        _ => 100,
    };
    let stat = fs::read(dir, "cpuacct.stat")?;
    let ns = |key| keyed(&stat, key).unwrap_or(0) * 1_000_000_000 / hz;
    cpu.usage.user = ns("user");
    cpu.usage.kernel = ns("system");
    Ok(())
}

/// Throttling counters from cpu.stat (v1 cpu controller): throttled_time is already ns.
pub fn v1_throttling(dir: &Path) -> Throttling {
    let stat = opt_text(dir, "cpu.stat");
    Throttling {
        periods: keyed(&stat, "nr_periods").unwrap_or(0),
        throttled_periods: keyed(&stat, "nr_throttled").unwrap_or(0),
        throttled_time: keyed(&stat, "throttled_time").unwrap_or(0),
    }
}

fn v1_memory_entry(dir: &Path, prefix: &str) -> MemoryEntry {
    MemoryEntry {
        limit: opt_u64(dir, &format!("{prefix}limit_in_bytes")),
        usage: opt_u64(dir, &format!("{prefix}usage_in_bytes")),
        max: opt_u64(dir, &format!("{prefix}max_usage_in_bytes")),
        failcnt: opt_u64(dir, &format!("{prefix}failcnt")),
    }
}

pub fn v1_memory(dir: &Path) -> Result<Memory> {
    let raw = keyed_map(&fs::read(dir, "memory.stat")?);
    Ok(Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: v1_memory_entry(dir, "memory."),
        swap: v1_memory_entry(dir, "memory.memsw."),
        kernel: v1_memory_entry(dir, "memory.kmem."),
        kernel_tcp: v1_memory_entry(dir, "memory.kmem.tcp."),
        raw,
    })
}

/// pids.current and pids.max (`max` reads as 0, "no limit", as runc reports it). Same on v1 and v2.
pub fn pids(dir: &Path) -> Result<Pids> {
    let limit = fs::read_u64(dir, "pids.max")?;
    Ok(Pids {
        current: fs::read_u64(dir, "pids.current")?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// blkio `major:minor Op value` lines (the "Total" line has no device and is skipped).
fn v1_blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = f.next()?.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: f.next()?.to_string(),
                value: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// blkio stats: CFQ's files when present, else the throttle layer's (what current kernels keep).
pub fn v1_blkio(dir: &Path) -> Blkio {
    let read = |name: &str| {
        let cfq = opt_text(dir, &format!("blkio.{name}"));
        let text = if cfq.is_empty() {
            opt_text(dir, &format!("blkio.throttle.{name}"))
        } else {
            cfq
        };
        v1_blkio_entries(&text)
    };
    Blkio {
        io_service_bytes_recursive: read("io_service_bytes_recursive"),
        io_serviced_recursive: read("io_serviced_recursive"),
    }
}

/// Per page size hugetlb usage; `v2` selects the file names.
pub fn hugetlb(dir: &Path, v2: bool) -> BTreeMap<String, Hugetlb> {
    hugepage_sizes()
        .into_iter()
        .map(|size| {
            let stats = if v2 {
                Hugetlb {
                    usage: opt_u64(dir, &format!("hugetlb.{size}.current")),
                    max: 0,
                    failcnt: keyed(&opt_text(dir, &format!("hugetlb.{size}.events")), "max")
                        .unwrap_or(0),
                }
            } else {
                Hugetlb {
                    usage: opt_u64(dir, &format!("hugetlb.{size}.usage_in_bytes")),
                    max: opt_u64(dir, &format!("hugetlb.{size}.max_usage_in_bytes")),
                    failcnt: opt_u64(dir, &format!("hugetlb.{size}.failcnt")),
                }
            };
            (size, stats)
        })
        .collect()
}

// ---- cgroup v2 ----

/// cpu.stat exists in every v2 cgroup (even without the cpu controller); usec -> ns.
pub fn v2_cpu(dir: &Path) -> Result<Cpu> {
    let stat = fs::read(dir, "cpu.stat")?;
    let ns = |key| keyed(&stat, key).unwrap_or(0) * 1000;
    Ok(Cpu {
        usage: CpuUsage {
            total: ns("usage_usec"),
            percpu: Vec::new(),
            kernel: ns("system_usec"),
            user: ns("user_usec"),
        },
        throttling: Throttling {
            periods: keyed(&stat, "nr_periods").unwrap_or(0),
            throttled_periods: keyed(&stat, "nr_throttled").unwrap_or(0),
            throttled_time: ns("throttled_usec"),
        },
    })
}

/// v2 memory. As runc does, swap reports memory+swap so it reads like v1's memsw.
pub fn v2_memory(dir: &Path) -> Result<Memory> {
    let raw = keyed_map(&fs::read(dir, "memory.stat")?);
    let usage = MemoryEntry {
        limit: opt_u64(dir, "memory.max"),
        usage: fs::read_u64(dir, "memory.current")?,
        max: opt_u64(dir, "memory.peak"),
        failcnt: keyed(&opt_text(dir, "memory.events"), "max").unwrap_or(0),
    };
    let swap_current = opt_u64(dir, "memory.swap.current");
    let swap_max = opt_u64(dir, "memory.swap.max");
    let swap = MemoryEntry {
        limit: swap_max.saturating_add(usage.limit),
        usage: swap_current + usage.usage,
        max: opt_u64(dir, "memory.swap.peak") + usage.max,
        failcnt: 0,
    };
    Ok(Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        kernel: MemoryEntry {
            usage: raw.get("kernel").copied().unwrap_or(0),
            ..Default::default()
        },
        kernel_tcp: MemoryEntry {
            usage: raw.get("sock").copied().unwrap_or(0),
            ..Default::default()
        },
        raw,
    })
}

/// io.stat `major:minor rbytes=.. wbytes=.. rios=.. wios=..` into v1-style Read/Write entries.
pub fn v2_io(dir: &Path) -> Blkio {
    let mut blkio = Blkio::default();
    for line in opt_text(dir, "io.stat").lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for (key, value) in fields.filter_map(|f| f.split_once('=')) {
            let (list, op) = match key {
                "rbytes" => (&mut blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            let value = value.parse().unwrap_or(0);
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    blkio
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_runc_names() {
        let mut s = Stats::default();
        s.cpu.throttling.throttled_periods = 2;
        s.memory.kernel_tcp.limit = 5;
        s.hugetlb.insert(
            "2MB".into(),
            Hugetlb {
                usage: 1,
                max: 0,
                failcnt: 0,
            },
        );
        s.blkio.io_service_bytes_recursive.push(BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 9,
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 5);
        assert_eq!(
            v["cpu"]["usage"]["kernel"], 0,
            "kernel/user are always present"
        );
        assert_eq!(v["hugetlb"]["2MB"]["usage"], 1);
        assert_eq!(v["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
        assert!(
            v["pids"].as_object().unwrap().is_empty(),
            "zero pids fields are omitted"
        );
    }

    #[test]
    fn blkio_lines_parse_and_skip_total() {
        let e = v1_blkio_entries("254:0 Read 4096\n254:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (254, 0, "Read", 4096)
        );
    }
}
