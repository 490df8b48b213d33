//! minirunc: an OCI runtime with runc's command line.
//!
//! The binary (`main.rs`) parses the command line and calls one function per verb in
//! [`commands`] and [`container`]; everything that knows about containers lives below.

/// The runtime-spec version minirunc implements (reported by `state` and `--version`).
pub const SPEC_VERSION: &str = "1.2.0";

pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod commit;
pub mod container;
pub mod errors;
pub mod exe_guard;
pub mod fsutil;
pub mod hooks;
pub mod idmap;
pub mod logging;
pub mod lsm;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod state;
pub mod sync;
pub mod tty;
pub mod userns;
