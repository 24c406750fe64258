//! Test harness: the milter in-process on 127.0.0.1:0 with a configuration and an evidence
//! store in a temporary directory, driven over the real milter protocol by indymilter-test.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::ffi::CString;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use demail_evidence::{Digest, Store, Submission};
use demail_policy::Config;
use indymilter_test::{EomAction, EomActions, MacroStage, Status, TestConnection};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Two tenants: a public body (Magdeburg, two accounts) and a private company.
pub const CONFIG: &str = r#"
[gateway]
host = "gateway.provider.example"
port = 465
tls = "implicit"
client_certificate = "tls/client.pem"
client_key = "tls/client.key"
provider_ca = "tls/ca.pem"
domains = ["*.de-mail.de", "demail.provider.example"]
max_message_size = "MAXSIZE"

[inbound]
provider_service = "demail-in"
poststelle = ["poststelle@magdeburg.example"]

[evidence]
database = "EVIDENCE/evidence.sqlite"
blobs = "BLOBS"

[milter]
listen = "inet:127.0.0.1:0"

[[tenant]]
name = "Landeshauptstadt Magdeburg"
public_body = true
internal_domains = ["magdeburg.example"]

  [[tenant.account]]
  address = "info@magdeburg.de-mail.de"
  deliver_to = ["poststelle@magdeburg.example"]
  senders = ["*@magdeburg.example"]
  default_options = ["dispatch", "receipt"]

  [[tenant.account]]
  address = "wohngeld@magdeburg.de-mail.de"
  deliver_to = ["wohngeld@magdeburg.example"]
  senders = ["sasl:wohngeld-*"]
  default_options = ["dispatch"]
  reply_to_clerk = true

[[tenant]]
name = "Hausverwaltung Müller GmbH"
internal_domains = ["hv.example"]

  [[tenant.account]]
  address = "info@demail.provider.example"
  deliver_to = ["info@hv.example"]
  senders = ["*@hv.example"]
"#;

pub struct Milter {
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub config: Arc<Config>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

pub struct Options<'a> {
    pub max_size: &'a str,
    /// Blob directory relative to the temp dir.
    pub blobs: &'a str,
    /// TOML appended to the configuration (e.g. a `[trust]` table); `TMP` is the temp dir.
    pub extra: &'a str,
    /// Keys added to the `[inbound]` table (e.g. `deliver_confirmations`).
    pub inbound: &'a str,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            max_size: "20MiB",
            blobs: "evidence/blobs",
            extra: "",
            inbound: "",
        }
    }
}

impl Milter {
    pub async fn start() -> Milter {
        Milter::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options<'_>) -> Milter {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("tls")).expect("tls dir");
        std::fs::create_dir(dir.path().join("evidence")).expect("evidence dir");
        // The policy checks that TLS files exist; the milter never reads them.
        for f in ["client.pem", "client.key", "ca.pem"] {
            std::fs::write(dir.path().join("tls").join(f), "test material\n").expect("tls file");
        }
        let text = format!(
            "{CONFIG}\n{}",
            opts.extra.replace("TMP", &dir.path().display().to_string())
        );
        let text = text
            .replace("MAXSIZE", opts.max_size)
            .replacen(
                "poststelle = [\"poststelle@magdeburg.example\"]\n",
                &format!(
                    "poststelle = [\"poststelle@magdeburg.example\"]\n{}\n",
                    opts.inbound
                ),
                1,
            )
            .replace(
                "EVIDENCE",
                &dir.path().join("evidence").display().to_string(),
            )
            .replace("BLOBS", &dir.path().join(opts.blobs).display().to_string());
        let config = match Config::parse(&text, &dir.path().join("demail.toml")) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("test configuration rejected:\n{e}"),
        };
        let listener = demail_milter::bind(&config.milter.listen)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("tcp address");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(demail_milter::run(listener, Arc::clone(&config), async {
            let _ = rx.await;
        }));
        Milter {
            addr,
            dir,
            config,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub async fn open(&self) -> TestConnection {
        TestConnection::configure()
            .read_timeout(Duration::from_secs(30))
            .write_timeout(Duration::from_secs(30))
            .exact_leading_space(true)
            .open_tcp(self.addr)
            .await
            .expect("open milter connection")
    }

    /// The evidence store as the milter configured it.
    pub fn store(&self) -> Store {
        Store::open_at(&self.config.evidence.database, &self.config.evidence.blobs)
            .expect("open evidence store")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("milter task").expect("milter run");
        }
    }
}

