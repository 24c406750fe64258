//! Who sees which confirmations, as a user checks it with Python's imaplib (plain, loopback
//! STARTTLS port) and curl (IMAPS, the test CA): a clerk sees the confirmations of the
//! De-Mails he sent, a second clerk of the same tenant none of them (only his own), the logins
//! of another tenant none, and the poststelle named in `visible_to` all of the account's.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use demail_e2e::City;
use demail_e2e::city::{CITIZEN, CLERK, POSTSTELLE};
use demail_e2e::proxy_city::{
    self, CLERK2, DISPATCH_FOLDER, OTHER_CLERK, OTHER_POSTSTELLE, PW, RECEIPT_FOLDER,
};
use demail_evidence::ConfirmationKind;
use openssl::hash::{MessageDigest, hash};

fn sha256(b: &[u8]) -> String {
    hash(MessageDigest::sha256(), b)
        .expect("sha256")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SHA-256 of every message in `folder` as `login` sees it through imaplib.
fn imaplib_hashes(port: u16, login: &str, folder: &str) -> Vec<String> {
    const SCRIPT: &str = r#"
import hashlib, imaplib, sys
port, user, pw, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4('127.0.0.1', port)
m.login(user, pw)
typ, data = m.select('"%s"' % folder, readonly=True)
assert typ == 'OK', (typ, data)
typ, data = m.uid('SEARCH', None, 'ALL')
assert typ == 'OK', (typ, data)
for uid in data[0].split():
    typ, d = m.uid('FETCH', uid, '(BODY.PEEK[])')
    assert typ == 'OK', (typ, d)
    print(hashlib.sha256(d[0][1]).hexdigest())
m.logout()
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), login, PW, folder])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "imaplib as {login} in {folder}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn curl(city: &City, login: &str, url_path: &str, request: Option<&str>) -> Vec<u8> {
    let port = city.proxy().expect("proxy").ports.imaps;
    let ca = city.pki().ca_cert.display().to_string();
    let mut args = vec![
        "-sS".to_string(),
        "--max-time".into(),
        "30".into(),
        "--cacert".into(),
        ca,
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
        "--user".into(),
        format!("{login}:{PW}"),
    ];
    if let Some(r) = request {
        args.push("-X".into());
        args.push(r.into());
    }
    args.push(format!("imaps://localhost:{port}/{url_path}"));
    let out = Command::new("curl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The SHA-256 of every message in `folder` as `login` sees it through curl over IMAPS:
/// `UID SEARCH ALL` on the folder, then each UID fetched by URL.
fn curl_hashes(city: &City, login: &str, folder: &str) -> Vec<String> {
    let path = folder.replace('&', "%26").replace('/', "%2F");
    let search = curl(city, login, &path, Some("UID SEARCH ALL"));
    let search = String::from_utf8_lossy(&search).into_owned();
    let uids: Vec<String> = search
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("* SEARCH"))
        .unwrap_or_else(|| panic!("curl as {login}: no SEARCH answer in {search:?}"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut v: Vec<String> = uids
        .iter()
        .map(|uid| sha256(&curl(city, login, &format!("{path};UID={uid}"), None)))
        .collect();
    v.sort();
    v
}

#[test]
fn each_login_sees_exactly_the_confirmations_it_is_entitled_to() {
    let city = proxy_city::start("");
    let mine = vec![
        proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid 1"),
        proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid 2"),
    ];
    let theirs = vec![proxy_city::send_demail(
        &city,
        CLERK2,
        CITIZEN,
        "Baugenehmigung",
    )];
    for id in mine.iter().chain(&theirs) {
        proxy_city::wait_confirmations(&city, id, 2);
    }
    let store = city.evidence().expect("evidence");
    let blobs = |ids: &[String], kind: ConfirmationKind| -> Vec<String> {
        let mut v: Vec<String> = ids
            .iter()
            .flat_map(|id| store.confirmations(id).expect("confirmations"))
            .filter(|c| c.data.trusted && c.data.kind == kind)
            .map(|c| sha256(&store.read_blob(&c.data.raw).expect("blob")))
            .collect();
        v.sort();
        v
    };
    let all: Vec<String> = mine.iter().chain(&theirs).cloned().collect();
    let mut expected: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for (folder, kind) in [
        (DISPATCH_FOLDER, ConfirmationKind::Dispatch),
        (RECEIPT_FOLDER, ConfirmationKind::Receipt),
    ] {
        expected.insert((CLERK, folder), blobs(&mine, kind.clone()));
        expected.insert((CLERK2, folder), blobs(&theirs, kind.clone()));
        expected.insert((POSTSTELLE, folder), blobs(&all, kind.clone()));
        expected.insert((OTHER_CLERK, folder), Vec::new());
        expected.insert((OTHER_POSTSTELLE, folder), Vec::new());
    }
    assert_eq!(expected[&(CLERK, DISPATCH_FOLDER)].len(), 2);
    assert_eq!(expected[&(POSTSTELLE, RECEIPT_FOLDER)].len(), 3);

    let port = city.proxy().expect("proxy").ports.imap;
    let mut wrong = Vec::new();
    for ((login, folder), want) in &expected {
        let by_imaplib = imaplib_hashes(port, login, folder);
        let by_curl = curl_hashes(&city, login, folder);
        println!(
            "{login:32} {folder:40} expected {} imaplib {} curl {}",
            want.len(),
            by_imaplib.len(),
            by_curl.len()
        );
        if &by_imaplib != want {
            wrong.push(format!(
                "imaplib {login} {folder}: {by_imaplib:?}, expected {want:?}"
            ));
        }
        if &by_curl != want {
            wrong.push(format!(
                "curl {login} {folder}: {by_curl:?}, expected {want:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
