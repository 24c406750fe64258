//! A minimal SMTP client that does exactly what a test says, step by step, so a test can act
//! between steps (stop a process half-way through DATA, say). No pipelining, no TLS.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// One SMTP reply: the code and the text of each line (without code and separator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpReply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl SmtpReply {
    /// The lines' text joined with a space (the whole explanation).
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
}

impl std::fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// A connection to an SMTP server on 127.0.0.1.
pub struct SmtpClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl SmtpClient {
    /// Connects and reads the greeting.
    pub fn connect(port: u16, timeout: Duration) -> io::Result<(SmtpClient, SmtpReply)> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let writer = stream.try_clone()?;
        let mut client = SmtpClient {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = client.read_reply()?;
        Ok((client, greeting))
    }

    /// Sends `line` + CRLF and reads the reply.
    pub fn command(&mut self, line: &str) -> io::Result<SmtpReply> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.read_reply()
    }

    /// Sends bytes as they are (message data must already be dot-stuffed, CRLF).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// Reads one (possibly multi-line) reply.
    pub fn read_reply(&mut self) -> io::Result<SmtpReply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed after {lines:?}"),
                ));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let bad = || {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not an SMTP reply line: {line:?}"),
                )
            };
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(bad)?;
            let sep = line.as_bytes().get(3).copied();
            lines.push(line.get(4..).unwrap_or("").to_string());
            match sep {
                Some(b'-') => continue,
                Some(b' ') | None => return Ok(SmtpReply { code, lines }),
                Some(_) => return Err(bad()),
            }
        }
    }
}

/// Dot-stuffs a message (LF or CRLF line ends) into SMTP DATA form with CRLF line ends,
/// without the terminating `.` line.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    for line in message.split_inclusive(|&b| b == b'\n') {
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuff(b"a\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n");
        assert_eq!(dot_stuff(b""), b"");
    }

    #[test]
    fn multi_line_replies_are_read_whole() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(b"220 hi\r\n").expect("greet");
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let mut line = String::new();
            r.read_line(&mut line).expect("read");
            assert_eq!(line, "EHLO t\r\n");
            s.write_all(b"250-x\r\n250-PIPELINING\r\n250 SIZE\r\n")
                .expect("reply");
            line.clear();
            r.read_line(&mut line).expect("read");
            s.write_all(b"550 5.7.1 nein\r\n").expect("reply");
        });
        let (mut c, greeting) = SmtpClient::connect(port, Duration::from_secs(5)).expect("connect");
        assert_eq!(greeting.code, 220);
        let ehlo = c.command("EHLO t").expect("ehlo");
        assert_eq!(ehlo.code, 250);
        assert_eq!(ehlo.lines, vec!["x", "PIPELINING", "SIZE"]);
        let r = c.command("MAIL FROM:<a@b>").expect("mail");
        assert_eq!(r.to_string(), "550 5.7.1 nein");
        assert!(!r.is_positive());
        server.join().expect("server");
        let err = c.read_reply().expect_err("closed");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
