//! A minimal POSIX ustar writer (regular files only), enough for export archives that
//! `tar -xf` anywhere can unpack.

use std::io::{self, Write};

const BLOCK: usize = 512;

pub(crate) struct Ustar<W: Write> {
    out: W,
    mtime: u64,
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
        check_name(name)?;
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], 0o444)?;
        octal(&mut h[108..116], 0)?;
        octal(&mut h[116..124], 0)?;
        octal(&mut h[124..136], data.len() as u64)?;
        octal(&mut h[136..148], self.mtime)?;
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as eight spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum)?;
        h[155] = b' ';
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])
    }

    /// Two zero blocks end the archive.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
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
}
