//! Shared test helpers: a test PKI and config in a tempdir, and a tiny SMTP client over
//! real TLS (openssl SslConnector) that presents the gateway's client certificate.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use demail_provider_sim::pki::TestPki;
use demail_provider_sim::{SimConfig, TlsMode};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslStream};
use tempfile::TempDir;

pub const SENDER: &str = "info@magdeburg.de-mail.de";
pub const RCPT: &str = "buerger@example.de-mail.de";

pub struct Fixture {
    pub dir: TempDir,
    pub pki: TestPki,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::generate(&dir.path().join("pki")).expect("test PKI");
        Fixture { dir, pki }
    }

    pub fn config(&self, tls: TlsMode) -> SimConfig {
        SimConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls,
            server_cert: self.pki.server_cert.clone(),
            server_key: self.pki.server_key.clone(),
            client_ca: self.pki.ca_cert.clone(),
            auth: None,
            accounts: vec![SENDER.into(), "Wohngeld@Magdeburg.de-mail.de".into()],
            demail_domains: vec!["*.de-mail.de".into(), "demail.provider.example".into()],
            store_dir: self.dir.path().join("store"),
            max_message_size: 64 * 1024,
        }
    }

    pub fn client_identity(&self) -> Identity {
        Identity {
            cert: self.pki.client_cert.clone(),
            key: self.pki.client_key.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A message from the city's gateway as Postfix would relay it (CRLF line ends).
pub fn message(extra_headers: &str, body: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Landeshauptstadt Magdeburg <{SENDER}>\nTo: <{RCPT}>\nSubject: Bescheid\n\
         Message-ID: <20261123.1@magdeburg.example>\n"
    );
    for line in extra_headers.lines() {
        m.push_str(line);
        m.push('\n');
    }
    m.push('\n');
    m.push_str(body);
    m.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
    Switching,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Switching => Ok(0),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Switching => Ok(0),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Switching => Ok(()),
        }
    }
}

/// A reply: code and the text lines (without `NNN-`/`NNN `).
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn first(&self) -> String {
        format!("{} {}", self.code, self.lines.first().map_or("", |s| s))
    }
}

pub struct Client {
    reader: BufReader<Stream>,
    ca: PathBuf,
}

fn connector(ca: &Path, identity: Option<&Identity>) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    b.set_ca_file(ca).expect("ca");
    if let Some(id) = identity {
        b.set_certificate_chain_file(&id.cert).expect("client cert");
        b.set_private_key_file(&id.key, SslFiletype::PEM)
            .expect("client key");
    }
    b.build()
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

impl Client {
    /// SMTPS: TLS on connect (server verified against `ca` as `localhost`), then the greeting.
    pub fn implicit(
        addr: SocketAddr,
        ca: &Path,
        identity: Option<&Identity>,
    ) -> Result<Client, String> {
        let tls = connector(ca, identity)
            .connect("localhost", tcp(addr))
            .map_err(|e| format!("handshake: {e}"))?;
        let mut c = Client {
            reader: BufReader::new(Stream::Tls(Box::new(tls))),
            ca: ca.to_path_buf(),
        };
        // With TLS 1.3 a refused client certificate shows up on the first read.
        let greeting = c.read_reply().map_err(|e| format!("greeting: {e}"))?;
        if greeting.code != 220 {
            return Err(format!("greeting: {}", greeting.first()));
        }
        Ok(c)
    }

    /// Plain connection (for STARTTLS), greeting read.
    pub fn plain(addr: SocketAddr, ca: &Path) -> Client {
        let mut c = Client {
            reader: BufReader::new(Stream::Plain(tcp(addr))),
            ca: ca.to_path_buf(),
        };
        let greeting = c.read_reply().expect("greeting");
        assert_eq!(greeting.code, 220, "{greeting:?}");
        c
    }

    /// STARTTLS and the handshake; the greeting is not repeated (RFC 3207).
    pub fn starttls(&mut self, identity: Option<&Identity>) -> Result<(), String> {
        self.starttls_with(b"", identity)
    }

    /// STARTTLS with `injected` plain text sent in the same write (an injection attempt).
    pub fn starttls_with(
        &mut self,
        injected: &[u8],
        identity: Option<&Identity>,
    ) -> Result<(), String> {
        let mut wire = b"STARTTLS\r\n".to_vec();
        wire.extend_from_slice(injected);
        self.write_raw(&wire);
        let r = self.read_reply()?;
        if r.code != 220 {
            return Err(r.first());
        }
        let stream = std::mem::replace(self.reader.get_mut(), Stream::Switching);
        let Stream::Plain(tcp) = stream else {
            return Err("already TLS".into());
        };
        let tls = connector(&self.ca, identity)
            .connect("localhost", tcp)
            .map_err(|e| format!("handshake: {e}"))?;
        *self.reader.get_mut() = Stream::Tls(Box::new(tls));
        Ok(())
    }

    pub fn read_reply(&mut self) -> Result<Reply, String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("bad reply line {line:?}"))?;
            lines.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, lines });
            }
        }
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        let s = self.reader.get_mut();
        s.write_all(bytes).expect("write");
        s.flush().expect("flush");
    }

    pub fn cmd(&mut self, line: &str) -> Reply {
        self.write_raw(format!("{line}\r\n").as_bytes());
        self.read_reply().expect("reply")
    }

    /// DATA, the dot-stuffed message, the final dot; returns the end-of-data reply.
    pub fn data(&mut self, message: &[u8]) -> Reply {
        let r = self.cmd("DATA");
        assert_eq!(r.code, 354, "{r:?}");
        let mut wire = Vec::new();
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        if !wire.ends_with(b"\r\n") {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        self.write_raw(&wire);
        self.read_reply().expect("end-of-data reply")
    }

    /// EHLO, MAIL, RCPTs and DATA; panics unless the envelope is accepted.
    pub fn send(&mut self, from: &str, rcpts: &[&str], message: &[u8]) -> Reply {
        let r = self.cmd("EHLO gateway.magdeburg.example");
        assert_eq!(r.code, 250, "{r:?}");
        self.envelope_and_data(from, rcpts, message)
    }

    pub fn envelope_and_data(&mut self, from: &str, rcpts: &[&str], message: &[u8]) -> Reply {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert_eq!(r.code, 250, "{r:?}");
        for rcpt in rcpts {
            let r = self.cmd(&format!("RCPT TO:<{rcpt}>"));
            assert_eq!(r.code, 250, "{r:?}");
        }
        self.data(message)
    }
}

/// SHA-256 of the client certificate's DER, as the simulator reports it.
pub fn cert_sha256(pem: &Path) -> String {
    let cert = openssl::x509::X509::from_pem(&std::fs::read(pem).expect("read")).expect("pem");
    hex::encode(
        cert.digest(openssl::hash::MessageDigest::sha256())
            .expect("digest"),
    )
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(data))
}

/// Polls `cond` until it holds or 10 s pass (server-side bookkeeping after a failed
/// handshake can trail the client's view by a moment on a loaded machine).
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}
