//! containerd-shim-minirunc-v1: containerd's runtime v2 shim for minirunc (`ctr run --runtime
//! io.containerd.minirunc.v1`, or a CRI runtime with that `runtime_type`).
//!
//! containerd runs this binary three ways, always with the bundle as cwd: `start` (commands.rs:
//! spawn the long-lived server and print its socket address), `delete` (clean up after a shim
//! that died) and, with `-socket`, as that server, which serves containerd's ttrpc task service
//! (service.rs) through the `containerd-shim` crate.
//!
//! Process model. The server is multithreaded from the start: the crate's ttrpc server runs a
//! listener, a reader and worker threads per connection, and a signal thread that reaps every
//! child (`waitpid(-1)`) and broadcasts each exit on its monitor. A multithreaded process must
//! not fork into code that allocates (another thread may hold malloc's lock at the fork), so the
//! shim never forks to run container code. It runs the minirunc binary for create, start, exec,
//! kill, pause, resume, update, ps and delete, as containerd's Go shim runs runc: `Command`
//! spawns by fork+exec with nothing but async-signal-safe calls in between. This costs one
//! exec of minirunc per operation: about 2 ms each on the test VM, three (create, start,
//! delete) in a container's life, under 10 ms of the 120 ms of a `ctr run --rm` there
//! (bench/shim-memory.sh). Creating containers with the library inside the shim would need a
//! single-threaded helper forked before the first thread; not done yet, for that gain.
//!
//! Reaping. The shim is the subreaper of its containers (the crate sets PR_SET_CHILD_SUBREAPER
//! before anything else): `minirunc create` exits once the container exists, and the container's
//! init is reparented to the shim, which reaps it. Since the crate's thread reaps every child,
//! a minirunc run is waited for through the monitor (runtime.rs), never with `Child::wait`, and
//! the exit of a container process is matched to its task by pid (exits.rs). A process whose
//! pid is not known yet cannot be reaped unnoticed: the pid table stays locked from the spawn
//! of `minirunc create`/`exec` until the new pid is in it.
//!
//! Pods. `start` groups containers by their `io.kubernetes.cri.sandbox-id` annotation, as
//! containerd's runc shim does: the server's socket is named after the sandbox, and a server
//! already listening there is reused, so a pod costs one process.
//!
//! Stats and OOM. The shim reads a container's cgroup itself, with the minirunc library (files
//! only, no fork): Stats converts what it reads into containerd's metrics protos (metrics.rs). One
//! thread for all containers waits in epoll on an eventfd per container that cgroup v1 signals on
//! OOM, or on inotify of cgroup v2's memory.events (oom.rs).
//!
//! Stdio. Without a terminal the container gets containerd's FIFOs themselves (stdio.rs), so no
//! thread copies output and the shim holds no per-container thread at all. A terminal process
//! has two copying threads between its pty master and the FIFOs (console.rs).

mod commands;
mod console;
mod container;
mod events;
mod exits;
mod metrics;
mod oom;
mod process;
mod rootfs;
mod runtime;
mod service;
mod stdio;

fn main() {
    commands::main()
}
