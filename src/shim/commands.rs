//! The binary's commands as containerd calls them, always with the bundle as cwd: `start`,
//! `delete`, and (no command, with `-socket`) the server that `start` spawns. The crate parses
//! the flags; the commands are run here, the server by server.rs, which is why the crate's
//! `run` (and its ttrpc server) is not used.

use std::env;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use containerd_shim::{
    self as shim, api::DeleteResponse, protos::protobuf::Message, publisher::RemotePublisher,
    synchronous::util, Flags, StartOpts,
};
use shim::protos::protobuf::well_known_types::timestamp::Timestamp;

use crate::{events::Events, reaper::Reaper, rootfs, runtime::Runtime, server, service::Service};

const RUNTIME_ID: &str = "io.containerd.minirunc.v1";
/// The annotation CRI gives every container of a pod, the grouping key of containerd's runc shim.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

pub fn main() {
    let args: Vec<OsString> = env::args_os().skip(1).collect();
    let ran = shim::parse(&args)
        .map_err(|e| e.to_string())
        .and_then(|flags| {
            if flags.version {
                println!("{}: {}", env!("CARGO_BIN_NAME"), env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            if flags.namespace.is_empty() {
                return Err("-namespace is required".to_string());
            }
            match flags.action.as_str() {
                "start" => start(flags),
                "delete" => delete(&flags),
                "" => serve(&flags),
                other => Err(format!("unknown command {other:?}: start, delete or none")),
            }
        });
    if let Err(e) = ran {
        eprintln!("{RUNTIME_ID}: {e}");
        std::process::exit(1);
    }
}

/// `start`: print the address of the server for this container, which containerd dials; the
/// bundle's `address` file is where containerd finds it again after its own restart. The
/// containers of one pod share a server: one already serving the pod's sandbox is reused, else
/// a new one is spawned.
fn start(flags: Flags) -> Result<(), String> {
    let grouping = sandbox_id().unwrap_or_else(|| flags.id.clone());
    let address = shim::socket_address(&flags.address, &flags.namespace, &grouping);
    let serving = address
        .strip_prefix("unix://")
        .is_some_and(|path| UnixStream::connect(path).is_ok());
    let address = if serving {
        address
    } else {
        let opts = StartOpts {
            id: flags.id,
            publish_binary: flags.publish_binary,
            address: flags.address,
            ttrpc_address: env::var("TTRPC_ADDRESS").unwrap_or_default(),
            namespace: flags.namespace,
            debug: flags.debug,
        };
        shim::spawn(opts, &grouping, Vec::new())
            .map_err(|e| e.to_string())?
            .1
    };
    util::write_address(&address).map_err(|e| e.to_string())?;
    print!("{address}");
    io::stdout().flush().map_err(|e| e.to_string())
}

/// `delete`: containerd lost the shim (or `start` failed). Remove the container, whatever its
/// state, its rootfs mounts and the shim's socket; the exit status is SIGKILL's, as the Go shim
/// reports.
fn delete(flags: &Flags) -> Result<(), String> {
    Reaper::new()?.spawn()?;
    let bundle = env::current_dir().map_err(|e| format!("the bundle (cwd): {e}"))?;
    let options = util::read_options(&bundle).unwrap_or_default();
    let runtime = Runtime::new(&options, &flags.namespace);
    if let Err(e) = runtime.run(&bundle, &["delete", "--force", &flags.id]) {
        shim::warn!("delete {}: {e}", flags.id);
    }
    rootfs::unmount(&bundle)?;
    // The dead server's socket, which it had no chance to remove.
    if let Some(path) = util::read_address()
        .ok()
        .and_then(|a| a.strip_prefix("unix://").map(str::to_string))
    {
        let _ = std::fs::remove_file(path);
    }
    let response = DeleteResponse {
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(Timestamp::now()).into(),
        ..Default::default()
    };
    response
        .write_to_writer(&mut io::stdout().lock())
        .map_err(|e| e.to_string())
}

/// The server: serve containerd's task service at `-socket` until Shutdown, then remove the
/// socket (containerd may have removed the bundle, and its `address` file, by then).
fn serve(flags: &Flags) -> Result<(), String> {
    if flags.socket.is_empty() {
        return Err("-socket is required to serve".to_string());
    }
    let reaper = Reaper::new()?;
    // The server leaves the session of containerd's `start` process: it outlives both.
    let _ = nix::unistd::setsid();
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("subreaper: {e}"))?;
    shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id)
        .map_err(|e| e.to_string())?;
    let Some(listener) = server::bind(&flags.socket)? else {
        util::write_address(&flags.socket).map_err(|e| e.to_string())?;
        return started();
    };
    // containerd's events service, where the crate's publisher connects.
    let address = env::var("TTRPC_ADDRESS").map_err(|_| "TTRPC_ADDRESS is not set")?;
    let publisher = RemotePublisher::new(&address).map_err(|e| e.to_string())?;
    let events = Events::new(publisher, &address, &flags.namespace);
    let service = Arc::new(Service::new(events, &flags.namespace));
    started()?;
    let served = server::run(listener, reaper, service);
    if let Some(path) = flags.socket.strip_prefix("unix://") {
        let _ = std::fs::remove_file(path);
    }
    served
}

/// Let `start` go: it prints the address once the server's stdout closes (its stderr is null).
fn started() -> Result<(), String> {
    nix::unistd::dup2_stdout(io::stderr()).map_err(|e| format!("close stdout: {e}"))
}

/// The pod of the container whose bundle is the working directory, from its config.json.
fn sandbox_id() -> Option<String> {
    let config = File::open("config.json").ok()?;
    let spec: serde_json::Value = serde_json::from_reader(BufReader::new(config)).ok()?;
    spec["annotations"][SANDBOX_ID]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}
