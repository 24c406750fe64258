//! One SMTP connection: greeting, EHLO, STARTTLS, AUTH, and mail transactions, with the
//! provider's envelope rules (known sender account, De-Mail recipients only).

use std::io::{self, Write};
use std::mem;
use std::net::{SocketAddr, TcpStream};

use openssl::hash::{MessageDigest, hash};
use openssl::ssl::{HandshakeError, SslStream};
use openssl::x509::X509VerifyResult;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::{self, AuthError};
use super::checks::{self, Refusal, printable};
use super::command::{self, Command, Param, SyntaxError};
use super::conn::{Conn, LineReader, LineStatus};
use super::server::Shared;
use super::store::{self, StoredRecord};
use super::{Accepted, Stage};
use crate::config::TlsMode;
use crate::tls;

/// The name the simulator uses in its greeting and replies.
pub(crate) const HOSTNAME: &str = "provider-sim.de-mail.test";

/// Longest SASL response line (base64 of user, password and NULs).
const MAX_SASL_LINE: usize = 12 * 1024;

pub(crate) fn run(stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let timeout = Some(shared.limits.command_timeout);
    let prepared = stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .and_then(|()| stream.set_nodelay(true));
    if let Err(e) = prepared {
        shared.log(format_args!("{peer}: cannot set up the socket: {e}"));
        return;
    }
    shared.log(format_args!("{peer}: connected"));
    let mut session = Session {
        shared,
        peer,
        conn: Conn::Plain(stream),
        reader: LineReader::new(),
        line: Vec::new(),
        tls: None,
        helo: None,
        esmtp: false,
        auth_user: None,
        auth_failures: 0,
        errors: 0,
        txn: None,
    };
    match session.serve() {
        Ok(()) => shared.log(format_args!("{peer}: disconnected")),
        Err(e) => shared.log(format_args!("{peer}: connection ended: {e}")),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

struct TlsInfo {
    subject: String,
    sha256: String,
    version: String,
    cipher: String,
}

struct Txn {
    mail_from: String,
    smtputf8: bool,
    rcpts: Vec<String>,
}

enum DataOutcome {
    Complete(Vec<u8>),
    TooBig,
    LineTooLong(usize),
    /// Far more than the size limit: answer and hang up rather than read on.
    Flood,
}

struct Session<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    conn: Conn,
    reader: LineReader,
    line: Vec<u8>,
    tls: Option<TlsInfo>,
    helo: Option<String>,
    esmtp: bool,
    auth_user: Option<String>,
    auth_failures: u32,
    errors: u32,
    txn: Option<Txn>,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn stage_of(line: &str) -> Stage {
    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
    match verb.as_str() {
        "EHLO" | "HELO" => Stage::Helo,
        "STARTTLS" => Stage::StartTls,
        "AUTH" => Stage::Auth,
        "MAIL" => Stage::Mail,
        "RCPT" => Stage::Rcpt,
        "DATA" => Stage::Data,
        _ => Stage::Other,
    }
}

impl Session<'_> {
    fn serve(&mut self) -> io::Result<()> {
        if self.shared.cfg.tls == TlsMode::Implicit && !self.start_tls()? {
            return Ok(());
        }
        self.reply(
            Stage::Other,
            &format!("220 {HOSTNAME} ESMTP De-Mail provider simulator"),
        )?;
        let limits = &self.shared.limits;
        loop {
            self.conn.set_read_timeout(limits.command_timeout)?;
            let status = match self.reader.read_line(
                &mut self.conn,
                &mut self.line,
                limits.max_command_line,
                limits.max_command_line * 16,
            ) {
                Ok(s) => s,
                Err(e) if is_timeout(&e) => {
                    self.reply(
                        Stage::Other,
                        &format!("421 4.4.2 {HOSTNAME} Error: timeout exceeded"),
                    )?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let flow = match status {
                LineStatus::Eof => return Ok(()),
                LineStatus::TooLong => self.reply(Stage::Other, "500 5.5.2 Line too long")?,
                LineStatus::Line => self.handle_line()?,
            };
            if flow == Flow::Close {
                return Ok(());
            }
            if self.errors >= limits.max_errors {
                self.reply(
                    Stage::Other,
                    &format!("421 4.7.0 {HOSTNAME} Error: too many errors"),
                )?;
                return Ok(());
            }
        }
    }

    /// Writes one reply line; 4xx/5xx replies are recorded as rejections, before they are
    /// sent, so a client that has read the reply finds it in [`crate::Simulator::rejected`].
    fn reply(&mut self, stage: Stage, line: &str) -> io::Result<Flow> {
        if line.starts_with('4') || line.starts_with('5') {
            self.errors += 1;
            self.shared.record_rejection(stage, line, self.peer);
        }
        self.conn.write_all(format!("{line}\r\n").as_bytes())?;
        self.conn.flush()?;
        Ok(if line.starts_with("421") {
            Flow::Close
        } else {
            Flow::Continue
        })
    }

    fn handle_line(&mut self) -> io::Result<Flow> {
        let Ok(text) = std::str::from_utf8(&self.line).map(str::to_string) else {
            return self.reply(Stage::Other, "500 5.5.2 Command is not valid UTF-8");
        };
        let cmd = match command::parse(&text) {
            Ok(c) => c,
            Err(SyntaxError(reply)) => return self.reply(stage_of(&text), reply),
        };
        match cmd {
            Command::Ehlo(domain) => self.hello(domain, true),
            Command::Helo(domain) => self.hello(domain, false),
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial),
            Command::Mail { path, params } => self.mail(path, &params),
            Command::Rcpt { path, params } => self.rcpt(path, &params),
            Command::Data => self.data(),
            Command::Rset => {
                self.txn = None;
                self.reply(Stage::Other, "250 2.0.0 Ok")
            }
            Command::Noop => self.reply(Stage::Other, "250 2.0.0 Ok"),
            Command::Quit => {
                self.reply(Stage::Other, "221 2.0.0 Bye")?;
                Ok(Flow::Close)
            }
            Command::Vrfy => self.reply(
                Stage::Other,
                "252 2.5.0 Cannot VRFY user, but will accept the message and attempt delivery",
            ),
            Command::Unknown => self.reply(Stage::Other, "500 5.5.2 Command unrecognized"),
        }
    }

    fn hello(&mut self, domain: String, esmtp: bool) -> io::Result<Flow> {
        self.shared.log(format_args!(
            "{}: {} {}",
            self.peer,
            if esmtp { "EHLO" } else { "HELO" },
            printable(domain.as_bytes())
        ));
        self.helo = Some(domain);
        self.esmtp = esmtp;
        self.txn = None;
        if !esmtp {
            return self.reply(Stage::Helo, &format!("250 {HOSTNAME}"));
        }
        let cfg = &self.shared.cfg;
        let mut lines = vec![
            HOSTNAME.to_string(),
            "PIPELINING".into(),
            format!("SIZE {}", cfg.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if cfg.tls == TlsMode::Starttls && self.tls.is_none() {
            lines.push("STARTTLS".into());
        }
        // AUTH only inside TLS: the password never travels in clear.
        if cfg.auth.is_some() && self.tls.is_some() && self.auth_user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let last = lines.len() - 1;
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            text.push_str(&format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }));
        }
        self.conn.write_all(text.as_bytes())?;
        self.conn.flush()?;
        Ok(Flow::Continue)
    }

    fn starttls(&mut self) -> io::Result<Flow> {
        if self.tls.is_some() {
            return self.reply(Stage::StartTls, "503 5.5.1 TLS already active");
        }
        if self.shared.cfg.tls != TlsMode::Starttls {
            return self.reply(Stage::StartTls, "502 5.5.1 STARTTLS not offered");
        }
        self.reply(Stage::StartTls, "220 2.0.0 Ready to start TLS")?;
        // Anything sent after STARTTLS in clear text must not be read as if it came over
        // TLS (the CVE-2011-0411 command injection).
        let injected = self.reader.discard_buffered();
        if injected > 0 {
            self.shared.log(format_args!(
                "{}: dropped {injected} octets pipelined after STARTTLS",
                self.peer
            ));
        }
        if !self.start_tls()? {
            return Ok(Flow::Close);
        }
        // RFC 3207 §4.2: the client starts over with EHLO.
        self.helo = None;
        self.esmtp = false;
        self.txn = None;
        self.auth_user = None;
        Ok(Flow::Continue)
    }

    /// The TLS handshake; a missing or foreign client certificate makes it fail. Returns
    /// whether TLS is up (a failure is recorded and the connection is to be closed).
    fn start_tls(&mut self) -> io::Result<bool> {
        let Conn::Plain(tcp) = mem::replace(&mut self.conn, Conn::Closed) else {
            return Ok(false);
        };
        match self.shared.acceptor.accept(tcp) {
            Ok(ssl) => match tls_info(&ssl) {
                Some(info) => {
                    self.shared.log(format_args!(
                        "{}: TLS {} {}, client \"{}\" sha256={}",
                        self.peer, info.version, info.cipher, info.subject, info.sha256
                    ));
                    self.tls = Some(info);
                    self.conn = Conn::Tls(Box::new(ssl));
                    Ok(true)
                }
                None => {
                    self.shared.record_rejection(
                        Stage::Tls,
                        "TLS handshake failed: no client certificate",
                        self.peer,
                    );
                    Ok(false)
                }
            },
            Err(e) => {
                let why = handshake_failure(e);
                self.shared.record_rejection(
                    Stage::Tls,
                    &format!("TLS handshake failed: {why}"),
                    self.peer,
                );
                Ok(false)
            }
        }
    }

    fn auth(&mut self, mechanism: &str, initial: Option<String>) -> io::Result<Flow> {
        let Some((want_user, want_pass)) = self.shared.cfg.auth.clone() else {
            return self.reply(Stage::Auth, "503 5.5.1 AUTH not offered");
        };
        let refusal = if self.tls.is_none() {
            Some("538 5.7.11 Encryption required for requested authentication mechanism")
        } else if !self.esmtp {
            Some("503 5.5.1 Send EHLO first")
        } else if self.auth_user.is_some() {
            Some("503 5.5.1 Already authenticated")
        } else if self.txn.is_some() {
            Some("503 5.5.1 AUTH not allowed during a mail transaction")
        } else {
            None
        };
        if let Some(r) = refusal {
            return self.reply(Stage::Auth, r);
        }
        let outcome = match mechanism {
            "PLAIN" => match self.sasl_response(initial, "")? {
                Ok(resp) => auth::decode_plain(&resp),
                Err(e) => Err(e),
            },
            "LOGIN" => self.login_exchange(initial)?,
            _ => {
                return self.reply(
                    Stage::Auth,
                    "504 5.5.4 Unrecognized authentication mechanism",
                );
            }
        };
        let failure = match outcome {
            Ok((user, pass))
                if auth::credentials_match((&user, &pass), (&want_user, &want_pass)) =>
            {
                self.shared.log(format_args!(
                    "{}: authenticated as {}",
                    self.peer,
                    printable(user.as_bytes())
                ));
                self.auth_user = Some(user);
                return self.reply(Stage::Auth, "235 2.7.0 Authentication successful");
            }
            Ok(_) => "535 5.7.8 Authentication credentials invalid",
            Err(AuthError(reply)) => reply,
        };
        self.auth_failures += 1;
        self.reply(Stage::Auth, failure)?;
        if self.auth_failures >= self.shared.limits.max_auth_failures {
            return self.reply(
                Stage::Auth,
                &format!("421 4.7.0 {HOSTNAME} Error: too many failed authentications"),
            );
        }
        Ok(Flow::Continue)
    }

    /// The client's response: the initial response if given, else after a `334` challenge.
    fn sasl_response(
        &mut self,
        initial: Option<String>,
        challenge_b64: &str,
    ) -> io::Result<Result<String, AuthError>> {
        if let Some(resp) = initial {
            return Ok(Ok(resp));
        }
        self.conn
            .write_all(format!("334 {challenge_b64}\r\n").as_bytes())?;
        self.conn.flush()?;
        let status = self.reader.read_line(
            &mut self.conn,
            &mut self.line,
            MAX_SASL_LINE,
            MAX_SASL_LINE * 4,
        )?;
        Ok(match status {
            LineStatus::Eof => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during AUTH",
                ));
            }
            LineStatus::TooLong => Err(AuthError(
                "500 5.5.6 Authentication exchange line is too long",
            )),
            LineStatus::Line if self.line == b"*" => {
                Err(AuthError("501 5.7.0 Authentication cancelled"))
            }
            LineStatus::Line => Ok(String::from_utf8_lossy(&self.line).into_owned()),
        })
    }

    fn login_exchange(
        &mut self,
        initial: Option<String>,
    ) -> io::Result<Result<(String, String), AuthError>> {
        let user = match self.sasl_response(initial, &auth::encode("Username:"))? {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let user = match auth::decode_text(&user) {
            Ok(u) => u,
            Err(e) => return Ok(Err(e)),
        };
        let pass = match self.sasl_response(None, &auth::encode("Password:"))? {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        Ok(auth::decode_text(&pass).map(|p| (user, p)))
    }

    /// The checks every envelope command shares, in RFC order; the reply if one fails.
    fn envelope_precondition(&self) -> Option<&'static str> {
        let cfg = &self.shared.cfg;
        if cfg.tls == TlsMode::Starttls && self.tls.is_none() {
            Some("530 5.7.0 Must issue a STARTTLS command first")
        } else if self.helo.is_none() {
            Some("503 5.5.1 Send EHLO or HELO first")
        } else if cfg.auth.is_some() && self.auth_user.is_none() {
            Some("530 5.7.0 Authentication required")
        } else {
            None
        }
    }

    fn mail(&mut self, path: String, params: &[Param]) -> io::Result<Flow> {
        if let Some(r) = self.envelope_precondition() {
            return self.reply(Stage::Mail, r);
        }
        if self.txn.is_some() {
            return self.reply(Stage::Mail, "503 5.5.1 Nested MAIL command");
        }
        let smtputf8 = match self.mail_params(params) {
            Ok(u) => u,
            Err(reply) => return self.reply(Stage::Mail, &reply),
        };
        if !path.is_ascii() && !smtputf8 {
            return self.reply(Stage::Mail, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
        }
        let known = self
            .shared
            .cfg
            .accounts
            .iter()
            .any(|a| *a == path.to_lowercase());
        if !known {
            let reply = format!(
                "550 5.7.1 <{}>: sender is not a De-Mail account of this gateway",
                printable(path.as_bytes())
            );
            return self.reply(Stage::Mail, &reply);
        }
        self.txn = Some(Txn {
            mail_from: path,
            smtputf8,
            rcpts: Vec::new(),
        });
        self.reply(Stage::Mail, "250 2.1.0 Ok")
    }

    /// Checks MAIL parameters; returns whether SMTPUTF8 was given.
    fn mail_params(&self, params: &[Param]) -> Result<bool, String> {
        let max = self.shared.cfg.max_message_size;
        let mut smtputf8 = false;
        for p in params {
            let value = p.value.as_deref();
            match (p.key.as_str(), value) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(n) if n > max => {
                        return Err(format!(
                            "552 5.3.4 Message size exceeds fixed maximum message size ({max})"
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => return Err("501 5.5.4 Bad SIZE parameter".into()),
                },
                ("BODY", Some(v))
                    if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") => {}
                ("BODY", _) => return Err("501 5.5.4 Unsupported BODY type".into()),
                ("SMTPUTF8", None) => smtputf8 = true,
                // RFC 4954 §5: AUTH=<mailbox> from an authenticated client; accepted, not used.
                ("AUTH", Some(_)) if self.auth_user.is_some() => {}
                _ => return Err(format!("555 5.5.4 Unsupported parameter {}", p.key)),
            }
        }
        Ok(smtputf8)
    }

    fn rcpt(&mut self, path: String, params: &[Param]) -> io::Result<Flow> {
        if let Some(r) = self.envelope_precondition() {
            return self.reply(Stage::Rcpt, r);
        }
        let cfg = &self.shared.cfg;
        let max_rcpts = self.shared.limits.max_recipients;
        let Some(txn) = self.txn.as_mut() else {
            return self.reply(Stage::Rcpt, "503 5.5.1 Need MAIL command");
        };
        let refusal = if let Some(p) = params.first() {
            Some(format!("555 5.5.4 Unsupported parameter {}", p.key))
        } else if txn.rcpts.len() >= max_rcpts {
            Some("452 4.5.3 Too many recipients".into())
        } else if !path.is_ascii() && !txn.smtputf8 {
            Some("553 5.6.7 Non-ASCII address requires SMTPUTF8".into())
        } else if !command::split_mailbox(&path)
            .is_some_and(|(_, domain)| command::is_demail_domain(&domain, &cfg.demail_domains))
        {
            Some(format!(
                "550 5.1.1 <{}>: not a De-Mail address (De-Mail is a closed network)",
                printable(path.as_bytes())
            ))
        } else {
            None
        };
        if let Some(r) = refusal {
            return self.reply(Stage::Rcpt, &r);
        }
        if !txn.rcpts.iter().any(|r| r.eq_ignore_ascii_case(&path)) {
            txn.rcpts.push(path);
        }
        self.reply(Stage::Rcpt, "250 2.1.5 Ok")
    }

    fn data(&mut self) -> io::Result<Flow> {
        if let Some(r) = self.envelope_precondition() {
            return self.reply(Stage::Data, r);
        }
        match &self.txn {
            None => return self.reply(Stage::Data, "503 5.5.1 Need MAIL command"),
            Some(t) if t.rcpts.is_empty() => {
                return self.reply(Stage::Data, "554 5.5.1 No valid recipients");
            }
            Some(_) => {}
        }
        self.reply(Stage::Data, "354 End data with <CR><LF>.<CR><LF>")?;
        let outcome = match self.receive_data() {
            Ok(o) => o,
            Err(e) if is_timeout(&e) => {
                self.txn = None;
                return self.reply(
                    Stage::EndOfData,
                    &format!("421 4.4.2 {HOSTNAME} Error: timeout exceeded"),
                );
            }
            Err(e) => return Err(e),
        };
        let Some(txn) = self.txn.take() else {
            return Ok(Flow::Close);
        };
        let max = self.shared.cfg.max_message_size;
        let too_big = format!("552 5.3.4 Message size exceeds fixed maximum message size ({max})");
        match outcome {
            DataOutcome::Complete(data) => self.finish(txn, data),
            DataOutcome::TooBig => self.reply(Stage::EndOfData, &too_big),
            DataOutcome::Flood => {
                self.reply(Stage::EndOfData, &too_big)?;
                Ok(Flow::Close)
            }
            DataOutcome::LineTooLong(n) => self.reply(
                Stage::EndOfData,
                &format!(
                    "554 5.6.0 Line {n} of the message is longer than {} octets",
                    self.shared.limits.max_data_line
                ),
            ),
        }
    }

    /// Reads the message up to the lone dot, unstuffing dots and normalising line ends to CRLF.
    fn receive_data(&mut self) -> io::Result<DataOutcome> {
        let limits = &self.shared.limits;
        self.conn.set_read_timeout(limits.data_timeout)?;
        let max = self.shared.cfg.max_message_size;
        let hard_cap = max.saturating_mul(4).max(max.saturating_add(1 << 20));
        let mut data = Vec::new();
        let mut wire: u64 = 0;
        let mut too_big = false;
        let mut long_line = None;
        for number in 1usize.. {
            let discard_cap = usize::try_from(hard_cap.saturating_sub(wire)).unwrap_or(usize::MAX);
            let status = match self.reader.read_line(
                &mut self.conn,
                &mut self.line,
                limits.max_data_line,
                discard_cap,
            ) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(DataOutcome::Flood),
                Err(e) => return Err(e),
            };
            match status {
                LineStatus::Eof => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during DATA",
                    ));
                }
                LineStatus::TooLong => {
                    long_line.get_or_insert(number);
                    wire = wire.saturating_add(limits.max_data_line as u64);
                }
                LineStatus::Line if self.line == b"." => break,
                LineStatus::Line => {
                    wire = wire.saturating_add(self.line.len() as u64 + 2);
                    let content = self.line.strip_prefix(b".").unwrap_or(&self.line);
                    if !too_big && (data.len() + content.len() + 2) as u64 > max {
                        too_big = true;
                        data = Vec::new();
                    }
                    if !too_big {
                        data.extend_from_slice(content);
                        data.extend_from_slice(b"\r\n");
                    }
                }
            }
            if wire > hard_cap {
                return Ok(DataOutcome::Flood);
            }
        }
        Ok(if too_big {
            DataOutcome::TooBig
        } else if let Some(n) = long_line {
            DataOutcome::LineTooLong(n)
        } else {
            DataOutcome::Complete(data)
        })
    }

    /// The end-of-data checks; on success the message is stored and recorded before the 250.
    fn finish(&mut self, txn: Txn, data: Vec<u8>) -> io::Result<Flow> {
        let facts = match checks::check_message(&data, &txn.mail_from) {
            Ok(f) => f,
            Err(Refusal(reply)) => return self.reply(Stage::EndOfData, &reply),
        };
        let sha256 = match hash(MessageDigest::sha256(), &data) {
            Ok(d) => hex::encode(&*d),
            Err(e) => {
                self.shared
                    .log(format_args!("{}: hashing failed: {e}", self.peer));
                return self.reply(Stage::EndOfData, "451 4.3.0 Local error in processing");
            }
        };
        let (subject, fingerprint, version, cipher) = match &self.tls {
            Some(t) => (
                t.subject.clone(),
                t.sha256.clone(),
                t.version.clone(),
                t.cipher.clone(),
            ),
            None => Default::default(),
        };
        let id = self.shared.allocate_id();
        let record = StoredRecord {
            id: id.clone(),
            received_at: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            peer: self.peer.to_string(),
            helo: self.helo.clone().unwrap_or_default(),
            mail_from: txn.mail_from.clone(),
            rcpts: txn.rcpts.clone(),
            size: data.len() as u64,
            sha256: sha256.clone(),
            client_cert_subject: subject.clone(),
            client_cert_sha256: fingerprint.clone(),
            tls_version: version,
            tls_cipher: cipher,
            auth_user: self.auth_user.clone(),
            message_id: facts.message_id.clone(),
            private_id: facts.private_id.clone(),
            subject: facts.subject.clone(),
            options: facts.options,
        };
        let (eml_path, json_path) = match store::write(&self.shared.cfg.store_dir, &data, &record) {
            Ok(paths) => paths,
            Err(e) => {
                self.shared.log(format_args!(
                    "{}: cannot store message {id}: {e}",
                    self.peer
                ));
                return self.reply(
                    Stage::EndOfData,
                    "451 4.3.0 Local error: cannot store the message",
                );
            }
        };
        self.shared.record_accepted(Accepted {
            id: id.clone(),
            mail_from: txn.mail_from,
            rcpts: txn.rcpts,
            data,
            sha256,
            client_cert_subject: subject,
            client_cert_sha256: fingerprint,
            eml_path,
            json_path,
            auth_user: self.auth_user.clone(),
            message_id: facts.message_id,
            private_id: facts.private_id,
            subject: facts.subject,
            options: facts.options,
        });
        self.reply(Stage::EndOfData, &format!("250 2.0.0 Ok: queued as {id}"))
    }
}

fn tls_info(ssl: &SslStream<TcpStream>) -> Option<TlsInfo> {
    let s = ssl.ssl();
    let cert = s.peer_certificate()?;
    Some(TlsInfo {
        subject: tls::subject_string(cert.subject_name()),
        sha256: tls::fingerprint(&cert),
        version: s.version_str().to_string(),
        cipher: s
            .current_cipher()
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
    })
}

fn handshake_failure(e: HandshakeError<TcpStream>) -> String {
    match e {
        HandshakeError::SetupFailure(stack) => format!("setup: {stack}"),
        HandshakeError::Failure(mid) | HandshakeError::WouldBlock(mid) => {
            let verify = mid.ssl().verify_result();
            let mut text = mid.error().to_string();
            if verify != X509VerifyResult::OK {
                text.push_str(&format!(" (client certificate: {})", verify.error_string()));
            }
            text
        }
    }
}
