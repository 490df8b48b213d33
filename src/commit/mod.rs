//! commit (being written).
