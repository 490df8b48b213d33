//! `update`: change the limits of a live container from runc's flags or from a LinuxResources JSON
//! (`--resources FILE`, or `-` for stdin as containerd sends it). Like runc, only the limits runc
//! updates are taken, a zero means "unchanged", and devices are ignored.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use std::io::Read;

use super::cgroup_verbs::cgroup_if;
use crate::cli::UpdateArgs;
use crate::container::Paths;
use crate::state::Status;

pub fn update(paths: &Paths, a: &UpdateArgs) -> Result<i32> {
    let given = match a.resources.as_deref() {
        Some(source) => read_resources(source)?,
        None => from_flags(a)?,
    };
    let given: LinuxResources =
        serde_json::from_value(given).context("update: parse the LinuxResources JSON")?;
    let wanted = serde_json::from_value(runc_subset(&serde_json::to_value(&given)?))?;
    let live = [Status::Created, Status::Running, Status::Paused];
    let (cg, _lock) = cgroup_if(paths, &a.id, "update", &live, "container not running")?;
    cg.apply(&wanted)
        .with_context(|| format!("update container {}", a.id))?;
    Ok(0)
}

fn read_resources(source: &str) -> Result<Value> {
    let mut text = String::new();
    if source == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("update: read resources from stdin")?;
    } else {
        text = std::fs::read_to_string(source)
            .with_context(|| format!("update: read resources from {source}"))?;
    }
    serde_json::from_str(&text).with_context(|| format!("update: parse resources from {source}"))
}

/// The flags as a LinuxResources JSON object.
fn from_flags(a: &UpdateArgs) -> Result<Value> {
    let mut r = json!({});
    let memory = [
        ("limit", &a.memory),
        ("reservation", &a.memory_reservation),
        ("swap", &a.memory_swap),
        ("kernel", &a.kernel_memory),
    ];
    for (key, flag) in memory {
        if let Some(text) = flag {
            r["memory"][key] = json!(memory_value(text)?);
        }
    }
    let cpu = [
        ("shares", json!(a.cpu_shares)),
        ("quota", json!(a.cpu_quota)),
        ("period", json!(a.cpu_period)),
        ("realtimeRuntime", json!(a.cpu_rt_runtime)),
        ("realtimePeriod", json!(a.cpu_rt_period)),
        ("cpus", json!(a.cpuset_cpus)),
        ("mems", json!(a.cpuset_mems)),
    ];
    for (key, value) in cpu.into_iter().filter(|(_, v)| !v.is_null()) {
        r["cpu"][key] = value;
    }
    if let Some(w) = a.blkio_weight {
        r["blockIO"]["weight"] = json!(w);
    }
    if let Some(l) = a.pids_limit {
        r["pids"]["limit"] = json!(l);
    }
    Ok(r)
}

/// `-1` is unlimited; anything else is a size like runc's (docker's units.RAMInBytes).
fn memory_value(text: &str) -> Result<i64> {
    if text == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(text)
}

/// "1024", "32m", "1.5g", "64MiB", "10 kb": binary multiples, case-insensitive.
fn ram_in_bytes(text: &str) -> Result<i64> {
    let bad = || format!("invalid size: {text:?}");
    let num_len = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(num_len);
    if !num.starts_with(|c: char| c.is_ascii_digit()) || num.ends_with('.') {
        bail!(bad());
    }
    let value: f64 = num.parse().with_context(bad)?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => bail!(bad()),
    };
    Ok((value * 1024f64.powi(power)) as i64)
}

/// The fields runc's update applies, dropping zeros and empty strings (meaning "unchanged").
fn runc_subset(all: &Value) -> Value {
    const TAKEN: [(&str, &[&str]); 4] = [
        (
            "memory",
            &["limit", "reservation", "swap", "kernel", "kernelTCP"],
        ),
        (
            "cpu",
            &[
                "shares",
                "quota",
                "burst",
                "period",
                "realtimeRuntime",
                "realtimePeriod",
                "cpus",
                "mems",
            ],
        ),
        ("blockIO", &["weight"]),
        ("pids", &["limit"]),
    ];
    let mut out = json!({});
    for (group, keys) in TAKEN {
        for key in keys {
            let v = &all[group][*key];
            let unchanged = v.is_null() || v == &json!(0) || v == &json!("");
            if !unchanged {
                out[group][*key] = v.clone();
            }
        }
    }
    if all["unified"].as_object().is_some_and(|u| !u.is_empty()) {
        out["unified"] = all["unified"].clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_units_ram_in_bytes() {
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert_eq!(ram_in_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(ram_in_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("10 kb").unwrap(), 10240);
        assert_eq!(ram_in_bytes("100b").unwrap(), 100);
        assert_eq!(memory_value("-1").unwrap(), -1);
        for bad in ["", "m", "-2", "1.m", "12x", "1 2"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn subset_keeps_what_runc_updates() {
        let all = json!({
            "memory": {"limit": 64, "swap": 0, "swappiness": 10},
            "cpu": {"shares": 0, "cpus": "", "mems": "0"},
            "pids": {"limit": -1},
            "devices": [{"allow": false, "access": "rwm"}],
        });
        let want = json!({"memory": {"limit": 64}, "cpu": {"mems": "0"}, "pids": {"limit": -1}});
        assert_eq!(runc_subset(&all), want);
    }
}
