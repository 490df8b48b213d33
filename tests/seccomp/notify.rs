//! SCMP_ACT_NOTIFY end to end: the child loads a NOTIFY rule, sends the fd and its state to a
//! listener with `send_to_listener`, and a supervisor answers the notified syscall.

use crate::child::{ret, run_with};
use crate::{filter, skip_unless_root};
use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall};
use minirunc::seccomp;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use serde_json::{json, Value};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
const ANSWER: i64 = 4242;
const NO_FD: i64 = -1000;
const SEND_FAILED: i64 = -1001;

/// A socket path unique to this test run, removed on drop.
struct SocketPath(PathBuf);

impl SocketPath {
    fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("minirunc-seccomp-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        SocketPath(path)
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn wait_readable(fd: impl AsFd, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(n) if n > 0 => return,
            _ if Instant::now() > deadline => panic!("timed out waiting for {what}"),
            _ => {}
        }
    }
}

/// Receive the agent's message: the JSON payload and the fd that came with it.
fn receive(stream: &mut UnixStream) -> (Value, OwnedFd) {
    let mut buf = vec![0u8; 1 << 16];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        let fd = msg.cmsgs().expect("cmsgs").find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        (msg.bytes, fd.expect("an fd with the message"))
    };
    buf.truncate(n);
    stream.read_to_end(&mut buf).expect("read the rest");
    // SAFETY: the fd just arrived through SCM_RIGHTS and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    (serde_json::from_slice(&buf).expect("payload JSON"), fd)
}

/// Plays the seccomp agent: takes one connection, answers one notification with ANSWER.
fn supervise(listener: UnixListener) -> (Value, ScmpSyscall) {
    wait_readable(&listener, "the runtime to connect");
    let (mut stream, _) = listener.accept().expect("accept");
    stream.set_nonblocking(false).expect("blocking stream");
    let (payload, fd) = receive(&mut stream);
    wait_readable(&fd, "a seccomp notification");
    let req = ScmpNotifReq::receive(fd.as_raw_fd()).expect("receive notification");
    ScmpNotifResp::new_val(req.id, ANSWER, ScmpNotifRespFlags::empty())
        .respond(fd.as_raw_fd())
        .expect("respond");
    (payload, req.data.syscall)
}

fn notify_child(rules: Value, socket: &SocketPath) -> Vec<i64> {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    let out = run_with(
        &f,
        || {},
        |r, notify| {
            let Some(fd) = notify else {
                r.push(NO_FD);
                return;
            };
            let pid = i64::from(std::process::id());
            r.push(pid);
            let state = json!({"ociVersion": "1.2.0", "id": "seccomp-test", "status": "creating",
            "pid": pid, "bundle": "/nonexistent"});
            if let Err(e) =
                seccomp::send_to_listener(&socket.0, "meta-1", &state.to_string(), fd.as_fd())
            {
                eprintln!("child: {e:#}");
                r.push(SEND_FAILED);
                return;
            }
            // SAFETY: getppid takes no arguments.
            r.push(ret(unsafe { libc::syscall(libc::SYS_getppid) }));
        },
    );
    out.results()
}

pub fn notify_fd_reaches_the_listener_and_the_agent_answers() {
    if skip_unless_root() {
        return;
    }
    let socket = SocketPath::new();
    let listener = UnixListener::bind(&socket.0).expect("bind listener");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let agent = std::thread::spawn(move || supervise(listener));
    let rules = json!([{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]);
    let r = notify_child(rules, &socket);
    let (payload, syscall) = agent.join().expect("agent");
    assert_eq!(r.len(), 2, "child results: {r:?}");
    assert_eq!(r[1], ANSWER, "getppid returned the agent's answer");
    assert_eq!(syscall, ScmpSyscall::from_name("getppid").expect("getppid"));
    assert_eq!(payload["fds"], json!(["seccompFd"]));
    assert_eq!(payload["metadata"], "meta-1");
    assert_eq!(payload["pid"], r[0]);
    assert_eq!(payload["ociVersion"], "1.2.0");
    assert_eq!(payload["state"]["id"], "seccomp-test");
}

pub fn no_notify_rule_no_fd() {
    if skip_unless_root() {
        return;
    }
    let socket = SocketPath::new();
    let rules = json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]);
    assert_eq!(notify_child(rules, &socket), [NO_FD]);
}
