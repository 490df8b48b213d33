//! `minirunc gc`: reclaim the layers of a whole data root whose state is gone; one line per
//! layer reclaimed or kept.

use anyhow::Result;

use crate::cli::GcArgs;
use crate::container::Paths;
use crate::rootfs::reclaim::{self, Verdict};

/// `explicit`: --data-root (or MINIRUNC_DATA_ROOT) was given, so a missing one is a mistake;
/// the default one only exists once a container had a layer.
pub fn gc(paths: &Paths, a: &GcArgs, explicit: bool) -> Result<i32> {
    let data_root = paths.data_root()?;
    if !explicit && !data_root.exists() {
        return Ok(0);
    }
    let reports = reclaim::gc(data_root, a.dry_run)?;
    for r in &reports {
        println!("{}", r.describe(a.dry_run));
    }
    let failed = reports
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Failed(_)));
    Ok(i32::from(failed))
}
