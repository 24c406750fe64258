//! For the inbound tests: the provider's qualified signing certificate from the provider
//! simulator's test PKI, its trusted list imported as `demailctl tl import` does, provider
//! messages signed with `X-de-mail-integrity`, confirmations with their XML and PDF parts, and
//! a milter session driver that also sends TLS macros and follows a body Skip to the end.

#![allow(dead_code)] // each test file uses its own part

use demail_provider_sim::pki::{CertUsage, TestPki};
use demail_trust::integrity::{self, Alg, HashAlg, SigAlg};
use demail_trust::tl::TrustedLists;
use indymilter_test::{EomActions, MacroStage, Status, TestConnection};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tempfile::TempDir;

use super::common::{Mail, Milter, Options};

pub const PROVIDER: &str = "provider.example";
/// The De-Mail account the provider delivers to.
pub const ACCOUNT: &str = "info@magdeburg.de-mail.de";
pub const CLERK: &str = "erika.muster@magdeburg.example";
pub const CITIZEN: &str = "buerger@example.de-mail.de";
/// The subject common name of the provider's pinned TLS client certificate
/// (`{cert_subject}`).
pub const PROVIDER_CLIENT: &str = "gw.provider.example";
/// The common name of the CA that issued it (`{cert_issuer}`): a CA of its own.
pub const PROVIDER_CLIENT_ISSUER: &str = "provider client CA";
/// The common name of the CA of the provider's server certificate and seals.
pub const SERVER_CA: &str = "demail-provider-sim test CA";

/// A signing identity of the provider.
pub struct Signer {
    pub key: PKey<Private>,
    pub cert: X509,
}

/// The provider's PKI: a qualified signer under a CA a trusted list names as CA/QC, a
/// signer with an ordinary certificate from the same CA, and the imported list.
pub struct ProviderPki {
    pub dir: TempDir,
    pub qualified: Signer,
    pub plain: Signer,
    /// Another qualified signer under the same listed CA: not the pinned provider seal.
    pub other_qualified: Signer,
    /// `[inbound]` keys that pin the provider (client CA, client certificate, seal).
    pub pins: String,
}

fn signer(cert: &std::path::Path, key: &std::path::Path) -> Signer {
    Signer {
        key: PKey::private_key_from_pem(&std::fs::read(key).unwrap()).unwrap(),
        cert: X509::from_pem(&std::fs::read(cert).unwrap()).unwrap(),
    }
}

impl ProviderPki {
    pub fn new() -> ProviderPki {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(&dir.path().join("pki")).expect("test PKI");
        let q = pki
            .issue_qualified("provider-signer", "De-Mail Provider Signing")
            .expect("qualified certificate");
        let p = pki
            .issue("plain-signer", "Not Qualified", &[], CertUsage::Client)
            .expect("plain certificate");
        let other = pki
            .issue_qualified("citizen-card", "Max Buerger")
            .expect("another qualified certificate");
        // The provider's TLS client certificate comes from a CA of its own.
        let client_pki =
            TestPki::generate_named(&dir.path().join("client-pki"), PROVIDER_CLIENT_ISSUER)
                .expect("client PKI");
        let client = client_pki
            .issue("provider-client", PROVIDER_CLIENT, &[], CertUsage::Client)
            .expect("provider client certificate");
        let pins = format!(
            "provider_client_ca = \"{}\"\nprovider_client_certificates = [\"{}\"]\n\
             provider_signers = [\"{}\"]\n",
            client_pki.ca_cert.display(),
            client.cert.display(),
            q.cert.display()
        );
        let list = pki
            .trusted_list(&dir.path().join("list"))
            .expect("trusted list (xmlsec1)");
        let list_signer = X509::from_pem(&std::fs::read(&list.signer_cert).unwrap()).unwrap();
        demail_trust::tl::import(
            &dir.path().join("tl"),
            &std::fs::read(&list.xml).unwrap(),
            "trusted-list.xml",
            &[list_signer],
            &TrustedLists::default(),
        )
        .expect("import the test trusted list");
        ProviderPki {
            qualified: signer(&q.cert, &q.key),
            plain: signer(&p.cert, &p.key),
            other_qualified: signer(&other.cert, &other.key),
            pins,
            dir,
        }
    }

