//! pause, resume and ps: the verbs that act on a container's cgroup, with runc's errors and output.

use anyhow::{bail, Context, Result};
use std::io::Write;

use crate::cgroups::Cgroup;
use crate::cli::PsArgs;
use crate::container::cgroup::{missing, of_state};
use crate::container::{self, Paths};
use crate::state::{self, Lock, Status};

/// The container's cgroup, if its status is one of `allowed`; otherwise the error `refusal`.
/// The lock keeps a concurrent delete from removing the cgroup under us.
pub(super) fn cgroup_if(
    paths: &Paths,
    id: &str,
    verb: &str,
    allowed: &[Status],
    refusal: &str,
) -> Result<(Cgroup, Lock)> {
    let st = container::load(paths, id)?;
    let lock = Lock::exclusive(&state::container_dir(&paths.root, id))?;
    if !allowed.contains(&container::status_of(paths, &st)) {
        bail!("{refusal}");
    }
    let cg = of_state(&st).ok_or_else(|| missing(id, verb))?;
    Ok((cg, lock))
}

pub fn pause(paths: &Paths, id: &str) -> Result<i32> {
    let (cg, _lock) = cgroup_if(
        paths,
        id,
        "pause",
        &[Status::Running],
        "container not running",
    )?;
    cg.freeze().with_context(|| format!("pause {id}"))?;
    Ok(0)
}

pub fn resume(paths: &Paths, id: &str) -> Result<i32> {
    let (cg, _lock) = cgroup_if(
        paths,
        id,
        "resume",
        &[Status::Paused],
        "container not paused",
    )?;
    cg.thaw().with_context(|| format!("resume {id}"))?;
    Ok(0)
}

/// `ps --format json` prints the host pids of the cgroup; the table runs ps(1) with the given
/// options (default -ef) and keeps the header plus the rows of those pids, as runc does.
pub fn ps(paths: &Paths, a: &PsArgs) -> Result<i32> {
    let st = container::load(paths, &a.id)?;
    let cg = of_state(&st).ok_or_else(|| missing(&a.id, "ps"))?;
    let pids = cg.pids()?;
    let mut out = std::io::stdout().lock();
    if a.format == "json" {
        writeln!(out, "{}", serde_json::to_string(&pids)?)?;
        return Ok(0);
    }
    let table = run_ps(&a.ps_args)?;
    for line in filter_table(&table, &pids)? {
        writeln!(out, "{line}")?;
    }
    Ok(0)
}

fn run_ps(args: &[String]) -> Result<String> {
    let args: Vec<&str> = match args {
        [] => vec!["-ef"],
        given => given.iter().map(String::as_str).collect(),
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        bail!("ps {}: {}: {}", args.join(" "), output.status, text.trim());
    }
    Ok(text)
}

/// The header and the rows whose PID column is one of `pids`.
fn filter_table<'a>(table: &'a str, pids: &[i32]) -> Result<Vec<&'a str>> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .context("couldn't find PID field in ps output")?;
    let rows = lines.filter(|l| {
        l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
    });
    Ok(std::iter::once(header).chain(rows).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_keeps_header_and_container_rows() {
        let table = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh\nroot 43 42 sleep 9\n";
        let rows = filter_table(table, &[42, 43]).unwrap();
        assert_eq!(
            rows,
            ["UID PID PPID CMD", "root 42 1 sh", "root 43 42 sleep 9"]
        );
        assert!(filter_table("UID CMD\n", &[1]).is_err());
    }
}
