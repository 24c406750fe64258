//! A scripted IMAP client for protocol-exact tests: sends lines as written, reads whole
//! responses (literals included) until the tagged answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslStream};

/// The socket, plain or TLS (STARTTLS turns one into the other).
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

pub struct ImapClient {
    r: BufReader<Conn>,
    n: u32,
    pub greeting: String,
}

/// One response of the server: a line, literals inlined.
pub type Response = Vec<u8>;

impl ImapClient {
    /// Plain TCP to 127.0.0.1:`port`.
    pub fn plain(port: u16) -> ImapClient {
        let s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Self::start(Conn::Plain(s))
    }

    /// Implicit TLS to 127.0.0.1:`port`, the server certificate checked against `ca`.
    pub fn tls(port: u16, ca: &Path) -> ImapClient {
        let s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Self::start(Conn::Tls(Box::new(tls_wrap(s, ca))))
    }

    /// Plain TCP to 127.0.0.1:`port` from the local address `source` (another loopback
    /// address, so the server can tell this client's address from the proxy's).
    pub fn plain_from(source: std::net::Ipv4Addr, port: u16) -> ImapClient {
        let s = connect_from(source, std::net::Ipv4Addr::LOCALHOST, port);
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Self::start(Conn::Plain(s))
    }

    /// Implicit TLS to 127.0.0.1:`port` from the local address `source`.
    pub fn tls_from(source: std::net::Ipv4Addr, port: u16, ca: &Path) -> ImapClient {
        let s = connect_from(source, std::net::Ipv4Addr::LOCALHOST, port);
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Self::start(Conn::Tls(Box::new(tls_wrap(s, ca))))
    }

    /// Plain TCP to `addr`.
    pub fn plain_to(addr: std::net::SocketAddr) -> ImapClient {
        let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        Self::start(Conn::Plain(s))
    }

    /// How long a read may wait before it fails (a test's bound on a silent server).
    pub fn set_read_timeout(&self, t: Duration) {
        match self.r.get_ref() {
            Conn::Plain(s) => s.set_read_timeout(Some(t)).ok(),
            Conn::Tls(s) => s.get_ref().set_read_timeout(Some(t)).ok(),
        };
    }

    fn start(s: Conn) -> ImapClient {
        let mut c = ImapClient {
            r: BufReader::new(s),
            n: 0,
            greeting: String::new(),
        };
        c.greeting = String::from_utf8_lossy(&c.read_response()).into_owned();
        c
    }

    /// STARTTLS on a plain connection: the rest of the session is TLS.
    pub fn starttls(self, ca: &Path) -> (ImapClient, Vec<String>) {
        let mut c = self;
        let out = c.run("STARTTLS");
        let Conn::Plain(tcp) = c.r.into_inner() else {
            panic!("STARTTLS on a TLS connection");
        };
        let tls = tls_wrap(tcp, ca);
        (
            ImapClient {
                r: BufReader::new(Conn::Tls(Box::new(tls))),
                n: c.n,
                greeting: c.greeting,
            },
            out,
        )
    }

    pub fn next_tag(&mut self) -> String {
        self.n += 1;
        format!("t{}", self.n)
    }

    /// Sends `tag command` and returns every response up to and including the tagged one,
    /// as text (lossy; use [`ImapClient::run_raw`] for bytes).
    pub fn run(&mut self, command: &str) -> Vec<String> {
        self.run_raw(command.as_bytes())
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .collect()
    }

    pub fn run_raw(&mut self, command: &[u8]) -> Vec<Response> {
        let tag = self.next_tag();
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.send_raw(&line);
        self.until_tagged(&tag)
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let w = self.r.get_mut();
        w.write_all(bytes).expect("write to the server");
        w.flush().expect("flush");
    }

    /// Like [`ImapClient::send_raw`], but an error is returned (the server may be gone).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let w = self.r.get_mut();
        w.write_all(bytes)?;
        w.flush()
    }

    /// Like [`ImapClient::read_response`], but `None` when the connection closed or failed.
    pub fn try_read_response(&mut self) -> Option<Response> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.r.read_until(b'\n', &mut line).ok()?;
            if n == 0 {
                return None;
            }
            out.extend_from_slice(&line);
            match literal_len(&line) {
                Some(len) => {
                    let mut buf = vec![0u8; len];
                    self.r.read_exact(&mut buf).ok()?;
                    out.extend_from_slice(&buf);
                }
                None => return Some(out),
            }
        }
    }

    pub fn until_tagged(&mut self, tag: &str) -> Vec<Response> {
        let mut out = Vec::new();
        loop {
            let r = self.read_response();
            let done = r.starts_with(format!("{tag} ").as_bytes());
            out.push(r);
            if done {
                return out;
            }
        }
    }

    /// One response (a line with its literals), CRLF kept.
    pub fn read_response(&mut self) -> Response {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self
                .r
                .read_until(b'\n', &mut line)
                .expect("read from the server");
            if n == 0 {
                panic!(
                    "server closed the connection; so far: {:?}",
                    String::from_utf8_lossy(&out)
                );
            }
            out.extend_from_slice(&line);
            match literal_len(&line) {
                Some(len) => {
                    let mut buf = vec![0u8; len];
                    self.r.read_exact(&mut buf).expect("read a literal");
                    out.extend_from_slice(&buf);
                }
                None => return out,
            }
        }
    }

    /// Reads until the server closes; returns what came.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let _ = self.r.read_to_end(&mut v);
        v
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"\r\n")?;
    let l = l.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    let digits = l[open + 1..].strip_suffix(b"+").unwrap_or(&l[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A TCP connection from `source` (port chosen by the kernel) to `dest:port`.
pub fn connect_from(source: std::net::Ipv4Addr, dest: std::net::Ipv4Addr, port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own; the sockaddr structs live across
    // the calls and `len` is their size.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let src = sin(source, 0);
        if libc::bind(fd, (&raw const src).cast(), len) != 0 {
            panic!("bind {source}: {}", std::io::Error::last_os_error());
        }
        let dst = sin(dest, port);
        if libc::connect(fd, (&raw const dst).cast(), len) != 0 {
            panic!(
                "connect {dest}:{port} from {source}: {}",
                std::io::Error::last_os_error()
            );
        }
        stream
    }
}

fn tls_wrap(s: TcpStream, ca: &Path) -> SslStream<TcpStream> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).expect("TLS");
    b.set_ca_file(ca).expect("CA file");
    let c = b.build();
    c.connect("localhost", s)
        .expect("TLS handshake with the proxy")
}
