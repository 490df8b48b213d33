//! Pure conversions between OCI values and the strings cgroup v1 and v2 files expect,
//! following runc so that the same spec gives the same kernel values.

use anyhow::{bail, Result};

/// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000); 0 means unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262144.. => 10000,
        s => 1 + ((s - 2) * 9999) / 262142,
    }
}

/// blkio.weight (v1, 10..1000) to io.weight (v2, 1..10000); 0 means unset.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    match u64::from(weight) {
        0 => 0,
        w => 1 + (w.saturating_sub(10) * 9999) / 990,
    }
}

/// A v1 limit value: -1 (or any negative) is unlimited and stays -1.
pub fn v1_limit(value: i64) -> String {
    if value < 0 {
        "-1".to_string()
    } else {
        value.to_string()
    }
}

/// A v2 limit value: negative means unlimited, written as `max`.
pub fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

/// memory.swap.max on v2 holds swap alone, while the OCI value is memory+swap.
/// Returns None when swap is unset (0).
pub fn v2_swap(swap: i64, limit: Option<i64>) -> Result<Option<String>> {
    if swap < 0 {
        return Ok(Some("max".to_string()));
    }
    if swap == 0 {
        return Ok(None);
    }
    let limit = match limit {
        Some(l) if l > 0 => l,
        _ => bail!("cgroup memory.swap.max: cannot set swap ({swap}) without a memory limit"),
    };
    if swap < limit {
        bail!("cgroup memory.swap.max: memory+swap ({swap}) must be >= the memory limit ({limit})");
    }
    Ok(Some((swap - limit).to_string()))
}

/// cpu.max on v2: `<quota|max> [period]`; None when neither is set.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = match (quota, period) {
        (None | Some(0), None | Some(0)) => return None,
        (Some(q), _) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    Some(match period {
        Some(p) if p > 0 => format!("{quota} {p}"),
        _ => quota,
    })
}

/// pids.max: runc leaves 0 unset and writes any negative value as `max` on both versions.
pub fn pids_max(limit: i64) -> Option<String> {
    match limit {
        0 => None,
        l if l < 0 => Some("max".to_string()),
        l => Some(l.to_string()),
    }
}

/// The name the hugetlb controller gives a page size in KiB (`2048` -> `2MB`, `1048576` -> `1GB`).
pub fn hugepage_size_name(kib: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    let (mut size, mut unit) = (kib, 0);
    while size >= 1024 && size % 1024 == 0 && unit + 1 < UNITS.len() {
        size /= 1024;
        unit += 1;
    }
    format!("{size}{}", UNITS[unit])
}

/// A v1 devices.allow/deny line: `type major:minor access`, `*` for a missing number. The
/// kernel knows types a, b and c only: an unbuffered char device (`u`) is a `c`, and a FIFO
/// (`p`) is no device to it, so it gets no line.
pub fn device_rule(rule: &oci_spec::runtime::LinuxDeviceCgroup) -> Option<String> {
    use oci_spec::runtime::LinuxDeviceType;
    let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    let typ = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::P => return None,
        LinuxDeviceType::U => LinuxDeviceType::C,
        typ => typ,
    };
    let access = rule
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    Some(format!(
        "{} {}:{} {access}",
        typ.as_str(),
        num(rule.major()),
        num(rule.minor())
    ))
}

/// `c 1:3 rw` allowed (/dev/null), a rule the unit tests share.
#[cfg(test)]
pub fn null_rw_rule() -> oci_spec::runtime::LinuxDeviceCgroup {
    oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(oci_spec::runtime::LinuxDeviceType::C)
        .major(1)
        .minor(3)
        .access("rw")
        .build()
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(shares_to_weight(500_000), 10000);
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
    }

    #[test]
    fn limits_and_swap() {
        assert_eq!(v1_limit(-1), "-1");
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
        assert_eq!(v2_swap(-1, None).unwrap().as_deref(), Some("max"));
        assert_eq!(v2_swap(0, Some(100)).unwrap(), None);
        assert_eq!(v2_swap(300, Some(100)).unwrap().as_deref(), Some("200"));
        assert!(v2_swap(50, Some(100)).is_err());
        assert!(v2_swap(300, None).is_err());
        assert!(v2_swap(300, Some(-1)).is_err());
    }

    #[test]
    fn cpu_max_and_pids() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(
            cpu_max(Some(50000), Some(100000)).as_deref(),
            Some("50000 100000")
        );
        assert_eq!(cpu_max(Some(-1), None).as_deref(), Some("max"));
        assert_eq!(cpu_max(None, Some(20000)).as_deref(), Some("max 20000"));
        assert_eq!(pids_max(0), None);
        assert_eq!(pids_max(-1).as_deref(), Some("max"));
        assert_eq!(pids_max(7).as_deref(), Some("7"));
    }

    #[test]
    fn hugepage_names_and_device_rules() {
        assert_eq!(hugepage_size_name(2048), "2MB");
        assert_eq!(hugepage_size_name(1048576), "1GB");
        assert_eq!(hugepage_size_name(64), "64KB");
        let rule = null_rw_rule();
        assert_eq!(device_rule(&rule).unwrap(), "c 1:3 rw");
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        assert_eq!(device_rule(&all).unwrap(), "a *:* rwm");
        let of = |typ| {
            let r = LinuxDeviceCgroupBuilder::default()
                .typ(typ)
                .major(8)
                .minor(9);
            device_rule(&r.access("rw").build().unwrap())
        };
        assert_eq!(of(LinuxDeviceType::U).unwrap(), "c 8:9 rw");
        assert_eq!(of(LinuxDeviceType::P), None);
    }
}
