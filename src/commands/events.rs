//! `events`: one stats event (`--stats`), or a stream of stats every `--interval` plus an `oom`
//! event whenever the kernel OOM-kills a process of the container, until the container stops.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

use super::cgroup_verbs::cgroup_if;
use crate::cgroups::{Cgroup, Stats};
use crate::cli::EventsArgs;
use crate::container::{self, Paths};
use crate::logging;
use crate::state::Status;

/// runc's types.Event.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Stats>,
}

/// How often the OOM counter and the container's liveness are checked between stats. An OOM in
/// the last period before the cgroup is removed (e.g. by `run`'s delete) can be missed.
const POLL: Duration = Duration::from_millis(100);

const LIVE: [Status; 3] = [Status::Created, Status::Running, Status::Paused];

pub fn events(paths: &Paths, a: &EventsArgs) -> Result<i32> {
    let interval = parse_duration(&a.interval)?;
    let (cg, lock) = cgroup_if(paths, &a.id, "events", &LIVE, "container not running")?;
    drop(lock);
    let mut out = std::io::stdout().lock();
    if a.stats {
        emit(&mut out, &a.id, "stats", Some(&cg.stats()?))?;
        return Ok(0);
    }
    let mut ooms = cg.oom_count().unwrap_or(0);
    let mut next_stats = Instant::now() + interval;
    loop {
        // The count first: an OOM kill that stops the container is counted before it stops.
        let now = cg.oom_count().unwrap_or(ooms);
        if now > ooms {
            emit(&mut out, &a.id, "oom", None)?;
        }
        ooms = now;
        if !is_live(paths, &a.id) {
            return Ok(0);
        }
        if Instant::now() >= next_stats {
            emit_stats(&mut out, &a.id, &cg)?;
            next_stats += interval;
        }
        std::thread::sleep(POLL.min(next_stats.saturating_duration_since(Instant::now())));
    }
}

fn is_live(paths: &Paths, id: &str) -> bool {
    container::load(paths, id).is_ok_and(|st| LIVE.contains(&container::status_of(paths, &st)))
}

/// A stats event; a failed read is logged and skipped, like runc.
fn emit_stats(out: &mut impl Write, id: &str, cg: &Cgroup) -> Result<()> {
    match cg.stats() {
        Ok(s) => emit(out, id, "stats", Some(&s)),
        Err(e) => {
            logging::warn(&format!("events {id}: {e:#}"));
            Ok(())
        }
    }
}

fn emit(out: &mut impl Write, id: &str, kind: &str, data: Option<&Stats>) -> Result<()> {
    let line = serde_json::to_string(&Event { kind, id, data })?;
    writeln!(out, "{line}").context("write event to stdout")?;
    out.flush().context("write event to stdout")
}

/// A Go duration as runc's --interval takes it: "5s", "250ms", "1m30s", "1.5h".
fn parse_duration(text: &str) -> Result<Duration> {
    let bad = || format!("--interval {text:?}: not a duration like 5s or 250ms");
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().with_context(bad)?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => bail!(bad()),
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    if total <= 0.0 || !total.is_finite() {
        bail!("--interval {text:?}: must be a positive duration");
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        for bad in ["", "5", "s", "0s", "5x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn event_shapes() {
        let oom = serde_json::to_string(&Event {
            kind: "oom",
            id: "c1",
            data: None,
        })
        .unwrap();
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
    }
}
