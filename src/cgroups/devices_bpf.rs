//! cgroup v2 device rules: v2 has no devices.allow/deny files; the kernel instead runs a
//! BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup on every device open and mknod.
//! The program is generated here from the OCI rules: later rules win, as they do on v1, so the
//! rules are emitted last-first and the first one that matches returns its verdict.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_W: u8 = 0x61; // r_dst = *(u32 *)(r_src + off)
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV32_K: u8 = 0xb4;
const MOV32_X: u8 = 0xbc;
const JNE_K: u8 = 0x55;
const JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;
/// Marks a jump to the end of the current rule's block, patched once the block is complete.
const TO_NEXT: i16 = i16::MIN;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// BPF_DEVCG_ACC_* bits for an OCI access string ("rwm").
fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |bits, c| match c {
        'm' => bits | 1,
        'r' => bits | 2,
        'w' => bits | 4,
        _ => bits,
    })
}

/// The instructions of one rule: fall through to the next rule unless it matches.
/// Registers: r2 device type, r3 requested access, r4 major, r5 minor (loaded by the prologue).
fn rule_block(rule: &LinuxDeviceCgroup) -> Option<Vec<Insn>> {
    let typ = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(1),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(2),
        // FIFOs are not devices to the device controller.
        LinuxDeviceType::P => return None,
    };
    let access = access_bits(rule.access().as_deref().unwrap_or("rwm"));
    let mut b = Vec::new();
    if let Some(t) = typ {
        b.push(insn(JNE_K, 2, 0, TO_NEXT, t));
    }
    if access != 7 {
        b.push(insn(MOV32_X, 0, 3, 0, 0));
        if rule.allow() {
            // An allow rule covers a request only when every requested bit is allowed.
            b.push(insn(AND32_K, 0, 0, 0, !access & 7));
            b.push(insn(JNE_K, 0, 0, TO_NEXT, 0));
        } else {
            // A deny rule refuses a request asking for any denied bit.
            b.push(insn(AND32_K, 0, 0, 0, access));
            b.push(insn(JEQ_K, 0, 0, TO_NEXT, 0));
        }
    }
    for (reg, value) in [(4, rule.major()), (5, rule.minor())] {
        if let Some(v) = value.filter(|&v| v >= 0) {
            b.push(insn(JNE_K, reg, 0, TO_NEXT, i32::try_from(v).ok()?));
        }
    }
    b.push(insn(MOV32_K, 0, 0, 0, i32::from(rule.allow())));
    b.push(insn(EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, ins) in b.iter_mut().enumerate() {
        if ins.off == TO_NEXT {
            ins.off = (len - i - 1) as i16;
        }
    }
    Some(b)
}

/// The whole program; with no matching rule the device is allowed, as in a fresh v1 cgroup.
/// A rule matching everything (`a *:* rwm`) ends it: the verifier rejects unreachable code.
fn program(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for block in rules.iter().rev().filter_map(rule_block) {
        let matches_all = block.len() == 2;
        p.extend(block);
        if matches_all {
            return p;
        }
    }
    p.push(insn(MOV32_K, 0, 0, 0, 1));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// The head of union bpf_attr for BPF_PROG_LOAD; the kernel wants the rest zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Lets a nested runtime attach its own program below ours; all programs must allow.
const BPF_F_ALLOW_MULTI: u32 = 2;

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<i64> {
    // SAFETY: attr is a live, fully initialised repr(C) bpf_attr prefix of the size passed.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *const T, size_of::<T>()) };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ret)
}

/// Loads the program for `rules` and attaches it to the cgroup2 directory `dir`.
/// A later call adds another program (the kernel then requires all of them to allow).
pub fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns = program(rules);
    let license = c"Apache-2.0";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let prog = match bpf(BPF_PROG_LOAD, &attr) {
        Ok(fd) => fd,
        Err(e) => {
            // Load again with the verifier's log, which says what it refused.
            let mut log = vec![0u8; 64 * 1024];
            let retry = ProgLoadAttr {
                log_level: 1,
                log_size: log.len() as u32,
                log_buf: log.as_mut_ptr() as u64,
                ..attr
            };
            let _ = bpf(BPF_PROG_LOAD, &retry);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let log = String::from_utf8_lossy(&log[..end]);
            bail!(
                "cgroup devices: load eBPF device program: {e}: {}",
                log.trim()
            );
        }
    };
    // SAFETY: BPF_PROG_LOAD returned a new file descriptor that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let cgroup = std::fs::File::open(dir)
        .with_context(|| format!("cgroup devices: open {}", dir.display()))?;
    let attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    if let Err(e) = bpf(BPF_PROG_ATTACH, &attr) {
        bail!(
            "cgroup devices: attach eBPF program to {}: {e}",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn jumps_land_on_the_next_rule() {
        let rule = crate::cgroups::convert::null_rw_rule();
        let b = rule_block(&rule).unwrap();
        // type, mov, and, jne, major, minor, verdict, exit
        assert_eq!(b.len(), 8);
        for (i, ins) in b
            .iter()
            .enumerate()
            .filter(|(_, i)| i.code == JNE_K || i.code == JEQ_K)
        {
            assert_eq!(i + 1 + ins.off as usize, b.len(), "jump at {i}");
        }
        assert_eq!(b[2].imm, 1, "only mknod is outside rw");
        assert_eq!(b[6].imm, 1);
        // Rules run last-first; the catch-all deny ends the program (no unreachable default).
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        let p = program(&[deny_all, rule]);
        assert_eq!(p.len(), 6 + 8 + 2);
        assert_eq!((p[14].code, p[14].imm), (MOV32_K, 0));
    }
}
