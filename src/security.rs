//! The process's identity and limits: user and groups, capabilities (all five sets), rlimits,
//! no_new_privs, and the spec 1.2 scheduling knobs. Applied by init and by exec'd processes.

use anyhow::{anyhow, bail, Context, Result};
use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimit, Process};
use std::str::FromStr;

/// The limits that need privileges; applied before the user and capabilities change.
pub fn apply_limits(process: &Process) -> Result<()> {
    for r in process.rlimits().as_deref().unwrap_or_default() {
        set_rlimit(r)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .with_context(|| format!("process.oomScoreAdj {adj}"))?;
    }
    if let Some(io) = process.io_priority() {
        use oci_spec::runtime::IOPriorityClass as C;
        let class = match io.class() {
            C::IoprioClassRt => 1,
            C::IoprioClassBe => 2,
            C::IoprioClassIdle => 3,
        };
        let prio = (class << 13) | (io.priority() & 0x1fff);
        if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, prio) } != 0 {
            return Err(std::io::Error::last_os_error()).context("process.ioPriority");
        }
    }
    if let Some(s) = process.scheduler() {
        set_scheduler(s).context("process.scheduler")?;
    }
    Ok(())
}

fn set_rlimit(r: &PosixRlimit) -> Result<()> {
    let name = r.typ().to_string();
    let resource = match name.as_str() {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        other => bail!("process.rlimits: unknown type {other}"),
    };
    let lim = libc::rlimit {
        rlim_cur: r.soft(),
        rlim_max: r.hard(),
    };
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        let err = std::io::Error::last_os_error();
        return Err(err).with_context(|| {
            format!(
                "process.rlimits {name} soft {} hard {}: raising a hard limit needs CAP_SYS_RESOURCE",
                r.soft(),
                r.hard()
            )
        });
    }
    Ok(())
}

fn set_scheduler(s: &oci_spec::runtime::Scheduler) -> Result<()> {
    use oci_spec::runtime::LinuxSchedulerPolicy as P;
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags: 0,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// The execution domain (linux.personality): LINUX32 makes `uname -m` say i686 for 32-bit builds.
pub fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<()> {
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!("linux.personality.flags: not supported (the spec defines none)");
    }
    let persona: libc::c_ulong = match p.domain() {
        D::PerLinux => 0x0000,
        D::PerLinux32 => 0x0008,
    };
    if unsafe { libc::personality(persona) } == -1 {
        return Err(std::io::Error::last_os_error()).context("linux.personality");
    }
    Ok(())
}

/// `linux.memoryPolicy` (spec 1.3): set_mempolicy(2) for this process, kept across fork and
/// execve, so every process of the container allocates under it.
pub fn set_memory_policy(p: &oci_spec::runtime::LinuxMemoryPolicy) -> Result<()> {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    let mode: libc::c_int = match p.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    let flags = p.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        }
    });
    // Room for 1024 nodes, the most a kernel is built with (NODES_SHIFT 10).
    let mut mask = [0 as libc::c_ulong; 1024 / libc::c_ulong::BITS as usize];
    let bits = libc::c_ulong::BITS as usize;
    for node in
        parse_list(p.nodes().as_deref().unwrap_or_default()).context("linux.memoryPolicy.nodes")?
    {
        let slot = mask
            .get_mut(node / bits)
            .with_context(|| format!("linux.memoryPolicy.nodes: node {node} is beyond 1023"))?;
        *slot |= 1 << (node % bits);
    }
    let empty = mask.iter().all(|w| *w == 0);
    let (ptr, maxnode) = if empty {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), mask.len() * bits + 1)
    };
    // SAFETY: the mask outlives the call and maxnode bounds what the kernel reads of it.
    if unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, maxnode) } != 0 {
        let err = std::io::Error::last_os_error();
        return Err(err).with_context(|| {
            format!(
                "linux.memoryPolicy: set_mempolicy {} {:?} {:?}",
                p.mode(),
                p.nodes(),
                p.flags()
            )
        });
    }
    Ok(())
}

/// The numbers of a list like "0-3,7" (CPUs, NUMA nodes).
fn parse_list(list: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("{part:?} is not a number or range"))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b {
            bail!("{part:?}: range is reversed");
        }
        out.extend(a..=b);
    }
    Ok(out)
}

/// Pin to the CPUs of a list like "0-3,7" (execCPUAffinity).
pub fn set_affinity(list: &str) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in parse_list(list).with_context(|| format!("bad CPU list {list:?}"))? {
        set.set(cpu)
            .map_err(|_| anyhow!("CPU {cpu} out of range in {list:?}"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("execCPUAffinity {list:?}"))
}

fn to_caps(set: Option<&Capabilities>) -> CapsHashSet {
    set.into_iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?;
            caps::Capability::from_str(name.as_str()?).ok()
        })
        .filter(|c| caps::all().contains(c))
        .collect()
}

/// Switch to the process's user and groups, then set the five capability sets exactly as the
/// spec says (bounding first, while we still hold CAP_SETPCAP; ambient last).
pub fn switch_user(process: &Process) -> Result<()> {
    let user = process.user();
    let caps_spec: Option<&LinuxCapabilities> = process.capabilities().as_ref();
    let bounding = to_caps(caps_spec.and_then(|c| c.bounding().as_ref()));
    for cap in caps::all() {
        if !bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("drop {cap} from the bounding set"))?;
        }
    }
    prctl::set_keep_capabilities(true).map_err(|e| anyhow!("prctl PR_SET_KEEPCAPS: errno {e}"))?;
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    if let Err(e) = nix::unistd::setgroups(&gids) {
        // Without setgroups permission (a user namespace with setgroups denied) only an empty list is fine.
        if !gids.is_empty() || e != nix::Error::EPERM {
            return Err(e).context("process.user.additionalGids: setgroups");
        }
    }
    let gid = nix::unistd::Gid::from_raw(user.gid());
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("process.user.gid {gid}"))?;
    nix::unistd::setresuid(uid, uid, uid).with_context(|| format!("process.user.uid {uid}"))?;
    prctl::set_keep_capabilities(false).map_err(|e| anyhow!("prctl PR_SET_KEEPCAPS: errno {e}"))?;

    let get = |f: fn(&LinuxCapabilities) -> &Option<Capabilities>| {
        to_caps(caps_spec.and_then(|c| f(c).as_ref()))
    };
    // Effective must stay within permitted at every step: inheritable, effective, then permitted.
    caps::set(
        None,
        CapSet::Inheritable,
        &get(LinuxCapabilities::inheritable),
    )
    .context("set inheritable capabilities")?;
    caps::set(None, CapSet::Effective, &get(LinuxCapabilities::effective))
        .context("set effective capabilities")?;
    caps::set(None, CapSet::Permitted, &get(LinuxCapabilities::permitted))
        .context("set permitted capabilities")?;
    caps::clear(None, CapSet::Ambient).context("clear ambient capabilities")?;
    // The kernel allows an ambient capability only if it is permitted and inheritable; runc
    // skips the others rather than failing, and so do we.
    let (permitted, inheritable) = (
        get(LinuxCapabilities::permitted),
        get(LinuxCapabilities::inheritable),
    );
    for cap in get(LinuxCapabilities::ambient) {
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap)
                .with_context(|| format!("raise ambient {cap}"))?;
        }
    }
    // init ran with umask 0 to create devices with exact modes; runc's default is 022.
    let mask = user.umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    prctl::set_no_new_privileges(true).map_err(|e| anyhow!("prctl PR_SET_NO_NEW_PRIVS: errno {e}"))
}
