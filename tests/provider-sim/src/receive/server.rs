//! The listener, one thread per connection, and the shared record of what happened.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use openssl::ssl::SslAcceptor;

use super::{Accepted, Rejection, RunOptions, Stage, session, store};
use crate::config::{SimConfig, TlsMode};
use crate::send::{
    ConfirmationKind, ControlServer, Dispatched, Forge, InboundSpec, Outgoing, Provider, SendError,
    Target, Worker,
};
use crate::tls;

/// State shared by the listener and the connection threads.
pub(crate) struct Shared {
    pub cfg: SimConfig,
    pub limits: super::Limits,
    pub acceptor: SslAcceptor,
    log: bool,
    stopping: AtomicBool,
    accepted: Mutex<Vec<Accepted>>,
    accepted_cv: Condvar,
    rejected: Mutex<Vec<Rejection>>,
    next_id: AtomicU64,
    conns: Mutex<ConnTable>,
    /// The sending side, when configured.
    worker: Option<Worker>,
}

#[derive(Default)]
struct ConnTable {
    next: u64,
    /// Clones of the live sockets, so `stop` can shut them down.
    live: HashMap<u64, TcpStream>,
    handles: Vec<JoinHandle<()>>,
}

/// A lock that survives a panicked holder: the data (lists of results) stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn log(&self, args: fmt::Arguments<'_>) {
        if self.log {
            eprintln!("demail-provider-sim: {args}");
        }
    }

    pub(crate) fn record_rejection(&self, stage: Stage, reply: &str, peer: SocketAddr) {
        self.log(format_args!("{peer}: rejected at {stage:?}: {reply}"));
        lock(&self.rejected).push(Rejection {
            stage,
            reply: reply.to_string(),
            peer,
        });
    }

    /// Numbers are taken only for messages that are stored, so files have no gaps.
    pub(crate) fn allocate_id(&self) -> String {
        store::id_string(self.next_id.fetch_add(1, Ordering::SeqCst))
    }

    pub(crate) fn record_accepted(&self, accepted: Accepted) {
        self.log(format_args!(
            "{}: accepted from=<{}> to=<{}> size={} sha256={} client=\"{}\"",
            accepted.id,
            accepted.mail_from,
            accepted.rcpts.join(">,<"),
            accepted.data.len(),
            accepted.sha256,
            accepted.client_cert_subject
        ));
        if let Some(w) = &self.worker {
            w.accepted(&accepted);
        }
        lock(&self.accepted).push(accepted);
        self.accepted_cv.notify_all();
    }
}

/// A running simulated provider gateway. Dropping it stops it too.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener_thread: Option<JoinHandle<()>>,
    control: Option<ControlServer>,
}

impl Simulator {
    /// Validates `cfg`, loads the TLS files, binds, and returns once the port is listening.
    pub fn start(cfg: SimConfig) -> io::Result<Simulator> {
        Self::start_with(cfg, RunOptions::default())
    }

