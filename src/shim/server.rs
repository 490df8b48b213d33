//! The shim's ttrpc server: containerd's task service on one event loop.
//!
//! Why not the crate's server: ttrpc's sync server starts six threads for every connection (a
//! supervisor, a reader, a writer and three workers), containerd opens one connection per task,
//! and each Wait holds a worker for the life of its process. A shim thus kept six idle threads
//! per container. Here the thread that calls `run` waits in epoll on the listener, every
//! connection and the reaper's signalfd. It reads whole requests and answers Wait when the
//! process exits (process.rs), holding no thread meanwhile. Every other request goes to a worker:
//! one is made when a request finds none idle, and it ends after IDLE without work, so an idle
//! shim has no worker at all. A worker runs the request through the handlers the protos crate
//! generates for the Service and writes the response itself, under the connection's lock.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use containerd_shim::{
    api, debug, error,
    protos::protobuf::Message,
    protos::shim::shim_ttrpc::create_task,
    protos::ttrpc::{
        context, get_status, proto::MESSAGE_HEADER_LENGTH, proto::MESSAGE_LENGTH_MAX,
        proto::MESSAGE_TYPE_REQUEST, Code, Error, MessageHeader, MethodHandler, Request, Response,
        TtrpcContext,
    },
    TtrpcResult,
};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{recv, MsgFlags};

use crate::reaper::Reaper;
use crate::service::Service;

/// How long a worker waits for another request before it ends.
const IDLE: Duration = Duration::from_secs(2);
/// How long a response may wait for containerd to read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT: &str = "/containerd.task.v2.Task/Wait";

type Methods = HashMap<String, Box<dyn MethodHandler + Send + Sync>>;

/// Listen at containerd's `unix://` address. None when a live server already listens there
/// (two `start`s of one pod raced): that one serves.
pub fn bind(address: &str) -> Result<Option<UnixListener>, String> {
    let path = Path::new(address.strip_prefix("unix://").unwrap_or(address));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let bound = match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Ok(None);
            }
            // A dead server's socket.
            let _ = std::fs::remove_file(path);
            UnixListener::bind(path)
        }
        bound => bound,
    };
    let listener = bound.map_err(|e| format!("listen on {}: {e}", path.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listen on {}: {e}", path.display()))?;
    Ok(Some(listener))
}

/// Serve until a request leaves the service exiting (Shutdown with no task left).
pub fn run(listener: UnixListener, reaper: Reaper, service: Arc<Service>) -> Result<(), String> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
    let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
    let exiting = Arc::new(EventFd::from_value_and_flags(0, flags).map_err(|e| e.to_string())?);
    for fd in [listener.as_fd(), reaper.fd(), exiting.as_fd()] {
        watch(&epoll, fd)?;
    }
    let server = Server {
        methods: Arc::new(create_task(service.clone())),
        service,
        workers: Arc::default(),
        exiting: exiting.clone(),
    };
    let mut connections: HashMap<RawFd, Connection> = HashMap::new();
    let mut events = [EpollEvent::empty(); 16];
    loop {
        let ready = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(ready) => ready,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("epoll: {e}")),
        };
        for event in &events[..ready] {
            let fd = event.data() as RawFd;
            if fd == listener.as_raw_fd() {
                while let Ok((stream, _)) = listener.accept() {
                    if let Err(e) = watch(&epoll, stream.as_fd()) {
                        error!("a new connection: {e}");
                        continue;
                    }
                    connections.insert(stream.as_raw_fd(), Connection::new(stream));
                }
            } else if fd == reaper.fd().as_raw_fd() {
                reaper.reap();
            } else if fd == exiting.as_raw_fd() {
                return Ok(());
            } else if let Some(connection) = connections.get_mut(&fd) {
                if !connection.read(&server) {
                    let _ = epoll.delete(connection.client.stream.as_fd());
                    connections.remove(&fd);
                }
            }
        }
    }
}

fn watch(epoll: &Epoll, fd: impl AsFd) -> Result<(), String> {
    let token = fd.as_fd().as_raw_fd() as u64;
    epoll
        .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
        .map_err(|e| format!("epoll: {e}"))
}

struct Server {
    methods: Arc<Methods>,
    service: Arc<Service>,
    workers: Arc<Workers>,
    /// Signalled by the worker that answered the request after which the service exits.
    exiting: Arc<EventFd>,
}

impl Server {
    fn dispatch(&self, client: &Arc<Client>, header: MessageHeader, payload: &[u8]) {
        if header.type_ != MESSAGE_TYPE_REQUEST {
            return; // The task service has no streams.
        }
        let stream_id = header.stream_id;
        let request = match Request::parse_from_bytes(payload) {
            Ok(request) => request,
            Err(e) => return client.send(stream_id, failure(format!("request: {e}"))),
        };
        let path = format!("/{}/{}", request.service, request.method);
        if path == WAIT {
            return self.wait(client, stream_id, &request.payload);
        }
        if !self.methods.contains_key(&path) {
            return client.send(stream_id, failure(format!("{path} does not exist")));
        }
        let (methods, service, exiting) = (
            self.methods.clone(),
            self.service.clone(),
            self.exiting.clone(),
        );
        let client = client.clone();
        self.workers.run(Box::new(move || {
            let (responses, response) = mpsc::channel();
            let ctx = TtrpcContext {
                fd: client.stream.as_raw_fd(),
                cancel_rx: crossbeam_channel::never(),
                mh: header,
                res_tx: responses,
                metadata: context::from_pb(&request.metadata),
                timeout_nano: request.timeout_nano,
            };
            // The handler sends its response on the channel, or fails before (a bad payload).
            match methods[&path].handler(ctx, request) {
                Ok(()) => {
                    if let Ok((header, body)) = response.try_recv() {
                        client.write(header, &body);
                    }
                }
                Err(e) => client.send(stream_id, Response::from(e)),
            }
            if service.exiting() {
                let _ = exiting.write(1);
            }
        }));
    }

