//! Mail to the poststelle: every signature verified on the exact bytes received, one
//! `X-QES-Validation` field per signature, exactly one subject tag, the report in the evidence
//! store, forged `X-QES-*` fields renamed, unsigned mail left without field and tag.

mod common;
#[path = "../../trust/tests/common/pki.rs"]
#[allow(dead_code)]
mod pki;

use common::{Mail, Milter, Options, added, postfix_result, transact};
use demail_evidence::Digest;
use demail_trust::{Indication, Verifier, VerifyOptions};
use indymilter_test::{EomAction, EomActions, Status};
use pki::Party;
use tempfile::TempDir;
use time::Duration;

const POSTSTELLE: &str = "poststelle@magdeburg.example";
const SENDER: &str = "erika@example.org";

/// A CA, a signer with qcStatements, and the CA written as the configured anchor.
struct Pki {
    ca: Party,
    signer: Party,
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let ca = pki::ca();
        let signer = pki::issue(
            &pki::Spec {
                qc_statements: Some(pki::qes_statements()),
                ..pki::Spec::default()
            },
            Some(&ca),
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert.to_pem().unwrap()).unwrap();
        Pki { ca, signer, dir }
    }

    fn trust_toml(&self) -> String {
        self.trust_toml_with("off")
    }

    fn trust_toml_with(&self, revocation: &str) -> String {
        format!(
            "[trust]\nanchors = [\"{}\"]\nrevocation = \"{revocation}\"\n\
             ocsp_timeout = \"1s\"\ntrusted_lists = \"{}\"\n",
            self.dir.path().join("ca.pem").display(),
            self.dir.path().join("tl").display()
        )
    }

    fn signed_mail(&self, subject: &str) -> Vec<u8> {
        let raw = pki::smime_mail(
            &self.signer,
            &self.ca.cert,
            SENDER,
            &pki::mail_date(Duration::ZERO),
            "Antrag auf Wohngeld",
        );
        let text = String::from_utf8(raw).unwrap();
        text.replacen("Subject: Antrag\r\n", &format!("Subject: {subject}\r\n"), 1)
            .into_bytes()
    }
}

/// `raw` as Postfix hands it to the milter: fields (value after the colon, LF folding) and body.
fn mail_from_raw(raw: &[u8]) -> Mail {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut mail = Mail::new(SENDER, &[POSTSTELLE]);
    mail.daemon = "smtpd".into();
    mail.headers.clear();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = mail.headers.last_mut().unwrap();
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (n, v) = line.split_once(':').unwrap();
            mail.headers.push((n.to_string(), v.to_string()));
        }
    }
    mail.body = body.as_bytes().to_vec();
    mail
}

async fn start(pki: &Pki, extra: &str) -> Milter {
    let toml = format!("{}{extra}", pki.trust_toml());
    Milter::start_with(Options {
        extra: &toml,
        ..Options::default()
    })
    .await
}

async fn run(milter: &Milter, mail: &Mail) -> (EomActions, Status) {
    let mut conn = milter.open().await;
    let out = transact(&mut conn, mail).await;
    assert_eq!(
        out.data,
        Some(Status::Continue),
        "poststelle mail is streamed"
    );
    out.eom.expect("end of message reached")
}

fn subject_change(actions: &EomActions) -> Option<String> {
    actions.actions.iter().find_map(|a| match a {
        EomAction::ChangeHeader { name, value, .. } if name.to_str() == Ok("Subject") => {
            Some(value.to_string_lossy().trim_start().to_string())
        }
        _ => None,
    })
}

fn verifier(pki: &Pki) -> Verifier {
    Verifier::new(vec![pki.ca.cert.clone()], VerifyOptions::default()).unwrap()
}

