//! Stats: a container's cgroup statistics as containerd's metrics protos, the shape its Go runc
//! shim returns: `io.containerd.cgroups.v1.Metrics` when the memory and cpu controllers are
//! cgroup v1 (v1 and hybrid hosts), `io.containerd.cgroups.v2.Metrics` on a unified host. The
//! numbers come from the minirunc library's cgroup reader, in the shim's own process.

use std::collections::BTreeMap;

use containerd_shim::{
    protos::cgroups::metrics as v1,
    protos::cgroups_v2::metrics as v2,
    protos::protobuf::{well_known_types::any::Any, MessageDyn},
    util::convert_to_any,
};
use minirunc::cgroups::{Blkio, BlkioEntry, Cgroup, Layout, MemoryEntry, Stats};

/// The container's metrics, packed as containerd expects them.
pub fn collect(cgroup: &Cgroup) -> Result<Any, String> {
    let stats = cgroup.stats().map_err(|e| format!("{e:#}"))?;
    let metrics: Box<dyn MessageDyn> = if cgroup.layout() == Layout::Unified {
        Box::new(to_v2(&stats))
    } else {
        let oom_kill = cgroup.oom_count().unwrap_or(0);
        Box::new(to_v1(&stats, oom_kill))
    };
    convert_to_any(metrics).map_err(|e| e.to_string())
}

