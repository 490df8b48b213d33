//! Task events to containerd (its events service, over the TTRPC_ADDRESS it gave the shim).

use containerd_shim::{error, event::Event, protos::ttrpc::context, publisher::RemotePublisher};

/// How long a publish may block: containerd may be restarting, and the caller is an RPC or
/// the exit watcher.
const TIMEOUT_NANOS: i64 = 5_000_000_000;

pub struct Events {
    publisher: RemotePublisher,
    namespace: String,
}

impl Events {
    pub fn new(publisher: RemotePublisher, namespace: &str) -> Events {
        Events {
            publisher,
            namespace: namespace.to_string(),
        }
    }

    /// Publish one event. A failure is logged, not returned: the operation itself succeeded.
    pub fn publish<E: Event + 'static>(&self, event: E) {
        let topic = event.topic();
        let ctx = context::with_timeout(TIMEOUT_NANOS);
        if let Err(e) = self
            .publisher
            .publish(ctx, &topic, &self.namespace, Box::new(event))
        {
            error!("publish {topic}: {e}");
        }
    }
}
