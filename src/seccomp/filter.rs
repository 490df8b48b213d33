//! Turning `linux.seccomp` into a libseccomp filter (runc's semantics) and loading it.

use super::names::{self, spec_name};
use anyhow::{bail, Context, Result};
use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op, LinuxSyscall,
};
use std::os::fd::{FromRawFd, OwnedFd};

const FIELD: &str = "linux.seccomp";
/// Seccomp sees six syscall arguments, indexes 0 to 5.
const MAX_ARGS: usize = 6;
/// Syscalls the runtime itself makes after loading to hand the notify fd over; a NOTIFY rule on
/// them would wait on an agent that never got the fd (runc refuses `write` for this reason).
const NEVER_NOTIFY: [&str; 2] = ["write", "sendmsg"];

/// Build the filter from the spec (no syscalls that change the process; safe to call before fork
/// or in init). Unknown syscall names are skipped as runc does; see [`unknown_syscalls`].
pub fn build(spec: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let default = action(
        spec.default_action(),
        spec.default_errno_ret(),
        &format!("{FIELD}.defaultErrnoRet"),
    )
    .with_context(|| format!("{FIELD}.defaultAction"))?;
    if default == ScmpAction::Notify {
        bail!("{FIELD}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime's own syscalls would wait on the agent)");
    }
    let mut filter = ScmpFilterContext::new(default)
        .with_context(|| format!("{FIELD}: creating a libseccomp filter"))?;
    // no_new_privs is the caller's business and ordering (as in runc); without it, loading
    // needs CAP_SYS_ADMIN instead of libseccomp silently setting it.
    filter
        .set_ctl_nnp(false)
        .with_context(|| format!("{FIELD}: clearing libseccomp's no_new_privs attribute"))?;
    for (i, arch) in spec.architectures().iter().flatten().enumerate() {
        filter
            .add_arch(names::scmp_arch(*arch))
            .with_context(|| format!("{FIELD}.architectures[{i}]: adding {}", spec_name(arch)))?;
    }
    for (i, flag) in spec.flags().iter().flatten().enumerate() {
        set_flag(&mut filter, *flag)
            .with_context(|| format!("{FIELD}.flags[{i}]: {}", spec_name(flag)))?;
    }
    for (i, call) in spec.syscalls().iter().flatten().enumerate() {
        add_syscall(
            &mut filter,
            call,
            default,
            &format!("{FIELD}.syscalls[{i}]"),
        )?;
    }
    Ok(filter)
}

/// Syscall names in the spec that this libseccomp does not know; [`build`] skips them, and the
/// caller may log them (runc logs them at debug level).
pub fn unknown_syscalls(spec: &LinuxSeccomp) -> Vec<String> {
    spec.syscalls()
        .iter()
        .flatten()
        .flat_map(|call| call.names())
        .filter(|name| !name.is_empty() && ScmpSyscall::from_name(name).is_err())
        .cloned()
        .collect()
}

/// Load the filter into the calling process. Returns the user-notification fd when the profile
/// uses SCMP_ACT_NOTIFY. Does not set no_new_privs.
pub fn load(filter: &ScmpFilterContext) -> Result<Option<OwnedFd>> {
    filter
        .load()
        .context("loading the seccomp filter (without no_new_privs this needs CAP_SYS_ADMIN)")?;
    // libseccomp only keeps a listener fd when a NOTIFY rule made it ask the kernel for one.
    match filter.get_notify_fd() {
        // SAFETY: the kernel created this fd for this load (with O_CLOEXEC) and nothing else owns
        // it: libseccomp only remembers the number and closes it only on a global state reset,
        // which minirunc never does.
        Ok(fd) if fd >= 0 => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
        _ => Ok(None),
    }
}

/// runc's mapping of a spec action; `errno_field` names the errnoRet that goes with it.
fn action(act: Act, errno_ret: Option<u32>, errno_field: &str) -> Result<ScmpAction> {
    if !names::action_supported(act) {
        bail!(
            "{} needs libseccomp API level {} (this host has {})",
            spec_name(&act),
            if act == Act::ScmpActNotify {
                names::API_NOTIFY
            } else {
                names::API_LOG
            },
            names::api_level()
        );
    }
    let scmp = match act {
        Act::ScmpActErrno => return Ok(ScmpAction::Errno(errno(errno_ret, errno_field)?.into())),
        Act::ScmpActTrace => return Ok(ScmpAction::Trace(errno(errno_ret, errno_field)?)),
        Act::ScmpActKill | Act::ScmpActKillThread => ScmpAction::KillThread,
        Act::ScmpActKillProcess => ScmpAction::KillProcess,
        Act::ScmpActTrap => ScmpAction::Trap,
        Act::ScmpActNotify => ScmpAction::Notify,
        Act::ScmpActLog => ScmpAction::Log,
        Act::ScmpActAllow => ScmpAction::Allow,
    };
    if let Some(value) = errno_ret {
        bail!(
            "{errno_field}: {value} given, but {} returns no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)",
            spec_name(&act)
        );
    }
    Ok(scmp)
}

