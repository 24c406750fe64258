//! demail-imap-proxy: passes IMAP between clients and Dovecot unchanged and adds the De-Mail
//! evidence as read-only virtual folders, seen only by the logins entitled to them.
//!
//! Every byte a client or Dovecot sends is forwarded as it came, framed (lines and literals,
//! bounded) but not re-encoded; the proxy decodes only the commands it acts on: the login
//! (to learn who is logged in), ID (one merged ID before login carries the client's address),
//! LIST/LSUB/STATUS (to add the virtual folders), commands naming a virtual folder, and every
//! command while one is selected (answered by the proxy from the evidence store).

pub mod capability;
mod daemon;
mod folders;
mod framing;
/// Entry points for the fuzz targets in `fuzz/` (not an API).
#[doc(hidden)]
pub mod fuzzing;
pub mod mailbox;
pub mod metrics;
pub mod mutf7;
pub mod net;
pub mod render;
mod sequence;
mod session;
mod token;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

use demail_policy::{Config, ImapProxySettings};
use openssl::ssl::SslAcceptor;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

pub use daemon::daemon;
pub use folders::Namespace;
pub use mailbox::{MailboxError, Mailboxes};

/// How a listener meets its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    /// IMAPS: TLS from the first byte (993).
    Implicit,
    /// IMAP with STARTTLS (143).
    Starttls,
}

pub struct Listener {
    pub kind: ListenerKind,
    pub socket: TcpListener,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the configuration has no [imap_proxy] section")]
    NotConfigured,
    #[error("{0}")]
    Net(#[from] net::NetError),
    #[error("{0}")]
    Mailbox(#[from] MailboxError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// What every session of one proxy process shares. The configuration can be replaced at run
/// time (SIGHUP); a session keeps the snapshot it started with.
pub struct Shared {
    config: RwLock<Arc<Config>>,
    tls: RwLock<Arc<SslAcceptor>>,
    mailboxes: Arc<Mailboxes>,
    counts: Mutex<Counts>,
    metrics: Arc<metrics::Metrics>,
}

#[derive(Default)]
struct Counts {
    per_ip: HashMap<IpAddr, u64>,
    per_login: HashMap<String, u64>,
}

impl Shared {
    pub fn new(config: Arc<Config>) -> Result<Arc<Shared>, ProxyError> {
        let settings = config
            .imap_proxy
            .as_ref()
            .ok_or(ProxyError::NotConfigured)?;
        let tls = net::acceptor(&settings.certificate, &settings.key)?;
        let mailboxes = Mailboxes::open(config.clone(), &settings.state)?;
        Ok(Arc::new(Shared {
            config: RwLock::new(config),
            tls: RwLock::new(Arc::new(tls)),
            mailboxes: Arc::new(mailboxes),
            counts: Mutex::new(Counts::default()),
            metrics: Arc::default(),
        }))
    }

    /// What the metrics endpoint shows.
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.metrics.clone()
    }

    /// Takes a new configuration: the folders' visibility and the certificate at once,
    /// everything else for sessions that start from now on. What cannot change at run time
    /// (listeners, the state file, the evidence store) the caller has put back to the running
    /// values ([`demail_policy::reloadable`]).
    pub fn reload(&self, config: Arc<Config>) -> Result<(), ProxyError> {
        let settings = config
            .imap_proxy
            .as_ref()
            .ok_or(ProxyError::NotConfigured)?;
        let tls = net::acceptor(&settings.certificate, &settings.key)?;
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tls);
        self.mailboxes().reconfigure(config.clone());
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// The folder model (one per process and state file).
    pub fn mailboxes(&self) -> Arc<Mailboxes> {
        self.mailboxes.clone()
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn settings(config: &Config) -> &ImapProxySettings {
        config
            .imap_proxy
            .as_ref()
            .expect("Shared::new checked [imap_proxy]")
    }

    fn acceptor(&self) -> Arc<SslAcceptor> {
        self.tls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts a connection from `ip`; `false` when it is one too many.
    fn admit_ip(&self, ip: IpAddr, max: u64) -> bool {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.per_ip.entry(ip).or_default();
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    fn release_ip(&self, ip: IpAddr) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&ip);
            }
        }
    }

    /// Logged-in sessions of `login` now.
    fn login_count(&self, login: &str) -> u64 {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.per_login.get(login).copied().unwrap_or(0)
    }

    fn add_login(&self, login: &str) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.per_login.entry(login.to_string()).or_default() += 1;
    }

    fn release_login(&self, login: &str) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = c.per_login.get_mut(login) {
            *n -= 1;
            if *n == 0 {
                c.per_login.remove(login);
            }
        }
    }

    /// Open client connections (for tests and metrics).
    pub fn connections(&self) -> u64 {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.per_ip.values().sum()
    }
}

/// Binds the listeners `[imap_proxy]` names.
pub async fn bind(settings: &ImapProxySettings) -> Result<Vec<Listener>, ProxyError> {
    let mut out = Vec::new();
    for (addr, kind) in [
        (&settings.listen_imaps, ListenerKind::Implicit),
        (&settings.listen_imap, ListenerKind::Starttls),
    ] {
        if let Some(addr) = addr {
            let socket = TcpListener::bind(addr)
                .await
                .map_err(|source| ProxyError::Io {
                    what: format!("cannot listen on {addr}"),
                    source,
                })?;
            out.push(Listener { kind, socket });
        }
    }
    Ok(out)
}

/// Serves the listeners until `shutdown` turns true; then stops accepting and returns
/// (sessions in progress end with a `BYE`).
pub async fn run(
    shared: Arc<Shared>,
    listeners: Vec<Listener>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ProxyError> {
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(accept_loop(shared, l, shutdown));
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            warn!("listener task ended: {e}");
        }
    }
    Ok(())
}

async fn accept_loop(shared: Arc<Shared>, l: Listener, mut shutdown: watch::Receiver<bool>) {
    let local = l.socket.local_addr().ok();
    info!(
        "listening on {} ({})",
        local.map(|a| a.to_string()).unwrap_or_default(),
        match l.kind {
            ListenerKind::Implicit => "IMAPS",
            ListenerKind::Starttls => "IMAP with STARTTLS",
        }
    );
    loop {
        tokio::select! {
            r = l.socket.accept() => match r {
                Ok((tcp, peer)) => {
                    let shared = shared.clone();
                    let shutdown = shutdown.clone();
                    // The listener's own address (not the one the client reached) decides.
                    let listen = local.unwrap_or(peer);
                    tokio::spawn(session::serve(shared, l.kind, tcp, peer, listen, shutdown));
                }
                Err(e) => {
                    warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}

/// The listener address decides whether plaintext login is allowed there (policy).
fn plaintext_login(kind: ListenerKind, local: SocketAddr) -> bool {
    kind == ListenerKind::Starttls && demail_policy::listener::plaintext_login_allowed(&local)
}