    /// `[trust]` with no anchors of its own: the imported list's CA/QC services are the anchors.
    pub fn trust_toml(&self) -> String {
        format!(
            "[trust]\nrevocation = \"off\"\ntrusted_lists = \"{}\"\n",
            self.dir.path().join("tl").display()
        )
    }

    /// A milter with the provider pinned, plus `inbound` keys.
    pub async fn milter(&self, inbound: &str) -> Milter {
        self.milter_unpinned(&format!("{}{inbound}", self.pins))
            .await
    }

    /// A milter whose `[inbound]` is exactly `inbound` (no pins unless given).
    pub async fn milter_unpinned(&self, inbound: &str) -> Milter {
        let trust = self.trust_toml();
        Milter::start_with(Options {
            extra: &trust,
            inbound,
            ..Options::default()
        })
        .await
    }
}

/// Signs `message` as the provider does (`sha256/rsa`, the signed fields present).
pub fn sign(message: &str, signer: &Signer) -> Vec<u8> {
    let alg = Alg {
        hash: HashAlg::Sha256,
        sig: SigAlg::Rsa,
    };
    integrity::sign(message.as_bytes(), &signer.key, &signer.cert, alg).expect("sign")
}

/// The unfolded value of the topmost `X-de-mail-integrity` of `signed`.
pub fn integrity_value(signed: &[u8]) -> String {
    integrity::verify(signed)
        .integrity_value
        .expect("integrity field")
}

/// An inbound De-Mail from a citizen, as the provider delivers it (unsigned).
pub fn inbound_demail(authoritative: bool, subject: &str) -> String {
    let mut m = format!(
        "From: Max Buerger <{CITIZEN}>\r\nTo: <{ACCOUNT}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0100\r\nMessage-ID: <in-1@{PROVIDER}>\r\n\
         Subject: {subject}\r\n"
    );
    if authoritative {
        m.push_str("X-de-mail-authoritative: yes\r\nX-de-mail-auth-level: high\r\n");
    }
    m.push_str(&format!(
        "X-de-mail-sender: {CITIZEN}\r\nX-de-mail-message-type: normal\r\n\
         X-de-mail-version: 1.8\r\nX-de-mail-message-id: <in-1@{PROVIDER}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Sehr geehrte Damen und Herren,\r\nich widerspreche dem Bescheid.\r\n"
    ));
    m
}

/// What a confirmation says about the original.
pub struct Ack<'a> {
    /// `confirmation of dispatch` etc., or `notification`.
    pub message_type: &'a str,
    pub notification_type: Option<&'a str>,
    /// In the mail header (`X-de-mail-private-id`) and the XML metadata.
    pub private_id: Option<&'a str>,
    pub subject: &'a str,
    pub recipient: &'a str,
    /// The original's `X-de-mail-integrity` value.
    pub hash: &'a str,
    pub time: &'a str,
}

