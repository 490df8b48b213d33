//! The command line, flag for flag as runc has it (containerd and podman build these exact lines).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "minirunc",
    about = "A small, fast OCI container runtime with runc's command line",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state (tmpfs recommended) [default: /run/minirunc, rootless:
    /// $XDG_RUNTIME_DIR/minirunc]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Directory for the containers' copy-on-write layers (survives reboots) [default:
    /// /var/lib/minirunc, rootless: $XDG_DATA_HOME/minirunc or ~/.local/share/minirunc]
    #[arg(long, global = true, env = "MINIRUNC_DATA_ROOT")]
    pub data_root: Option<PathBuf>,
    /// Default root filesystem mode of every container: cow, direct or auto (a create's own
    /// --rootfs-mode and the org.minirunc.rootfs.mode annotation come first)
    #[arg(long = "rootfs-mode", env = "MINIRUNC_ROOTFS_MODE", value_parser = ["auto", "cow", "direct"])]
    pub default_rootfs_mode: Option<String>,
    /// Write log messages to this file instead of stderr
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug messages too
    #[arg(long, global = true)]
    pub debug: bool,
    /// cgroupsPath is systemd's slice:prefix:name; the cgroup is made at systemd's path for it
    /// (through cgroupfs: the scope is not registered with systemd)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto, the default (before the command: `spec --rootless` is its own flag)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Accepted for compatibility with containerd 1.6 (checkpointing is not supported)
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// How many fds from 3 on the verb passes into the container.
    pub fn passed_fds(&self) -> u32 {
        match &self.command {
            Some(Command::Create(a)) => a.passed_fds(),
            Some(Command::Run(a)) => a.create.passed_fds(),
            Some(Command::Exec(a)) => a.preserve_fds,
            _ => 0,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`
    Create(CreateArgs),
    /// Start the user process of a created container
    Start { id: String },
    /// Print the state of a container as JSON
    State { id: String },
    /// Send a signal to the container's init (or to all its processes)
    Kill(KillArgs),
    /// Delete a container and everything the runtime made for it
    Delete(DeleteArgs),
    /// Create and start a container, wait for it, and delete it
    Run(RunArgs),
    /// Run a new process inside a running container
    Exec(Box<ExecArgs>),
    /// List containers
    List(ListArgs),
    /// Write a default config.json
    Spec(SpecArgs),
    /// List the processes of a container
    Ps(PsArgs),
    /// Freeze all processes of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Change the resource limits of a running container
    Update(Box<UpdateArgs>),
    /// Print container events and statistics
    Events(EventsArgs),
    /// Print the features this runtime supports, as JSON
    Features,
    /// Write a container's filesystem as a tar, an OCI layer or an OCI image archive
    ///
    /// A paused container commits a consistent snapshot; a running one commits what is on disk
    /// at the time, file by file. Works until `delete`.
    Commit(CommitArgs),
    /// Reclaim the copy-on-write layers under --data-root whose container's state is gone
    ///
    /// A layer outlives its state when a caller removes its --root or the host crashes. create,
    /// run and delete reclaim such layers of their own --root; this reclaims them for every
    /// --root at once. A layer whose container still runs, that is a mount point, or that has
    /// no owner record is kept and listed. Exits 1 if a layer could not be removed.
    Gc(GcArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pseudo-terminal's master fd
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the container init's pid to
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Use chroot instead of pivot_root (for ramdisk roots)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (3..3+N) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility: create always detaches
    #[arg(short, long, hide = true)]
    pub detach: bool,
    /// Root filesystem mode: cow (overlay), direct (use as is) or auto
    #[arg(long, value_parser = ["auto", "cow", "direct"])]
    pub rootfs_mode: Option<String>,
    pub id: String,
}

impl CreateArgs {
    /// `--preserve-fds`, plus the fds of systemd socket activation (`LISTEN_FDS`).
    pub fn passed_fds(&self) -> u32 {
        let listen_fds = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse().ok());
        self.preserve_fds + listen_fds.unwrap_or(0)
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Keep the container after it exits (do not delete)
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process of the container
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Signal name (TERM, SIGKILL) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// JSON file describing the process (process of config.json)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process; leave it to the caller
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// Extra environment variable K=V
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long, value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_X) to the process's sets
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility (SELinux label; not supported on hosts without SELinux)
    #[arg(long)]
    pub process_label: Option<String>,
    /// Accepted for runc compatibility (AppArmor profile)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Exec in a paused container too: the process starts on resume
    #[arg(long)]
    pub ignore_paused: bool,
    /// Start in this existing sub-cgroup of the container's; repeatable per controller
    #[arg(long = "cgroup", value_name = "[CONTROLLER[,CONTROLLER...]:]PATH")]
    pub cgroups: Vec<String>,
    pub id: String,
    /// The command and its arguments (unless --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json into
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for an unprivileged user (user namespace mapping the caller)
    #[arg(long = "rootless", id = "spec_rootless")]
    pub rootless: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    pub id: String,
    /// Options passed to ps(1)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one statistics event and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between statistics events, e.g. 5s
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// LinuxResources JSON from a file, or `-` for stdin
    #[arg(short, long)]
    pub resources: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub memory_reservation: Option<String>,
    #[arg(long)]
    pub memory_swap: Option<String>,
    #[arg(long)]
    pub kernel_memory: Option<String>,
    /// CPU shares (runc spells it --cpu-share)
    #[arg(long, visible_alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Write only the container's changes (its copy-on-write layer) as an OCI layer
    #[arg(long)]
    pub diff: bool,
    /// tar (default) or oci-archive
    #[arg(long, default_value = "tar", value_parser = ["tar", "oci-archive"])]
    pub format: String,
    /// Image name for --format oci-archive, NAME:TAG (default localhost/ID:latest)
    #[arg(long)]
    pub name: Option<String>,
    /// Compression: none, gzip or zstd
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "zstd"])]
    pub compress: String,
    pub id: String,
    /// Output file, or `-` for stdout
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// List what would be reclaimed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
}
