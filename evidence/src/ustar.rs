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

impl<W: Write> Ustar<W> {
    pub(crate) fn new(out: W, mtime: u64) -> Ustar<W> {
        Ustar { out, mtime }
    }

    /// Appends one regular file (mode 0444). Names must be ASCII and at most 100 bytes.
    pub(crate) fn file(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        if name.len() > 100 || !name.is_ascii() || name.is_empty() {
            return Err(io::Error::other(format!(
                "tar member name {name:?} not representable"
            )));
        }
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
