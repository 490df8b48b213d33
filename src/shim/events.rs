//! Task events to containerd (its events service, over the TTRPC_ADDRESS it gave the shim).

use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use containerd_shim::{error, event::Event, protos::ttrpc::context, publisher::RemotePublisher};

/// How long a publish may block: containerd may be restarting, and the caller is an RPC or
/// the exit watcher.
const TIMEOUT_NANOS: i64 = 5_000_000_000;
/// Tries of one event, and the pause between them: a containerd that restarts comes back at the
/// same address, on a new connection.
const TRIES: u32 = 4;
const PAUSE: Duration = Duration::from_millis(500);

pub struct Events {
    address: String,
    /// The connection; none after a failure, until the next publish dials again.
    publisher: Mutex<Option<RemotePublisher>>,
    namespace: String,
}

impl Events {
    pub fn new(publisher: RemotePublisher, address: &str, namespace: &str) -> Events {
        Events {
            address: address.to_string(),
            publisher: Mutex::new(Some(publisher)),
            namespace: namespace.to_string(),
        }
    }

    /// Publish one event. A failure is logged, not returned: the operation itself succeeded.
    pub fn publish<E: Event + Clone + 'static>(&self, event: E) {
        let topic = event.topic();
        let mut last_error = String::new();
        for try_number in 1..=TRIES {
            if try_number > 1 {
                thread::sleep(PAUSE);
            }
            let mut publisher = self.publisher.lock().unwrap_or_else(|e| e.into_inner());
            if publisher.is_none() {
                match RemotePublisher::new(&self.address) {
                    Ok(p) => *publisher = Some(p),
                    Err(e) => {
                        last_error = format!("connect to {}: {e}", self.address);
                        continue;
                    }
                }
            }
            let Some(connected) = publisher.as_ref() else {
                continue;
            };
            let ctx = context::with_timeout(TIMEOUT_NANOS);
            match connected.publish(ctx, &topic, &self.namespace, Box::new(event.clone())) {
                Ok(()) => return,
                Err(e) => {
                    last_error = e.to_string();
                    *publisher = None;
                }
            }
        }
        error!("publish {topic}: {last_error}");
    }
}
