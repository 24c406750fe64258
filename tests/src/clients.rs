//! Real IMAP clients, driven the way a user would: Python's imaplib and mbsync (isync).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::files::{instance_dir, mkdir, write};
use crate::process;

/// Logs in to 127.0.0.1:`port` with Python imaplib and returns every INBOX message
/// (`UID FETCH n BODY.PEEK[]`), in UID order. Panics with the client's output on failure.
pub fn imaplib_fetch_all(port: u16, user: &str, password: &str) -> Vec<Vec<u8>> {
    // Each message is framed as "<length>\n<bytes>" so any content survives.
    const SCRIPT: &str = r#"
import imaplib, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4('127.0.0.1', port)
m.login(user, pw)
typ, _ = m.select('INBOX', readonly=True)
assert typ == 'OK', typ
typ, data = m.uid('SEARCH', None, 'ALL')
assert typ == 'OK', typ
out = sys.stdout.buffer
for uid in data[0].split():
    typ, d = m.uid('FETCH', uid, '(BODY.PEEK[])')
    assert typ == 'OK', (typ, d)
    body = d[0][1]
    out.write(b'%d\n' % len(body))
    out.write(body)
m.logout()
"#;
    let out = Command::new(python())
        .args(["-c", SCRIPT, &port.to_string(), user, password])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    if !out.status.success() {
        panic!(
            "imaplib fetch from 127.0.0.1:{port} as {user} failed:\n{}",
            process::text(&out)
        );
    }
    unframe(&out.stdout)
}

/// Synchronises 127.0.0.1:`port` into a fresh local Maildir with mbsync and returns the
/// INBOX messages it wrote, ordered by file name. Panics with mbsync's output on failure.
pub fn mbsync_fetch_all(port: u16, user: &str, password: &str) -> Vec<Vec<u8>> {
    let tmp = instance_dir("e2e-mbsync-");
    let local = tmp.path().join("mail");
    mkdir(&local);
    let rc = tmp.path().join("mbsyncrc");
    write(&rc, mbsyncrc(port, user, password, &local));
    let out = process::run("mbsync", &["-c", &rc.to_string_lossy(), "-a"]);
    if !out.status.success() {
        panic!(
            "mbsync from 127.0.0.1:{port} as {user} failed:\n{}",
            process::text(&out)
        );
    }
    let inbox = local.join("INBOX");
    let mut files: Vec<_> = ["new", "cur"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(inbox.join(sub)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn mbsyncrc(port: u16, user: &str, password: &str, local: &Path) -> String {
    let l = local.display();
    let mut rc = String::new();
    let _ = write!(
        rc,
        "IMAPAccount e2e\nHost 127.0.0.1\nPort {port}\nUser {user}\nPass \"{password}\"\n\
         SSLType None\nAuthMechs LOGIN\n\n\
         IMAPStore e2e-remote\nAccount e2e\n\n\
         MaildirStore e2e-local\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
         Channel e2e\nFar :e2e-remote:\nNear :e2e-local:\nPatterns *\nCreate Near\nSyncState *\n"
    );
    rc
}

/// Debian's python3 (the one apt's modules are for), else whatever python3 is on PATH.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn unframe(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    while !data.is_empty() {
        let nl = data.iter().position(|&b| b == b'\n').unwrap_or_else(|| {
            panic!(
                "imaplib output: no length line in {:?}",
                data.escape_ascii()
            )
        });
        let len: usize = std::str::from_utf8(&data[..nl])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                panic!("imaplib output: bad length {:?}", data[..nl].escape_ascii())
            });
        let rest = &data[nl + 1..];
        if rest.len() < len {
            panic!(
                "imaplib output: message of {len} bytes cut off at {}",
                rest.len()
            );
        }
        messages.push(rest[..len].to_vec());
        data = &rest[len..];
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unframe_splits_messages_with_newlines_inside() {
        let msgs = unframe(b"3\na\nb5\n12\n45");
        assert_eq!(msgs, vec![b"a\nb".to_vec(), b"12\n45".to_vec()]);
        assert!(unframe(b"").is_empty());
    }

    #[test]
    #[should_panic(expected = "cut off")]
    fn unframe_rejects_a_short_message() {
        unframe(b"10\nabc");
    }
}