    /// [`Simulator::start`] with explicit limits and logging.
    pub fn start_with(mut cfg: SimConfig, opts: RunOptions) -> io::Result<Simulator> {
        for a in &mut cfg.accounts {
            *a = a.trim().to_lowercase();
        }
        for d in &mut cfg.demail_domains {
            *d = d.trim().to_lowercase();
        }
        cfg.validate().map_err(|(key, msg)| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("simulator configuration: {key}: {msg}"),
            )
        })?;
        let acceptor = tls::acceptor(&cfg)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        std::fs::create_dir_all(&cfg.store_dir).map_err(|e| with_path(e, &cfg.store_dir))?;
        let next_id = store::next_id(&cfg.store_dir).map_err(|e| with_path(e, &cfg.store_dir))?;
        let worker = match opts.send.clone() {
            Some(send) => {
                let mut provider = Provider::new(send, cfg.demail_domains.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                provider.set_log(opts.log_to_stderr);
                Some(Worker::start(provider)?)
            }
            None => None,
        };
        let listener = TcpListener::bind(cfg.listen)
            .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", cfg.listen)))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            cfg,
            limits: opts.limits,
            acceptor,
            log: opts.log_to_stderr,
            stopping: AtomicBool::new(false),
            accepted: Mutex::new(Vec::new()),
            accepted_cv: Condvar::new(),
            rejected: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(next_id),
            conns: Mutex::new(ConnTable::default()),
            worker,
        });
        let control = match opts.send.as_ref().and_then(|s| s.control) {
            Some(listen) => {
                let for_control = Arc::clone(&shared);
                let retrieve = move |id: &str| match &for_control.worker {
                    Some(w) => w.retrieve(id),
                    None => Err(SendError::NotConfigured),
                };
                Some(ControlServer::start(listen, Arc::new(retrieve))?)
            }
            None => None,
        };
        let for_thread = Arc::clone(&shared);
        let listener_thread = thread::Builder::new()
            .name("sim-listener".into())
            .spawn(move || accept_loop(&listener, &for_thread))?;
        shared.log(format_args!(
            "listening on {addr} ({:?} TLS, store {})",
            shared.cfg.tls,
            shared.cfg.store_dir.display()
        ));
        Ok(Simulator {
            addr,
            shared,
            listener_thread: Some(listener_thread),
            control,
        })
    }

    /// The bound address (with the real port when `listen` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration in effect (accounts and domains in lower case).
    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// Messages accepted so far, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        lock(&self.shared.accepted).clone()
    }

    /// Waits until at least `n` messages were accepted or `timeout` passed; returns what there is.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Accepted> {
        let deadline = Instant::now() + timeout;
        let mut got = lock(&self.shared.accepted);
        while got.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            got = match self.shared.accepted_cv.wait_timeout(got, deadline - now) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        got.clone()
    }

    /// Every 4xx/5xx reply sent and every failed TLS handshake, in order.
    pub fn rejected(&self) -> Vec<Rejection> {
        lock(&self.shared.rejected).clone()
    }

    /// The sending side, when configured ([`RunOptions::send`]).
    pub fn provider(&self) -> Option<&Provider> {
        self.shared.worker.as_ref().map(Worker::provider)
    }

    fn worker(&self) -> Result<&Worker, SendError> {
        self.shared.worker.as_ref().ok_or(SendError::NotConfigured)
    }

    /// The recipient of `id` (an `X-de-mail-message-id` or `X-de-mail-private-id`) logs in:
    /// the Abholbestätigung(s), sent after everything queued before.
    pub fn retrieve(&self, id: &str) -> Result<Vec<Outgoing>, SendError> {
        self.worker()?.retrieve(id)
    }

    /// Sends an inbound De-Mail to the city (now, from the caller's thread).
    pub fn inject(&self, spec: &InboundSpec) -> Result<Outgoing, SendError> {
        self.worker()?.provider().inject(spec)
    }

    /// A confirmation about `id`, forged as `forge` says and sent to `target` (default: the
    /// configured `deliver_to`).
    pub fn forge_confirmation(
        &self,
        id: &str,
        kind: ConfirmationKind,
        forge: Forge,
        target: Option<Target>,
    ) -> Result<Outgoing, SendError> {
        self.worker()?
            .provider()
            .forge_confirmation(id, kind, forge, target)
    }

    /// Messages sent to the city so far (confirmations, notifications, injections).
    pub fn sent(&self) -> Vec<Outgoing> {
        self.provider().map(Provider::sent).unwrap_or_default()
    }

    /// Waits until at least `n` messages were sent (or tried) or `timeout` passed.
    pub fn wait_sent(&self, n: usize, timeout: Duration) -> Vec<Outgoing> {
        self.provider()
            .map(|p| p.wait_sent(n, timeout))
            .unwrap_or_default()
    }

    /// The recipients' copies of accepted messages, with their `X-de-mail-message-id`s.
    pub fn dispatched(&self) -> Vec<Dispatched> {
        self.provider()
            .map(Provider::dispatched)
            .unwrap_or_default()
    }

    /// Waits until the confirmations of everything accepted so far have been sent.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.shared
            .worker
            .as_ref()
            .is_some_and(|w| w.flush(timeout))
    }

    /// The control port's address (`[send] control`), when it runs.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control.as_ref().map(ControlServer::addr)
    }

    /// Closes the listener and all open connections; the port can be bound again afterwards.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(listener_thread) = self.listener_thread.take() else {
            return;
        };
        self.control.take();
        self.shared.stopping.store(true, Ordering::SeqCst);
        // accept() has no timeout: wake it with a connection of our own.
        match TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_secs(2)) {
            Ok(_) => {
                let _ = listener_thread.join();
            }
            Err(e) => self
                .shared
                .log(format_args!("cannot wake the listener ({e}); leaving it")),
        }
        let handles = {
            let mut table = lock(&self.shared.conns);
            for stream in table.live.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut table.handles)
        };
        for h in handles {
            let _ = h.join();
        }
        // Confirmations already due are still sent.
        if let Some(w) = &self.shared.worker {
            w.stop();
        }
        self.shared.log(format_args!("stopped ({})", self.addr));
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn with_path(e: io::Error, path: &std::path::Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn wake_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        match incoming.and_then(|s| s.peer_addr().map(|p| (s, p))) {
            Ok((stream, peer)) => spawn_connection(stream, peer, shared),
            Err(e) => {
                shared.log(format_args!("accept: {e}"));
                // Out of descriptors and the like: do not spin.
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn spawn_connection(mut stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>) {
    let mut table = lock(&shared.conns);
    table.handles.retain(|h| !h.is_finished());
    if table.live.len() >= shared.limits.max_connections {
        drop(table);
        let reply = "421 4.7.0 Too many connections, try again later";
        // A plain-text reply would be garbage to a client expecting a TLS handshake.
        if shared.cfg.tls == TlsMode::Starttls {
            let _ = stream.write_all(format!("{reply}\r\n").as_bytes());
        }
        shared.record_rejection(Stage::Connect, reply, peer);
        return;
    }
    let clone = match stream.try_clone() {
        Ok(c) => c,
        Err(e) => {
            shared.log(format_args!("{peer}: cannot track the connection: {e}"));
            return;
        }
    };
    let id = table.next;
    table.next += 1;
    table.live.insert(id, clone);
    let for_thread = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("sim-conn-{id}"))
        .spawn(move || {
            session::run(stream, peer, &for_thread);
            lock(&for_thread.conns).live.remove(&id);
        });
    match spawned {
        Ok(h) => table.handles.push(h),
        Err(e) => {
            table.live.remove(&id);
            shared.log(format_args!("{peer}: cannot start a thread: {e}"));
        }
    }
}