/// One SMTP transaction as Postfix would present it to the milter.
#[derive(Clone)]
pub struct Mail {
    pub daemon: String,
    pub queue_id: String,
    pub sender: String,
    pub sasl: Option<String>,
    pub rcpts: Vec<String>,
    /// (name, value exactly as after the colon, leading space included, LF folding).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Mail {
    pub fn new(sender: &str, rcpts: &[&str]) -> Mail {
        Mail {
            daemon: "submission".into(),
            queue_id: "4XyZ1234Q".into(),
            sender: sender.into(),
            sasl: None,
            rcpts: rcpts.iter().map(|r| r.to_string()).collect(),
            headers: vec![
                ("From".into(), format!(" Erika Muster <{sender}>")),
                (
                    "To".into(),
                    format!(" <{}>", rcpts.first().copied().unwrap_or("")),
                ),
                ("Subject".into(), " Test".into()),
                (
                    "Message-ID".into(),
                    " <test-1@client.magdeburg.example>".into(),
                ),
                ("Date".into(), " Mon, 24 Nov 2025 10:00:00 +0100".into()),
            ],
            body: b"Sehr geehrte Damen und Herren,\r\n\r\nanbei der Bescheid.\r\n".to_vec(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Mail {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn set_header(mut self, name: &str, value: &str) -> Mail {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Mail {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// The message as the milter receives it (all fields, CRLF): its SHA-256 is the origin key.
    pub fn received_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.push(b':');
            out.extend_from_slice(crlf(v).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// The envelope (addresses as Postfix passes them, brackets stripped and lower-cased)
    /// and the bytes as received.
    pub fn origin_key(&self) -> Digest {
        let rcpts: Vec<String> = self.rcpts.iter().map(|r| r.to_lowercase()).collect();
        let mut key = demail_evidence::OriginKey::new(&self.sender, self.sasl.as_deref(), &rcpts);
        key.update(&self.received_bytes());
        key.finish()
    }
}

fn crlf(v: &str) -> String {
    v.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Status of each step, for the assertions.
pub struct Outcome {
    pub connect: Status,
    pub mail: Status,
    pub rcpts: Vec<Status>,
    /// `None` when the transaction ended before DATA.
    pub data: Option<Status>,
    pub content: Option<Status>,
    pub eom: Option<(EomActions, Status)>,
}

impl Outcome {
    pub fn empty() -> Outcome {
        Outcome {
            connect: Status::Continue,
            mail: Status::Continue,
            rcpts: Vec::new(),
            data: None,
            content: None,
            eom: None,
        }
    }
}

/// Connect, HELO and the envelope; then DATA and the content while the milter says continue.
pub async fn transact(conn: &mut TestConnection, mail: &Mail) -> Outcome {
    conn.macros(
        MacroStage::Connect,
        [
            ("{daemon_name}", mail.daemon.as_str()),
            ("{client_addr}", "192.0.2.10"),
            ("j", "mx.magdeburg.example"),
        ],
    )
    .await
    .expect("connect macros");
    let connect = conn
        .connect("client.magdeburg.example", [192, 0, 2, 10])
        .await
        .expect("connect");
    let mut out = Outcome {
        connect: connect.clone(),
        mail: Status::Continue,
        rcpts: Vec::new(),
        data: None,
        content: None,
        eom: None,
    };
    if !goes_on(&connect) {
        return out;
    }
    let helo = conn.helo("client.magdeburg.example").await.expect("helo");
    assert!(goes_on(&helo), "{helo:?}");
    envelope(conn, mail, &mut out).await;
    out
}

/// Whether the transaction goes on after a stage: it continues, or the milter asked the MTA
/// not to wait for its answer (negotiated no-reply stages never refuse).
pub fn goes_on(status: &Status) -> bool {
    matches!(status, Status::Continue | Status::Noreply)
}

/// MAIL .. EOM of one transaction on an open connection (several per connection are allowed).
pub async fn envelope(conn: &mut TestConnection, mail: &Mail, out: &mut Outcome) {
    let mut macros = vec![
        ("i", mail.queue_id.clone()),
        ("{mail_addr}", mail.sender.clone()),
    ];
    if let Some(s) = &mail.sasl {
        macros.push(("{auth_authen}", s.clone()));
    }
    conn.macros(MacroStage::Mail, macros)
        .await
        .expect("mail macros");
    out.mail = conn
        .mail([format!("<{}>", mail.sender)])
        .await
        .expect("mail");
    assert_eq!(out.mail, Status::Continue);
    let mut accepted = 0;
    out.rcpts.clear();
    for r in &mail.rcpts {
        let s = conn.rcpt([format!("<{r}>")]).await.expect("rcpt");
        if s == Status::Continue {
            accepted += 1;
        }
        out.rcpts.push(s);
    }
    if accepted == 0 {
        conn.abort().await.expect("abort");
        return;
    }
    let data = conn.data().await.expect("data");
    out.data = Some(data.clone());
    if data != Status::Continue {
        return;
    }
    conn.macros(MacroStage::Eoh, [("i", mail.queue_id.as_str())])
        .await
        .expect("eoh macros");
    for (n, v) in &mail.headers {
        let s = conn.header(n.as_str(), v.as_str()).await.expect("header");
        if !goes_on(&s) {
            out.content = Some(s);
            return;
        }
    }
    let s = conn.eoh().await.expect("eoh");
    if s != Status::Continue {
        out.content = Some(s);
        return;
    }
    if !mail.body.is_empty() {
        let s = conn.body(mail.body.clone()).await.expect("body");
        if s != Status::Continue {
            out.content = Some(s);
            return;
        }
    }
    conn.macros(MacroStage::Eom, [("i", mail.queue_id.as_str())])
        .await
        .expect("eom macros");
    out.eom = Some(conn.eom().await.expect("eom"));
}

/// Applies the milter's requests the way Postfix's cleanup does (cleanup_milter.c): a change
/// or delete names the n-th field of that name among the received fields still present; an
/// add appends. Then renders what the `demail-send` transport sends: CRLF, no `Received` field,
/// no route field (its `smtp_header_checks` drop both).
pub fn postfix_result(mail: &Mail, actions: &EomActions) -> Vec<u8> {
    struct F {
        name: String,
        value: String,
        received: bool,
        alive: bool,
    }
    let mut fields: Vec<F> = mail
        .headers
        .iter()
        .map(|(n, v)| F {
            name: n.clone(),
            value: v.clone(),
            received: true,
            alive: true,
        })
        .collect();
    let text = |c: &CString| c.to_str().expect("utf-8 in test").to_string();
    for a in &actions.actions {
        match a {
            EomAction::ChangeHeader { name, index, value } => {
                let name = text(name);
                let target = fields
                    .iter_mut()
                    .filter(|f| f.received && f.alive && f.name.eq_ignore_ascii_case(&name))
                    .nth((*index as usize).saturating_sub(1));
                match target {
                    Some(f) => {
                        f.name = name;
                        f.value = text(value);
                    }
                    None => fields.push(F {
                        name,
                        value: text(value),
                        received: false,
                        alive: true,
                    }),
                }
            }
            EomAction::DeleteHeader { name, index } => {
                let name = text(name);
                if let Some(f) = fields
                    .iter_mut()
                    .filter(|f| f.received && f.alive && f.name.eq_ignore_ascii_case(&name))
                    .nth((*index as usize).saturating_sub(1))
                {
                    f.alive = false;
                }
            }
            EomAction::AddHeader { name, value } => fields.push(F {
                name: text(name),
                value: text(value),
                received: false,
                alive: true,
            }),
            EomAction::ChangeSender { .. } => {}
            other => panic!("unexpected action {other:?}"),
        }
    }
    // The route field comes last, after every field the record covers.
    if let Some(pos) = actions.actions.iter().position(
        |a| matches!(a, EomAction::AddHeader { name, .. } if name.to_str() == Ok("X-DeMail-Route")),
    ) {
        assert_eq!(pos + 1, actions.actions.len(), "route field not last");
    }
    let mut out = Vec::new();
    for f in fields.iter().filter(|f| {
        f.alive
            && !f.name.eq_ignore_ascii_case("Received")
            && !f.name.eq_ignore_ascii_case("X-DeMail-Route")
    }) {
        out.extend_from_slice(f.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(crlf(&f.value).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&mail.body);
    out
}

/// The value of the one added field called `name` (leading space removed).
pub fn added(actions: &EomActions, name: &str) -> Option<String> {
    let mut found = actions.actions.iter().filter_map(|a| match a {
        EomAction::AddHeader { name: n, value } if n.to_str().ok() == Some(name) => {
            Some(value.to_string_lossy().trim_start().to_string())
        }
        _ => None,
    });
    let first = found.next();
    assert!(found.next().is_none(), "{name} added more than once");
    first
}

/// The reply text of a rejection, as a string.
pub fn reply(status: &Status) -> String {
    match status {
        Status::Reject { message: Some(m) } | Status::Tempfail { message: Some(m) } => {
            m.to_string_lossy().into_owned()
        }
        other => panic!("expected a rejection with a reply, got {other:?}"),
    }
}

/// The submission recorded for `mail`, if any.
pub fn recorded(milter: &Milter, mail: &Mail) -> Option<Submission> {
    milter
        .store()
        .submission_by_origin_key(&mail.origin_key())
        .expect("lookup by origin key")
}

/// Every submission in the store.
pub fn submissions(milter: &Milter) -> Vec<Submission> {
    milter
        .store()
        .list(None, None, 1000)
        .expect("list submissions")
}
