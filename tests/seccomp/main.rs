//! Seccomp, proven in forked children: each test loads a filter, makes real syscalls and
//! asserts on what the kernel returned; each also runs a weakened filter to show the
//! assertion can fail.
//!
//! This target has its own sequential `main` (harness = false): forking from libtest's threads
//! could copy a lock (stderr, backtrace) held by another test into the child and hang it.

mod child;
mod moby;
mod notify;
mod spec_checks;

use child::{ret, run, run_with, Outcome, Report, LOAD_FAILED};
use libc::{c_long, EACCES, ENOENT, ENOSYS, EPERM};
use libseccomp::ScmpFilterContext;
use minirunc::seccomp;
use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "docker_default_profile_loads_and_enforces",
            docker_default_profile_loads_and_enforces,
        ),
        (
            "errno_ret_gives_exactly_that_errno",
            errno_ret_gives_exactly_that_errno,
        ),
        (
            "default_errno_ret_and_trace_without_tracer",
            default_errno_ret_and_trace_without_tracer,
        ),
        (
            "argument_conditions_block_only_matching_calls",
            argument_conditions_block_only_matching_calls,
        ),
        (
            "several_conditions_follow_runc_semantics",
            several_conditions_follow_runc_semantics,
        ),
        (
            "kill_actions_kill_with_sigsys",
            kill_actions_kill_with_sigsys,
        ),
        (
            "unknown_syscall_names_are_skipped",
            unknown_syscall_names_are_skipped,
        ),
        (
            "load_leaves_no_new_privs_to_the_caller",
            load_leaves_no_new_privs_to_the_caller,
        ),
        (
            "notify::notify_fd_reaches_the_listener_and_the_agent_answers",
            notify::notify_fd_reaches_the_listener_and_the_agent_answers,
        ),
        ("notify::no_notify_rule_no_fd", notify::no_notify_rule_no_fd),
        (
            "spec_checks::errors_name_the_field",
            spec_checks::errors_name_the_field,
        ),
        (
            "spec_checks::features_lists_what_builds",
            spec_checks::features_lists_what_builds,
        ),
        (
            "spec_checks::listed_flags_load",
            spec_checks::listed_flags_load,
        ),
    ];
    let wanted = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut failed = Vec::new();
    for (name, test) in tests {
        if wanted.as_deref().is_some_and(|w| !name.contains(w)) {
            continue;
        }
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(1);
    }
}

pub fn spec(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("seccomp spec JSON")
}

pub fn filter(v: Value) -> ScmpFilterContext {
    seccomp::build(&spec(v)).expect("build filter")
}

/// Loading seccomp without no_new_privs, as runc does for root, needs CAP_SYS_ADMIN.
pub fn skip_unless_root() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return false;
    }
    let reason = "needs root (CAP_SYS_ADMIN loads seccomp without no_new_privs)";
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "cannot run under CI: {reason}"
    );
    println!("SKIP: {reason}");
    true
}

fn sys(nr: c_long, a0: c_long, a1: c_long) -> i64 {
    // SAFETY: probe syscalls take integer arguments only (or ignore them).
    ret(unsafe { libc::syscall(nr, a0, a1) })
}

const KEYCTL_GET_KEYRING_ID: c_long = 0;
const KEY_SPEC_SESSION_KEYRING: c_long = -3;
const ADDR_NO_RANDOMIZE: c_long = 0x0040000;

fn docker_probe(r: &mut Report) {
    r.push(sys(libc::SYS_unshare, libc::CLONE_NEWNS as c_long, 0));
    r.push(sys(
        libc::SYS_keyctl,
        KEYCTL_GET_KEYRING_ID,
        KEY_SPEC_SESSION_KEYRING,
    ));
    // SAFETY: valid C strings; the target does not exist, so an allowed call fails with ENOENT.
    r.push(ret(unsafe {
        libc::syscall(
            libc::SYS_mount,
            c"none".as_ptr(),
            c"/nonexistent-minirunc-seccomp-target".as_ptr(),
            c"tmpfs".as_ptr(),
            0 as c_long,
            std::ptr::null::<u8>(),
        )
    }));
    r.push(sys(libc::SYS_getpid, 0, 0));
    r.push(sys(libc::SYS_clone3, 0, 0));
    r.push(sys(libc::SYS_personality, 0xffff_ffff, 0));
    r.push(sys(libc::SYS_personality, ADDR_NO_RANDOMIZE, 0));
}

