//! The connection (plain, then possibly TLS) and a bounded line reader over it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use openssl::ssl::SslStream;

/// The client connection; `Closed` only while switching to TLS.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
    Closed,
}

impl Conn {
    pub(crate) fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Conn::Plain(s) => Some(s),
            Conn::Tls(s) => Some(s.get_ref()),
            Conn::Closed => None,
        }
    }

    pub(crate) fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self.tcp() {
            Some(s) => s.set_read_timeout(Some(timeout)),
            None => Ok(()),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Closed => Err(closed()),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Closed => Err(closed()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Closed => Err(closed()),
        }
    }
}

/// What [`LineReader::read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineStatus {
    /// A line is in the output buffer, without its CRLF or LF.
    Line,
    /// The line was longer than allowed; it has been consumed and dropped.
    TooLong,
    /// The peer closed the connection before a new line started.
    Eof,
}

/// Reads LF-terminated lines with a fixed buffer, so a peer cannot make us hold more than
/// `max` octets per line, nor read more than `discard_cap` octets of one overlong line.
pub(crate) struct LineReader {
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl LineReader {
    pub(crate) fn new() -> LineReader {
        LineReader {
            buf: vec![0u8; 16 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    /// Octets received but not consumed yet (after STARTTLS these must be dropped: RFC 3207).
    pub(crate) fn discard_buffered(&mut self) -> usize {
        let n = self.len - self.pos;
        self.pos = 0;
        self.len = 0;
        n
    }

    /// Reads one line into `out` (cleared first).
    pub(crate) fn read_line<R: Read>(
        &mut self,
        src: &mut R,
        out: &mut Vec<u8>,
        max: usize,
        discard_cap: usize,
    ) -> io::Result<LineStatus> {
        out.clear();
        let mut too_long = false;
        let mut seen = 0usize;
        loop {
            if self.pos == self.len {
                let n = loop {
                    match src.read(&mut self.buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                if n == 0 {
                    return if seen == 0 {
                        Ok(LineStatus::Eof)
                    } else {
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed in the middle of a line",
                        ))
                    };
                }
                self.pos = 0;
                self.len = n;
            }
            let avail = &self.buf[self.pos..self.len];
            let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..=i], true),
                None => (avail, false),
            };
            self.pos += chunk.len();
            seen += chunk.len();
            // `max + 2` leaves room for the CRLF itself.
            if !too_long && out.len() + chunk.len() > max + 2 {
                too_long = true;
                out.clear();
            }
            if too_long {
                if seen > discard_cap {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("line longer than {discard_cap} octets"),
                    ));
                }
            } else {
                out.extend_from_slice(chunk);
            }
            if done {
                if too_long {
                    return Ok(LineStatus::TooLong);
                }
                out.pop();
                if out.last() == Some(&b'\r') {
                    out.pop();
                }
                if out.len() > max {
                    out.clear();
                    return Ok(LineStatus::TooLong);
                }
                return Ok(LineStatus::Line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its input in small pieces, as a network would.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(self.data.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn lines(input: &[u8], step: usize, max: usize) -> Vec<Result<String, String>> {
        let mut src = Trickle { data: input, step };
        let mut r = LineReader::new();
        let mut out = Vec::new();
        let mut got = Vec::new();
        loop {
            match r.read_line(&mut src, &mut out, max, 64) {
                Ok(LineStatus::Line) => got.push(Ok(String::from_utf8_lossy(&out).into_owned())),
                Ok(LineStatus::TooLong) => got.push(Ok("<too long>".into())),
                Ok(LineStatus::Eof) => return got,
                Err(e) => {
                    got.push(Err(e.kind().to_string()));
                    return got;
                }
            }
        }
    }

    #[test]
    fn splits_crlf_and_lf_lines_across_reads() {
        for step in [1, 3, 1000] {
            let got = lines(b"EHLO a\r\nNOOP\nQUIT\r\n", step, 10);
            assert_eq!(
                got,
                [Ok("EHLO a".into()), Ok("NOOP".into()), Ok("QUIT".into())]
            );
        }
    }

    #[test]
    fn overlong_lines_are_dropped_then_reading_continues() {
        let got = lines(b"0123456789\r\n0123456789A\r\nok\r\n", 4, 10);
        assert_eq!(
            got,
            [
                Ok("0123456789".into()),
                Ok("<too long>".into()),
                Ok("ok".into())
            ]
        );
    }

    #[test]
    fn endless_line_is_cut_off_at_the_discard_cap() {
        let input = vec![b'x'; 500];
        let got = lines(&input, 7, 10);
        assert_eq!(got.last(), Some(&Err("invalid data".into())));
    }

    #[test]
    fn eof_inside_a_line_is_an_error() {
        let got = lines(b"NOOP\r\nQU", 2, 10);
        assert_eq!(got[0], Ok("NOOP".into()));
        assert!(got[1].is_err());
    }
}
