//! seccomp (being written).