fn docker_default_profile_loads_and_enforces() {
    if skip_unless_root() {
        return;
    }
    let Some(profile) = moby::docker_default(&[]) else {
        println!(
            "SKIP: no docker arch mapping for {}",
            std::env::consts::ARCH
        );
        return;
    };
    let r = run(
        &seccomp::build(&profile).expect("build docker"),
        docker_probe,
    )
    .results();
    let eperm = -i64::from(EPERM);
    assert_eq!(
        &r[..3],
        &[eperm, eperm, eperm],
        "unshare, keyctl, mount refused"
    );
    assert!(r[3] > 0, "getpid works: {}", r[3]);
    assert_eq!(
        r[4],
        -i64::from(ENOSYS),
        "clone3 gets the profile's errnoRet 38"
    );
    assert!(
        r[5] >= 0,
        "personality(0xffffffff) is allowed by its argument rule"
    );
    assert_eq!(
        r[6], eperm,
        "personality with any other argument is refused"
    );

    let weak = moby::docker_default(&["unshare", "keyctl", "mount"]).expect("weak");
    let r = run(&seccomp::build(&weak).expect("build weak"), docker_probe).results();
    assert_eq!(r[0], 0, "weakened: unshare(CLONE_NEWNS) succeeds");
    assert!(r[1] >= 0, "weakened: keyctl succeeds: {}", r[1]);
    assert_eq!(
        r[2],
        -i64::from(ENOENT),
        "weakened: mount reaches the kernel"
    );
}

fn errno_probe(r: &mut Report) {
    r.push(sys(libc::SYS_getppid, 0, 0));
    r.push(sys(libc::SYS_sched_yield, 0, 0));
    r.push(sys(libc::SYS_getpgrp, 0, 0));
}

fn errno_ret_gives_exactly_that_errno() {
    if skip_unless_root() {
        return;
    }
    let rules = json!([
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
        {"names": ["sched_yield"], "action": "SCMP_ACT_ERRNO", "errnoRet": EACCES},
        {"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO"},
    ]);
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    let r = run(&f, errno_probe).results();
    let want = [ENOSYS, EACCES, EPERM].map(|e| -i64::from(e));
    assert_eq!(r, want, "ENOSYS, EACCES, and EPERM when errnoRet is absent");

    let weak = filter(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let r = run(&weak, errno_probe).results();
    assert!(
        r[0] > 0 && r[1] == 0 && r[2] > 0,
        "weakened: all succeed: {r:?}"
    );
}

fn default_errno_ret_and_trace_without_tracer() {
    if skip_unless_root() {
        return;
    }
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EACCES,
        "syscalls": [
            {"names": ["write", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["sched_yield"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
        ],
    }));
    let r = run(&f, |r| {
        r.push(sys(libc::SYS_getppid, 0, 0));
        r.push(sys(libc::SYS_getpid, 0, 0));
        r.push(sys(libc::SYS_sched_yield, 0, 0));
    })
    .results();
    assert_eq!(
        r[0],
        -i64::from(EACCES),
        "default action returns defaultErrnoRet"
    );
    assert!(r[1] > 0, "allowed getpid works");
    assert_eq!(
        r[2],
        -i64::from(ENOSYS),
        "TRACE with no tracer fails with ENOSYS"
    );
}

/// getppid ignores its arguments, but seccomp sees them: a clean target for conditions.
fn getppid_probe(args: &'static [(c_long, c_long)]) -> impl FnOnce(&mut Report) {
    move |r| {
        for &(a0, a1) in args {
            r.push(sys(libc::SYS_getppid, a0, a1));
        }
    }
}

/// Which of the probe calls were refused with EACCES under `args` conditions.
fn blocked(args: Value, calls: &'static [(c_long, c_long)]) -> Vec<bool> {
    let rule =
        json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": EACCES, "args": args});
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}));
    let r = run(&f, getppid_probe(calls)).results();
    r.iter().map(|&v| v == -i64::from(EACCES)).collect()
}

