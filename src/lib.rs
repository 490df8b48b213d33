//! minirunc: an OCI runtime with runc's command line.
//!
//! The binary (`main.rs`) parses the command line and calls one function per verb in
//! [`commands`]; everything that knows about containers lives in the modules below.

pub mod cgroups;
pub mod commit;
pub mod seccomp;
