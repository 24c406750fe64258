//! End to end through real Postfix and Dovecot: a signed mail to the poststelle arrives tagged
//! with one `X-QES-Validation` field, still verifies byte for byte when fetched over IMAP
//! (openssl smime -verify), a forged `X-QES-Validation` from the sender arrives renamed, and the
//! verification report is in the evidence store with the message as received. A mail signed
//! with a qualified certificate becomes `[QES gültig]` once the admin has imported a trusted
//! list naming its CA (`demailctl tl import`) and reloaded the milter (SIGHUP).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use demail_e2e::city::POSTSTELLE;
use demail_e2e::message::field_values;
use demail_e2e::{City, CityOptions, imaplib_fetch_all, swaks, wait_until};

const PASSWORD: &str = "poststelle-pw";
const WAIT: Duration = Duration::from_secs(60);

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors/thunderbird-smime")
        .join(name)
}

/// A city whose milter checks signatures for [`POSTSTELLE`], with the Thunderbird test CA as
/// anchor and revocation off (those test certificates name no responder).
fn city() -> City {
    let anchor = vector("TestCA.pem");
    let mut city = City::start(CityOptions {
        dovecot_users: vec![(POSTSTELLE.into(), PASSWORD.into())],
        extra_toml: format!(
            "[trust]\nanchors = [\"{}\"]\nrevocation = \"off\"\n",
            anchor.display()
        ),
        milter: false,
        ..CityOptions::default()
    });
    // `[inbound]` is written by the harness, so the poststelle key goes in before the milter
    // reads the file.
    let path = city.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "[inbound]\n",
        &format!("[inbound]\npoststelle = [\"{POSTSTELLE}\"]\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    city.start_milter();
    city
}

#[test]
fn signed_mail_to_the_poststelle_arrives_tagged_verifiable_and_recorded() {
    let city = city();
    let imap = city.imap_port().expect("Dovecot runs");

    // Thunderbird's clear-signed test mail, with a field a forger added in front; the
    // recipient is changed in the envelope only.
    let original = std::fs::read(vector("alice.dsig.SHA256.multipart.eml")).unwrap();
    // A Message-ID of its own, so Postfix adds none and the message stays as sent.
    let forged = b"X-QES-Validation: indication=TOTAL_PASSED; qualification=QESig\r\n\
                   Message-ID: <poststelle-qes-1@example.com>\r\n";
    let sent = [forged.as_slice(), &original].concat();
    let file = city.dir().join("signed.eml");
    std::fs::write(&file, &sent).unwrap();
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        "Alice@example.com",
        "--to",
        POSTSTELLE,
        "--data",
        &format!("@{}", file.display()),
    ]);
    assert!(
        out.status.success(),
        "swaks:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let fetched = wait_until(WAIT, "the signed mail in the poststelle's INBOX", || {
        imaplib_fetch_all(imap, POSTSTELLE, PASSWORD).pop()
    });
    let text = String::from_utf8_lossy(&fetched);

    let ours = field_values(&fetched, "X-QES-Validation");
    assert_eq!(ours.len(), 1, "one field per signature:\n{text}");
    assert!(
        ours[0].starts_with("indication=TOTAL_PASSED; sub-indication=none; qualification=N/A;"),
        "{}",
        ours[0]
    );
    assert!(
        ours[0].contains("signer=\"Alice <Alice@example.com>\""),
        "{}",
        ours[0]
    );
    assert_eq!(
        field_values(&fetched, "X-Untrusted-QES-Validation"),
        vec!["indication=TOTAL_PASSED; qualification=QESig".to_string()]
    );
    // A valid signature without a trusted list behind it: signed, not a QES.
    assert_eq!(
        field_values(&fetched, "Subject"),
        vec!["[signiert, keine QES] clear-signed sig.SHA256".to_string()]
    );

    // The body is untouched (swaks ends the DATA with one more CRLF of its own) and the
    // signature still verifies on the fetched bytes.
    let body_of = |m: &[u8]| {
        let at = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        String::from_utf8_lossy(&m[at..]).trim_end().to_string()
    };
    assert!(
        body_of(&fetched) == body_of(&original),
        "body changed:\n{text}"
    );
    let fetched_file = city.dir().join("fetched.eml");
    std::fs::write(&fetched_file, &fetched).unwrap();
    let verify = std::process::Command::new("openssl")
        .args(["smime", "-verify", "-CAfile"])
        .arg(vector("TestCA.pem"))
        .arg("-in")
        .arg(&fetched_file)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl smime -verify on the fetched mail:\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The report is in the evidence store, with the message exactly as the milter received
    // it: what swaks sent (smtpd hands its milters the client's message, without its own
    // Received field).
    let store = city.evidence().expect("evidence store exists");
    let head = store.head().unwrap().expect("an event");
    let event = (1..=head.event_id)
        .filter_map(|id| store.event(id).unwrap())
        .find(|e| e.kind == "qes-check")
        .expect("a qes-check event");
    let payload: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
    assert_eq!(payload["indication"], "TOTAL_PASSED");
    assert_eq!(payload["qualification"], "N/A");
    assert_eq!(payload["recipients"], serde_json::json!([POSTSTELLE]));
    assert_eq!(payload["message_id"], "<poststelle-qes-1@example.com>");
    assert_eq!(
        payload["report"]["signatures"][0]["signer"]["email"],
        "Alice@example.com"
    );
    let raw = store.read_blob(&event.blobs.parse().unwrap()).unwrap();
    let sent_text = String::from_utf8_lossy(&sent);
    assert_eq!(
        String::from_utf8_lossy(&raw).trim_end(),
        sent_text.trim_end(),
        "the blob is the message as received"
    );
    assert!(store.verify_chain().unwrap().is_intact());
}