fn argument_conditions_block_only_matching_calls() {
    if skip_unless_root() {
        return;
    }
    const CALLS: &[(c_long, c_long)] = &[(9, 0), (10, 0), (11, 0)];
    let arg = |op: &str| json!({"index": 0, "value": 10, "op": op});
    let cases = [
        (arg("SCMP_CMP_EQ"), [false, true, false]),
        (arg("SCMP_CMP_NE"), [true, false, true]),
        (arg("SCMP_CMP_LT"), [true, false, false]),
        (arg("SCMP_CMP_LE"), [true, true, false]),
        (arg("SCMP_CMP_GE"), [false, true, true]),
        (arg("SCMP_CMP_GT"), [false, false, true]),
        // value is the mask 0b1010, valueTwo the wanted bits 0b1000: only 9 (0b1001) matches.
        (
            json!({"index": 0, "value": 10, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}),
            [true, false, false],
        ),
    ];
    for (cond, want) in cases {
        assert_eq!(blocked(json!([cond.clone()]), CALLS), want, "{cond}");
    }
    // Weakened: a condition that matches nothing blocks nothing.
    let none = json!([{"index": 0, "value": 99, "op": "SCMP_CMP_EQ"}]);
    assert_eq!(blocked(none, CALLS), [false, false, false]);
}

fn several_conditions_follow_runc_semantics() {
    if skip_unless_root() {
        return;
    }
    // Two conditions on the same argument: one rule each, so either blocks.
    let same = json!([
        {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 11, "op": "SCMP_CMP_EQ"},
    ]);
    const SAME: &[(c_long, c_long)] = &[(9, 0), (10, 0), (11, 0)];
    assert_eq!(blocked(same, SAME), [true, false, true]);
    // Conditions on different arguments: one rule, all must match.
    let both = json!([
        {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"},
    ]);
    const BOTH: &[(c_long, c_long)] = &[(9, 1), (9, 0), (10, 1)];
    assert_eq!(blocked(both, BOTH), [true, false, false]);
}

fn kill_actions_kill_with_sigsys() {
    if skip_unless_root() {
        return;
    }
    for default in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let allow = |names: &[&str]| {
            filter(json!({"defaultAction": default,
                "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}))
        };
        let probe = |r: &mut Report| {
            r.push(sys(libc::SYS_getpid, 0, 0));
            r.push(sys(libc::SYS_getppid, 0, 0));
        };
        let base = ["write", "close", "exit_group", "getpid"];
        let out = run(&allow(&base), probe);
        let Outcome::Killed { signal, results } = out else {
            panic!("{default}: child survived getppid: {out:?}");
        };
        assert_eq!(signal, Signal::SIGSYS, "{default}");
        assert_eq!(results.len(), 1, "{default}: only getpid ran");
        let weak = run(&allow(&[&base[..], &["getppid"]].concat()), probe);
        assert_eq!(
            weak.results().len(),
            2,
            "{default} weakened: getppid allowed"
        );
    }
}

fn unknown_syscall_names_are_skipped() {
    if skip_unless_root() {
        return;
    }
    let s = spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["minirunc_no_such_syscall", "getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": EACCES},
    ]}));
    assert_eq!(seccomp::unknown_syscalls(&s), ["minirunc_no_such_syscall"]);
    let f = seccomp::build(&s).expect("unknown names do not fail the build");
    let r = run(&f, |r| r.push(sys(libc::SYS_getppid, 0, 0))).results();
    assert_eq!(
        r,
        [-i64::from(EACCES)],
        "the known name in the same entry is enforced"
    );
}

fn load_leaves_no_new_privs_to_the_caller() {
    if skip_unless_root() {
        return;
    }
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}));
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointers; the unused arguments must be zero.
    let r = run(&f, |r| {
        r.push(i64::from(unsafe {
            libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
        }))
    });
    assert_eq!(r.results(), [0], "load did not set no_new_privs");

    let drop_sys_admin = || {
        caps::drop(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        )
        .expect("drop CAP_SYS_ADMIN");
    };
    let out = run_with(&f, drop_sys_admin, |r, _| r.push(0));
    assert!(
        matches!(
            out,
            Outcome::Exited {
                code: LOAD_FAILED,
                ..
            }
        ),
        "without CAP_SYS_ADMIN or no_new_privs the load is refused: {out:?}"
    );
    let with_nnp = || {
        drop_sys_admin();
        nix::sys::prctl::set_no_new_privs().expect("set no_new_privs");
    };
    let out = run_with(&f, with_nnp, |r, _| r.push(0));
    assert_eq!(out.results(), [0], "weakened: with no_new_privs it loads");
}
