//! One client connection: its Dovecot connection, the framing of both directions, and what the
//! proxy must know about the IMAP state to add the virtual folders (who is logged in, which
//! namespace, what is selected, which commands are in flight).
//!
//! One task per session; writes go through small bounded channels to one writer task per
//! socket, so a client that stops reading stalls only its own session, and the proxy never
//! holds more than a few chunks of Dovecot's answer for it.

pub(crate) mod auth;
pub(crate) mod classify;
pub(crate) mod list;
pub(crate) mod local;
mod prelogin;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use demail_policy::Config;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::capability::{self, ClientSide};
use crate::folders::{Layout, Namespace};
use crate::framing::{CHUNK, FrameError, Framer, Piece};
use crate::metrics::{Backend, Login};
use crate::net::{self, BoxIo};
use crate::{ListenerKind, Shared};

pub use local::Selected;

/// Messages the proxy keeps whole to decode (commands it acts on, LIST lines); larger ones
/// are only forwarded.
const KEEP_LIMIT: usize = 256 * 1024;
/// Dovecot's longest line (a SEARCH answer of a big mailbox is long, but not endless).
const UPSTREAM_MAX_LINE: usize = 64 * 1024 * 1024;
/// Without any byte from Dovecot for this long while a virtual folder keeps the client busy,
/// the proxy sends a NOOP so that Dovecot does not log the session out.
const BACKEND_KEEPALIVE: Duration = Duration::from_secs(240);
/// How often an IDLE in a virtual folder looks for new evidence.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// Before login a client gets this long (Dovecot's login timeout is 3 minutes).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn serve(
    shared: Arc<Shared>,
    kind: ListenerKind,
    tcp: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let config = shared.config();
    let settings = Shared::settings(&config).clone();
    let _ = tcp.set_nodelay(true);
    if !shared.admit_ip(peer.ip(), settings.limits.max_connections_per_ip) {
        let mut tcp = tcp;
        if kind == ListenerKind::Starttls {
            let _ = tcp
                .write_all(b"* BYE [UNAVAILABLE] Too many connections from your address\r\n")
                .await;
        }
        info!(%peer, "refused: too many connections from this address");
        shared.metrics.refused();
        return;
    }
    // Released however the session ends, a panic included.
    let _ip = Counted::Ip(shared.clone(), peer.ip());
    let _active = shared.metrics.session();
    let session_id = ulid::Ulid::new().to_string();
    let started = Instant::now();
    let mut ended = Ended::default();
    let outcome = run(
        shared.clone(),
        config,
        kind,
        tcp,
        peer,
        listen,
        &session_id,
        shutdown,
        &mut ended,
    )
    .await;
    let reason = match &outcome {
        Ok(()) if ended.logout => "logout",
        Ok(()) => "closed",
        Err(e) => e.as_str(),
    };
    // The one line per session: who, how long, how much, why it ended.
    info!(
        %peer,
        session = %session_id,
        login = ended.login.as_deref().unwrap_or("-"),
        duration = format!("{:.3}", started.elapsed().as_secs_f64()),
        bytes_in = ended.bytes_in,
        bytes_out = ended.bytes_out,
        reason,
        "session ended"
    );
}