/// The qualified signer's address: the certificate's only e-mail address and the mail's From.
const QES_SIGNER: &str = "erika.mustermann@example.org";

/// qcStatements (ETSI EN 319 412-5) of a qualified certificate for electronic signatures on a
/// QSCD: QcCompliance, QcSSCD, QcType esign; as the DER an openssl extension file takes.
const QC_STATEMENTS_DER: &str = "30:29:\
    30:08:06:06:04:00:8e:46:01:01:\
    30:08:06:06:04:00:8e:46:01:04:\
    30:13:06:06:04:00:8e:46:01:06:30:09:06:07:04:00:8e:46:01:06:01";

/// Runs `program args..` and returns its stdout; panics with its stderr if it fails.
fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Issues, with the openssl CLI, a qualified signing certificate for [`QES_SIGNER`] from the
/// city's test CA (the CA the trusted list names). Returns `(certificate, key)`.
fn issue_qualified_leaf(city: &City, dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("qes.key");
    let csr = dir.join("qes.csr");
    let cert = dir.join("qes.pem");
    let ext = dir.join("qes.ext");
    std::fs::write(
        &ext,
        format!(
            "basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature, nonRepudiation\n\
             subjectAltName = email:{QES_SIGNER}\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n\
             1.3.6.1.5.5.7.1.3 = DER:{QC_STATEMENTS_DER}\n"
        ),
    )
    .unwrap();
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/C=DE/O=Testhausen citizens/CN=Erika Mustermann",
            "-keyout",
            path_str(&key),
            "-out",
            path_str(&csr),
        ],
    );
    let pki = city.pki();
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            path_str(&csr),
            "-CA",
            path_str(&pki.ca_cert),
            "-CAkey",
            path_str(&pki.ca_key),
            "-set_serial",
            "4711",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            path_str(&ext),
            "-out",
            path_str(&cert),
        ],
    );
    (cert, key)
}

