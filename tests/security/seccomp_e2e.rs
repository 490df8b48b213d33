//! Seccomp through real containers: Docker's default profile, errnoRet, no_new_privs off, and
//! the notify fd handed to `listenerPath` during `create`.

use crate::common::{output_text, Sandbox};
use crate::helpers::{bundle, run_bundle, shell};
use crate::moby;
use serde_json::{json, Value};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

const UNSHARE: &str = "unshare -m true && echo UNSHARE-OK; echo ALIVE";

/// A config whose process may unshare (CAP_SYS_ADMIN), so only seccomp can refuse it.
fn admin(script: &str, seccomp: Option<Value>) -> Value {
    let mut c = shell(script);
    let caps = json!(["CAP_SYS_ADMIN", "CAP_KILL"]);
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set] = caps.clone();
    }
    if let Some(s) = seccomp {
        c["linux"]["seccomp"] = s;
    }
    c
}

fn docker_profile() -> Option<Value> {
    let Some(profile) = moby::docker_default(&[]) else {
        println!(
            "SKIP: no Docker profile conversion for {}",
            std::env::consts::ARCH
        );
        return None;
    };
    Some(serde_json::to_value(profile).unwrap())
}

#[test]
fn docker_default_profile_refuses_unshare() {
    let Some(profile) = docker_profile() else {
        return;
    };
    let env = Sandbox::new();
    for (name, nnp, seccomp) in [
        ("docker", true, Some(profile.clone())),
        ("docker-nnp-off", false, Some(profile)),
        ("control", true, None),
    ] {
        let mut c = admin(UNSHARE, seccomp.clone());
        c["process"]["noNewPrivileges"] = nnp.into();
        let b = bundle(&env, name, &c);
        let id = env.id();
        let (code, out) = run_bundle(&env, &b, &id);
        assert_eq!(code, 0, "{name}: {out}");
        assert!(out.contains("ALIVE"), "{name}: {out}");
        assert_eq!(
            out.contains("UNSHARE-OK"),
            seccomp.is_none(),
            "{name}: {out}"
        );
    }
}

#[test]
fn errno_ret_is_returned_and_only_for_the_rule() {
    let env = Sandbox::new();
    let rule = json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18});
    for (name, rules) in [("errno", json!([rule])), ("control", json!([]))] {
        let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules});
        let mut c = shell("mkdir /tmp/mrt-dir && echo MADE; touch /tmp/mrt-file && echo TOUCHED");
        c["linux"]["seccomp"] = profile;
        let b = bundle(&env, name, &c);
        let id = env.id();
        let (code, out) = run_bundle(&env, &b, &id);
        assert_eq!(code, 0, "{name}: {out}");
        assert!(out.contains("TOUCHED"), "{name}: {out}");
        if name == "errno" {
            // EXDEV: "Invalid cross-device link".
            assert!(
                out.contains("cross-device") && !out.contains("MADE"),
                "{out}"
            );
        } else {
            assert!(out.contains("MADE"), "control: {out}");
        }
    }
}

/// The listener gets one connection carrying the state JSON and the notify fd during create.
#[test]
fn listener_receives_the_notify_fd_during_create() {
    let env = Sandbox::new();
    let socket = env.dir.join("listener.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let agent = std::thread::spawn(move || receive(&listener));
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": socket,
        "listenerMetadata": "mrt-meta",
        "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    });
    let mut c = shell("true");
    c["linux"]["seccomp"] = profile;
    let b = bundle(&env, "b", &c);
    let id = env.id();
    let out = env.run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", output_text(&out));
    let (msg, fd) = agent.join().unwrap();
    assert_eq!(msg["fds"], json!(["seccompFd"]), "{msg}");
    assert_eq!(msg["metadata"], "mrt-meta", "{msg}");
    assert_eq!(msg["state"]["id"], id.as_str(), "{msg}");
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    assert!(
        link.to_string_lossy().contains("seccomp"),
        "{}",
        link.display()
    );
}

fn receive(listener: &UnixListener) -> (Value, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (stream, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
        }
    }
    let n = msg.bytes;
    let mut data = buf[..n].to_vec();
    let mut rest = Vec::new();
    use std::io::Read;
    (&stream).read_to_end(&mut rest).unwrap();
    data.extend(rest);
    (serde_json::from_slice(&data).unwrap(), fd.expect("no fd"))
}