/// A memory.stat key; absent keys (older kernels) are 0.
fn raw(map: &BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

fn v1_memory_entry(entry: &MemoryEntry) -> v1::MemoryEntry {
    v1::MemoryEntry {
        limit: entry.limit,
        usage: entry.usage,
        max: entry.max,
        failcnt: entry.failcnt,
        ..Default::default()
    }
}

fn v1_blkio_entries(entries: &[BlkioEntry]) -> Vec<v1::BlkIOEntry> {
    entries
        .iter()
        .map(|e| v1::BlkIOEntry {
            op: e.op.clone(),
            major: e.major,
            minor: e.minor,
            value: e.value,
            ..Default::default()
        })
        .collect()
}

fn to_v1(s: &Stats, oom_kill: u64) -> v1::Metrics {
    let m = &s.memory.raw;
    let memory = v1::MemoryStat {
        cache: s.memory.cache,
        rss: raw(m, "rss"),
        rss_huge: raw(m, "rss_huge"),
        mapped_file: raw(m, "mapped_file"),
        dirty: raw(m, "dirty"),
        writeback: raw(m, "writeback"),
        pg_pg_in: raw(m, "pgpgin"),
        pg_pg_out: raw(m, "pgpgout"),
        pg_fault: raw(m, "pgfault"),
        pg_maj_fault: raw(m, "pgmajfault"),
        inactive_anon: raw(m, "inactive_anon"),
        active_anon: raw(m, "active_anon"),
        inactive_file: raw(m, "inactive_file"),
        active_file: raw(m, "active_file"),
        unevictable: raw(m, "unevictable"),
        hierarchical_memory_limit: raw(m, "hierarchical_memory_limit"),
        hierarchical_swap_limit: raw(m, "hierarchical_memsw_limit"),
        total_cache: raw(m, "total_cache"),
        total_rss: raw(m, "total_rss"),
        total_rss_huge: raw(m, "total_rss_huge"),
        total_mapped_file: raw(m, "total_mapped_file"),
        total_dirty: raw(m, "total_dirty"),
        total_writeback: raw(m, "total_writeback"),
        total_pg_pg_in: raw(m, "total_pgpgin"),
        total_pg_pg_out: raw(m, "total_pgpgout"),
        total_pg_fault: raw(m, "total_pgfault"),
        total_pg_maj_fault: raw(m, "total_pgmajfault"),
        total_inactive_anon: raw(m, "total_inactive_anon"),
        total_active_anon: raw(m, "total_active_anon"),
        total_inactive_file: raw(m, "total_inactive_file"),
        total_active_file: raw(m, "total_active_file"),
        total_unevictable: raw(m, "total_unevictable"),
        usage: Some(v1_memory_entry(&s.memory.usage)).into(),
        swap: Some(v1_memory_entry(&s.memory.swap)).into(),
        kernel: Some(v1_memory_entry(&s.memory.kernel)).into(),
        kernel_tcp: Some(v1_memory_entry(&s.memory.kernel_tcp)).into(),
        ..Default::default()
    };
    let cpu = v1::CPUStat {
        usage: Some(v1::CPUUsage {
            total: s.cpu.usage.total,
            kernel: s.cpu.usage.kernel,
            user: s.cpu.usage.user,
            per_cpu: s.cpu.usage.percpu.clone(),
            ..Default::default()
        })
        .into(),
        throttling: Some(v1::Throttle {
            periods: s.cpu.throttling.periods,
            throttled_periods: s.cpu.throttling.throttled_periods,
            throttled_time: s.cpu.throttling.throttled_time,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    v1::Metrics {
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        pids: Some(v1::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(cpu).into(),
        memory: Some(memory).into(),
        blkio: Some(v1::BlkIOStat {
            io_service_bytes_recursive: v1_blkio_entries(&s.blkio.io_service_bytes_recursive),
            io_serviced_recursive: v1_blkio_entries(&s.blkio.io_serviced_recursive),
            ..Default::default()
        })
        .into(),
        memory_oom_control: Some(v1::MemoryOomControl {
            oom_kill,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

/// io.stat's bytes and operations per device, from the v1-shaped Read/Write entries.
fn v2_io(blkio: &Blkio) -> v2::IOStat {
    let mut usage: Vec<v2::IOEntry> = Vec::new();
    let entries = blkio
        .io_service_bytes_recursive
        .iter()
        .map(|e| (e, true))
        .chain(blkio.io_serviced_recursive.iter().map(|e| (e, false)));
    for (e, bytes) in entries {
        let index = match usage
            .iter()
            .position(|u| (u.major, u.minor) == (e.major, e.minor))
        {
            Some(i) => i,
            None => {
                usage.push(v2::IOEntry {
                    major: e.major,
                    minor: e.minor,
                    ..Default::default()
                });
                usage.len() - 1
            }
        };
        let entry = &mut usage[index];
        match (e.op.as_str(), bytes) {
            ("Read", true) => entry.rbytes = e.value,
            ("Write", true) => entry.wbytes = e.value,
            ("Read", false) => entry.rios = e.value,
            ("Write", false) => entry.wios = e.value,
            _ => {}
        }
    }
    v2::IOStat {
        usage,
        ..Default::default()
    }
}

fn to_v2(s: &Stats) -> v2::Metrics {
    let m = &s.memory.raw;
    // The library reports swap as memory+swap (v1's memsw); v2's proto wants swap alone.
    let swap_only = |total: u64, memory: u64| total.saturating_sub(memory);
    let memory = v2::MemoryStat {
        anon: raw(m, "anon"),
        file: raw(m, "file"),
        kernel_stack: raw(m, "kernel_stack"),
        slab: raw(m, "slab"),
        sock: raw(m, "sock"),
        shmem: raw(m, "shmem"),
        file_mapped: raw(m, "file_mapped"),
        file_dirty: raw(m, "file_dirty"),
        file_writeback: raw(m, "file_writeback"),
        anon_thp: raw(m, "anon_thp"),
        inactive_anon: raw(m, "inactive_anon"),
        active_anon: raw(m, "active_anon"),
        inactive_file: raw(m, "inactive_file"),
        active_file: raw(m, "active_file"),
        unevictable: raw(m, "unevictable"),
        slab_reclaimable: raw(m, "slab_reclaimable"),
        slab_unreclaimable: raw(m, "slab_unreclaimable"),
        pgfault: raw(m, "pgfault"),
        pgmajfault: raw(m, "pgmajfault"),
        workingset_refault: raw(m, "workingset_refault"),
        workingset_activate: raw(m, "workingset_activate"),
        workingset_nodereclaim: raw(m, "workingset_nodereclaim"),
        pgrefill: raw(m, "pgrefill"),
        pgscan: raw(m, "pgscan"),
        pgsteal: raw(m, "pgsteal"),
        pgactivate: raw(m, "pgactivate"),
        pgdeactivate: raw(m, "pgdeactivate"),
        pglazyfree: raw(m, "pglazyfree"),
        pglazyfreed: raw(m, "pglazyfreed"),
        thp_fault_alloc: raw(m, "thp_fault_alloc"),
        thp_collapse_alloc: raw(m, "thp_collapse_alloc"),
        usage: s.memory.usage.usage,
        usage_limit: s.memory.usage.limit,
        swap_usage: swap_only(s.memory.swap.usage, s.memory.usage.usage),
        swap_limit: swap_only(s.memory.swap.limit, s.memory.usage.limit),
        max_usage: s.memory.usage.max,
        swap_max_usage: swap_only(s.memory.swap.max, s.memory.usage.max),
        ..Default::default()
    };
    v2::Metrics {
        pids: Some(v2::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(v2::CPUStat {
            usage_usec: s.cpu.usage.total / 1000,
            user_usec: s.cpu.usage.user / 1000,
            system_usec: s.cpu.usage.kernel / 1000,
            nr_periods: s.cpu.throttling.periods,
            nr_throttled: s.cpu.throttling.throttled_periods,
            throttled_usec: s.cpu.throttling.throttled_time / 1000,
            ..Default::default()
        })
        .into(),
        memory: Some(memory).into(),
        io: Some(v2_io(&s.blkio)).into(),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v2::HugeTlbStat {
                current: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stats {
        let mut s = Stats::default();
        s.memory.usage.usage = 4096;
        s.memory.usage.limit = 1 << 20;
        s.memory.swap.usage = 4096 + 100;
        s.memory.swap.limit = (1 << 20) + 500;
        s.memory.raw.insert("rss".into(), 2048);
        s.memory.raw.insert("anon".into(), 1024);
        s.memory.raw.insert("total_pgfault".into(), 7);
        s.cpu.usage.total = 5_000_000;
        s.cpu.usage.percpu = vec![3_000_000, 2_000_000];
        s.pids.current = 2;
        s.pids.limit = 10;
        for (op, value, list) in [
            ("Read", 512, 0),
            ("Write", 1024, 0),
            ("Read", 3, 1),
            ("Write", 4, 1),
        ] {
            let entry = BlkioEntry {
                major: 254,
                minor: 0,
                op: op.into(),
                value,
            };
            if list == 0 {
                s.blkio.io_service_bytes_recursive.push(entry);
            } else {
                s.blkio.io_serviced_recursive.push(entry);
            }
        }
        s
    }

    #[test]
    fn v1_metrics_carry_the_numbers() {
        let m = to_v1(&sample(), 3);
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.usage.limit, 1 << 20);
        assert_eq!(m.memory.rss, 2048);
        assert_eq!(m.memory.total_pg_fault, 7);
        assert_eq!(m.cpu.usage.per_cpu, vec![3_000_000, 2_000_000]);
        assert_eq!((m.pids.current, m.pids.limit), (2, 10));
        assert_eq!(m.blkio.io_service_bytes_recursive[1].op, "Write");
        assert_eq!(m.memory_oom_control.oom_kill, 3);
    }

    #[test]
    fn v2_metrics_carry_the_numbers() {
        let m = to_v2(&sample());
        assert_eq!((m.memory.usage, m.memory.usage_limit), (4096, 1 << 20));
        assert_eq!((m.memory.swap_usage, m.memory.swap_limit), (100, 500));
        assert_eq!(m.memory.anon, 1024);
        assert_eq!(m.cpu.usage_usec, 5000);
        assert_eq!(m.pids.current, 2);
        let io = &m.io.usage;
        assert_eq!(io.len(), 1);
        assert_eq!(
            (io[0].rbytes, io[0].wbytes, io[0].rios, io[0].wios),
            (512, 1024, 3, 4)
        );
    }
}
