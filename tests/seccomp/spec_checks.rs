//! Spec mistakes fail the build with the field named; `features` lists only what works.

use crate::child::run;
use crate::{filter, skip_unless_root, spec};
use minirunc::seccomp;
use serde_json::{json, Value};

fn build_error(v: Value) -> String {
    match seccomp::build(&spec(v)) {
        Ok(_) => panic!("build accepted a bad spec"),
        Err(e) => format!("{e:#}"),
    }
}

fn allow_with(syscalls: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls})
}

pub fn errors_name_the_field() {
    let bad_index = allow_with(json!([
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]},
    ]));
    let cases = [
        (
            bad_index,
            "linux.seccomp.syscalls[1].args[0].index: 6 is out of range",
        ),
        (
            allow_with(json!([{"names": ["getpid"], "action": "SCMP_ACT_KILL", "errnoRet": 1}])),
            "linux.seccomp.syscalls[0].errnoRet: 1 given, but SCMP_ACT_KILL returns no errno",
        ),
        (
            allow_with(
                json!([{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]),
            ),
            "linux.seccomp.syscalls[0].errnoRet: 70000 does not fit",
        ),
        (
            allow_with(json!([{"names": ["getpid", "write"], "action": "SCMP_ACT_NOTIFY"}])),
            "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for \"write\"",
        ),
        (
            allow_with(json!([{"names": [""], "action": "SCMP_ACT_ERRNO"}])),
            "linux.seccomp.syscalls[0].names[0]: empty syscall name",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
            "linux.seccomp.defaultErrnoRet: 1 given",
        ),
    ];
    for (bad, want) in cases {
        let got = build_error(bad);
        assert!(
            got.contains(want),
            "error {got:?} does not contain {want:?}"
        );
    }
}

pub fn features_lists_what_builds() {
    let actions = seccomp::supported_actions();
    println!(
        "actions {actions:?}\narchs {:?}\nflags {:?}",
        seccomp::supported_archs(),
        seccomp::supported_flags()
    );
    for a in [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    let ops = seccomp::supported_operators();
    assert_eq!(ops.len(), 7, "{ops:?}");
    assert!(ops.iter().any(|o| o == "SCMP_CMP_MASKED_EQ"));
    let archs = seccomp::supported_archs();
    assert!(archs.iter().any(|a| a == "SCMP_ARCH_X86_64"), "{archs:?}");
    assert!(!archs.iter().any(|a| a == "SCMP_ARCH_NATIVE"));
    // Every listed name is one the spec parser accepts and the builder takes.
    seccomp::build(&spec(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": archs}),
    ))
    .expect("every listed architecture");
    for a in actions.iter().filter(|a| *a != "SCMP_ACT_ALLOW") {
        filter(allow_with(json!([{"names": ["getppid"], "action": a}])));
    }
    for op in &ops {
        let args = json!([{"index": 0, "value": 1, "valueTwo": 1, "op": op}]);
        filter(allow_with(
            json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": args}]),
        ));
    }
}

pub fn listed_flags_load() {
    if skip_unless_root() {
        return;
    }
    let flags = seccomp::supported_flags();
    assert!(
        flags.iter().any(|f| f == "SECCOMP_FILTER_FLAG_TSYNC"),
        "{flags:?}"
    );
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}));
    let r = run(&f, |r| {
        // SAFETY: getppid takes no arguments.
        r.push(crate::child::ret(unsafe {
            libc::syscall(libc::SYS_getppid)
        }))
    });
    assert_eq!(
        r.results(),
        [-i64::from(libc::EPERM)],
        "filter with {flags:?} enforced"
    );
}
