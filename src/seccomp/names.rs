//! The spec's seccomp vocabulary (actions, operators, architectures, flags), its mapping onto
//! libseccomp, and what `minirunc features` reports as supported on this host.

use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext};
use oci_spec::runtime::{
    Arch, LinuxSeccompAction as Act, LinuxSeccompFilterFlag as Flag, LinuxSeccompOperator as Op,
};
use serde::Serialize;

/// Libseccomp API level needed for SCMP_ACT_LOG, SCMP_ACT_KILL_PROCESS and the log flag.
pub(super) const API_LOG: u32 = 3;
/// Libseccomp API level needed for SECCOMP_FILTER_FLAG_SPEC_ALLOW.
pub(super) const API_SPEC_ALLOW: u32 = 4;
/// Libseccomp API level needed for user notification (SCMP_ACT_NOTIFY).
pub(super) const API_NOTIFY: u32 = 6;

const ACTIONS: [Act; 9] = [
    Act::ScmpActAllow,
    Act::ScmpActErrno,
    Act::ScmpActKill,
    Act::ScmpActKillProcess,
    Act::ScmpActKillThread,
    Act::ScmpActLog,
    Act::ScmpActNotify,
    Act::ScmpActTrace,
    Act::ScmpActTrap,
];

const OPERATORS: [Op; 7] = [
    Op::ScmpCmpEq,
    Op::ScmpCmpGe,
    Op::ScmpCmpGt,
    Op::ScmpCmpLe,
    Op::ScmpCmpLt,
    Op::ScmpCmpMaskedEq,
    Op::ScmpCmpNe,
];

/// Every architecture the spec names except native, which a filter always covers.
const ARCHES: [Arch; 17] = [
    Arch::ScmpArchAarch64,
    Arch::ScmpArchArm,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchX32,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
];

const FLAGS: [Flag; 3] = [
    Flag::SeccompFilterFlagLog,
    Flag::SeccompFilterFlagSpecAllow,
    Flag::SeccompFilterFlagTsync,
];

/// The name a value has in config.json (e.g. `SCMP_ACT_ERRNO`), for messages and `features`.
pub(super) fn spec_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}

pub(super) fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
    }
}

/// The API level of the libseccomp in use on this kernel (0 when it cannot tell).
pub(super) fn api_level() -> u32 {
    libseccomp::get_api()
}

pub(super) fn action_supported(action: Act) -> bool {
    match action {
        Act::ScmpActLog | Act::ScmpActKillProcess => api_level() >= API_LOG,
        Act::ScmpActNotify => api_level() >= API_NOTIFY,
        _ => true,
    }
}

pub(super) fn flag_supported(flag: Flag) -> bool {
    match flag {
        Flag::SeccompFilterFlagLog => api_level() >= API_LOG,
        Flag::SeccompFilterFlagSpecAllow => api_level() >= API_SPEC_ALLOW,
        Flag::SeccompFilterFlagTsync => true,
    }
}

/// Actions this libseccomp and kernel can enforce.
pub fn supported_actions() -> Vec<String> {
    ACTIONS
        .iter()
        .filter(|a| action_supported(**a))
        .map(spec_name)
        .collect()
}

/// Argument comparison operators (libseccomp supports them all).
pub fn supported_operators() -> Vec<String> {
    OPERATORS.iter().map(spec_name).collect()
}

/// Architectures a filter can cover on this host (without the implicit native one). libseccomp
/// knows more, but refuses to mix byte orders in one filter, so each is tried on a scratch filter.
pub fn supported_archs() -> Vec<String> {
    ARCHES
        .iter()
        .filter(|arch| arch_addable(scmp_arch(**arch)))
        .map(spec_name)
        .collect()
}

fn arch_addable(arch: ScmpArch) -> bool {
    ScmpFilterContext::new(ScmpAction::Allow)
        .and_then(|mut filter| filter.add_arch(arch).map(|_| ()))
        .is_ok()
}

/// Filter flags this libseccomp and kernel accept.
pub fn supported_flags() -> Vec<String> {
    FLAGS
        .iter()
        .filter(|f| flag_supported(**f))
        .map(spec_name)
        .collect()
}

/// Every filter flag minirunc knows, supported here or not.
pub fn known_flags() -> Vec<String> {
    FLAGS.iter().map(spec_name).collect()
}
