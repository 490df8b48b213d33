//! The binary's commands as containerd calls them: `start`, `delete`, and the server that
//! `start` spawns (the crate's bootstrap parses the flags and runs the one asked for).

use std::env;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use containerd_shim::{
    self as shim, api::DeleteResponse, publisher::RemotePublisher, synchronous::util, Config,
    ExitSignal, Flags, StartOpts,
};
use shim::protos::protobuf::well_known_types::timestamp::Timestamp;

use crate::{events::Events, rootfs, runtime::Runtime, service::Service};

const RUNTIME_ID: &str = "io.containerd.minirunc.v1";
/// The annotation CRI gives every container of a pod, the grouping key of containerd's runc shim.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

pub fn main() {
    shim::run::<Shim>(RUNTIME_ID, None)
}

pub struct Shim {
    namespace: String,
    id: String,
    /// The server's socket (`unix://<path>`).
    socket: String,
    exit: Arc<ExitSignal>,
}

impl shim::Shim for Shim {
    type T = Service;

    fn new(_runtime_id: &str, flags: &Flags, _config: &mut Config) -> Self {
        // The server leaves the session of containerd's `start` process: it outlives both.
        if flags.action.is_empty() {
            let _ = nix::unistd::setsid();
        }
        Shim {
            namespace: flags.namespace.clone(),
            id: flags.id.clone(),
            socket: flags.socket.clone(),
            exit: Arc::default(),
        }
    }

    /// `start`: return the address of the server for this container, which the crate prints
    /// and containerd dials; the bundle's `address` file is where containerd finds it again
    /// after its own restart. The containers of one pod share a server: one already serving
    /// the pod's sandbox is reused, else a new one is spawned.
    fn start_shim(&mut self, opts: StartOpts) -> shim::Result<String> {
        let grouping = sandbox_id().unwrap_or_else(|| opts.id.clone());
        let address = shim::socket_address(&opts.address, &opts.namespace, &grouping);
        let serving = address
            .strip_prefix("unix://")
            .is_some_and(|path| UnixStream::connect(path).is_ok());
        let address = if serving {
            address
        } else {
            shim::spawn(opts, &grouping, Vec::new())?.1
        };
        util::write_address(&address)?;
        Ok(address)
    }

    /// `delete`: containerd lost the shim (or `start` failed). Remove the container, whatever
    /// its state, its rootfs mounts and the shim's socket; the exit status is SIGKILL's, as the
    /// Go shim reports.
    fn delete_shim(&mut self) -> shim::Result<DeleteResponse> {
        let bundle = env::current_dir().map_err(|e| shim::Error::Other(e.to_string()))?;
        let options = util::read_options(&bundle).unwrap_or_default();
        let runtime = Runtime::new(&options, &self.namespace);
        if let Err(e) = runtime.run(&bundle, &["delete", "--force", &self.id]) {
            shim::warn!("delete {}: {e}", self.id);
        }
        rootfs::unmount(&bundle).map_err(shim::Error::Other)?;
        // The dead server's socket, which it had no chance to remove.
        if let Some(path) = util::read_address()
            .ok()
            .and_then(|a| a.strip_prefix("unix://").map(str::to_string))
        {
            let _ = std::fs::remove_file(path);
        }
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(Timestamp::now()).into(),
            ..Default::default()
        })
    }

    /// Serve until Shutdown, then remove the socket: the crate would look its path up in the
    /// bundle, which containerd may have removed by then.
    fn wait(&mut self) {
        self.exit.wait();
        if let Some(path) = self.socket.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
        }
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Service {
        // The crate dialed this address for `publisher`; Events dials it again after a failure.
        let address = env::var("TTRPC_ADDRESS").unwrap_or_default();
        Service::new(
            Events::new(publisher, &address, &self.namespace),
            &self.namespace,
            self.exit.clone(),
        )
    }
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