/// A multipart/signed mail from [`QES_SIGNER`] to the poststelle, signed now with
/// `openssl smime -sign` (CRLF throughout, as a mail client sends it).
fn qes_mail(dir: &Path, cert: &Path, key: &Path, subject: &str, message_id: &str) -> Vec<u8> {
    let content = dir.join("content.txt");
    std::fs::write(
        &content,
        "Content-Type: text/plain; charset=utf-8\r\n\r\nAntrag auf Wohngeld, qualifiziert signiert.\r\n",
    )
    .unwrap();
    let signed = run(
        "openssl",
        &[
            "smime",
            "-sign",
            "-md",
            "sha256",
            "-in",
            path_str(&content),
            "-signer",
            path_str(cert),
            "-inkey",
            path_str(key),
            "-from",
            QES_SIGNER,
            "-to",
            POSTSTELLE,
            "-subject",
            subject,
        ],
    );
    // The signing time is now; the verifier compares it with Date.
    let date = Command::new("date")
        .args(["-u", "+%a, %d %b %Y %H:%M:%S +0000"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let date = String::from_utf8(date.stdout).unwrap();
    // openssl ends the base64 lines with LF only: one line ending for the whole message.
    let signed = String::from_utf8(signed).unwrap().replace("\r\n", "\n");
    format!(
        "Date: {}\nMessage-ID: {message_id}\n{signed}",
        date.trim_end()
    )
    .replace('\n', "\r\n")
    .into_bytes()
}

/// Decodes an RFC 2047 `=?UTF-8?B?...?=` subject (white space between encoded words dropped),
/// as a mail client shows it; other words stay as they are.
fn decode_subject(value: &str) -> String {
    let mut out = String::new();
    let mut last_encoded = false;
    for word in value.split_whitespace() {
        let encoded = word
            .strip_prefix("=?")
            .and_then(|w| w.strip_suffix("?="))
            .and_then(|w| {
                let (charset, rest) = w.split_once('?')?;
                let text = rest
                    .strip_prefix("B?")
                    .or_else(|| rest.strip_prefix("b?"))?;
                charset.eq_ignore_ascii_case("utf-8").then_some(text)
            });
        match encoded {
            Some(b64) => {
                let bytes = openssl::base64::decode_block(b64)
                    .unwrap_or_else(|e| panic!("bad base64 in {value:?}: {e}"));
                if !out.is_empty() && !last_encoded {
                    out.push(' ');
                }
                out.push_str(&String::from_utf8(bytes).expect("UTF-8 encoded word"));
                last_encoded = true;
            }
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(word);
                last_encoded = false;
            }
        }
    }
    out
}

/// Sends `mail` with swaks to the poststelle and returns it as fetched over IMAP (message
/// number `nth`, counted from 1).
fn send_and_fetch(city: &City, mail: &[u8], name: &str, nth: usize) -> Vec<u8> {
    let file = city.dir().join(name);
    std::fs::write(&file, mail).unwrap();
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        QES_SIGNER,
        "--to",
        POSTSTELLE,
        "--data",
        &format!("@{}", file.display()),
    ]);
    assert!(
        out.status.success(),
        "swaks:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let imap = city.imap_port().expect("Dovecot runs");
    let what = format!("mail {nth} in the poststelle's INBOX");
    wait_until(WAIT, &what, || {
        let all = imaplib_fetch_all(imap, POSTSTELLE, PASSWORD);
        all.into_iter().nth(nth - 1)
    })
}

