//! containerd-shim-minirunc-v1: containerd's runtime v2 shim for minirunc (`ctr run --runtime
//! io.containerd.minirunc.v1`, or a CRI runtime with that `runtime_type`).
//!
//! containerd runs this binary three ways, always with the bundle as cwd: `start` (spawn the
//! long-lived server and print its socket address), `delete` (clean up after a shim that died)
//! and, with `-socket`, as that server, which serves containerd's ttrpc task service
//! (service.rs). commands.rs runs the three; the crate parses the flags and gives the protos.
//!
//! Process model. The server's own loop (server.rs) waits in epoll on its socket, containerd's
//! connections and a SIGCHLD self-pipe (reaper.rs); it answers Wait when the process exits and
//! hands every other request to a worker thread, made on demand and gone after 2 s idle. Besides
//! it, a shim has four threads whatever its number of containers: the exit matcher (exits.rs),
//! the OOM watcher (oom.rs) and the two of the event publisher's ttrpc client; a fifth copies
//! every terminal's bytes once there is one (relay.rs). A multithreaded process must not fork
//! into code that allocates (another thread may hold malloc's lock at the fork), so the shim
//! never forks to run container code. It runs the minirunc binary for create, start, exec, kill,
//! pause, resume, update, ps and delete, as containerd's Go shim runs runc: `Command` spawns
//! by fork+exec with nothing but async-signal-safe calls in between. What the library inside the
//! shim would save is the fork, exec and start of the binary: about 0.5 ms a run (a `minirunc
//! state` of no container takes 1.2 ms in a shell loop, /bin/true 0.7 ms), three runs (create,
//! start, delete) in a container's life, so under 2 ms of the 40 to 60 ms of a `ctr run --rm`
//! (bench/shim-memory.sh). It would need a single-threaded helper forked before the first
//! thread; not done, for that gain.
//!
//! Reaping. The shim is the subreaper of its containers (set before anything else):
//! `minirunc create` exits once the container exists, and the container's init is reparented
//! to the shim, which reaps it. The reaper reaps every child (`waitpid(-1)`) and reports each
//! exit on the crate's monitor, so a minirunc run is waited for through the monitor
//! (runtime.rs), never with `Child::wait`, and the exit of a container process is matched to
//! its task by pid (exits.rs). A process whose pid is not known yet cannot be reaped unnoticed:
//! the pid table stays locked from the spawn of `minirunc create`/`exec` until the new pid is in
//! it.
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
//! thread copies output. Terminals' bytes go through one thread for all of them (relay.rs),
//! started with the first: a container adds no thread.

mod binary_log;
mod commands;
mod console;
mod container;
mod events;
mod exits;
mod metrics;
mod oom;
mod process;
mod reaper;
mod relay;
mod rootfs;
mod runtime;
mod server;
mod service;
mod stdio;

fn main() {
    commands::main()
}