/// A confirmation (or notification) as the provider sends it, unsigned: `multipart/mixed`
/// with a text part, the `urn:de-mail` XML as `application/octet-stream` (found by content)
/// and a PDF.
pub fn confirmation(a: &Ack<'_>) -> String {
    let mut meta = String::new();
    let mut metadate = |name: &str, value: &str| {
        meta.push_str(&format!(
            "<Metadate><Name>{name}</Name><Value>{value}</Value>\
             <OriginalHeader>{name}: {value}</OriginalHeader></Metadate>\n"
        ));
    };
    if let Some(p) = a.private_id {
        metadate("X-de-mail-private-id", p);
    }
    metadate("Subject", a.subject);
    metadate("X-de-mail-actual-recipient", &format!("to={}", a.recipient));
    let xml = if a.message_type == "notification" {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Notification-Message xmlns=\"urn:de-mail\">\n<Subject>Nicht zustellbar</Subject>\n\
             <Text>Empf\u{e4}nger: {}</Text>\n<Time>{}</Time>\n<Sender>Meldung@{PROVIDER}</Sender>\n\
             </Notification-Message>\n",
            a.recipient, a.time
        )
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Acknowledge-Message xmlns=\"urn:de-mail\">\n<Sender>{ACCOUNT}</Sender>\n\
             <Metadata>\n{meta}</Metadata>\n<Subject>*Best\u{e4}tigung* {}</Subject>\n\
             <Text>Empf\u{e4}nger: {}</Text>\n<Hash>{}</Hash>\n<Time>{}</Time>\n\
             </Acknowledge-Message>\n",
            a.subject, a.recipient, a.hash, a.time
        )
    };
    let b64 = |data: &[u8]| {
        let text = openssl::base64::encode_block(data);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        lines.join("\r\n")
    };
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let mut m = format!(
        "From: <Versandbestaetigung@{PROVIDER}>\r\nTo: <{ACCOUNT}>\r\n\
         Date: Mon, 23 Nov 2026 10:05:00 +0100\r\nMessage-ID: <conf-{}@{PROVIDER}>\r\n\
         Subject: *Bestaetigung* {}\r\nX-de-mail-message-type: {}\r\n",
        a.time, a.subject, a.message_type
    );
    if let Some(t) = a.notification_type {
        m.push_str(&format!("X-de-mail-notification-type: {t}\r\n"));
    }
    if let Some(p) = a.private_id {
        m.push_str(&format!("X-de-mail-private-id: {p}\r\n"));
    }
    m.push_str(&format!(
        "X-de-mail-message-id: <orig-1@{PROVIDER}>\r\nX-de-mail-version: 1.8\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"conf-b\"\r\n\r\n\
         --conf-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSiehe Anlagen.\r\n\
         --conf-b\r\nContent-Type: application/octet-stream; name=\"data\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --conf-b\r\nContent-Type: application/pdf; name=\"bestaetigung.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--conf-b--\r\n",
        b64(xml.as_bytes()),
        b64(pdf)
    ));
    m
}

