//! OCI image archive (placeholder while the tar side is built).