/// What the session-end line reports of a session.
#[derive(Default)]
struct Ended {
    login: Option<String>,
    bytes_in: u64,
    bytes_out: u64,
    /// Dovecot said BYE (LOGOUT) before the connection closed.
    logout: bool,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    shared: Arc<Shared>,
    config: Arc<Config>,
    kind: ListenerKind,
    tcp: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    session_id: &str,
    shutdown: watch::Receiver<bool>,
    ended: &mut Ended,
) -> Result<(), String> {
    let settings = Shared::settings(&config);
    let plaintext_login = crate::plaintext_login(kind, listen);
    let (mut client, mut tcp): (Option<BoxIo>, Option<TcpStream>) = match kind {
        ListenerKind::Implicit => (
            Some(
                net::accept_tls(&shared.acceptor(), tcp)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            None,
        ),
        ListenerKind::Starttls => (None, Some(tcp)),
    };
    let backend = match net::connect_backend(settings).await {
        Ok(b) => b,
        Err(e) => {
            warn!(%peer, "cannot reach Dovecot at {}: {e}", settings.backend);
            shared.metrics.backend_error(Backend::Connect);
            let bye = b"* BYE [UNAVAILABLE] The mail server is not reachable, try again later\r\n";
            let _ = match (client.as_mut(), tcp.as_mut()) {
                (Some(c), _) => c.write_all(bye).await,
                (None, Some(t)) => t.write_all(bye).await,
                (None, None) => Ok(()),
            };
            return Err(format!("backend: {e}"));
        }
    };
    let mut side = ClientSide {
        tls: kind == ListenerKind::Implicit,
        starttls_offered: kind == ListenerKind::Starttls,
        plaintext_login,
        binary: true,
    };
    let caps = backend.capabilities.clone();
    let greeting = format!(
        "* OK [CAPABILITY {}] {}\r\n",
        capability::filter(&caps, side),
        backend.greeting_text
    );
    match (client.as_mut(), tcp.as_mut()) {
        (Some(c), _) => c.write_all(greeting.as_bytes()).await,
        (None, Some(t)) => t.write_all(greeting.as_bytes()).await,
        (None, None) => Ok(()),
    }
    .map_err(|e| e.to_string())?;

    let limits = &settings.limits;
    let max_line = usize::try_from(limits.max_line_length).unwrap_or(usize::MAX);
    let mut cf = Framer::new(max_line, KEEP_LIMIT);
    // Before TLS on the STARTTLS port the proxy answers alone (CAPABILITY, NOOP, ID, STARTTLS,
    // LOGOUT); Dovecot sees nothing of it.
    let mut pre = prelogin::PreLogin::default();
    let client: BoxIo = match (client, tcp) {
        (Some(c), _) => c,
        (None, None) => return Err("internal: no client socket".into()),
        (None, Some(mut tcp)) => {
            match prelogin::run(&mut tcp, &mut cf, &caps, side, &mut pre).await? {
                prelogin::Next::Tls => {
                    side.tls = true;
                    cf = Framer::new(max_line, KEEP_LIMIT);
                    net::accept_tls(&shared.acceptor(), tcp)
                        .await
                        .map_err(|e| e.to_string())?
                }
                prelogin::Next::Plain => Box::new(tcp),
                prelogin::Next::Done => return Ok(()),
            }
        }
    };

    let (client_rd, client_wr) = tokio::io::split(client);
    let (up_rd, up_wr) = tokio::io::split(backend.io);

    let mut s = Session {
        shared: shared.clone(),
        config: config.clone(),
        peer,
        session_id: session_id.to_string(),
        side,
        upstream_caps: caps,
        to_client: tokio::sync::Mutex::new(Box::new(client_wr)),
        to_upstream: tokio::sync::Mutex::new(Box::new(up_wr)),
        out_client: std::sync::Mutex::new(Vec::new()),
        out_upstream: std::sync::Mutex::new(Vec::new()),
        cf,
        uf: Framer::new(UPSTREAM_MAX_LINE, KEEP_LIMIT),
        client_msg: None,
        up_msg: None,
        pending: VecDeque::new(),
        login: None,
        counted_login: None,
        namespace: None,
        layout: None,
        utf8: false,
        condstore: false,
        qresync: false,
        upstream_selected: false,
        selected: None,
        id_sent: false,
        client_id: pre.client_id.take(),
        hold: false,
        idle: None,
        internal_seq: 0,
        tag_nonce: session_id.chars().rev().take(10).collect(),
        last_client: Instant::now(),
        last_upstream: Instant::now(),
        closing: false,
        bye_seen: false,
        copy: None,
        deferred: None,
        bytes_in: pre.bytes_in,
        bytes_out: AtomicU64::new(0),
    };
    let r = s.main_loop(client_rd, up_rd, shutdown).await;
    // What was queued last (a BYE, an answer) still goes out.
    let _ = s.flush().await;
    ended.login = s.login.take();
    ended.bytes_in = s.bytes_in;
    ended.bytes_out = s.bytes_out.load(Relaxed);
    ended.logout = s.bye_seen;
    drop(s);
    r
}

/// A connection counted in [`Shared`], released on drop.
enum Counted {
    Ip(Arc<Shared>, std::net::IpAddr),
    Login(Arc<Shared>, String),
}

impl Drop for Counted {
    fn drop(&mut self) {
        match self {
            Counted::Ip(s, ip) => s.release_ip(*ip),
            Counted::Login(s, login) => s.release_login(login),
        }
    }
}

async fn write_out(
    w: &tokio::sync::Mutex<Box<dyn AsyncWrite + Unpin + Send>>,
    bytes: &[u8],
    who: &str,
) -> Result<(), String> {
    let mut w = w.lock().await;
    w.write_all(bytes)
        .await
        .map_err(|e| format!("{who}: {e}"))?;
    w.flush().await.map_err(|e| format!("{who}: {e}"))
}

/// A command sent to Dovecot whose tagged answer has not come yet.
#[derive(Debug)]
pub(crate) struct Pending {
    pub tag: Vec<u8>,
    pub kind: PendingKind,
}

#[derive(Debug)]
pub(crate) enum PendingKind {
    /// Nothing to learn from the answer.
    Plain,
    /// LOGIN or AUTHENTICATE: on OK, this login is logged in (`None`: a mechanism whose
    /// identity the proxy cannot read, so no virtual folders).
    Login(Option<String>),
    /// AUTHENTICATE: a client line is its response (forwarded raw) only while `asked`, i.e.
    /// after Dovecot's `+` and before the next response; otherwise the client waits, so a
    /// line Dovecot takes for a command is never taken for SASL data (or the reverse).
    Authenticate {
        plain: bool,
        user: Option<String>,
        asked: bool,
    },
    /// LIST or LSUB: the virtual folders are added before the tagged OK.
    List(list::Request),
    /// SELECT or EXAMINE of a real mailbox.
    Select,
    /// CLOSE or UNSELECT of a real mailbox.
    Deselect,
    /// IDLE on a real mailbox: once Dovecot's `+` came (`started`), the client's DONE goes
    /// through raw; after it, lines are commands again (a client may pipeline right after
    /// DONE). Before the `+` the client waits: Dovecot may refuse the IDLE, and then the next
    /// line is a command.
    Idle { started: bool, done: bool },
    /// ENABLE: `* ENABLED` says what is on.
    Enable,
    /// The proxy's own command; its answers stay with the proxy.
    Internal(Internal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Internal {
    Id,
    Namespace,
    Unselect,
    Noop,
    /// One APPEND of a COPY/MOVE out of a virtual folder.
    CopyAppend,
}

/// How the rest of the current client message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Forwarded as it arrives.
    Forward,
    /// Kept whole, then handled by the proxy.
    Collect,
    /// Read and dropped (a refused non-synchronising literal); then this answer.
    Discard,
}

pub(crate) struct ClientMsg {
    pub tag: Vec<u8>,
    pub name: String,
    pub route: Route,
    /// For `Discard`: the answer once the message is consumed.
    pub answer: Vec<u8>,
}

/// How the rest of the current Dovecot message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpRoute {
    Forward,
    /// Kept whole, then inspected (LIST/LSUB/STATUS lines that may name a virtual folder).
    Collect,
    Swallow,
}

/// A COPY/MOVE out of a virtual folder in progress: APPENDs upstream, then the answer.
pub(crate) struct CopyJob {
    pub tag: Vec<u8>,
    pub outstanding: usize,
    pub src_uids: Vec<u32>,
    pub dst_uids: Vec<u32>,
    pub uid_validity: Option<u32>,
    pub failure: Option<String>,
    /// MOVE: answered as one, though the evidence stays where it is.
    pub is_move: bool,
}

pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub config: Arc<Config>,
    pub peer: SocketAddr,
    pub session_id: String,
    pub side: ClientSide,
    pub upstream_caps: String,
    /// The sockets' write halves. Written from this task only (the lock is never contended):
    /// a client that stops reading stalls its own session and nothing else.
    to_client: tokio::sync::Mutex<Box<dyn AsyncWrite + Unpin + Send>>,
    to_upstream: tokio::sync::Mutex<Box<dyn AsyncWrite + Unpin + Send>>,
    out_client: std::sync::Mutex<Vec<u8>>,
    out_upstream: std::sync::Mutex<Vec<u8>>,
    pub cf: Framer,
    pub uf: Framer,
    pub client_msg: Option<ClientMsg>,
    up_msg: Option<UpRoute>,
    pub pending: VecDeque<Pending>,
    pub login: Option<String>,
    counted_login: Option<Counted>,
    pub namespace: Option<Namespace>,
    pub layout: Option<Layout>,
    pub utf8: bool,
    pub condstore: bool,
    pub qresync: bool,
    pub upstream_selected: bool,
    pub selected: Option<Selected>,
    pub id_sent: bool,
    pub client_id: Option<auth::IdFields>,
    /// Client input waits until every command in flight is answered.
    pub hold: bool,
    pub idle: Option<Vec<u8>>,
    internal_seq: u32,
    tag_nonce: String,
    last_client: Instant,
    last_upstream: Instant,
    closing: bool,
    bye_seen: bool,
    pub copy: Option<CopyJob>,
    /// A kept command waiting for the commands in flight.
    pub deferred: Option<(ClientMsg, Vec<u8>)>,
    /// Bytes from the client (from its first) and to it (after the greeting), for the
    /// session-end line.
    bytes_in: u64,
    bytes_out: AtomicU64,
}