    /// Wait: the answer goes out when the process exits, from whichever thread records it.
    fn wait(&self, client: &Arc<Client>, stream_id: u32, payload: &[u8]) {
        match api::WaitRequest::parse_from_bytes(payload) {
            Ok(request) => {
                // Weak: a connection containerd closed (its restart) is not kept open for this.
                let waiter = Arc::downgrade(client);
                let reply = move |result: TtrpcResult<api::WaitResponse>| {
                    if let Some(client) = waiter.upgrade() {
                        client.send(stream_id, response(result));
                    }
                };
                self.service.wait(&request, Box::new(reply));
            }
            Err(e) => client.send(stream_id, failure(format!("WaitRequest: {e}"))),
        }
    }
}

/// A request ttrpc cannot take, as its own server answers one.
fn failure(message: String) -> Response {
    Response::from(Error::RpcStatus(get_status(
        Code::INVALID_ARGUMENT,
        message,
    )))
}

/// A method's result as ttrpc's response.
fn response<M: Message>(result: TtrpcResult<M>) -> Response {
    let encoded = result.and_then(|message| {
        message
            .write_to_bytes()
            .map_err(|e| Error::RpcStatus(get_status(Code::INTERNAL, e.to_string())))
    });
    match encoded {
        Ok(payload) => {
            let mut response = Response::new();
            response.set_status(get_status(Code::OK, ""));
            response.payload = payload;
            response
        }
        Err(e) => Response::from(e),
    }
}

/// A client's socket as workers and waiters share it: each response is written whole.
struct Client {
    stream: UnixStream,
    writing: Mutex<()>,
}

impl Client {
    fn send(&self, stream_id: u32, response: Response) {
        match response.write_to_bytes() {
            Ok(body) => self.write(
                MessageHeader::new_response(stream_id, body.len() as u32),
                &body,
            ),
            Err(e) => error!("encode a response: {e}"),
        }
    }

    fn write(&self, header: MessageHeader, body: &[u8]) {
        let mut frame = Vec::<u8>::from(header);
        frame.extend_from_slice(body);
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = (&self.stream).write_all(&frame) {
            // containerd closed the connection (restarting, or done with the task), or stopped
            // reading (WRITE_TIMEOUT): a message cut short leaves the stream unusable, so the
            // connection ends and the loop drops it; containerd dials again.
            debug!("write a response: {e}");
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }
}

/// A connection as the event loop reads it.
struct Connection {
    client: Arc<Client>,
    /// Bytes read that do not yet make a whole message.
    pending: Vec<u8>,
}

impl Connection {
    fn new(stream: UnixStream) -> Connection {
        // A writer is a worker or the exit matcher: a client that stops reading must not hold
        // it for ever.
        if let Err(e) = stream.set_write_timeout(Some(WRITE_TIMEOUT)) {
            error!("a new connection: {e}");
        }
        Connection {
            client: Arc::new(Client {
                stream,
                writing: Mutex::default(),
            }),
            pending: Vec::new(),
        }
    }

    /// Read what has arrived and dispatch each whole request. False when the connection is over.
    /// The socket stays blocking for the writers; reads never wait (MSG_DONTWAIT).
    fn read(&mut self, server: &Server) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let fd = self.client.stream.as_raw_fd();
        match recv(fd, &mut chunk, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => return false,
            Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => return true,
            Err(e) => {
                debug!("read a request: {e}");
                return false;
            }
        }
        while self.pending.len() >= MESSAGE_HEADER_LENGTH {
            let header = MessageHeader::from(&self.pending[..MESSAGE_HEADER_LENGTH]);
            let length = header.length as usize;
            if length > MESSAGE_LENGTH_MAX {
                error!("a message of {length} bytes: closing the connection");
                return false;
            }
            let end = MESSAGE_HEADER_LENGTH + length;
            if self.pending.len() < end {
                break;
            }
            server.dispatch(
                &self.client,
                header,
                &self.pending[MESSAGE_HEADER_LENGTH..end],
            );
            self.pending.drain(..end);
        }
        true
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run requests.
#[derive(Default)]
struct Workers {
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Workers waiting for a job.
    idle: usize,
}

impl Workers {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `job` on an idle worker, or on a new one when every idle worker has a job waiting.
    fn run(self: &Arc<Self>, job: Job) {
        let mut queue = self.queue();
        queue.jobs.push_back(job);
        if queue.jobs.len() <= queue.idle {
            self.ready.notify_one();
            return;
        }
        drop(queue);
        let workers = self.clone();
        let spawned = thread::Builder::new()
            .name("worker".into())
            .spawn(move || workers.work());
        if let Err(e) = spawned {
            error!("start a worker: {e}; running the request on the event loop");
            let job = self.queue().jobs.pop_front();
            if let Some(job) = job {
                job();
            }
        }
    }

    fn work(&self) {
        let mut queue = self.queue();
        loop {
            if let Some(job) = queue.jobs.pop_front() {
                drop(queue);
                job();
                queue = self.queue();
                continue;
            }
            queue.idle += 1;
            let (woken, waited) = self
                .ready
                .wait_timeout(queue, IDLE)
                .unwrap_or_else(|e| e.into_inner());
            queue = woken;
            queue.idle -= 1;
            if waited.timed_out() && queue.jobs.is_empty() {
                return;
            }
        }
    }
}
