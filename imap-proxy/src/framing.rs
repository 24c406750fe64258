//! Framing of one direction of an IMAP connection into lines and literals, bounded.
//!
//! imap-codec's `Fragmentizer` reads each line and says whether it announces a literal (`{N}`,
//! `{N+}`, `~{N}`); the literal's bytes bypass it and stream through in chunks as they arrive,
//! so a 50 MB APPEND or FETCH never sits whole in memory. Only a message the proxy acts on is
//! kept (up to `keep_limit`) for decoding.

use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer};
use imap_codec::imap_types::core::LiteralMode;

/// One piece of the stream, as the bytes arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Line {
        bytes: Vec<u8>,
        /// The first line of a message (a command, or a response).
        first: bool,
        /// The literal this line announces: its length and whether it is synchronising.
        literal: Option<(u32, bool)>,
    },
    /// Part of a literal; `done` on its last chunk.
    Literal { bytes: Vec<u8>, done: bool },
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("line longer than {0} bytes")]
    LineTooLong(usize),
}

pub struct Framer {
    frag: Fragmentizer,
    buf: Vec<u8>,
    max_line: usize,
    /// Bytes of the literal still to come.
    literal_left: u64,
    at_start: bool,
    /// The current message's bytes, while it is small enough to keep.
    kept: Vec<u8>,
    kept_overflow: bool,
    keep_limit: usize,
}

/// Bytes read from a socket at once.
pub const CHUNK: usize = 64 * 1024;