impl Session {
    async fn main_loop(
        &mut self,
        mut client: impl AsyncRead + Unpin,
        mut upstream: impl AsyncRead + Unpin,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), String> {
        let mut cbuf = vec![0u8; CHUNK];
        let mut ubuf = vec![0u8; CHUNK];
        let idle_timeout = Shared::settings(&self.config).limits.idle_timeout;
        let mut tick = tokio::time::interval(IDLE_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // After Dovecot's BYE (LOGOUT) the session is over: nothing the client pipelined
            // behind it is served, virtual folders included.
            let serving = !self.hold && !self.bye_seen;
            if serving && let Some((msg, bytes)) = self.deferred.take() {
                classify::run_collected(self, &msg, &bytes).await?;
            }
            // Work through what the client sent already before reading more.
            if serving {
                self.drain_client().await?;
            }
            self.flush().await?;
            if self.closing {
                return Ok(());
            }
            let reading_client = !self.hold && !self.bye_seen;
            tokio::select! {
                r = client.read(&mut cbuf), if reading_client => {
                    let n = r.map_err(|e| format!("client: {e}"))?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.bytes_in += n as u64;
                    self.last_client = Instant::now();
                    self.cf.push(&cbuf[..n]);
                }
                r = upstream.read(&mut ubuf) => {
                    let n = r.map_err(|e| {
                        self.shared.metrics.backend_error(Backend::Read);
                        format!("Dovecot: {e}")
                    })?;
                    if n == 0 {
                        if self.bye_seen {
                            return Ok(());
                        }
                        self.shared.metrics.backend_error(Backend::Closed);
                        self.send(b"* BYE The mail server closed the connection\r\n".to_vec()).await?;
                        return Err("Dovecot closed the connection".into());
                    }
                    self.last_upstream = Instant::now();
                    self.uf.push(&ubuf[..n]);
                    self.drain_upstream().await?;
                }
                _ = tick.tick() => {
                    let limit = if self.login.is_some() { idle_timeout } else { LOGIN_TIMEOUT.min(idle_timeout) };
                    if self.last_client.elapsed() > limit {
                        self.send(b"* BYE Autologout; idle for too long\r\n".to_vec()).await?;
                        return Err("idle timeout".into());
                    }
                    if self.idle.is_some() {
                        self.idle_poll().await?;
                    }
                    if self.selected.is_some()
                        && self.pending.is_empty()
                        && self.last_upstream.elapsed() > BACKEND_KEEPALIVE
                    {
                        self.last_upstream = Instant::now();
                        self.internal(Internal::Noop, b"NOOP\r\n").await?;
                    }
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        self.send(b"* BYE Server shutting down\r\n".to_vec()).await?;
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Queues bytes for the client; they leave in chunks of up to [`CHUNK`] bytes, at the
    /// latest when the session next waits for input.
    pub async fn send(&self, bytes: Vec<u8>) -> Result<(), String> {
        let full = {
            let mut out = self.out_client.lock().unwrap_or_else(|e| e.into_inner());
            out.extend_from_slice(&bytes);
            (out.len() >= CHUNK).then(|| std::mem::take(&mut *out))
        };
        match full {
            Some(chunk) => write_out(&self.to_client, &chunk, "client").await,
            None => Ok(()),
        }
    }

    pub async fn send_up(&self, bytes: Vec<u8>) -> Result<(), String> {
        let full = {
            let mut out = self.out_upstream.lock().unwrap_or_else(|e| e.into_inner());
            out.extend_from_slice(&bytes);
            (out.len() >= CHUNK).then(|| std::mem::take(&mut *out))
        };
        match full {
            Some(chunk) => write_out(&self.to_upstream, &chunk, "Dovecot").await,
            None => Ok(()),
        }
    }

    /// Writes everything queued.
    async fn flush(&self) -> Result<(), String> {
        let u = std::mem::take(&mut *self.out_upstream.lock().unwrap_or_else(|e| e.into_inner()));
        if !u.is_empty() {
            write_out(&self.to_upstream, &u, "Dovecot").await?;
        }
        let c = std::mem::take(&mut *self.out_client.lock().unwrap_or_else(|e| e.into_inner()));
        if !c.is_empty() {
            self.bytes_out.fetch_add(c.len() as u64, Relaxed);
            write_out(&self.to_client, &c, "client").await?;
        }
        Ok(())
    }

    /// Sends a command of the proxy's own to Dovecot (`line` without tag).
    pub async fn internal(&mut self, what: Internal, line: &[u8]) -> Result<(), String> {
        self.internal_seq += 1;
        // Unguessable, so no client command can share a tag with the proxy's own.
        let tag = format!("dmpx{}.{}", self.tag_nonce, self.internal_seq).into_bytes();
        let mut cmd = tag.clone();
        cmd.push(b' ');
        cmd.extend_from_slice(line);
        self.pending.push_back(Pending {
            tag,
            kind: PendingKind::Internal(what),
        });
        self.send_up(cmd).await
    }

    /// Answers the client with a tagged status line.
    pub async fn reply(&self, tag: &[u8], status: &str) -> Result<(), String> {
        let mut v = tag.to_vec();
        v.push(b' ');
        v.extend_from_slice(status.as_bytes());
        v.extend_from_slice(b"\r\n");
        self.send(v).await
    }

    // ----- client -> Dovecot -----

    async fn drain_client(&mut self) -> Result<(), String> {
        while !self.hold && !self.closing && !self.bye_seen {
            let piece = match self.cf.next() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(()),
                Err(FrameError::LineTooLong(max)) => {
                    self.send(
                        format!("* BYE Line too long (more than {max} bytes)\r\n").into_bytes(),
                    )
                    .await?;
                    return Err("line too long".into());
                }
            };
            self.client_piece(piece).await?;
        }
        Ok(())
    }

    async fn client_piece(&mut self, piece: Piece) -> Result<(), String> {
        match piece {
            Piece::Line {
                bytes,
                first: true,
                literal,
            } => {
                if self.continuation_data(&bytes).await? {
                    return Ok(());
                }
                self.client_msg = None;
                if let Some((len, sync)) = literal {
                    let name = crate::token::head(&bytes).map(|h| h.1).unwrap_or_default();
                    if let Some(why) = self.literal_refusal(len, &bytes, &name) {
                        return self.refuse_literal(&bytes, sync, why).await;
                    }
                }
                let msg = classify::first_line(self, &bytes).await?;
                self.start_message(msg, &bytes, literal).await?;
            }
            Piece::Line {
                bytes,
                first: false,
                literal,
            } => {
                if let Some((len, sync)) = literal {
                    let (name, forwarded) = match &self.client_msg {
                        Some(m) => (m.name.clone(), m.route == Route::Forward),
                        None => (String::new(), false),
                    };
                    if let Some(why) = self.literal_refusal(len, &bytes, &name) {
                        // Part of a forwarded message is with Dovecot already: it cannot be
                        // ended cleanly, only the connection can.
                        return self.refuse_literal(&bytes, sync && !forwarded, why).await;
                    }
                }
                self.continue_message(&bytes, literal).await?;
            }
            Piece::Literal { bytes, .. } => {
                self.continue_message(&bytes, None).await?;
            }
        }
        if self.cf.at_message_start() {
            self.finish_message().await?;
        }
        Ok(())
    }

    /// Lines that are not commands: the client's SASL responses while AUTHENTICATE runs, the
    /// DONE of an IDLE. Returns whether the line was taken as such.
    async fn continuation_data(&mut self, line: &[u8]) -> Result<bool, String> {
        if let Some(tag) = self.idle.clone() {
            // IDLE in a virtual folder: only DONE ends it.
            self.idle = None;
            if trim(line).eq_ignore_ascii_case(b"DONE") {
                self.reply(&tag, "OK Idle completed.").await?;
            } else {
                self.reply(&tag, "BAD Expected DONE.").await?;
            }
            return Ok(true);
        }
        let Some(last) = self.pending.back_mut() else {
            return Ok(false);
        };
        match &mut last.kind {
            PendingKind::Authenticate { plain, user, asked } if *asked => {
                if *plain {
                    *user = auth::plain_identity(trim(line));
                }
                // The next line waits for Dovecot's next `+` or its tagged answer.
                *asked = false;
                self.hold = true;
                self.send_up(line.to_vec()).await?;
                Ok(true)
            }
            PendingKind::Idle {
                started: true,
                done,
            } if !*done => {
                *done = true;
                self.send_up(line.to_vec()).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Why a literal announced at the end of `line` (of command `name`) is refused: where
    /// Dovecot would not read it as one, the proxy must not frame it as one either.
    fn literal_refusal(&self, len: u32, line: &[u8], name: &str) -> Option<String> {
        let max = Shared::settings(&self.config).limits.max_literal_size;
        if u64::from(len) > max {
            return Some(format!(
                "BAD [TOOBIG] Literal of {len} bytes is larger than the limit of {max} bytes."
            ));
        }
        let open = line.iter().rposition(|&b| b == b'{');
        if open.is_some_and(|i| i > 0 && line[i - 1] == b'~') && name != "APPEND" {
            // Dovecot takes literal8 only in APPEND; elsewhere it skips the line and would
            // read the literal's bytes as commands.
            return Some("BAD literal8 (~{N}) is only taken in APPEND.".into());
        }
        None
    }

    async fn refuse_literal(&mut self, line: &[u8], sync: bool, why: String) -> Result<(), String> {
        let tag = match (&self.client_msg, crate::token::head(line)) {
            (Some(m), _) if !self.cf.at_message_start() => m.tag.clone(),
            (_, Some((t, _))) => t,
            _ => b"*".to_vec(),
        };
        if sync {
            // The client waits for our go-ahead, which never comes: the next line is a new command.
            self.cf.refuse_literal();
            self.client_msg = None;
            return self.reply(&tag, &why).await;
        }
        // A non-synchronising literal is on its way; it cannot be skipped safely.
        self.send(format!("* BYE {}\r\n", why.trim_start_matches("BAD ")).into_bytes())
            .await?;
        self.closing = true;
        Ok(())
    }

    async fn start_message(
        &mut self,
        msg: ClientMsg,
        line: &[u8],
        literal: Option<(u32, bool)>,
    ) -> Result<(), String> {
        match msg.route {
            Route::Forward => self.send_up(line.to_vec()).await?,
            Route::Collect => {
                if let Some((len, true)) = literal {
                    if len as usize > KEEP_LIMIT / 2 {
                        let tag = msg.tag.clone();
                        self.cf.refuse_literal();
                        return self
                            .reply(&tag, "BAD [TOOBIG] Literal too large for this command.")
                            .await;
                    }
                    self.send(b"+ OK\r\n".to_vec()).await?;
                }
            }
            Route::Discard => {
                if let Some((_, true)) = literal {
                    // Refuse now instead of asking for data that would be thrown away.
                    let answer = msg.answer.clone();
                    self.cf.refuse_literal();
                    return self.send(answer).await;
                }
            }
        }
        self.client_msg = Some(msg);
        Ok(())
    }

    async fn continue_message(
        &mut self,
        bytes: &[u8],
        literal: Option<(u32, bool)>,
    ) -> Result<(), String> {
        let Some(msg) = &self.client_msg else {
            // The rest of a message whose start was refused: nothing to do.
            return Ok(());
        };
        match msg.route {
            Route::Forward => self.send_up(bytes.to_vec()).await,
            Route::Collect => {
                if let Some((len, true)) = literal {
                    if len as usize > KEEP_LIMIT / 2 {
                        let tag = msg.tag.clone();
                        self.cf.refuse_literal();
                        self.client_msg = None;
                        return self
                            .reply(&tag, "BAD [TOOBIG] Literal too large for this command.")
                            .await;
                    }
                    self.send(b"+ OK\r\n".to_vec()).await?;
                }
                Ok(())
            }
            Route::Discard => Ok(()),
        }
    }

    async fn finish_message(&mut self) -> Result<(), String> {
        let Some(msg) = self.client_msg.take() else {
            return Ok(());
        };
        match msg.route {
            Route::Forward => classify::forwarded(self, &msg).await,
            Route::Collect => {
                let Some(bytes) = self.cf.kept().map(<[u8]>::to_vec) else {
                    return self.reply(&msg.tag, "BAD [TOOBIG] Command too long.").await;
                };
                classify::collected(self, &msg, &bytes).await
            }
            Route::Discard => self.send(msg.answer).await,
        }
    }

    // ----- Dovecot -> client -----

    async fn drain_upstream(&mut self) -> Result<(), String> {
        loop {
            let piece = match self.uf.next() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(()),
                Err(FrameError::LineTooLong(_)) => {
                    return Err("Dovecot sent an endless line".into());
                }
            };
            self.upstream_piece(piece).await?;
            if self.closing {
                return Ok(());
            }
        }
    }

    async fn upstream_piece(&mut self, piece: Piece) -> Result<(), String> {
        match piece {
            Piece::Line {
                bytes, first: true, ..
            } => {
                let route = self.upstream_first_line(&bytes).await?;
                self.up_msg = Some(route);
                if route != UpRoute::Collect {
                    self.uf.stop_keeping();
                }
                if route == UpRoute::Forward {
                    self.send(bytes).await?;
                }
            }
            Piece::Line { bytes, .. } | Piece::Literal { bytes, .. } => {
                if self.up_msg == Some(UpRoute::Forward) {
                    self.send(bytes).await?;
                }
            }
        }
        if self.uf.at_message_start() {
            let route = self.up_msg.take();
            if route == Some(UpRoute::Collect) {
                match self.uf.kept().map(<[u8]>::to_vec) {
                    Some(msg) => {
                        if list::keep_upstream_line(self, &msg) {
                            self.send(msg).await?;
                        }
                    }
                    None => warn!("a LIST answer over {KEEP_LIMIT} bytes was dropped"),
                }
            }
            if self.hold && self.pending.is_empty() && self.copy.is_none() {
                self.hold = false;
            }
        }
        Ok(())
    }

    /// Decides what happens to a message from Dovecot by its first line, acting on tagged
    /// answers.
    async fn upstream_first_line(&mut self, line: &[u8]) -> Result<UpRoute, String> {
        if line.starts_with(b"+") {
            // A continuation: the client's (AUTHENTICATE, IDLE, literals) unless the proxy's own.
            // AUTHENTICATE and IDLE go out with nothing else in flight and the client waiting,
            // so this `+` is theirs: the client's next line is their data.
            return Ok(match self.pending.back_mut().map(|p| &mut p.kind) {
                Some(PendingKind::Internal(_)) => UpRoute::Swallow,
                Some(PendingKind::Authenticate { asked, .. }) => {
                    *asked = true;
                    self.hold = false;
                    UpRoute::Forward
                }
                Some(PendingKind::Idle { started, done }) if !*started && !*done => {
                    *started = true;
                    self.hold = false;
                    UpRoute::Forward
                }
                _ => UpRoute::Forward,
            });
        }
        if let Some(rest) = line.strip_prefix(b"* ") {
            return self.untagged(rest, line).await;
        }
        let tag_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let tag = &line[..tag_end];
        let Some(pos) = self.pending.iter().position(|p| p.tag == tag) else {
            return Ok(UpRoute::Forward);
        };
        let p = self.pending.remove(pos).expect("position is valid");
        let status = line[tag_end..].trim_ascii_start();
        let ok = status.len() >= 2 && status[..2].eq_ignore_ascii_case(b"OK");
        self.tagged(p, ok, line).await
    }

    async fn untagged(&mut self, rest: &[u8], line: &[u8]) -> Result<UpRoute, String> {
        let word_end = rest
            .iter()
            .position(|&b| b == b' ' || b == b'\r')
            .unwrap_or(rest.len());
        let word = String::from_utf8_lossy(&rest[..word_end]).to_ascii_uppercase();
        let front = match self.pending.front() {
            Some(Pending {
                kind: PendingKind::Internal(what),
                ..
            }) => Some(*what),
            _ => None,
        };
        // The proxy's ID and NAMESPACE answers are its own; UNSELECT, the keepalive NOOP and the
        // APPENDs of a copy run while a virtual folder is (being) selected, so nothing Dovecot
        // says meanwhile concerns the client's view.
        let internal = match front {
            Some(Internal::Id) => word == "ID",
            Some(Internal::Namespace) => word == "NAMESPACE",
            Some(Internal::Unselect | Internal::Noop | Internal::CopyAppend) => true,
            None => false,
        };
        let mailbox_data = word.bytes().all(|b| b.is_ascii_digit()) || word == "VANISHED";
        if self.selected.is_some() && mailbox_data {
            // Dovecot has no mailbox selected for this client now: such data would describe a
            // mailbox the client no longer looks at.
            return Ok(UpRoute::Swallow);
        }
        match word.as_str() {
            "BYE" => {
                self.closing_after_bye();
                return Ok(UpRoute::Forward);
            }
            "CAPABILITY" | "OK" | "NO" | "BAD" | "PREAUTH" => {
                if let Some(new) = capability::rewrite_line(line, self.side) {
                    if internal {
                        return Ok(UpRoute::Swallow);
                    }
                    self.send(new).await?;
                    return Ok(UpRoute::Swallow);
                }
            }
            "NAMESPACE" => {
                if let Some(ns) = list::personal_namespace(line) {
                    self.namespace = Some(ns);
                }
            }
            "ENABLED" => {
                let text = String::from_utf8_lossy(rest).to_ascii_uppercase();
                for cap in text.split_whitespace().skip(1) {
                    match cap {
                        "UTF8=ACCEPT" | "UTF8=ONLY" | "IMAP4REV2" => self.utf8 = true,
                        "CONDSTORE" => self.condstore = true,
                        "QRESYNC" => {
                            self.condstore = true;
                            self.qresync = true;
                        }
                        _ => {}
                    }
                }
            }
            "LIST" | "LSUB" | "STATUS" if self.layout.is_some() && !internal => {
                return Ok(UpRoute::Collect);
            }
            _ => {}
        }
        Ok(if internal {
            UpRoute::Swallow
        } else {
            UpRoute::Forward
        })
    }

    /// Dovecot says goodbye (LOGOUT, shutdown): the client gets its BYE, and the session ends
    /// when Dovecot closes, without a second one.
    fn closing_after_bye(&mut self) {
        self.bye_seen = true;
    }

    async fn tagged(&mut self, p: Pending, ok: bool, line: &[u8]) -> Result<UpRoute, String> {
        match p.kind {
            PendingKind::Internal(what) => {
                self.internal_done(what, ok, line).await?;
                return Ok(UpRoute::Swallow);
            }
            PendingKind::Login(user) | PendingKind::Authenticate { user, .. } if ok => {
                if let Some(u) = &user
                    && !self.login_allowed(u)
                {
                    debug!(peer = %self.peer, session = %self.session_id, "refused: too many sessions for this login");
                    self.shared.metrics.login(Login::Refused);
                    self.reply(
                        &p.tag,
                        "NO [LIMIT] Too many sessions for this login; close another one first.",
                    )
                    .await?;
                    self.internal(Internal::Noop, b"LOGOUT\r\n").await?;
                    self.closing = true;
                    return Ok(UpRoute::Swallow);
                }
                // STARTTLS is a command of the not-authenticated state (RFC 9051 6.2.1): the
                // tagged OK's capabilities and any later CAPABILITY no longer offer it.
                self.side.starttls_offered = false;
                self.shared.metrics.login(Login::Ok);
                self.logged_in(user).await?;
            }
            PendingKind::Login(_) | PendingKind::Authenticate { .. } => {
                self.shared.metrics.login(Login::Failed);
            }
            PendingKind::List(req) if ok => {
                for l in list::virtual_lines(self, &req).await? {
                    self.send(l).await?;
                }
            }
            PendingKind::Select => {
                // A failed SELECT leaves no mailbox selected either (RFC 9051 6.3.2).
                self.upstream_selected = ok;
            }
            PendingKind::Deselect if ok => self.upstream_selected = false,
            PendingKind::Enable | PendingKind::Idle { .. } | PendingKind::Plain => {}
            PendingKind::List(_) | PendingKind::Deselect => {}
        }
        if let Some(new) = capability::rewrite_line(line, self.side) {
            self.send(new).await?;
            return Ok(UpRoute::Swallow);
        }
        Ok(UpRoute::Forward)
    }

    async fn logged_in(&mut self, user: Option<String>) -> Result<(), String> {
        let Some(user) = user else {
            debug!(peer = %self.peer, session = %self.session_id, "logged in with a mechanism the proxy cannot read: no De-Mail folders");
            return Ok(());
        };
        let login = demail_policy::login_key(&user);
        debug!(peer = %self.peer, session = %self.session_id, login = %login, "logged in");
        self.shared.add_login(&login);
        self.counted_login = Some(Counted::Login(self.shared.clone(), login.clone()));
        self.login = Some(login);
        // The namespace decides where the folders go; the client waits for it.
        self.hold = true;
        self.internal(Internal::Namespace, b"NAMESPACE\r\n").await
    }

    async fn internal_done(&mut self, what: Internal, ok: bool, line: &[u8]) -> Result<(), String> {
        match what {
            Internal::Namespace => {
                let ns = self.namespace.clone().unwrap_or(Namespace {
                    prefix: String::new(),
                    delimiter: Some('/'),
                });
                let names = &Shared::settings(&self.config).folders;
                self.layout = Some(Layout::new(names, &ns));
            }
            Internal::Unselect => {
                if ok {
                    self.upstream_selected = false;
                }
            }
            Internal::CopyAppend => local::copy_append_done(self, ok, line).await?,
            Internal::Id | Internal::Noop => {}
        }
        Ok(())
    }

    /// Whether this login may open another session.
    pub fn login_allowed(&self, user: &str) -> bool {
        let login = demail_policy::login_key(user);
        let max = Shared::settings(&self.config)
            .limits
            .max_connections_per_login;
        self.shared.login_count(&login) < max
    }

    async fn idle_poll(&mut self) -> Result<(), String> {
        local::refresh(self, false).await
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}
