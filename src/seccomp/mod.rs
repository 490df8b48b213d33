//! Seccomp for the container process: `linux.seccomp` built into a libseccomp filter with
//! runc's semantics, loaded right before execve, and the notify fd handed to the agent.
//!
//! Order for the caller (init): `build` early (it can fail without side effects), set
//! no_new_privs when the spec asks, `load` as the last step before execve, then pass a returned
//! notify fd to the runtime, which calls `send_to_listener` during `create`.

mod filter;
mod listener;
mod names;

pub use filter::{build, load, unknown_syscalls};
pub use listener::send_to_listener;
pub use names::{
    known_flags, supported_actions, supported_archs, supported_flags, supported_operators,
};