#[test]
fn qualified_signature_is_tagged_qes_valid_after_the_trusted_list_is_imported() {
    let mut city = City::start(CityOptions {
        dovecot_users: vec![(POSTSTELLE.into(), PASSWORD.into())],
        milter: false,
        ..CityOptions::default()
    });
    let work = city.dir().join("qes");
    std::fs::create_dir_all(&work).unwrap();
    let (cert, key) = issue_qualified_leaf(&city, &work);
    let list = city
        .pki()
        .trusted_list(&work.join("tl-source"))
        .expect("test trusted list (xmlsec1)");
    let trusted_lists = city.dir().join("trust");

    // No anchor of its own: the CA is named only in the list the poststelle imports later.
    let path = city.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "[inbound]\n",
        &format!("[inbound]\npoststelle = [\"{POSTSTELLE}\"]\n"),
        1,
    ) + &format!(
        "\n[trust]\ntrusted_lists = \"{}\"\nrevocation = \"off\"\n",
        trusted_lists.display()
    );
    std::fs::write(&path, text).unwrap();
    city.start_milter();

    // Before any trusted list: a valid signature, but no path to anything trusted.
    let before = qes_mail(&work, &cert, &key, "Antrag", "<qes-before@example.org>");
    let fetched = send_and_fetch(&city, &before, "qes-before.eml", 1);
    let field = field_values(&fetched, "X-QES-Validation");
    assert_eq!(field.len(), 1, "{}", String::from_utf8_lossy(&fetched));
    assert!(
        field[0].starts_with("indication=INDETERMINATE; sub-indication=NO_CERTIFICATE_CHAIN_FOUND"),
        "{}",
        field[0]
    );
    assert_eq!(
        field_values(&fetched, "Subject"),
        vec!["[Signatur unbestimmt] Antrag".to_string()]
    );

    // The admin imports the list with its pinned signer and reloads the milter.
    let out = city.demailctl(&[
        "tl",
        "import",
        path_str(&list.xml),
        "--signer",
        path_str(&list.signer_cert),
    ]);
    assert!(
        out.status.success(),
        "demailctl tl import:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It says what a running milter needs.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("systemctl reload demail-milter"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let listed = city.demailctl(&["tl", "list"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).starts_with("ZZ trusted list")
            && String::from_utf8_lossy(&listed.stdout).contains(": 1 CA/QC services"),
        "demailctl tl list:\n{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let reloads = |c: &City| c.milter_log().matches("configuration reloaded").count();
    let pid = city.milter().expect("milter runs").pid();
    // SAFETY: kill(2) on the milter child we started; no memory is involved.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "SIGHUP to the milter");
    wait_until(WAIT, "the milter reloaded its configuration", || {
        (reloads(&city) == 1).then_some(())
    });

    let after = qes_mail(&work, &cert, &key, "Antrag", "<qes-after@example.org>");
    let fetched = send_and_fetch(&city, &after, "qes-after.eml", 2);
    let text = String::from_utf8_lossy(&fetched);
    let field = field_values(&fetched, "X-QES-Validation");
    assert_eq!(field.len(), 1, "one field per signature:\n{text}");
    assert!(
        field[0].starts_with("indication=TOTAL_PASSED; sub-indication=none; qualification=QESig;"),
        "{}",
        field[0]
    );
    assert!(
        field[0].contains(&format!("<{QES_SIGNER}>")),
        "the signer is named: {}",
        field[0]
    );
    let subject = field_values(&fetched, "Subject");
    assert_eq!(subject.len(), 1, "{text}");
    assert_eq!(decode_subject(&subject[0]), "[QES gültig] Antrag");

    // Only header fields were added: the qualified signature verifies on the fetched bytes.
    let fetched_file = work.join("fetched.eml");
    std::fs::write(&fetched_file, &fetched).unwrap();
    let verify = Command::new("openssl")
        .args(["smime", "-verify", "-CAfile"])
        .arg(&city.pki().ca_cert)
        .arg("-in")
        .arg(&fetched_file)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl smime -verify on the fetched mail:\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The evidence store holds both checks, the second one qualified.
    let store = city.evidence().expect("evidence store exists");
    let head = store.head().unwrap().expect("events");
    let checks: Vec<serde_json::Value> = (1..=head.event_id)
        .filter_map(|id| store.event(id).unwrap())
        .filter(|e| e.kind == "qes-check")
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect();
    assert_eq!(checks.len(), 2, "{checks:#?}");
    assert_eq!(checks[1]["message_id"], "<qes-after@example.org>");
    assert_eq!(checks[1]["indication"], "TOTAL_PASSED");
    assert_eq!(checks[1]["qualification"], "QESig");
    assert_ne!(checks[0]["qualification"], "QESig");
    assert!(store.verify_chain().unwrap().is_intact());
}