#[tokio::test]
async fn signed_mail_gets_field_tag_and_record_and_still_verifies() {
    let pki = Pki::new();
    let milter = start(&pki, "").await;
    let mail = mail_from_raw(&pki.signed_mail("Antrag"));
    let (actions, status) = run(&milter, &mail).await;
    assert_eq!(status, Status::Accept);

    let field = added(&actions, "X-QES-Validation").expect("validation field");
    assert!(
        field.starts_with("indication=TOTAL_PASSED; sub-indication=none; "),
        "{field}"
    );
    // No trusted list knows the CA: valid, but not a QES.
    assert!(field.contains("qualification=N/A;"), "{field}");
    assert!(
        field.contains("signer=\"Erika Mustermann <erika@example.org>\""),
        "{field}"
    );
    assert_eq!(
        subject_change(&actions).as_deref(),
        Some("[signiert, keine QES] Antrag")
    );
    assert!(
        !actions.actions.iter().any(|a| matches!(
            a,
            EomAction::ChangeSender { .. } | EomAction::ReplaceBody { .. }
        )),
        "only header fields change: {actions:?}"
    );

    // The message as delivered still verifies: only header fields were added or changed.
    let delivered = postfix_result(&mail, &actions);
    let again = verifier(&pki).verify_mail(&delivered);
    assert_eq!(again.indication(), Indication::TotalPassed, "{again:?}");

    // The report is in the evidence store with the digest of exactly the bytes received.
    let store = milter.store();
    let check = store
        .qes_check_by_raw(&Digest::of(&mail.received_bytes()))
        .unwrap()
        .expect("QES check recorded");
    assert_eq!(check.data.indication, "TOTAL_PASSED");
    assert_eq!(check.data.qualification, "N/A");
    assert_eq!(check.data.recipients, vec![POSTSTELLE.to_string()]);
    assert_eq!(check.data.queue_id, mail.queue_id);
    assert_eq!(
        check.data.report["signatures"][0]["indication"],
        "TOTAL_PASSED"
    );
    assert_eq!(
        store.read_blob(&check.data.raw).unwrap(),
        mail.received_bytes()
    );
    assert!(store.verify_chain().unwrap().is_intact());
    milter.stop().await;
}

#[tokio::test]
async fn broken_and_unanchored_signatures_get_their_tags() {
    let pki = Pki::new();
    let milter = start(&pki, "").await;

    // One byte of the signed text changed on the way: the signature is proven bad.
    let raw = String::from_utf8(pki.signed_mail("Antrag")).unwrap();
    let tampered = raw.replacen("Antrag auf Wohngeld", "Antrag auf Wohngelt", 1);
    let (actions, status) = run(&milter, &mail_from_raw(tampered.as_bytes())).await;
    assert_eq!(status, Status::Accept);
    let field = added(&actions, "X-QES-Validation").unwrap();
    assert!(
        field.starts_with("indication=TOTAL_FAILED; sub-indication=HASH_FAILURE;"),
        "{field}"
    );
    assert_eq!(
        subject_change(&actions).as_deref(),
        Some("=?UTF-8?B?W1NpZ25hdHVyIHVuZ8O8bHRpZ10gQW50cmFn?=")
    );

    // A signer from a CA nobody configured, named like the configured one: the path to that
    // anchor does not verify.
    let stranger = Pki::new();
    let (actions, _) = run(&milter, &mail_from_raw(&stranger.signed_mail("Antrag"))).await;
    let field = added(&actions, "X-QES-Validation").unwrap();
    assert!(
        field.starts_with(
            "indication=INDETERMINATE; sub-indication=CERTIFICATE_CHAIN_GENERAL_FAILURE;"
        ),
        "{field}"
    );
    let subject = subject_change(&actions).unwrap();
    assert_eq!(decode(&subject), "[Signatur unbestimmt] Antrag");

    let store = milter.store();
    assert_eq!(
        store.verify_chain().unwrap().events,
        2,
        "both reports recorded"
    );
    milter.stop().await;
}

