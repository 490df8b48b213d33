//! `exec --cgroup [CONTROLLER[,CONTROLLER...]:]PATH` (runc 1.1): an existing sub-cgroup of the
//! container's for the exec'd process. Without a prefix (then the only --cgroup) PATH applies to
//! every hierarchy; a prefix limits it to the hierarchies of those controllers, the empty name
//! being the cgroup2 one (runc's `:PATH`).

use anyhow::{bail, Result};
use std::path::{Component, Path, PathBuf};

use super::{fs, Cgroup};

/// One --cgroup value: its controllers (None: all hierarchies) and its path below the container.
struct Request<'a> {
    arg: &'a str,
    controllers: Option<Vec<&'a str>>,
    rel: PathBuf,
}

fn parse(arg: &str) -> Result<Request<'_>> {
    let (controllers, path) = match arg.split_once(':') {
        Some((names, path)) => (Some(names.split(',').collect()), path),
        None => (None, arg),
    };
    if path.contains(':') {
        bail!("--cgroup {arg}: expected [CONTROLLER[,CONTROLLER...]:]PATH");
    }
    let mut rel = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::RootDir | Component::CurDir => {}
            _ => bail!(
                "--cgroup {arg}: must not contain '..' (PATH is below the container's cgroup)"
            ),
        }
    }
    Ok(Request {
        arg,
        controllers,
        rel,
    })
}

