//! OCSP against a real responder: `openssl ocsp` serving an `index.txt` that lists the signer
//! valid or revoked, started on a local port that the signer's AIA names. Also a responder that
//! is down, one that never answers, one that is not authorised to answer, and one that does
//! not know the certificate: none of them may let a signature pass.

mod common;
mod revocation_pki;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant};

use common::pki::{self, Party};
use common::summary;
use demail_trust::revocation::{RevocationMode, from_settings};
use demail_trust::{Indication, MailReport, SubIndication, Verifier, VerifyOptions};
use revocation_pki::{Entry, index_line, issue, write_pem};
use time::Duration;

/// `openssl ocsp` as a child process, killed when dropped.
struct Responder {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `openssl ocsp` on `port` for certificates of `ca`, answering with `signer`'s key,
/// and waits until it accepts connections.
fn start_responder(port: u16, ca: &Party, signer: &Party, index: &str) -> Responder {
    let dir = tempfile::tempdir().unwrap();
    let d: &Path = dir.path();
    write_pem(d, "ca", ca);
    write_pem(d, "rsigner", signer);
    std::fs::write(d.join("index.txt"), index).unwrap();
    let mut child = Command::new("openssl")
        .current_dir(d)
        .args(["ocsp", "-index", "index.txt", "-port", &port.to_string()])
        .args([
            "-rsigner",
            "rsigner.pem",
            "-rkey",
            "rsigner.key",
            "-CA",
            "ca.pem",
        ])
        .args(["-nrequest", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl ocsp");
    // It prints `ACCEPT [::]:PORT PID=...` once it listens.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("ACCEPT") {
                let _ = tx.send(());
            }
        }
    });
    let responder = Responder { child, _dir: dir };
    rx.recv_timeout(StdDuration::from_secs(20))
        .expect("openssl ocsp did not start listening");
    responder
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

fn verifier(ca: &Party, timeout: StdDuration) -> Verifier {
    Verifier::new(vec![ca.cert.clone()], VerifyOptions::default())
        .unwrap()
        .with_revocation(from_settings(RevocationMode::Ocsp, timeout, &[]))
}

fn enveloping(v: &Verifier, signer: &Party, ca: &Party) -> MailReport {
    let der = pki::sign(signer, &[&ca.cert], b"Antrag auf Wohngeld", false);
    v.verify_file(&der, "antrag.p7m", None).unwrap()
}

fn assert_verdict(r: &MailReport, indication: Indication, sub: Option<SubIndication>) {
    assert_eq!(r.signatures.len(), 1, "{}", summary(r));
    let s = &r.signatures[0];
    assert_eq!(
        (s.indication, s.sub_indication),
        (indication, sub),
        "{}",
        summary(r)
    );
    assert_eq!(s.revocation, "ocsp");
}

/// The CA, a delegated responder, and a signer whose AIA points at `port`.
fn setup(port: u16) -> (Party, Party, Party) {
    let ca = pki::ca();
    let responder = issue(&ca, "Test OCSP Responder", 0x0100, None, true);
    let signer = issue(&ca, "Erika Mustermann", 0x1001, Some(&url(port)), false);
    (ca, responder, signer)
}

#[test]
fn revoked_before_signing_is_total_failed_revoked() {
    let port = free_port();
    let (ca, rsigner, signer) = setup(port);
    let index = index_line(
        &signer,
        &Entry::Revoked(Duration::days(-1), Some("keyCompromise")),
    );
    let _r = start_responder(port, &ca, &rsigner, &index);
    let r = enveloping(&verifier(&ca, StdDuration::from_secs(5)), &signer, &ca);
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::Revoked));
    let errors = r.signatures[0].errors.join("\n");
    assert!(errors.contains("keyCompromise"), "{errors}");
    assert!(errors.contains(&format!("OCSP {}", url(port))), "{errors}");
}

#[test]
fn revoked_after_signing_is_revoked_no_poe() {
    // DSS: revoked after the (claimed, unproven) signing time gives no certainty either way.
    let port = free_port();
    let (ca, rsigner, signer) = setup(port);
    let index = index_line(&signer, &Entry::Revoked(Duration::hours(2), None));
    let _r = start_responder(port, &ca, &rsigner, &index);
    let r = enveloping(&verifier(&ca, StdDuration::from_secs(5)), &signer, &ca);
    assert_verdict(
        &r,
        Indication::Indeterminate,
        Some(SubIndication::RevokedNoPoe),
    );
}