impl Framer {
    pub fn new(max_line: usize, keep_limit: usize) -> Framer {
        Framer {
            frag: Fragmentizer::new(max_line.try_into().unwrap_or(u32::MAX)),
            buf: Vec::new(),
            max_line,
            literal_left: 0,
            at_start: true,
            kept: Vec::new(),
            kept_overflow: false,
            keep_limit,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet handed out (bounded by one line plus one read).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops whatever was received but not yet handed out (after STARTTLS: bytes sent before
    /// the handshake must not count as commands sent under TLS).
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
        n
    }

    /// The next piece, or `None` when more bytes are needed.
    pub fn next(&mut self) -> Result<Option<Piece>, FrameError> {
        if self.literal_left > 0 {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let n = usize::try_from(self.literal_left)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let bytes: Vec<u8> = self.buf.drain(..n).collect();
            self.keep(&bytes);
            self.literal_left -= n as u64;
            let done = self.literal_left == 0;
            return Ok(Some(Piece::Literal { bytes, done }));
        }
        let Some(pos) = self.buf.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > self.max_line {
                return Err(FrameError::LineTooLong(self.max_line));
            }
            return Ok(None);
        };
        if pos + 1 > self.max_line {
            return Err(FrameError::LineTooLong(self.max_line));
        }
        let bytes: Vec<u8> = self.buf.drain(..=pos).collect();
        if self.at_start {
            self.kept.clear();
            self.kept_overflow = false;
        }
        let first = self.at_start;
        self.frag.enqueue_bytes(&bytes);
        let literal = match self.frag.progress() {
            Some(FragmentInfo::Line { announcement, .. }) => {
                announcement.map(|a| (a.length, a.mode == LiteralMode::Sync))
            }
            // The framer was fed exactly one line; anything else cannot happen.
            _ => None,
        };
        self.keep(&bytes);
        // `{N}` ending a line inside a quoted string is no literal for Dovecot (the string is
        // just unterminated and the command ends at the line break), so it is none here
        // either: proxy and Dovecot must cut the stream at the same places.
        let announced = literal.is_some();
        let literal = literal.filter(|_| !crate::token::announcement_inside_quotes(&bytes));
        if announced && literal.is_none() {
            self.frag.skip_message();
        }
        match literal {
            Some((len, _)) => {
                // The literal is counted here; the line after it starts afresh.
                self.frag.skip_message();
                self.literal_left = u64::from(len);
                self.at_start = false;
            }
            None => self.at_start = true,
        }
        Ok(Some(Piece::Line {
            bytes,
            first,
            literal,
        }))
    }

    /// Stops keeping the current message (it is only forwarded).
    pub fn stop_keeping(&mut self) {
        self.kept_overflow = true;
        self.kept = Vec::new();
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.kept_overflow {
            return;
        }
        if self.kept.len() + bytes.len() > self.keep_limit {
            self.kept_overflow = true;
            self.kept = Vec::new();
        } else {
            self.kept.extend_from_slice(bytes);
        }
    }

    /// Puts a first line back in front of what is buffered (the proxy looked at a command
    /// before deciding who handles it).
    pub fn unread(&mut self, line: Vec<u8>) {
        let mut buf = line;
        buf.append(&mut self.buf);
        self.buf = buf;
        self.frag = Fragmentizer::new(self.max_line.try_into().unwrap_or(u32::MAX));
        self.literal_left = 0;
        self.at_start = true;
        self.kept.clear();
        self.kept_overflow = false;
    }

    /// The current message so far, unless it grew over the keep limit.
    pub fn kept(&self) -> Option<&[u8]> {
        (!self.kept_overflow).then_some(self.kept.as_slice())
    }

    /// The message is complete (the last piece ended it).
    pub fn at_message_start(&self) -> bool {
        self.at_start && self.literal_left == 0
    }

    /// Abandons the current message after its line announced a synchronising literal that the
    /// proxy refused: the client sends no literal, the next line is a new command.
    pub fn refuse_literal(&mut self) {
        self.literal_left = 0;
        self.frag.skip_message();
        self.at_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(f: &mut Framer) -> Vec<Piece> {
        let mut v = Vec::new();
        while let Some(p) = f.next().unwrap() {
            v.push(p);
        }
        v
    }

    #[test]
    fn lines_and_streamed_literals() {
        let mut f = Framer::new(1000, 100);
        f.push(b"a1 LOGIN {5}\r\nal");
        let p = all(&mut f);
        assert_eq!(
            p,
            vec![
                Piece::Line {
                    bytes: b"a1 LOGIN {5}\r\n".to_vec(),
                    first: true,
                    literal: Some((5, true))
                },
                Piece::Literal {
                    bytes: b"al".to_vec(),
                    done: false
                }
            ]
        );
        f.push(b"ice pw\r\na2 NOOP\r\n");
        let p = all(&mut f);
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[0],
            Piece::Literal {
                bytes: b"ice".to_vec(),
                done: true
            }
        );
        assert!(matches!(
            &p[1],
            Piece::Line {
                first: false,
                literal: None,
                ..
            }
        ));
        assert!(matches!(&p[2], Piece::Line { first: true, .. }));
        assert_eq!(f.kept().unwrap(), b"a2 NOOP\r\n");
    }

    #[test]
    fn non_sync_and_empty_literals() {
        let mut f = Framer::new(1000, 100);
        f.push(b"a ID (\"name\" {0+}\r\n)\r\nb NOOP\r\n");
        let p = all(&mut f);
        assert!(matches!(
            &p[0],
            Piece::Line {
                literal: Some((0, false)),
                ..
            }
        ));
        assert!(matches!(
            &p[1],
            Piece::Line {
                first: false,
                literal: None,
                ..
            }
        ));
        assert!(matches!(&p[2], Piece::Line { first: true, .. }));
    }

    #[test]
    fn an_announcement_inside_quotes_is_no_literal() {
        let mut f = Framer::new(1000, 100);
        f.push(b"a SELECT \"x {5}\r\nb NOOP\r\n");
        let p = all(&mut f);
        assert!(matches!(
            &p[0],
            Piece::Line {
                first: true,
                literal: None,
                ..
            }
        ));
        assert!(
            matches!(&p[1], Piece::Line { first: true, .. }),
            "b is a command"
        );
    }

    #[test]
    fn endless_line_is_bounded() {
        let mut f = Framer::new(100, 100);
        f.push(&[b'x'; 101]);
        assert_eq!(f.next(), Err(FrameError::LineTooLong(100)));
    }

    #[test]
    fn big_literal_streams_without_keeping() {
        let mut f = Framer::new(1000, 64);
        f.push(b"a APPEND INBOX {200000}\r\n");
        all(&mut f);
        let mut got = 0;
        for _ in 0..4 {
            f.push(&[b'z'; 50000]);
            for p in all(&mut f) {
                if let Piece::Literal { bytes, .. } = p {
                    got += bytes.len();
                }
            }
        }
        assert_eq!(got, 200000);
        assert!(f.kept().is_none());
        f.push(b"\r\n");
        all(&mut f);
        assert!(f.at_message_start());
    }

    #[test]
    fn refused_literal_resynchronises() {
        let mut f = Framer::new(1000, 100);
        f.push(b"a LOGIN {99999999}\r\n");
        all(&mut f);
        f.refuse_literal();
        f.push(b"b NOOP\r\n");
        let p = all(&mut f);
        assert!(matches!(&p[0], Piece::Line { first: true, .. }));
    }
}