impl Cgroup {
    /// This cgroup with its directories moved to the sub-cgroups `args` (--cgroup values) name,
    /// each of which must exist. Only for adding processes: `path()` stays the container's.
    pub fn sub_cgroup(&self, args: &[String]) -> Result<Cgroup> {
        let requests = args.iter().map(|a| parse(a)).collect::<Result<Vec<_>>>()?;
        // Every hierarchy with the names that select it: v1 by controller, cgroup2 by "" and
        // (on a cgroup2-only host) the controllers it offers the container.
        let mut names: Vec<Vec<String>> = self.v1.iter().map(|h| h.controllers.clone()).collect();
        if let Some(dir) = self.unified_dir() {
            let offered = fs::read(dir, "cgroup.controllers").unwrap_or_default();
            let mut unified = vec![String::new()];
            unified.extend(offered.split_whitespace().map(str::to_string));
            names.push(unified);
        }
        let mut chosen: Vec<Option<&Request>> = vec![None; names.len()];
        for req in &requests {
            let Some(controllers) = &req.controllers else {
                if requests.len() > 1 {
                    bail!(
                        "--cgroup {}: a PATH without CONTROLLER: must be the only --cgroup",
                        req.arg
                    );
                }
                chosen.fill(Some(req));
                continue;
            };
            for name in controllers {
                let hits: Vec<usize> = (0..names.len())
                    .filter(|&i| names[i].iter().any(|c| c == name))
                    .collect();
                if hits.is_empty() {
                    let known: Vec<&str> = names
                        .iter()
                        .flatten()
                        .map(|n| if n.is_empty() { "\"\" (cgroup2)" } else { n })
                        .collect();
                    bail!(
                        "--cgroup {}: no cgroup hierarchy has controller {name:?} (here: {})",
                        req.arg,
                        known.join(", ")
                    );
                }
                for i in hits {
                    match chosen[i] {
                        Some(other) if other.rel != req.rel => bail!(
                            "--cgroup {}: controller {name:?} shares its hierarchy with --cgroup {}",
                            req.arg,
                            other.arg
                        ),
                        _ => chosen[i] = Some(req),
                    }
                }
            }
        }
        let mut sub = self.clone();
        let dirs = sub
            .v1
            .iter_mut()
            .map(|h| &mut h.dir)
            .chain(sub.unified.iter_mut().map(|(_, d)| d));
        for (dir, req) in dirs.zip(chosen) {
            if let Some(req) = req {
                dir.push(&req.rel);
                if !dir.is_dir() {
                    bail!(
                        "--cgroup {}: sub-cgroup {} does not exist",
                        req.arg,
                        dir.display()
                    );
                }
            }
        }
        Ok(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{mounts, Layout};
    use super::*;

    #[test]
    fn paths_stay_below_the_container() {
        assert_eq!(parse("a/./b").unwrap().rel, Path::new("a/b"));
        assert_eq!(parse("cpu:/a").unwrap().rel, Path::new("a"));
        assert_eq!(
            parse("cpu,memory:a").unwrap().controllers,
            Some(vec!["cpu", "memory"])
        );
        assert!(parse("../x").is_err());
        assert!(parse("cpu:a/../../x").is_err());
        assert!(parse("cpu:a:b").is_err());
    }

    /// A cgroup `/c` on fake hierarchies under a temp dir, with sub-cgroup `sub` everywhere.
    fn fake(layout: Layout, v1: &[(&str, &[&str])], unified: Option<&str>) -> (PathBuf, Cgroup) {
        let top =
            std::env::temp_dir().join(format!("minirunc-sub-{}-{layout:?}", std::process::id()));
        let v1: Vec<mounts::V1Mount> = v1
            .iter()
            .map(|(dir, cs)| mounts::V1Mount {
                mount_point: top.join(dir),
                controllers: cs.iter().map(|c| c.to_string()).collect(),
            })
            .collect();
        let m = mounts::Mounts {
            layout,
            v1,
            unified: unified.map(|u| top.join(u)),
        };
        let cg = Cgroup::from_mounts(&m, Some(Path::new("/c")), "x").unwrap();
        for dir in cg.dirs() {
            std::fs::create_dir_all(dir.join("sub")).unwrap();
        }
        (top, cg)
    }

    fn subs(cg: &Cgroup, args: &[&str]) -> Result<Vec<PathBuf>> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Ok(cg
            .sub_cgroup(&args)?
            .dirs()
            .into_iter()
            .map(Path::to_path_buf)
            .collect())
    }

    #[test]
    fn hybrid_paths_go_to_the_named_hierarchies() {
        let v1: &[(&str, &[&str])] = &[
            ("cpu,cpuacct", &["cpu", "cpuacct"]),
            ("memory", &["memory"]),
        ];
        let (top, cg) = fake(Layout::Hybrid, v1, Some("unified"));
        let all: Vec<PathBuf> = cg.dirs().iter().map(|d| d.join("sub")).collect();
        assert_eq!(subs(&cg, &["sub"]).unwrap(), all);
        let d = |h: &str, rest: &str| top.join(h).join("c").join(rest);
        assert_eq!(
            subs(&cg, &["cpuacct:sub", ":/sub"]).unwrap(),
            [
                d("cpu,cpuacct", "sub"),
                d("memory", ""),
                d("unified", "sub")
            ]
        );
        let err = subs(&cg, &["cpu:sub", "cpuacct:other"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("shares its hierarchy with --cgroup cpu:sub"),
            "{err}"
        );
        let err = subs(&cg, &["memory:nope"]).unwrap_err().to_string();
        assert!(
            err.starts_with("--cgroup memory:nope: sub-cgroup") && err.ends_with("does not exist"),
            "{err}"
        );
        let err = subs(&cg, &["pids:sub"]).unwrap_err().to_string();
        assert!(
            err.contains("no cgroup hierarchy has controller \"pids\""),
            "{err}"
        );
        assert!(subs(&cg, &["sub", "memory:sub"]).is_err());
        std::fs::remove_dir_all(top).unwrap();
    }

    #[test]
    fn cgroup2_controllers_name_the_one_hierarchy() {
        let (top, cg) = fake(Layout::Unified, &[], Some("v2"));
        std::fs::write(top.join("v2/c/cgroup.controllers"), "cpu memory\n").unwrap();
        let sub = vec![top.join("v2/c/sub")];
        assert_eq!(subs(&cg, &["cpu,memory:sub"]).unwrap(), sub);
        assert_eq!(subs(&cg, &["sub"]).unwrap(), sub);
        assert!(subs(&cg, &["cpu:sub", "memory:other"]).is_err());
        assert!(subs(&cg, &["pids:sub"]).is_err());
        std::fs::remove_dir_all(top).unwrap();
    }
}
