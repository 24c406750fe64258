//! mbsync (isync) syncs every folder of a clerk through the proxy, the confirmation folders
//! included, twice in a row: the second run changes nothing in the local Maildir tree, and
//! the synced confirmations are byte for byte the evidence store's blobs.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use demail_e2e::city::{CITIZEN, CLERK};
use demail_e2e::proxy_city::{self, PW};
use demail_evidence::ConfirmationKind;

/// IMAPS to the proxy, the server certificate checked against the test CA.
fn mbsyncrc(port: u16, ca: &Path, local: &Path) -> String {
    let l = local.display();
    let ca = ca.display();
    format!(
        "IMAPAccount clerk\nHost localhost\nPort {port}\nUser {CLERK}\nPass \"{PW}\"\n\
         SSLType IMAPS\nCertificateFile {ca}\nAuthMechs LOGIN\nPipelineDepth 50\n\n\
         IMAPStore clerk-remote\nAccount clerk\n\n\
         MaildirStore clerk-local\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
         Channel clerk\nFar :clerk-remote:\nNear :clerk-local:\nPatterns *\nCreate Near\n\
         SyncState *\n"
    )
}

fn run_mbsync(rc: &Path) -> String {
    let out = Command::new("timeout")
        .args(["120", "mbsync", "-V", "-c"])
        .arg(rc)
        .arg("-a")
        .stdin(Stdio::null())
        .output()
        .expect("mbsync");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{text}");
    text
}

/// Every file below `root` (relative path -> bytes).
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(b) = std::fs::read(&p) {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), b);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The messages mbsync wrote into the local folder whose name starts with `prefix`.
fn messages_in(t: &BTreeMap<PathBuf, Vec<u8>>, prefix: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = t
        .iter()
        .filter(|(p, _)| {
            let parts: Vec<String> = p
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            parts.len() >= 3
                && parts[parts.len() - 3].starts_with(prefix)
                && ["cur", "new"].contains(&parts[parts.len() - 2].as_str())
        })
        .map(|(_, b)| b.clone())
        .collect();
    v.sort();
    v
}

/// The message without mbsync's `X-TUID:` header field (one line).
fn without_tuid(m: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len());
    let mut in_header = true;
    for line in m.split_inclusive(|&b| b == b'\n') {
        if in_header && line.starts_with(b"X-TUID: ") {
            continue;
        }
        if line == b"\n" {
            in_header = false;
        }
        out.extend_from_slice(line);
    }
    out
}

fn crlf_to_lf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn mbsync_syncs_every_folder_twice_and_the_second_run_changes_nothing() {
    let city = proxy_city::start("");
    let ids = vec![
        proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid A"),
        proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid B"),
    ];
    for id in &ids {
        proxy_city::wait_confirmations(&city, id, 2);
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let local = tmp.path().join("mail");
    std::fs::create_dir_all(&local).unwrap();
    let rc = tmp.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        mbsyncrc(
            city.proxy().expect("proxy").ports.imaps,
            &city.pki().ca_cert,
            &local,
        ),
    )
    .unwrap();

    let first_out = run_mbsync(&rc);
    let first = tree(&local);
    let second_out = run_mbsync(&rc);
    let second = tree(&local);
    println!("--- first mbsync run ---\n{first_out}\n--- second mbsync run ---\n{second_out}");
    let dirs: std::collections::BTreeSet<String> = first
        .keys()
        .filter_map(|p| p.parent().and_then(|d| d.parent()))
        .map(|d| d.display().to_string())
        .collect();
    println!("local folders: {dirs:?}");

    // Every folder: INBOX, Dovecot's, and the six confirmation folders (names as on the wire).
    for want in [
        "INBOX",
        "Sent",
        "De-Mail/Versandbest&AOQ-tigungen",
        "De-Mail/Eingangsbest&AOQ-tigungen",
        "De-Mail/Abholbest&AOQ-tigungen",
        "De-Mail/Fehlermeldungen",
        "De-Mail/Ausstehend",
        "De-Mail/Zustellfiktion",
    ] {
        assert!(
            local.join(want).is_dir(),
            "{want} synced; local folders {dirs:?}"
        );
    }
    // The second run changes nothing.
    let changed: Vec<String> = first
        .keys()
        .chain(second.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|p| first.get(*p) != second.get(*p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(changed.is_empty(), "the second run changed: {changed:?}");
    for out in [&first_out, &second_out] {
        let lower = out.to_ascii_lowercase();
        assert!(
            !lower.contains("error") && !lower.contains("warning"),
            "mbsync complained:\n{out}"
        );
    }
    assert!(
        !second_out.contains("Creating near side box"),
        "{second_out}"
    );
    assert!(
        !second_out.contains("new message(s)") || second_out.contains("0 new message(s)"),
        "{second_out}"
    );

    // The synced confirmations are the evidence's bytes.
    let store = city.evidence().expect("evidence");
    for (prefix, kind) in [
        ("Versandbest", ConfirmationKind::Dispatch),
        ("Eingangsbest", ConfirmationKind::Receipt),
    ] {
        let mut want: Vec<Vec<u8>> = ids
            .iter()
            .flat_map(|id| store.confirmations(id).expect("confirmations"))
            .filter(|c| c.data.trusted && c.data.kind == kind)
            .map(|c| store.read_blob(&c.data.raw).expect("blob"))
            // mbsync keeps Maildir messages with the local line ending (LF).
            .map(|b| crlf_to_lf(&b))
            .collect();
        want.sort();
        // mbsync adds its X-TUID field to each message it stores (to find it again); the rest
        // must be the evidence's bytes.
        let mut got: Vec<Vec<u8>> = messages_in(&second, prefix)
            .iter()
            .map(|m| without_tuid(m))
            .collect();
        got.sort();
        println!(
            "{prefix}*: {} synced, {} in the evidence store",
            got.len(),
            want.len()
        );
        assert_eq!(want.len(), 2, "{prefix}: two confirmations recorded");
        assert_eq!(got.len(), want.len(), "{prefix}");
        for (g, w) in got.iter().zip(&want) {
            if g != w {
                let at = g
                    .iter()
                    .zip(w)
                    .position(|(a, b)| a != b)
                    .unwrap_or(g.len().min(w.len()));
                let around = |b: &[u8]| {
                    String::from_utf8_lossy(&b[at.saturating_sub(60)..(at + 60).min(b.len())])
                        .into_owned()
                };
                panic!(
                    "{prefix}: synced bytes differ from the evidence blob at byte {at} \
                     (lengths {} vs {}):\n{:?}\nvs\n{:?}",
                    g.len(),
                    w.len(),
                    around(g),
                    around(w),
                );
            }
        }
    }
}
