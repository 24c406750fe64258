//! A minimal POSIX ustar writer (regular files only), enough for export archives that
//! `tar -xf` anywhere can unpack.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;

pub(crate) struct Ustar<W: Write> {
    out: W,
    mtime: u64,
}

fn checksum(h: &[u8; BLOCK]) -> u64 {
    h.iter().map(|&b| u64::from(b)).sum()
}

fn octal(field: &mut [u8], value: u64) -> io::Result<()> {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return Err(io::Error::other(format!(
            "{value} too large for a tar header field"
        )));
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// A member name that unpacks inside the directory `tar -xf` runs in, on any system: relative,
/// at most 100 bytes (the ustar name field, no prefix or GNU extensions), only `A-Z a-z 0-9 . _
/// -` in `/`-separated components that are neither empty nor `.` or `..`.
pub(crate) fn check_name(name: &str) -> io::Result<()> {
    let safe_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .split('/')
            .all(|part| !matches!(part, "" | "." | "..") && part.chars().all(safe_char));
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "tar member name {name:?} is not a safe relative ASCII name of at most 100 bytes"
        )))
    }
}

impl<W: Write> Ustar<W> {
    pub(crate) fn new(out: W, mtime: u64) -> Ustar<W> {
        Ustar { out, mtime }
    }

    /// Appends one regular file (mode 0444). See [`check_name`] for the names accepted.
    pub(crate) fn file(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.file_from(name, data.len() as u64, &mut &data[..])
    }

    /// Appends one regular file of exactly `len` bytes read from `data` (bounded memory:
    /// blobs and database snapshots are streamed). Fails if `data` ends early.
    pub(crate) fn file_from<R: Read>(
        &mut self,
        name: &str,
        len: u64,
        data: &mut R,
    ) -> io::Result<()> {
        check_name(name)?;
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], 0o444)?;
        octal(&mut h[108..116], 0)?;
        octal(&mut h[116..124], 0)?;
        octal(&mut h[124..136], len)?;
        octal(&mut h[136..148], self.mtime)?;
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as eight spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum = checksum(&h);
        octal(&mut h[148..155], sum)?;
        h[155] = b' ';
        self.out.write_all(&h)?;
        let copied = io::copy(&mut data.take(len), &mut self.out)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: {copied} of {len} bytes"),
            ));
        }
        let pad = (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64;
        self.out.write_all(&[0u8; BLOCK][..pad as usize])
    }

    /// Two zero blocks end the archive.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads what [`Ustar`] writes: regular files with safe names ([`check_name`]), checksums
/// checked, nothing else accepted (links, devices, GNU or pax extensions are refused, so an
/// archive cannot smuggle a path or a link past the name check).
pub(crate) struct UstarReader<R: Read> {
    input: R,
    /// Data bytes plus padding of the current member not yet consumed.
    left: u64,
    pad: u64,
}

/// One member's header.
#[derive(Debug)]
pub(crate) struct Member {
    pub name: String,
    pub size: u64,
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c| c == '\0' || c == ' ');
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u64::from_str_radix(s, 8).ok()
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<R: Read> UstarReader<R> {
    pub(crate) fn new(input: R) -> UstarReader<R> {
        UstarReader {
            input,
            left: 0,
            pad: 0,
        }
    }

    /// The next member's header (the rest of the previous member is skipped); `None` at the
    /// end-of-archive block. A file that ends without one is truncated: an error.
    pub(crate) fn next_member(&mut self) -> io::Result<Option<Member>> {
        let skip = self.left + self.pad;
        let skipped = io::copy(&mut (&mut self.input).take(skip), &mut io::sink())?;
        if skipped != skip {
            return Err(truncated());
        }
        self.left = 0;
        self.pad = 0;
        let mut h = [0u8; BLOCK];
        self.input.read_exact(&mut h).map_err(eof_is_truncation)?;
        if h.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let stored = parse_octal(&h[148..156]);
        h[148..156].copy_from_slice(b"        ");
        if stored != Some(checksum(&h)) {
            return Err(bad(
                "tar header checksum does not match (damaged archive)".into()
            ));
        }
        let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&h[..end]).into_owned();
        if h[345] != 0 {
            return Err(bad(format!(
                "tar member {name:?}: name prefix not accepted"
            )));
        }
        check_name(&name).map_err(|e| bad(e.to_string()))?;
        if !matches!(h[156], b'0' | 0) {
            return Err(bad(format!(
                "tar member {name:?}: not a regular file (type {:?})",
                h[156] as char
            )));
        }
        let size = parse_octal(&h[124..136])
            .ok_or_else(|| bad(format!("tar member {name:?}: size field unreadable")))?;
        self.left = size;
        self.pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        Ok(Some(Member { name, size }))
    }
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "archive truncated")
}