/// Decodes an RFC 2047 subject with mail-parser, as a mail client would.
fn decode(value: &str) -> String {
    let msg = format!("Subject: {value}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse(msg.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap()
}

#[tokio::test]
async fn unsigned_mail_gets_nothing_but_forgeries_are_neutralised() {
    let pki = Pki::new();
    let milter = start(&pki, "").await;
    let mail = Mail::new(SENDER, &[POSTSTELLE])
        .set_header("Subject", " [QES gültig] Antrag")
        .header(
            "X-QES-Validation",
            " indication=TOTAL_PASSED; qualification=QESig",
        )
        .header("x-qes-other", " yes");
    let mut mail = mail;
    mail.daemon = "smtpd".into();
    let (actions, status) = run(&milter, &mail).await;
    assert_eq!(status, Status::Accept);
    assert_eq!(added(&actions, "X-QES-Validation"), None, "{actions:?}");
    assert_eq!(
        added(&actions, "X-Untrusted-QES-Validation").as_deref(),
        Some("indication=TOTAL_PASSED; qualification=QESig")
    );
    assert_eq!(
        added(&actions, "X-Untrusted-qes-other").as_deref(),
        Some("yes")
    );
    // The sender's own "[QES gültig]" is gone; no tag of ours replaces it.
    assert_eq!(subject_change(&actions).as_deref(), Some("Antrag"));
    let delivered = String::from_utf8(postfix_result(&mail, &actions)).unwrap();
    assert!(
        !delivered.to_ascii_lowercase().contains("\nx-qes-"),
        "{delivered}"
    );
    assert_eq!(
        milter.store().verify_chain().unwrap().events,
        0,
        "nothing recorded"
    );

    // A plain unsigned mail passes without any change at all.
    let mut plain = Mail::new(SENDER, &[POSTSTELLE]);
    plain.daemon = "smtpd".into();
    let (actions, status) = run(&milter, &plain).await;
    assert_eq!(status, Status::Accept);
    assert!(actions.actions.is_empty(), "{actions:?}");
    milter.stop().await;
}

#[tokio::test]
async fn empty_tag_disables_it_and_other_recipients_are_not_checked() {
    let pki = Pki::new();
    let milter = start(&pki, "[tags]\nsigned_not_qualified = \"\"\n").await;
    let mail = mail_from_raw(&pki.signed_mail("Grüße"));
    let (actions, _) = run(&milter, &mail).await;
    assert!(added(&actions, "X-QES-Validation").is_some());
    assert_eq!(subject_change(&actions), None, "{actions:?}");

    // The same mail to someone else is ordinary mail: accepted at end of header, the body
    // never streamed.
    let mut other = mail_from_raw(&pki.signed_mail("Antrag"));
    other.rcpts = vec!["kaemmerei@magdeburg.example".into()];
    let mut conn = milter.open().await;
    let out = transact(&mut conn, &other).await;
    assert_eq!(out.data, Some(Status::Continue));
    assert_eq!(out.content, Some(Status::Accept));
    assert!(out.eom.is_none());
    milter.stop().await;
}

#[tokio::test]
async fn an_unreadable_anchor_is_a_tempfail_not_a_verdict() {
    let pki = Pki::new();
    let milter = start(&pki, "").await;
    // The configuration was valid when loaded; the file vanished before the first message.
    std::fs::remove_file(pki.dir.path().join("ca.pem")).unwrap();
    let (_, status) = run(&milter, &mail_from_raw(&pki.signed_mail("Antrag"))).await;
    assert!(matches!(status, Status::Tempfail { .. }), "{status:?}");
    assert_eq!(milter.store().verify_chain().unwrap().events, 0);
    milter.stop().await;
}

#[tokio::test]
async fn oversized_mail_is_passed_unverified_and_said_so() {
    let pki = Pki::new();
    let toml = pki.trust_toml();
    let milter = Milter::start_with(Options {
        max_size: "2KiB",
        extra: &toml,
        ..Options::default()
    })
    .await;
    let mut mail = mail_from_raw(&pki.signed_mail("Antrag"));
    mail.body.extend(std::iter::repeat_n(b'x', 4096));
    let (actions, status) = run(&milter, &mail).await;
    assert_eq!(status, Status::Accept);
    let field = added(&actions, "X-QES-Validation").unwrap();
    assert!(field.starts_with("indication=NOT_CHECKED;"), "{field}");
    assert_eq!(subject_change(&actions), None);
    milter.stop().await;
}

#[tokio::test]
async fn ocsp_without_an_answer_is_never_passed() {
    let pki = Pki::new();
    let toml = pki.trust_toml_with("ocsp");
    let milter = Milter::start_with(Options {
        extra: &toml,
        ..Options::default()
    })
    .await;
    // The test certificate names no OCSP responder: no revocation answer.
    let (actions, status) = run(&milter, &mail_from_raw(&pki.signed_mail("Antrag"))).await;
    assert_eq!(status, Status::Accept);
    let field = added(&actions, "X-QES-Validation").unwrap();
    assert!(field.starts_with("indication=INDETERMINATE;"), "{field}");
    assert_eq!(
        decode(&subject_change(&actions).unwrap()),
        "[Signatur unbestimmt] Antrag"
    );
    milter.stop().await;
}

/// A trusted list naming `ca` as a granted CA/QC service, signed with xmlsec1 by a list
/// signer of its own and imported into `dir` as `demailctl tl import --signer` would.
fn import_trusted_list(ca: &Party, dir: &std::path::Path) {
    let signer = pki::issue(
        &pki::Spec {
            cn: "Test Trusted List Signer",
            email: None,
            ..pki::Spec::default()
        },
        None,
    );
    let work = tempfile::tempdir().unwrap();
    let ca_b64 = openssl::base64::encode_block(&ca.cert.to_der().unwrap());
    let template = format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="tsl" TSLTag="http://uri.etsi.org/19612/TSLTag">
  <SchemeInformation>
    <TSLVersionIdentifier>5</TSLVersionIdentifier>
    <TSLSequenceNumber>1</TSLSequenceNumber>
    <TSLType>http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric</TSLType>
    <SchemeOperatorName><Name xml:lang="en">Test supervisory body</Name></SchemeOperatorName>
    <SchemeTerritory>DE</SchemeTerritory>
    <ListIssueDateTime>2020-01-01T00:00:00Z</ListIssueDateTime>
  </SchemeInformation>
  <TrustServiceProviderList>
    <TrustServiceProvider>
      <TSPInformation><TSPName><Name xml:lang="en">Test QTSP</Name></TSPName></TSPInformation>
      <TSPServices>
        <TSPService>
          <ServiceInformation>
            <ServiceTypeIdentifier>http://uri.etsi.org/TrstSvc/Svctype/CA/QC</ServiceTypeIdentifier>
            <ServiceName><Name xml:lang="en">Test QTSP CA</Name></ServiceName>
            <ServiceDigitalIdentity><DigitalId><X509Certificate>{ca_b64}</X509Certificate></DigitalId></ServiceDigitalIdentity>
            <ServiceStatus>http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted</ServiceStatus>
            <StatusStartingTime>2017-01-01T00:00:00Z</StatusStartingTime>
          </ServiceInformation>
        </TSPService>
      </TSPServices>
    </TrustServiceProvider>
  </TrustServiceProviderList>
  <ds:Signature>
    <ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
      <ds:Reference URI="">
        <ds:Transforms>
          <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
          <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
        </ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ds:DigestValue></ds:DigestValue>
      </ds:Reference>
    </ds:SignedInfo>
    <ds:SignatureValue></ds:SignatureValue>
  </ds:Signature>
</TrustServiceStatusList>
"##
    );
    let path = |n: &str| work.path().join(n);
    std::fs::write(path("template.xml"), template).unwrap();
    std::fs::write(
        path("key.pem"),
        signer.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("xmlsec1")
        .args(["--sign", "--privkey-pem"])
        .arg(path("key.pem"))
        .arg("--output")
        .arg(path("signed.xml"))
        .arg(path("template.xml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmlsec1 --sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read(path("signed.xml")).unwrap();
    demail_trust::tl::import(
        dir,
        &xml,
        "test-tl.xml",
        &[signer.cert],
        &demail_trust::tl::TrustedLists::default(),
    )
    .unwrap();
}

#[tokio::test]
async fn a_qes_under_an_imported_trusted_list_is_tagged_qes_valid() {
    let pki = Pki::new();
    import_trusted_list(&pki.ca, &pki.dir.path().join("tl"));
    let milter = start(&pki, "").await;
    let mail = mail_from_raw(&pki.signed_mail("Antrag"));
    let (actions, status) = run(&milter, &mail).await;
    assert_eq!(status, Status::Accept);
    let check = milter
        .store()
        .qes_check_by_raw(&Digest::of(&mail.received_bytes()))
        .unwrap()
        .expect("QES check recorded");
    let field = added(&actions, "X-QES-Validation").unwrap();
    assert!(
        field.starts_with("indication=TOTAL_PASSED; sub-indication=none; qualification=QESig;"),
        "{field}\n{:#}",
        check.data.report
    );
    assert_eq!(
        decode(&subject_change(&actions).unwrap()),
        "[QES gültig] Antrag"
    );
    assert_eq!(check.data.qualification, "QESig");

    // A signer from another CA that only shares the listed CA's name: its path does not
    // verify, so whatever the certificate claims, the mail is not tagged as a valid QES.
    let stranger = Pki::new();
    let (actions, _) = run(&milter, &mail_from_raw(&stranger.signed_mail("Antrag"))).await;
    let field = added(&actions, "X-QES-Validation").unwrap();
    assert!(field.starts_with("indication=INDETERMINATE;"), "{field}");
    assert_eq!(
        decode(&subject_change(&actions).unwrap()),
        "[Signatur unbestimmt] Antrag"
    );
    milter.stop().await;
}

/// A signed Antrag with a PDF-like attachment of `attachment` bytes (base64, as a client
/// sends it): together well beyond the milter's in-memory spool.
fn big_signed_mail(pki: &Pki, attachment: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..attachment).map(|i| (i * 7 % 256) as u8).collect();
    let part = format!(
        "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
         --mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAntrag auf Wohngeld, Anlage beigef\u{fc}gt\r\n\
         --mix\r\nContent-Type: application/pdf; name=anlage.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=anlage.pdf\r\n\r\n{}\r\n--mix--\r\n",
        openssl::base64::encode_block(&data).replace('\n', "\r\n")
    );
    let sig = pki::sign(&pki.signer, &[&pki.ca.cert], part.as_bytes(), true);
    format!(
        "From: {SENDER}\r\nTo: {POSTSTELLE}\r\nDate: {}\r\nSubject: Antrag\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/signed; \
         protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"sig\"\r\n\r\n\
         --sig\r\n{part}\r\n--sig\r\n\
         Content-Type: application/pkcs7-signature; name=smime.p7s\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=smime.p7s\r\n\r\n{}\r\n--sig--\r\n",
        pki::mail_date(Duration::ZERO),
        openssl::base64::encode_block(&sig)
    )
    .into_bytes()
}

/// Bodies beyond the in-memory spool (1 MiB) are verified from disk over every byte: intact
/// ones pass and are recorded byte for byte, one changed byte anywhere (also megabytes in)
/// fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_mail_beyond_the_memory_spool_is_verified_over_every_byte() {
    let pki = Pki::new();
    let milter = start(&pki, "").await;
    for size in [1024 * 1024, 3 * 1024 * 1024 + 17] {
        let raw = big_signed_mail(&pki, size);
        assert!(raw.len() > 1024 * 1024 + 4096, "{} bytes", raw.len());
        let mail = mail_from_raw(&raw);
        let (actions, status) = run(&milter, &mail).await;
        assert_eq!(status, Status::Accept);
        let field = added(&actions, "X-QES-Validation").expect("validation field");
        assert!(
            field.starts_with("indication=TOTAL_PASSED; sub-indication=none; "),
            "{size}: {field}"
        );
        assert_eq!(
            subject_change(&actions).as_deref(),
            Some("[signiert, keine QES] Antrag")
        );
        let check = milter
            .store()
            .qes_check_by_raw(&Digest::of(&mail.received_bytes()))
            .unwrap()
            .expect("QES check recorded");
        assert_eq!(
            milter.store().read_blob(&check.data.raw).unwrap(),
            mail.received_bytes()
        );

        // One base64 character of the attachment changed: early, in the middle (past the
        // spool threshold), at the end of the signed part.
        let text = String::from_utf8(raw).unwrap();
        let start = text.find("filename=anlage.pdf\r\n\r\n").unwrap() + 23;
        let end = text.find("\r\n--mix--").unwrap() - 2;
        for at in [start + 10, start + (end - start) / 2, end - 1] {
            assert!(text.as_bytes()[at].is_ascii_alphanumeric(), "{at}");
            let mut bytes = text.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let (actions, status) = run(&milter, &mail_from_raw(&bytes)).await;
            assert_eq!(status, Status::Accept);
            let field = added(&actions, "X-QES-Validation").unwrap();
            assert!(
                field.starts_with("indication=TOTAL_FAILED; sub-indication=HASH_FAILURE;"),
                "{size} at {at}: {field}"
            );
        }
    }
    assert!(milter.store().verify_chain().unwrap().is_intact());
    milter.stop().await;
}

/// A mail whose text is not signed, with a PDF and its detached `.p7s` by the Pki's signer: a
/// signed document attached (perhaps lifted from elsewhere), not a signed request.
fn attachment_mail(pki: &Pki, subject: &str) -> Vec<u8> {
    let pdf = b"%PDF-1.4\r\n% Bescheid, qualifiziert signiert\r\n%%EOF\r\n";
    let sig = pki::sign(&pki.signer, &[&pki.ca.cert], pdf, true);
    let b64 = |b: &[u8]| openssl::base64::encode_block(b);
    format!(
        "From: {SENDER}\r\nTo: {POSTSTELLE}\r\nDate: {}\r\nSubject: {subject}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
         --mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei der Bescheid.\r\n\
         --mix\r\nContent-Type: application/pdf; name=bescheid.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=bescheid.pdf\r\n\r\n{}\r\n\
         --mix\r\nContent-Type: application/pkcs7-signature; name=bescheid.pdf.p7s\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=bescheid.pdf.p7s\r\n\r\n{}\r\n--mix--\r\n",
        pki::mail_date(Duration::ZERO),
        b64(pdf),
        b64(&sig)
    )
    .into_bytes()
}

#[tokio::test]
async fn a_qes_on_an_attachment_names_its_signer_and_forged_tags_go() {
    let pki = Pki::new();
    import_trusted_list(&pki.ca, &pki.dir.path().join("tl"));
    let milter = start(&pki, "").await;
    for (subject, want) in [
        ("Antrag", "[QES gültig: Erika Mustermann] Antrag"),
        (
            "[QES gültig] Antrag",
            "[QES gültig: Erika Mustermann] Antrag",
        ),
        (
            "AW: [qes g\u{200b}ültig] Antrag",
            "[QES gültig: Erika Mustermann] AW: Antrag",
        ),
    ] {
        let mail = mail_from_raw(&attachment_mail(&pki, subject));
        let (actions, status) = run(&milter, &mail).await;
        assert_eq!(status, Status::Accept);
        let field = added(&actions, "X-QES-Validation").unwrap();
        assert!(field.contains("qualification=QESig;"), "{field}");
        assert!(field.contains("part=\"bescheid.pdf\""), "{field}");
        assert_eq!(
            decode(&subject_change(&actions).unwrap()),
            want,
            "{subject:?}"
        );
    }

    // The same signer on the message itself: the plain tag, forged look-alikes removed.
    for (subject, want) in [
        ("Antrag", "[QES gültig] Antrag"),
        ("AW: [QES\u{a0}GÜLTIG] Antrag", "[QES gültig] AW: Antrag"),
        ("[Signatur ungültig] Antrag", "[QES gültig] Antrag"),
    ] {
        let mail = mail_from_raw(&pki.signed_mail(subject));
        let (actions, _) = run(&milter, &mail).await;
        assert_eq!(
            decode(&subject_change(&actions).unwrap()),
            want,
            "{subject:?}"
        );
        // Only header fields changed: the signature still verifies as delivered.
        let delivered = postfix_result(&mail, &actions);
        assert_eq!(
            verifier(&pki).verify_mail(&delivered).indication(),
            Indication::TotalPassed
        );
    }
    milter.stop().await;
}

#[tokio::test]
async fn look_alike_tags_and_a_second_subject_on_unsigned_mail_are_neutralised() {
    let pki = Pki::new();
    let milter = start(&pki, "").await;
    for (subject, want) in [
        (" [QES g\u{200b}ültig] Antrag", "Antrag"),
        (" \u{200f}[QES gültig]\u{200e} Antrag", "Antrag"),
        (" [QES gu\u{308}ltig] Antrag", "Antrag"),
        (" [QES\u{a0}gültig] Antrag", "Antrag"),
        (" [qes GÜLTIG] Antrag", "Antrag"),
        (" AW: [QES gültig] Antrag", "AW: Antrag"),
        (" =?UTF-8?Q?[QES_g=C3=BCltig]?= Antrag", "Antrag"),
        (" \u{ff3b}QES gültig\u{ff3d} Antrag", "Antrag"),
    ] {
        let mut mail = Mail::new(SENDER, &[POSTSTELLE]).set_header("Subject", subject);
        mail.daemon = "smtpd".into();
        let (actions, status) = run(&milter, &mail).await;
        assert_eq!(status, Status::Accept);
        assert_eq!(
            subject_change(&actions).map(|s| decode(&s)).as_deref(),
            Some(want),
            "{subject:?}"
        );
        assert_eq!(added(&actions, "X-QES-Validation"), None);
    }

    // A second Subject: renamed, the first one is the only one left.
    let mut mail = Mail::new(SENDER, &[POSTSTELLE])
        .set_header("Subject", " Antrag")
        .header("Subject", " [QES gültig] Antrag");
    mail.daemon = "smtpd".into();
    let (actions, _) = run(&milter, &mail).await;
    assert_eq!(
        added(&actions, "X-Untrusted-Subject").as_deref(),
        Some("[QES gültig] Antrag")
    );
    let delivered = String::from_utf8(postfix_result(&mail, &actions)).unwrap();
    let subjects: Vec<&str> = delivered
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("subject:"))
        .collect();
    assert_eq!(subjects, ["Subject: Antrag"], "{delivered}");

    // And on signed mail the tag goes on the first Subject, the forged second one is renamed.
    let raw = String::from_utf8(pki.signed_mail("Antrag")).unwrap();
    let raw = raw.replacen(
        "MIME-Version: 1.0\r\n",
        "Subject: [QES gültig] Antrag\r\nMIME-Version: 1.0\r\n",
        1,
    );
    let mail = mail_from_raw(raw.as_bytes());
    let (actions, _) = run(&milter, &mail).await;
    let delivered = String::from_utf8(postfix_result(&mail, &actions)).unwrap();
    let subjects: Vec<&str> = delivered
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("subject:"))
        .collect();
    assert_eq!(
        subjects,
        ["Subject: [signiert, keine QES] Antrag"],
        "{delivered}"
    );
    assert!(delivered.contains("\r\nX-Untrusted-Subject: [QES gültig] Antrag\r\n"));
    milter.stop().await;
}
