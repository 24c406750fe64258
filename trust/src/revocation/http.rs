//! A minimal HTTP/1.0 POST client for OCSP (RFC 6960 Appendix A.1): one request, one
//! response, connection closed. Written here rather than pulling in an HTTP stack because OCSP
//! needs nothing else, and because the whole exchange must fit one deadline: a responder that
//! trickles bytes must not hold a mail longer than the configured timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// OCSP responses are a few KB; anything much larger is not one.
const MAX_RESPONSE: usize = 1 << 20;

/// An `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
            _ => return Err(format!("{url:?}: only http:// OCSP URLs are supported")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || authority.is_empty() {
            return Err(format!("{url:?}: no usable host"));
        }
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed IPv6 literal"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None | Some("") => 80,
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        };
        if host.is_empty() || path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("{url:?}: malformed"));
        }
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// POSTs `body` and returns the response body of a `200` answer. Everything (connect, write,
/// read) must finish within `timeout`; name resolution uses the system resolver, which has
/// its own timeout.
pub fn post(
    url: &HttpUrl,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    let mut stream = connect(&addrs, deadline)?;
    let head = format!(
        "POST {} HTTP/1.0\r\nHost: {}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        body.len()
    );
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .map_err(|e| format!("sending the request: {}", io_reason(&e)))?;
    let raw = read_response(&mut stream, deadline)?;
    parse_response(&raw)
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err("timed out".to_string()),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => e.to_string(),
    }
}

fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, String> {
    let mut last = "no address".to_string();
    for addr in addrs {
        match TcpStream::connect_timeout(addr, remaining(deadline)?) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connecting to {addr}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

/// Reads until the server closes, the announced length is complete, or the deadline passes.
fn read_response(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(total) = complete_length(&buf)
            && buf.len() >= total
        {
            return Ok(buf);
        }
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the response: {}", io_reason(&e))),
        }
        if buf.len() > MAX_RESPONSE {
            return Err(format!("response larger than {MAX_RESPONSE} bytes"));
        }
    }
}

/// Header length plus Content-Length, once the header is complete and announces a length.
fn complete_length(buf: &[u8]) -> Option<usize> {
    let (head, body_start) = split_head(buf)?;
    content_length(head).ok().flatten().map(|n| body_start + n)
}

fn split_head(buf: &[u8]) -> Option<(&str, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let end = end.or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))?;
    Some((std::str::from_utf8(&buf[..end]).ok()?, end))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn content_length(head: &str) -> Result<Option<usize>, String> {
    header(head, "content-length")
        .map(|v| {
            v.parse()
                .map_err(|_| format!("bad Content-Length {v:?} in the response"))
        })
        .transpose()
}

/// The body of a complete HTTP/1.x response with status 200.
pub fn parse_response(raw: &[u8]) -> Result<Vec<u8>, String> {
    let (head, body_start) =
        split_head(raw).ok_or_else(|| "no complete HTTP response header".to_string())?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let version = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP response: {:.60?}", status_line));
    }
    if code != "200" {
        return Err(format!("the responder answered {:.80}", status_line.trim()));
    }
    if header(head, "transfer-encoding").is_some() {
        return Err("the responder used a transfer encoding on an HTTP/1.0 request".to_string());
    }
    let body = &raw[body_start..];
    match content_length(head)? {
        Some(n) if body.len() < n => Err(format!(
            "response truncated: {} of {n} announced bytes",
            body.len()
        )),
        Some(n) => Ok(body[..n].to_vec()),
        None => Ok(body.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://ocsp.example.de/ocsp").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("ocsp.example.de", 80, "/ocsp")
        );
        assert_eq!(u.host_header(), "ocsp.example.de");
        let u = HttpUrl::parse("HTTP://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/"));
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        let u = HttpUrl::parse("http://[::1]:81/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        assert_eq!(u.host_header(), "[::1]:81");
        for bad in [
            "https://ocsp.example/",
            "ldap://x/",
            "http://",
            "http://u@host/",
            "http://host:99999/",
            "http://host/a b",
            "http://[::1/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(parse_response(ok).unwrap(), b"abc");
        assert_eq!(complete_length(ok), Some(ok.len() - 3));
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\n\nxyz").unwrap(), b"xyz");
        let short = b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert!(parse_response(short).unwrap_err().contains("truncated"));
        let e = parse_response(b"HTTP/1.0 503 Service Unavailable\r\n\r\n").unwrap_err();
        assert!(e.contains("503"), "{e}");
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.0 200 OK\r\n").is_err());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert!(parse_response(chunked).is_err());
        let bad_len = b"HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n";
        assert!(parse_response(bad_len).is_err());
    }
}