#[test]
fn valid_certificate_passes_for_a_file_and_an_smime_mail() {
    let port = free_port();
    let (ca, rsigner, signer) = setup(port);
    let _r = start_responder(port, &ca, &rsigner, &index_line(&signer, &Entry::Valid));
    let v = verifier(&ca, StdDuration::from_secs(5));
    let r = enveloping(&v, &signer, &ca);
    assert_verdict(&r, Indication::TotalPassed, None);
    assert!(r.signatures[0].errors.is_empty());
    let date = pki::mail_date(Duration::ZERO);
    let from = format!("Erika Mustermann <{}>", revocation_pki::SIGNER_EMAIL);
    let mail = pki::smime_mail(&signer, &ca.cert, &from, &date, "Antrag auf Wohngeld");
    let r = v.verify_mail(&mail);
    assert_verdict(&r, Indication::TotalPassed, None);
    assert!(
        !r.signatures[0]
            .warnings
            .iter()
            .any(|w| w.contains("revocation")),
        "{:?}",
        r.signatures[0].warnings
    );
}

#[test]
fn responder_down_is_try_later() {
    let port = free_port(); // nobody listens there
    let (ca, _, signer) = setup(port);
    let started = Instant::now();
    let r = enveloping(&verifier(&ca, StdDuration::from_secs(5)), &signer, &ca);
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    assert!(started.elapsed() < StdDuration::from_secs(5));
    let errors = r.signatures[0].errors.join("\n");
    assert!(errors.contains("connecting to 127.0.0.1"), "{errors}");
}

#[test]
fn silent_responder_times_out_as_try_later() {
    // Accepts the connection, reads nothing, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(StdDuration::from_secs(4));
        drop(conn);
    });
    let (ca, _, signer) = setup(port);
    let started = Instant::now();
    let r = enveloping(&verifier(&ca, StdDuration::from_millis(700)), &signer, &ca);
    let took = started.elapsed();
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    assert!(took < StdDuration::from_secs(3), "took {took:?}");
    assert!(r.signatures[0].errors.join("\n").contains("timed out"));
    holder.join().unwrap();
}

#[test]
fn garbage_answer_is_try_later() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = b"\x30\x03\x0a\x01\x00";
        let head = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
    });
    let (ca, _, signer) = setup(port);
    let r = enveloping(&verifier(&ca, StdDuration::from_secs(5)), &signer, &ca);
    server.join().unwrap();
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
}

#[test]
fn answer_from_an_unauthorised_responder_is_try_later() {
    // A responder certificate from another CA says "good": its word counts for nothing.
    let port = free_port();
    let (ca, _, signer) = setup(port);
    let other_ca = pki::ca();
    let impostor = issue(&other_ca, "Impostor Responder", 0x0200, None, true);
    let _r = start_responder(port, &ca, &impostor, &index_line(&signer, &Entry::Valid));
    let r = enveloping(&verifier(&ca, StdDuration::from_secs(5)), &signer, &ca);
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    let errors = r.signatures[0].errors.join("\n");
    assert!(errors.contains("does not verify"), "{errors}");
}

#[test]
fn certificate_unknown_to_the_responder_is_try_later() {
    let port = free_port();
    let (ca, rsigner, signer) = setup(port);
    let someone_else = issue(&ca, "Max Mustermann", 0x2002, None, false);
    let _r = start_responder(
        port,
        &ca,
        &rsigner,
        &index_line(&someone_else, &Entry::Valid),
    );
    let r = enveloping(&verifier(&ca, StdDuration::from_secs(5)), &signer, &ca);
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    let errors = r.signatures[0].errors.join("\n");
    assert!(errors.contains("status unknown"), "{errors}");
}

#[test]
fn no_responder_in_the_certificate_is_try_later() {
    let ca = pki::ca();
    let signer = issue(&ca, "Erika Mustermann", 0x1001, None, false);
    let r = enveloping(&verifier(&ca, StdDuration::from_secs(5)), &signer, &ca);
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
}

#[test]
fn a_stranger_certificate_makes_no_request() {
    // The AIA URL of a certificate that no anchor signed is not contacted: neither when no
    // path is found, nor when the path ends at an anchor with the same name but another key.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (ca, _, signer) = setup(port);
    let same_name_other_key = pki::ca();
    let r = enveloping(
        &verifier(&same_name_other_key, StdDuration::from_secs(5)),
        &signer,
        &ca,
    );
    assert_eq!(r.signatures[0].indication, Indication::Indeterminate);
    let no_chain = Verifier::new(Vec::new(), VerifyOptions::default())
        .unwrap()
        .with_revocation(from_settings(
            RevocationMode::Ocsp,
            StdDuration::from_secs(5),
            &[],
        ));
    let r2 = enveloping(&no_chain, &signer, &ca);
    assert_eq!(
        r2.signatures[0].sub_indication,
        Some(SubIndication::NoCertificateChainFound),
        "{}",
        summary(&r2)
    );
    for r in [&r, &r2] {
        let errors = r.signatures[0].errors.join("\n");
        assert!(!errors.contains("OCSP"), "{errors}");
    }
    assert!(
        listener.accept().is_err(),
        "the gateway connected to the stranger's URL"
    );
}