fn eof_is_truncation(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        truncated()
    } else {
        e
    }
}

/// The current member's data; reading past its end returns EOF, an early end of the
/// archive an `UnexpectedEof` error.
impl<R: Read> Read for UstarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.input.read(&mut buf[..max])?;
        if n == 0 {
            return Err(truncated());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_relative_names_are_written() {
        for good in [
            "demail-evidence/message.eml",
            "demail-evidence/confirmations/01-notification/raw.eml",
            "a",
            &"x".repeat(100),
        ] {
            check_name(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
        let long = "d/".repeat(50) + "x";
        for bad in [
            "",
            "/etc/passwd",
            "../etc/passwd",
            "demail-evidence/../../etc/passwd",
            "demail-evidence/./x",
            "demail-evidence//x",
            "demail-evidence/",
            "demail-evidence/a\0b",
            "demail-evidence/a\nb",
            "demail-evidence/a b",
            "demail-evidence/a\\b",
            "demail-evidence/\u{fc}ber",
            "demail-evidence/\u{202e}lmx.exe",
            &"x".repeat(101),
            &long,
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
            let mut t = Ustar::new(Vec::new(), 0);
            assert!(t.file(bad, b"data").is_err(), "{bad:?} written");
            assert!(t.out.is_empty(), "nothing written for {bad:?}");
        }
    }

    #[test]
    fn reader_reads_what_the_writer_wrote_and_refuses_damage() {
        let mut t = Ustar::new(Vec::new(), 7);
        t.file("d/a", b"hello").unwrap();
        t.file_from("d/b", 600, &mut &[7u8; 600][..]).unwrap();
        assert!(t.file_from("d/c", 10, &mut &b"short"[..]).is_err());
        let mut t = Ustar::new(Vec::new(), 7);
        t.file("d/a", b"hello").unwrap();
        t.file_from("d/b", 600, &mut &[7u8; 600][..]).unwrap();
        let tar = t.finish().unwrap();
        let mut r = UstarReader::new(&tar[..]);
        let m = r.next_member().unwrap().unwrap();
        assert_eq!((m.name.as_str(), m.size), ("d/a", 5));
        let mut data = Vec::new();
        r.read_to_end(&mut data).unwrap();
        assert_eq!(data, b"hello");
        // Not reading the data is fine: the next header is found.
        let m = r.next_member().unwrap().unwrap();
        assert_eq!((m.name.as_str(), m.size), ("d/b", 600));
        assert!(r.next_member().unwrap().is_none());

        let cut = &tar[..1024 + 512 + 100];
        let mut r = UstarReader::new(cut);
        r.next_member().unwrap();
        let e = r.next_member().unwrap().unwrap();
        let mut sink = Vec::new();
        assert_eq!(e.size, 600);
        assert!(
            r.read_to_end(&mut sink).is_err(),
            "truncated data is an error"
        );

        let mut flipped = tar.clone();
        flipped[3] ^= 1;
        let err = UstarReader::new(&flipped[..]).next_member().unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
