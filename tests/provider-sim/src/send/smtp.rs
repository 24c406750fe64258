//! The provider's SMTP client: implicit TLS with its client certificate to the city's
//! `demail-in` (or plain SMTP, for forgeries sent to a public smtpd), retried like an MTA
//! retries: on connection errors and 4xx replies, not on 5xx.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslStream, SslVerifyMode};

use super::SendError;
use super::config::SendConfig;

const TIMEOUT: Duration = Duration::from_secs(30);
const HELO: &str = "mx.provider-sim.de-mail.test";

/// How to reach the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS on connect with the provider's client certificate (`demail-in`, TR-01201 style).
    ImplicitTls,
    /// No TLS at all (e.g. the city's public smtpd, to play an Internet sender).
    Plain,
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// The outcome of handing one message over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The end-of-data reply (`250 ...`), or the last failure in words.
    pub result: Result<String, String>,
    pub attempts: u32,
}

/// The TLS side of the client, built once from the configuration.
pub(crate) fn connector(cfg: &SendConfig) -> Result<SslConnector, SendError> {
    let file = |key: &'static str, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e: openssl::error::ErrorStack| SendError::File {
            key,
            path,
            reason: e.to_string(),
        }
    };
    let mut b = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| SendError::Tls(e.to_string()))?;
    b.set_certificate_chain_file(&cfg.tls_client_cert)
        .map_err(file("tls_client_cert", &cfg.tls_client_cert))?;
    b.set_private_key_file(&cfg.tls_client_key, SslFiletype::PEM)
        .map_err(file("tls_client_key", &cfg.tls_client_key))?;
    b.check_private_key()
        .map_err(file("tls_client_key", &cfg.tls_client_key))?;
    match &cfg.server_ca {
        Some(ca) => b.set_ca_file(ca).map_err(file("server_ca", ca))?,
        None => b.set_verify(SslVerifyMode::NONE),
    }
    Ok(b.build())
}

/// The client side of one provider: TLS identity and retry policy.
pub(crate) struct Client<'a> {
    pub tls: &'a SslConnector,
    /// Name `demail-in`'s certificate must carry.
    pub server_name: &'a str,
    pub retries: u32,
    pub first_delay: Duration,
}

impl Client<'_> {
    /// Delivers `data` to `rcpt`, trying `1 + retries` times with doubling pauses.
    pub(crate) fn deliver(
        &self,
        target: Target,
        mail_from: &str,
        rcpt: &str,
        data: &[u8],
    ) -> Delivery {
        let mut delay = self.first_delay;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match deliver_once(target, self.tls, self.server_name, mail_from, rcpt, data) {
                Ok(reply) => {
                    return Delivery {
                        result: Ok(reply),
                        attempts,
                    };
                }
                Err(Failure { text, permanent }) => {
                    if permanent || attempts > self.retries {
                        return Delivery {
                            result: Err(text),
                            attempts,
                        };
                    }
                }
            }
            thread::sleep(delay);
            delay = delay.saturating_mul(2);
        }
    }
}

struct Failure {
    text: String,
    permanent: bool,
}

fn transient(text: impl Into<String>) -> Failure {
    Failure {
        text: text.into(),
        permanent: false,
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn deliver_once(
    target: Target,
    tls: &SslConnector,
    server_name: &str,
    mail_from: &str,
    rcpt: &str,
    data: &[u8],
) -> Result<String, Failure> {
    let tcp = TcpStream::connect_timeout(&target.addr, TIMEOUT)
        .map_err(|e| transient(format!("connect {}: {e}", target.addr)))?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| transient(format!("socket: {e}")))?;
    let stream = match target.transport {
        Transport::Plain => Stream::Plain(tcp),
        Transport::ImplicitTls => {
            Stream::Tls(Box::new(tls.connect(server_name, tcp).map_err(|e| {
                transient(format!("TLS handshake with {}: {e}", target.addr))
            })?))
        }
    };
    let mut s = Session {
        io: BufReader::new(stream),
    };
    s.expect(None, 220)?;
    s.expect(Some(&format!("EHLO {HELO}")), 250)?;
    s.expect(Some(&format!("MAIL FROM:<{mail_from}>")), 250)?;
    s.expect(Some(&format!("RCPT TO:<{rcpt}>")), 250)?;
    s.expect(Some("DATA"), 354)?;
    s.write(&dot_stuffed(data))?;
    let reply = s.expect(None, 250)?;
    // The message is accepted; a failing QUIT changes nothing.
    let _ = s.expect(Some("QUIT"), 221);
    Ok(reply)
}

struct Session {
    io: BufReader<Stream>,
}

impl Session {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let s = self.io.get_mut();
        s.write_all(bytes)
            .and_then(|()| s.flush())
            .map_err(|e| transient(format!("write: {e}")))
    }

    /// Sends `command` (if any) and reads the reply; anything but `code` is a failure.
    fn expect(&mut self, command: Option<&str>, code: u16) -> Result<String, Failure> {
        if let Some(c) = command {
            self.write(format!("{c}\r\n").as_bytes())?;
        }
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .io
                .read_line(&mut line)
                .map_err(|e| transient(format!("read: {e}")))?;
            if n == 0 {
                return Err(transient("connection closed by the server"));
            }
            let line = line.trim_end().to_string();
            let more = line.as_bytes().get(3) == Some(&b'-');
            text.push(line);
            if !more {
                break;
            }
        }
        let last = text.last().cloned().unwrap_or_default();
        let got: u16 = last.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if got == code {
            return Ok(last);
        }
        let what = command.unwrap_or("(greeting or end of data)");
        Err(Failure {
            text: format!("{what}: {}", text.join(" / ")),
            permanent: (500..600).contains(&got),
        })
    }
}

/// CRLF line ends, leading dots doubled, and the final `.` line.
fn dot_stuffed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(
            dot_stuffed(b"a\r\n.b\n..\r\nc"),
            b"a\r\n..b\r\n...\r\nc\r\n.\r\n"
        );
    }

    #[test]
    fn refused_connection_is_retried_then_reported() {
        // A port nobody listens on: bind, note the port, close.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        let tls = SslConnector::builder(SslMethod::tls_client())
            .expect("builder")
            .build();
        let client = Client {
            tls: &tls,
            server_name: "localhost",
            retries: 2,
            first_delay: Duration::from_millis(1),
        };
        let target = Target {
            addr,
            transport: Transport::Plain,
        };
        let d = client.deliver(target, "a@b", "c@d", b"x");
        assert_eq!(d.attempts, 3);
        assert!(d.result.expect_err("fails").contains("connect"));
    }
}
