//! What a container may leave on the host (state, layers, mounts, cgroups, processes), and the
//! reaping of container zombies that are ours to reap.

use super::fs::is_within;
use super::Sandbox;
use std::path::{Path, PathBuf};
use std::time::Duration;

impl Sandbox {
    /// Everything left on the host of container `id` or of this sandbox's containers: entries
    /// of the state and data roots (so call it once they should all be gone), mounts naming `id`
    /// or in the sandbox, cgroup directories named `id` and processes naming it. Empty when
    /// the host is clean.
    pub fn leftovers(&self, id: &str) -> Vec<String> {
        let mut found = Vec::new();
        for dir in [&self.root, &self.data_root] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                found.push(format!("state/data: {}", e.path().display()));
            }
        }
        for line in std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
        {
            if names(line, id) || line.split(' ').any(|f| is_within(f, &self.dir)) {
                found.push(format!("mount: {line}"));
            }
        }
        found.extend(
            cgroup_dirs(id)
                .iter()
                .map(|d| format!("cgroup: {}", d.display())),
        );
        found.extend(
            processes_naming(id)
                .into_iter()
                .map(|p| format!("process {p}")),
        );
        found
    }

    /// Assert that nothing of container `id` is left (see `leftovers`), allowing a few seconds
    /// for processes to go.
    pub fn assert_clean(&self, id: &str) {
        let mut last = Vec::new();
        let clean = super::eventually(Duration::from_secs(3), || {
            last = self.leftovers(id);
            last.is_empty()
        });
        assert!(clean, "{id}: left behind:\n{}", last.join("\n"));
    }
}

/// Whether `text` has `word` as a whole path or list component (so mrt-1-1 does not match
/// mrt-1-10).
pub fn names(text: &str, word: &str) -> bool {
    text.split(|c: char| c == '/' || c.is_whitespace() || c == ':' || c == ',')
        .any(|part| part == word)
}

/// Directories named `id` in any cgroup hierarchy (up to 6 levels down).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy() == id {
                found.push(e.path());
            } else if depth > 1 {
                walk(&e.path(), id, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 6, &mut found);
    found
}

/// Processes other than this one (zombies only when `zombies`) for which
/// `wanted(command line, cgroups)` holds, one line each:
/// `pid: [state, parent, what it waits in] command line`.
fn processes(zombies: bool, wanted: impl Fn(&str, &str) -> bool) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
        let cmdline = read("cmdline").replace('\0', " ");
        if !wanted(cmdline.trim_end(), &read("cgroup")) {
            continue;
        }
        let (state, parent) = state_and_parent(&e.path());
        if state == "Z" && !zombies {
            continue;
        }
        found.push(format!(
            "{pid}: [{state} parent {parent} wchan {}] {}",
            read("wchan"),
            cmdline.trim_end()
        ));
    }
    found
}

/// State and parent pid of the process at `/proc/<pid>`.
fn state_and_parent(proc_dir: &Path) -> (String, String) {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let mut fields = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace();
    let state = fields.next().unwrap_or("?").to_string();
    (state, fields.next().unwrap_or("?").to_string())
}

/// Whether the process's real uid is not 0.
fn not_root(proc_dir: &Path) -> bool {
    let status = std::fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .is_some_and(|uid| uid != "0")
}

/// Live processes (not zombies: the dead are ours to reap) whose command line or cgroup names
/// `id`.
pub fn processes_naming(id: &str) -> Vec<String> {
    processes(false, |cmdline, cgroup| {
        names(cmdline, id) || names(cgroup, id)
    })
}

/// Processes of the runtime or of this binary's containers: what a hang diagnosis lists.
pub fn runtime_processes() -> Vec<String> {
    let ids = super::id_prefix();
    processes(true, |cmdline, cgroup| {
        cmdline.contains("minirunc") || cmdline.contains(&ids) || cgroup.contains(&ids)
    })
}

/// Reap, forever, our zombie children that are container processes of this test binary (orphans
/// reparented to us as subreaper): those in its cgroups, and those not root (a rootless
/// container has no cgroup; every `Command` child runs as root: minirunc, or runuser for the
/// test user). Only those: `Command` children must stay for their waiters.
/// A dead init of a pid namespace lingers until all its namespace's processes are reaped, so
/// this must go on while a test waits for `delete`.
pub fn reap_container_zombies() -> ! {
    let me = std::process::id().to_string();
    let ids = super::id_prefix();
    loop {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if state_and_parent(&entry.path()) != ("Z".to_string(), me.clone()) {
                continue;
            }
            let cg = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
            if cg.contains(&ids) || not_root(&entry.path()) {
                // SAFETY: waiting for one specific pid, our zombie child that nobody else waits for.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