/// `raw` (CRLF) as Postfix hands it to the milter: field values after the colon with LF
/// folding, and the body.
pub fn mail_from_raw(raw: &[u8], daemon: &str, sender: &str, rcpt: &str) -> Mail {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut mail = Mail::new(sender, &[rcpt]);
    mail.daemon = daemon.into();
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

/// How a transaction ended.
pub struct Ended {
    /// The status of the header stage that ended it early (Accept at end of header).
    pub content: Option<Status>,
    /// The first body status (Skip when the body is not wanted).
    pub body: Option<Status>,
    pub eom: Option<(EomActions, Status)>,
}

/// One SMTP session through the milter; `tls_subject` is the verified client certificate
/// Postfix would name in `{cert_subject}` (issued by [`PROVIDER_CLIENT_ISSUER`]).
pub async fn deliver(milter: &Milter, mail: &Mail, tls_subject: Option<&str>) -> Ended {
    deliver_as(
        milter,
        mail,
        tls_subject.map(|s| (s, PROVIDER_CLIENT_ISSUER)),
    )
    .await
}

/// [`deliver`] with the client certificate's subject and issuer names.
pub async fn deliver_as(milter: &Milter, mail: &Mail, tls: Option<(&str, &str)>) -> Ended {
    let mut conn: TestConnection = milter.open().await;
    conn.macros(
        MacroStage::Connect,
        [
            ("{daemon_name}", mail.daemon.as_str()),
            ("{client_addr}", "192.0.2.77"),
        ],
    )
    .await
    .unwrap();
    let connect = conn
        .connect("gw.provider.example", [192, 0, 2, 77])
        .await
        .unwrap();
    assert!(super::common::goes_on(&connect), "{connect:?}");
    let mut mail_macros = vec![("i", mail.queue_id.clone())];
    if let Some((subject, issuer)) = tls {
        mail_macros.push(("{cert_subject}", subject.to_string()));
        mail_macros.push(("{cert_issuer}", issuer.to_string()));
    }
    conn.macros(MacroStage::Mail, mail_macros).await.unwrap();
    assert_eq!(
        conn.mail([format!("<{}>", mail.sender)]).await.unwrap(),
        Status::Continue
    );
    for r in &mail.rcpts {
        assert_eq!(
            conn.rcpt([format!("<{r}>")]).await.unwrap(),
            Status::Continue
        );
    }
    assert_eq!(conn.data().await.unwrap(), Status::Continue);
    let mut ended = Ended {
        content: None,
        body: None,
        eom: None,
    };
    for (n, v) in &mail.headers {
        let s = conn.header(n.as_str(), v.as_str()).await.unwrap();
        if !super::common::goes_on(&s) {
            ended.content = Some(s);
            conn.close().await.unwrap();
            return ended;
        }
    }
    let s = conn.eoh().await.unwrap();
    if s != Status::Continue {
        ended.content = Some(s);
        conn.close().await.unwrap();
        return ended;
    }
    let s = conn.body(mail.body.clone()).await.unwrap();
    ended.body = Some(s.clone());
    assert!(
        matches!(s, Status::Continue | Status::Skip),
        "body stage: {s:?}"
    );
    conn.macros(MacroStage::Eom, [("i", mail.queue_id.as_str())])
        .await
        .unwrap();
    ended.eom = Some(conn.eom().await.unwrap());
    conn.close().await.unwrap();
    ended
}

/// The provider's delivery of `raw` on the provider service.
pub async fn from_provider(milter: &Milter, raw: &[u8]) -> (EomActions, Status) {
    let mail = mail_from_raw(
        raw,
        "demail-in",
        &format!("Versandbestaetigung@{PROVIDER}"),
        ACCOUNT,
    );
    deliver(milter, &mail, Some(PROVIDER_CLIENT))
        .await
        .eom
        .expect("provider messages are received to the end")
}

/// The subject the milter set, decoded (None: unchanged).
pub fn new_subject(actions: &EomActions) -> Option<String> {
    actions.actions.iter().find_map(|a| match a {
        indymilter_test::EomAction::ChangeHeader { name, value: v, .. }
            if name.to_str() == Ok("Subject") =>
        {
            let raw = format!("Subject:{}\r\n\r\n", v.to_str().unwrap());
            Some(
                mail_parser::MessageParser::default()
                    .parse(raw.as_bytes())
                    .and_then(|m| m.subject().map(str::to_string))
                    .unwrap_or_default(),
            )
        }
        _ => None,
    })
}

/// A De-Mail from the clerk through the milter, recorded as a submission; returns it.
pub async fn send_demail(milter: &Milter, subject: &str) -> demail_evidence::Submission {
    let mut mail = Mail::new(CLERK, &[CITIZEN]).set_header("Subject", &format!(" {subject}"));
    mail.queue_id = "OUT1".into();
    mail.body = format!("Sehr geehrte Damen und Herren,\r\n\r\n{subject} anbei.\r\n").into_bytes();
    let mut conn = milter.open().await;
    let out = super::common::transact(&mut conn, &mail).await;
    let (_, status) = out.eom.expect("De-Mail reaches end of message");
    assert_eq!(status, Status::Accept);
    conn.close().await.unwrap();
    super::common::recorded(milter, &mail).expect("submission recorded")
}

/// The bytes that left for `s` (what the provider received and dispatched).
pub fn sent_bytes(milter: &Milter, s: &demail_evidence::Submission) -> Vec<u8> {
    milter.store().read_blob(&s.content).expect("sent blob")
}

/// The provider's dispatched copy of `sent`: its fields added, then signed. Its integrity
/// value is what confirmations quote as `Hash`.
pub fn dispatched_hash(sent: &[u8], signer: &Signer) -> String {
    let text = String::from_utf8_lossy(sent);
    let copy = format!(
        "X-de-mail-message-id: <orig-1@{PROVIDER}>\r\nX-de-mail-sender: {ACCOUNT}\r\n{text}"
    );
    integrity_value(&sign(&copy, signer))
}
