//! OCI hooks: each runs with the container state JSON on stdin, its own env, and an optional
//! timeout. A failing hook fails the step with the hook's path and output in the error; for
//! poststart and poststop the spec asks for a warning and the remaining hooks run.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::time::{Duration, Instant};

/// Run `hooks` in order, stopping at the first that fails; `phase` names them in errors (e.g.
/// "createRuntime"). A hook without `env` gets `default_env`: the container process's for the
/// hooks run in the container (createContainer, startContainer, as runc), none for the others.
pub fn run(phase: &str, hooks: &[Hook], state_json: &str, default_env: &[String]) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, state_json, default_env).with_context(|| describe(phase, i, hook))?;
    }
    Ok(())
}

/// Run every hook of `hooks`, logging a warning for each that fails (poststart, poststop).
pub fn run_warning(phase: &str, hooks: &[Hook], state_json: &str) {
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(hook, state_json, &[]) {
            crate::logging::warn(&format!("{}: {e:#}", describe(phase, i, hook)));
        }
    }
}

fn describe(phase: &str, i: usize, hook: &Hook) -> String {
    format!("{phase} hook #{i} {}", hook.path().display())
}

fn capture() -> Result<File> {
    let fd =
        nix::sys::memfd::memfd_create(c"minirunc-hook", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .context("memfd_create for hook output")?;
    Ok(File::from(fd))
}

fn run_one(hook: &Hook, state_json: &str, default_env: &[String]) -> Result<()> {
    let (mut out, mut err) = (capture()?, capture()?);
    // The state goes in through a file, not a pipe: a hook that exits without reading it must
    // not kill the runtime with SIGPIPE, and a large state cannot block us.
    let mut stdin = capture()?;
    stdin.write_all(state_json.as_bytes())?;
    stdin.rewind()?;
    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or(default_env) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(stdin)
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .spawn()
        .context("start")?;
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(0) as u64));
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {}s", hook.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let read = |f: &mut File| -> String {
        let mut s = String::new();
        let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
        s.trim_end().to_string()
    };
    let how = match status.signal() {
        Some(sig) => format!("signal: {sig}"),
        None => format!("exit status {}", status.code().unwrap_or(-1)),
    };
    bail!(
        "{how}, stdout: {}, stderr: {}",
        read(&mut out),
        read(&mut err)
    )
}
