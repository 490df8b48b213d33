"""bundle-test: run OCI bundles through a runc-compatible runtime and check what they did."""
