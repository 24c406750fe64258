//! Accepted messages on disk: `NNNN.eml` (the bytes as received) and `NNNN.json` (envelope,
//! TLS identity, hashes), each written to a temporary name and renamed into place.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DeMailOptions;

/// The JSON record beside each stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub id: String,
    /// RFC 3339, UTC.
    pub received_at: String,
    pub peer: String,
    pub helo: String,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub size: u64,
    pub sha256: String,
    pub client_cert_subject: String,
    pub client_cert_sha256: String,
    pub tls_version: String,
    pub tls_cipher: String,
    pub auth_user: Option<String>,
    pub message_id: String,
    pub private_id: Option<String>,
    pub subject: Option<String>,
    pub options: DeMailOptions,
}

impl StoredRecord {
    /// Reads a `NNNN.json` written by the simulator.
    pub fn load(path: &Path) -> io::Result<StoredRecord> {
        let text = fs::read(path)?;
        serde_json::from_slice(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }
}

/// The number after the highest `NNNN.eml` already in `dir` (1 for an empty directory), so a
/// restarted simulator does not overwrite earlier messages.
pub(crate) fn next_id(dir: &Path) -> io::Result<u64> {
    let mut max = 0;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".eml")) else {
            continue;
        };
        if let Ok(n) = stem.parse::<u64>() {
            max = max.max(n);
        }
    }
    Ok(max + 1)
}

pub(crate) fn id_string(n: u64) -> String {
    format!("{n:04}")
}

/// Writes the message and its record; returns (eml, json) paths.
pub(crate) fn write(
    dir: &Path,
    data: &[u8],
    record: &StoredRecord,
) -> io::Result<(PathBuf, PathBuf)> {
    let eml = dir.join(format!("{}.eml", record.id));
    let json = dir.join(format!("{}.json", record.id));
    let text = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    // The record first: whoever sees the .eml can rely on the .json being there.
    write_atomic(&json, &text)?;
    write_atomic(&eml, data)?;
    Ok((eml, json))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_continue_after_existing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(next_id(dir.path()).expect("scan"), 1);
        for name in ["0001.eml", "0007.eml", "0009.json", "notes.txt", "x.eml"] {
            fs::write(dir.path().join(name), b"").expect("write");
        }
        assert_eq!(next_id(dir.path()).expect("scan"), 8);
        assert_eq!(id_string(8), "0008");
        assert_eq!(id_string(12345), "12345");
    }
}