/// The errno an ERRNO/TRACE action returns: the spec's value, or EPERM as the spec says.
fn errno(errno_ret: Option<u32>, field: &str) -> Result<u16> {
    let value = errno_ret.unwrap_or(libc::EPERM as u32);
    u16::try_from(value)
        .with_context(|| format!("{field}: {value} does not fit seccomp's 16-bit return value"))
}

fn set_flag(filter: &mut ScmpFilterContext, flag: Flag) -> Result<()> {
    if !names::flag_supported(flag) {
        bail!(
            "not supported by this libseccomp/kernel (API level {})",
            names::api_level()
        );
    }
    match flag {
        // init is single-threaded when it loads the filter, so there is nothing to synchronise;
        // runc ignores this flag too.
        Flag::SeccompFilterFlagTsync => {}
        Flag::SeccompFilterFlagLog => {
            filter.set_ctl_log(true)?;
        }
        Flag::SeccompFilterFlagSpecAllow => {
            filter.set_ctl_ssb(true)?;
        }
    }
    Ok(())
}

fn add_syscall(
    filter: &mut ScmpFilterContext,
    call: &LinuxSyscall,
    default: ScmpAction,
    field: &str,
) -> Result<()> {
    let act = action(
        call.action(),
        call.errno_ret(),
        &format!("{field}.errnoRet"),
    )
    .with_context(|| format!("{field}.action"))?;
    let rules = rules(call.args().as_deref().unwrap_or_default(), field)?;
    for (j, name) in call.names().iter().enumerate() {
        let name_field = || format!("{field}.names[{j}]");
        if name.is_empty() {
            bail!("{}: empty syscall name", name_field());
        }
        if act == ScmpAction::Notify && NEVER_NOTIFY.contains(&name.as_str()) {
            bail!("{}: SCMP_ACT_NOTIFY cannot be used for {name:?} (the runtime needs it to hand the notify fd to the agent)", name_field());
        }
        // libseccomp refuses a rule equal to the default action; it would change nothing.
        if act == default {
            continue;
        }
        // A name libseccomp does not know is skipped, as runc does (the kernel may not have it).
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            continue;
        };
        for conditions in &rules {
            filter
                .add_rule_conditional(act, syscall, conditions)
                .with_context(|| format!("{}: adding the rule for {name:?}", name_field()))?;
        }
    }
    Ok(())
}

/// The rules for one syscall entry, following runc: all conditions in one rule (they must all
/// match), except when two conditions test the same argument, then one rule per condition.
fn rules(args: &[LinuxSeccompArg], field: &str) -> Result<Vec<Vec<ScmpArgCompare>>> {
    let mut per_index = [0usize; MAX_ARGS];
    let mut conditions = Vec::with_capacity(args.len());
    for (k, arg) in args.iter().enumerate() {
        let index = arg.index();
        if index >= MAX_ARGS {
            bail!(
                "{field}.args[{k}].index: {index} is out of range (seccomp sees arguments 0 to {})",
                MAX_ARGS - 1
            );
        }
        per_index[index] += 1;
        conditions.push(condition(arg, index as u32));
    }
    if per_index.iter().any(|&n| n > 1) {
        Ok(conditions.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conditions])
    }
}

fn condition(arg: &LinuxSeccompArg, index: u32) -> ScmpArgCompare {
    let op = match arg.op() {
        Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
        Op::ScmpCmpLt => ScmpCompareOp::Less,
        Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        Op::ScmpCmpEq => ScmpCompareOp::Equal,
        Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        Op::ScmpCmpGt => ScmpCompareOp::Greater,
        // As in runc and libseccomp: `value` is the mask, `valueTwo` the value to compare with.
        Op::ScmpCmpMaskedEq => {
            let masked = ScmpCompareOp::MaskedEqual(arg.value());
            return ScmpArgCompare::new(index, masked, arg.value_two().unwrap_or(0));
        }
    };
    ScmpArgCompare::new(index, op, arg.value())
}
