//! The sending side end to end: a simulator with a `[send]` configuration takes a De-Mail from
//! the city's gateway and sends confirmations, notifications and injected De-Mails over
//! implicit TLS with its client certificate to a second simulator that stands in for the
//! city's `demail-in` (it requires a client certificate from the same CA). Every message is
//! read back with mail-parser and roxmltree; the XML signature is checked with `xmlsec1`, the
//! `X-de-mail-integrity` with demail-trust and the test trusted list (QESig).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Client, Fixture, RCPT, SENDER};
use demail_provider_sim::pki::CertUsage;
use demail_provider_sim::receive::RunOptions;
use demail_provider_sim::send::pdf;
use demail_provider_sim::{
    Accepted, ConfirmationKind, Forge, InboundSpec, NotificationKind, Outgoing, OutgoingKind,
    RecipientState, SendConfig, SendError, SimConfig, Simulator, Target, TlsMode, Transport,
};
use demail_trust::integrity::{self, ValidationContext};
use demail_trust::tl::TrustedLists;
use demail_trust::{Indication, Qualification, SubIndication};
use mail_parser::{MessageParser, MimeHeaders};
use openssl::x509::X509;

const PROVIDER: &str = "provider-sim.de-mail.test";
const CITIZEN: &str = "buerger@example.de-mail.de";
const WAIT: Duration = Duration::from_secs(30);

/// The provider simulator, the stand-in for the city's demail-in, and the test trusted list.
struct Rig {
    fx: Fixture,
    provider: Simulator,
    city_in: Simulator,
    lists: TrustedLists,
}

fn system_addresses() -> Vec<String> {
    [
        "Versandbestaetigung",
        "Eingangsbestaetigung",
        "Abholbestaetigung",
        "Meldung",
    ]
    .iter()
    .map(|l| format!("{l}@{PROVIDER}"))
    .chain([CITIZEN.to_string()])
    .collect()
}

/// The city's demail-in stand-in: implicit TLS, client certificates from the test CA.
fn city_in_config(fx: &Fixture, listen: SocketAddr) -> SimConfig {
    let mut cfg = fx.config(TlsMode::Implicit);
    cfg.listen = listen;
    cfg.accounts = system_addresses();
    cfg.demail_domains = vec!["*.de-mail.de".into()];
    cfg.store_dir = fx.dir.path().join("city-in");
    cfg.max_message_size = 1 << 20;
    cfg
}

fn send_config(fx: &Fixture, deliver_to: SocketAddr) -> SendConfig {
    let signing = fx
        .pki
        .issue_qualified("provider-sign", "De-Mail Provider Simulator Signatur")
        .expect("qualified cert");
    let mx = fx
        .pki
        .issue(
            "provider-mx",
            "mx.provider-sim.de-mail.test",
            &[],
            CertUsage::Client,
        )
        .expect("client cert");
    let mut c = SendConfig::new(signing.cert, signing.key, deliver_to, mx.cert, mx.key);
    c.provider_domain = PROVIDER.into();
    c.server_ca = Some(fx.pki.ca_cert.clone());
    c.retry_delay = Duration::from_millis(100);
    c
}

impl Rig {
    fn new(adjust: impl FnOnce(&mut SendConfig)) -> Rig {
        let fx = Fixture::new();
        let city_in = Simulator::start(city_in_config(&fx, "127.0.0.1:0".parse().expect("addr")))
            .expect("city demail-in");
        let mut send = send_config(&fx, city_in.addr());
        adjust(&mut send);
        let provider = start_provider(&fx, send);
        let tl = fx.pki.trusted_list(&fx.dir.path().join("tl")).expect("tl");
        let signer = X509::from_pem(&std::fs::read(&tl.signer_cert).expect("pem")).expect("pem");
        let xml = std::fs::read(&tl.xml).expect("tl xml");
        let lists = TrustedLists::from_xml_verified(&xml, &[signer]).expect("tl verifies");
        Rig {
            fx,
            provider,
            city_in,
            lists,
        }
    }

    /// The city's gateway submits `message` to the provider.
    fn submit(&self, rcpts: &[&str], message: &[u8]) {
        let mut c = Client::implicit(
            self.provider.addr(),
            &self.fx.pki.ca_cert,
            Some(&self.fx.client_identity()),
        )
        .expect("connect");
        let r = c.send(SENDER, rcpts, message);
        assert_eq!(r.code, 250, "{r:?}");
    }

    fn verify(&self, message: &[u8]) -> integrity::QualifiedIntegrityReport {
        let ctx = ValidationContext {
            anchors: self.lists.anchors(),
            intermediates: Vec::new(),
            at: None,
            qualification: Box::new(self.lists.clone()),
            signers: None,
            revocation: None,
        };
        integrity::verify_with(message, &ctx)
    }

    fn received(&self, n: usize) -> Vec<Accepted> {
        let got = self.city_in.wait_for(n, WAIT);
        assert_eq!(got.len(), n, "{:?}", self.provider.sent());
        got
    }
}

fn start_provider(fx: &Fixture, send: SendConfig) -> Simulator {
    let mut cfg = fx.config(TlsMode::Implicit);
    cfg.store_dir = fx.dir.path().join("provider-store");
    let opts = RunOptions {
        send: Some(send),
        ..RunOptions::default()
    };
    Simulator::start_with(cfg, opts).expect("provider")
}

fn header(m: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    m.header_raw(name).map(|v| v.trim().to_string())
}

/// The XML part, found by its content (root element and namespace), as the milter must.
fn xml_part(raw: &[u8]) -> String {
    let m = MessageParser::default().parse(raw).expect("parses");
    m.attachments()
        .filter_map(|a| std::str::from_utf8(a.contents()).ok().map(str::to_string))
        .find(|t| t.contains("urn:de-mail"))
        .expect("an XML part in urn:de-mail")
}

fn pdf_part(raw: &[u8]) -> Vec<u8> {
    let m = MessageParser::default().parse(raw).expect("parses");
    m.attachments()
        .find(|a| a.content_type().is_some_and(|c| c.subtype() == Some("pdf")))
        .map(|a| a.contents().to_vec())
        .expect("a PDF part")
}

fn children(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.root_element()
        .children()
        .filter(|c| c.is_element())
        .map(|c| c.tag_name().name().to_string())
        .collect()
}

fn child_text(doc: &roxmltree::Document<'_>, name: &str) -> String {
    doc.root_element()
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_string()
}

/// `xmlsec1 --verify` of `xml` with the provider's certificate chained to `ca`.
fn xmlsec_verify(xml: &str, ca: &Path, dir: &Path) -> bool {
    let path: PathBuf = dir.join(format!("check-{}.xml", xml.len()));
    std::fs::write(&path, xml).expect("write");
    Command::new("xmlsec1")
        .args(["--verify", "--trusted-pem"])
        .arg(ca)
        .arg(&path)
        .output()
        .expect("xmlsec1 runs")
        .status
        .success()
}

fn kinds(sent: &[Outgoing]) -> Vec<OutgoingKind> {
    sent.iter().map(|o| o.kind).collect()
}

#[test]
fn dispatch_receipt_and_retrieve_confirmations_are_complete_signed_and_delivered() {
    let rig = Rig::new(|_| {});
    let msg = common::message(
        "X-de-mail-confirmation-of-dispatch: yes\nX-de-mail-confirmation-of-receipt: yes\n\
         X-de-mail-confirmation-of-retrieve: yes\nX-de-mail-private-id: AZ-4711/2026",
        "Sehr geehrte Damen und Herren,\n",
    );
    rig.submit(&[RCPT], &msg);
    let sent = rig.provider.wait_sent(2, WAIT);
    assert_eq!(
        kinds(&sent),
        [
            OutgoingKind::Confirmation(ConfirmationKind::Dispatch),
            OutgoingKind::Confirmation(ConfirmationKind::Receipt)
        ]
    );
    let dispatched = rig.provider.dispatched();
    let [d] = dispatched.as_slice() else {
        panic!("one copy: {dispatched:?}")
    };
    assert_eq!(d.state, RecipientState::Delivered);
    assert_eq!(d.recipient, RCPT);
    assert!(d.message_id.starts_with('<') && d.message_id.ends_with(&format!("@{PROVIDER}>")));
    // The dispatched copy carries the provider's fields and a qualified signature.
    let report = rig.verify(&d.signed);
    assert!(report.is_qes(), "{report:?}");
    assert_eq!(
        report.integrity.integrity_value.as_deref(),
        Some(d.integrity.as_str())
    );

    let received = rig.received(2);
    for (o, r) in sent.iter().zip(&received) {
        assert!(o.delivered(), "{o:?}");
        assert_eq!(o.delivery.attempts, 1);
        assert_eq!(r.data, o.data, "demail-in got exactly what was sent");
        assert_eq!(r.mail_from, o.mail_from);
        assert_eq!(r.rcpts, [SENDER]);
        assert!(
            r.client_cert_subject
                .contains("CN=mx.provider-sim.de-mail.test")
        );
        assert_eq!(o.private_id.as_deref(), Some("AZ-4711/2026"));
    }

    for (o, kind) in sent
        .iter()
        .zip([ConfirmationKind::Dispatch, ConfirmationKind::Receipt])
    {
        let m = MessageParser::default().parse(&o.data).expect("parses");
        let from = format!("{}@{PROVIDER}", kind.system_local_part());
        assert_eq!(
            m.from().and_then(|a| a.first()).and_then(|a| a.address()),
            Some(from.as_str())
        );
        assert_eq!(
            m.subject(),
            Some(format!("*{}* Bescheid", kind.title()).as_str())
        );
        assert_eq!(
            header(&m, "X-de-mail-message-type").as_deref(),
            Some(kind.message_type())
        );
        assert_eq!(
            header(&m, "X-de-mail-message-id"),
            Some(d.message_id.clone())
        );
        assert_eq!(
            header(&m, "X-de-mail-private-id").as_deref(),
            Some("AZ-4711/2026")
        );
        assert_eq!(
            header(&m, "X-de-mail-originator-provider").as_deref(),
            Some(PROVIDER)
        );
        assert_eq!(
            m.content_type().map(|c| (c.ctype(), c.subtype())),
            Some(("multipart", Some("mixed")))
        );
        let names: Vec<_> = m
            .attachments()
            .filter_map(|a| a.attachment_name())
            .collect();
        assert_eq!(names, ["bestaetigung.xml", "bestaetigung.pdf"]);

        let report = rig.verify(&o.data);
        assert_eq!(report.indication, Indication::TotalPassed, "{report:?}");
        assert_eq!(report.qualification, Qualification::QeSig, "{report:?}");

        let xml = xml_part(&o.data);
        let doc = roxmltree::Document::parse(&xml).expect("xml");
        assert_eq!(doc.root_element().tag_name().name(), "Acknowledge-Message");
        assert_eq!(
            doc.root_element().tag_name().namespace(),
            Some("urn:de-mail")
        );
        assert_eq!(
            children(&doc),
            [
                "Sender",
                "Metadata",
                "Subject",
                "Text",
                "Hash",
                "Time",
                "Signature"
            ]
        );
        assert_eq!(child_text(&doc, "Sender"), from);
        assert_eq!(child_text(&doc, "Hash"), d.integrity);
        assert!(child_text(&doc, "Text").contains(&format!("Empfänger: {RCPT}")));
        time::OffsetDateTime::parse(
            &child_text(&doc, "Time"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("Time is xs:dateTime");
        // Metadata: each original header, its unfolded value and the exact original line.
        let metadates: Vec<(String, String, String)> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "Metadate")
            .map(|n| {
                let t = |name: &str| {
                    n.children()
                        .find(|c| c.tag_name().name() == name)
                        .and_then(|c| c.text())
                        .unwrap_or_default()
                        .to_string()
                };
                (t("Name"), t("Value"), t("OriginalHeader"))
            })
            .collect();
        let find = |name: &str| {
            metadates
                .iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
                .unwrap_or_else(|| panic!("Metadate {name} in {metadates:?}"))
        };
        assert_eq!(find("X-de-mail-message-id").1, d.message_id);
        assert_eq!(find("X-de-mail-actual-recipient").1, format!("to={RCPT}"));
        assert_eq!(find("X-de-mail-private-id").1, "AZ-4711/2026");
        let subject = find("Subject");
        assert_eq!(subject.2, "Subject: Bescheid\r\n");
        assert!(
            String::from_utf8_lossy(&d.signed).contains(&find("X-de-mail-integrity").2),
            "OriginalHeader is the line as it was signed, folding included"
        );

        // The enveloped XML signature verifies with the provider's certificate; a changed
        // Hash does not.
        assert!(xmlsec_verify(&xml, &rig.fx.pki.ca_cert, rig.fx.dir.path()));
        let forged = xml.replacen("<Hash>", "<Hash>x", 1);
        assert!(!xmlsec_verify(
            &forged,
            &rig.fx.pki.ca_cert,
            rig.fx.dir.path()
        ));
        // Nor does the untouched XML with a CA that did not issue the provider's certificate.
        let stranger = rig.fx.dir.path().join("tl/tl-signer.pem");
        assert!(!xmlsec_verify(&xml, &stranger, rig.fx.dir.path()));

        let shown = pdf::check_structure(&pdf_part(&o.data)).expect("a sound PDF");
        assert!(shown.contains(&format!("Empfänger: {RCPT}")), "{shown:?}");
        assert!(
            shown.contains(&format!("Nachrichten-ID: {}", d.message_id)),
            "{shown:?}"
        );
    }

    // The recipient logs in (by private id): the Abholbestätigung, once.
    let retrieved = rig.provider.retrieve("AZ-4711/2026").expect("retrieve");
    let [r] = retrieved.as_slice() else {
        panic!("{retrieved:?}")
    };
    assert_eq!(
        r.kind,
        OutgoingKind::Confirmation(ConfirmationKind::Retrieve)
    );
    assert!(r.delivered(), "{r:?}");
    let xml = xml_part(&r.data);
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    assert_eq!(
        children(&doc),
        [
            "Sender",
            "Metadata",
            "Subject",
            "Text",
            "Hash",
            "Time",
            "DeliveryTime",
            "Signature"
        ]
    );
    assert!(child_text(&doc, "DeliveryTime") <= child_text(&doc, "Time"));
    assert!(xmlsec_verify(&xml, &rig.fx.pki.ca_cert, rig.fx.dir.path()));
    assert!(rig.verify(&r.data).is_qes());
    assert_eq!(rig.received(3)[2].data, r.data);
    match rig.provider.retrieve(&d.message_id) {
        Err(SendError::AlreadyRetrieved { .. }) => {}
        other => panic!("second retrieve: {other:?}"),
    }
    assert!(matches!(
        rig.provider.retrieve("<nothing@here>"),
        Err(SendError::UnknownMessage(_))
    ));
}

#[test]
fn unknown_recipient_and_closed_account_get_notifications_and_reply_to_is_honoured() {
    let rig = Rig::new(|c| {
        c.known_recipients = vec!["*@example.de-mail.de".into()];
        c.closed_accounts = vec!["Alt@Example.de-mail.de".into()];
    });
    let msg = common::message(
        "Reply-To: poststelle@magdeburg.de-mail.de\nX-de-mail-confirmation-of-dispatch: yes",
        "Text\n",
    );
    let other = "jemand@anderswo.de-mail.de";
    let closed = "alt@example.de-mail.de";
    rig.submit(&[RCPT, other, closed], &msg);
    assert!(rig.provider.flush(WAIT));
    let sent = rig.provider.sent();
    assert_eq!(
        kinds(&sent),
        [
            OutgoingKind::Confirmation(ConfirmationKind::Dispatch),
            OutgoingKind::Notification(NotificationKind::UnknownRecipient),
            OutgoingKind::Notification(NotificationKind::ClosedAccount),
        ]
    );
    let states: Vec<_> = rig.provider.dispatched().iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        [
            RecipientState::Delivered,
            RecipientState::Unknown,
            RecipientState::Closed
        ]
    );
    let received = rig.received(3);
    for (o, r) in sent.iter().zip(&received) {
        assert_eq!(o.rcpt_to, "poststelle@magdeburg.de-mail.de");
        assert_eq!(r.rcpts, ["poststelle@magdeburg.de-mail.de"]);
        assert!(rig.verify(&o.data).is_qes());
    }
    for (o, (rcpt, kind)) in sent[1..]
        .iter()
        .zip([(other, "unknown-recipient"), (closed, "closed-account")])
    {
        assert_eq!(o.about_recipient, rcpt);
        let m = MessageParser::default().parse(&o.data).expect("parses");
        assert_eq!(
            header(&m, "X-de-mail-message-type").as_deref(),
            Some("notification")
        );
        assert_eq!(
            header(&m, "X-de-mail-notification-type").as_deref(),
            Some(kind)
        );
        assert_eq!(
            m.from().and_then(|a| a.first()).and_then(|a| a.address()),
            Some(format!("Meldung@{PROVIDER}").as_str())
        );
        let xml = xml_part(&o.data);
        let doc = roxmltree::Document::parse(&xml).expect("xml");
        assert_eq!(doc.root_element().tag_name().name(), "Notification-Message");
        assert_eq!(children(&doc), ["Subject", "Text", "Time", "Sender"]);
        assert!(child_text(&doc, "Text").contains(&format!("Empfänger: {rcpt}")));
        assert!(pdf::check_structure(&pdf_part(&o.data)).is_ok());
    }
    let unknown_id = &rig.provider.dispatched()[1].message_id;
    assert!(matches!(
        rig.provider.retrieve(unknown_id),
        Err(SendError::NotDelivered(_))
    ));
    let known_id = &rig.provider.dispatched()[0].message_id;
    assert!(matches!(
        rig.provider.retrieve(known_id),
        Err(SendError::RetrieveNotRequested(_))
    ));
}

#[test]
fn injected_de_mails_signed_hashed_and_forged() {
    let rig = Rig::new(|_| {});
    let mut spec = InboundSpec::new(CITIZEN, SENDER, "Widerspruch gegen Bescheid", "Hiermit …\n");
    spec.authoritative = true;
    let ok = rig.provider.inject(&spec).expect("inject");
    assert!(ok.delivered(), "{ok:?}");
    let got = &rig.received(1)[0];
    assert_eq!(got.data, ok.data);
    assert_eq!(got.rcpts, [SENDER]);
    let m = MessageParser::default().parse(&got.data).expect("parses");
    assert_eq!(
        header(&m, "X-de-mail-authoritative").as_deref(),
        Some("yes")
    );
    assert_eq!(header(&m, "X-de-mail-auth-level").as_deref(), Some("high"));
    assert_eq!(header(&m, "X-de-mail-sender").as_deref(), Some(CITIZEN));
    assert_eq!(m.body_text(0).as_deref(), Some("Hiermit …\r\n"));
    assert!(rig.verify(&got.data).is_qes());

    let cases = [
        (
            false,
            Forge::None,
            Indication::Indeterminate,
            Some(SubIndication::NoSigningCertificateFound),
        ),
        (
            true,
            Forge::BadSignature,
            Indication::TotalFailed,
            Some(SubIndication::SigCryptoFailure),
        ),
        (
            true,
            Forge::TamperedBody,
            Indication::TotalFailed,
            Some(SubIndication::HashFailure),
        ),
    ];
    for (signed, forge, indication, sub) in cases {
        let mut s = InboundSpec::new(CITIZEN, SENDER, "x", "y\n");
        s.signed = signed;
        s.forge = forge;
        s.authoritative = true;
        let o = rig.provider.inject(&s).expect("inject");
        assert!(o.delivered(), "{o:?}");
        assert_eq!(o.forged, forge != Forge::None);
        let report = rig.verify(&o.data);
        assert_eq!(
            (report.indication, report.sub_indication),
            (indication, sub),
            "{forge:?}"
        );
        assert!(!report.is_qes());
    }
    let mut s = InboundSpec::new(CITIZEN, SENDER, "x", "y\n");
    s.forge = Forge::NoIntegrity;
    let o = rig.provider.inject(&s).expect("inject");
    let m = MessageParser::default().parse(&o.data).expect("parses");
    assert!(header(&m, "X-de-mail-integrity").is_none());
    assert!(header(&m, "X-de-mail-signature-certificate").is_none());
    assert_eq!(header(&m, "X-de-mail-sender").as_deref(), Some(CITIZEN));
    assert_eq!(rig.received(5).len(), 5);

    assert!(matches!(
        rig.provider
            .inject(&InboundSpec::new("no-address", SENDER, "x", "y")),
        Err(SendError::BadSpec(_))
    ));
}

#[test]
fn forged_confirmations_and_the_plain_route_to_a_public_smtpd() {
    let rig = Rig::new(|_| {});
    let msg = common::message("X-de-mail-confirmation-of-dispatch: yes", "x\n");
    rig.submit(&[RCPT], &msg);
    assert!(rig.provider.flush(WAIT));
    let id = rig.provider.dispatched()[0].message_id.clone();

    let bad = rig
        .provider
        .forge_confirmation(&id, ConfirmationKind::Receipt, Forge::BadSignature, None)
        .expect("forge");
    assert!(bad.forged && bad.delivered(), "{bad:?}");
    assert_eq!(
        rig.verify(&bad.data).sub_indication,
        Some(SubIndication::SigCryptoFailure)
    );
    assert_eq!(rig.received(2)[1].data, bad.data);

    // A public smtpd speaks plain SMTP; this stand-in then insists on STARTTLS, which shows
    // the forgery travelled without TLS, and a 5xx reply is not retried.
    let public = Simulator::start({
        let mut c = city_in_config(&rig.fx, "127.0.0.1:0".parse().expect("addr"));
        c.tls = TlsMode::Starttls;
        c.store_dir = rig.fx.dir.path().join("public");
        c
    })
    .expect("public smtpd");
    let target = Target {
        addr: public.addr(),
        transport: Transport::Plain,
    };
    let o = rig
        .provider
        .forge_confirmation(&id, ConfirmationKind::Retrieve, Forge::None, Some(target))
        .expect("forge");
    assert_eq!(o.delivery.attempts, 1);
    let e = o.delivery.result.expect_err("refused");
    assert!(e.contains("530"), "{e}");
    assert!(
        rig.provider.dispatched()[0].retrieved_at.is_none(),
        "no state changed"
    );
}

#[test]
fn delivery_is_retried_until_demail_in_comes_up() {
    let fx = Fixture::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let mut send = send_config(&fx, port);
    send.retries = 8;
    send.retry_delay = Duration::from_millis(200);
    let provider = start_provider(&fx, send);
    let mut c = Client::implicit(
        provider.addr(),
        &fx.pki.ca_cert,
        Some(&fx.client_identity()),
    )
    .expect("connect");
    let r = c.send(
        SENDER,
        &[RCPT],
        &common::message("X-de-mail-confirmation-of-dispatch: yes", "x\n"),
    );
    assert_eq!(r.code, 250, "{r:?}");
    std::thread::sleep(Duration::from_millis(500));
    let city_in = Simulator::start(city_in_config(&fx, port)).expect("demail-in comes up");
    let sent = provider.wait_sent(1, WAIT);
    assert!(sent[0].delivered(), "{:?}", sent[0]);
    assert!(sent[0].delivery.attempts > 1, "{:?}", sent[0].delivery);
    assert_eq!(city_in.wait_for(1, WAIT)[0].data, sent[0].data);
}

#[test]
fn control_port_and_the_retrieve_command() {
    let rig = Rig::new(|c| c.control = Some("127.0.0.1:0".parse().expect("addr")));
    let msg = common::message("X-de-mail-confirmation-of-retrieve: yes", "x\n");
    rig.submit(&[RCPT], &msg);
    assert!(rig.provider.flush(WAIT));
    let id = rig.provider.dispatched()[0].message_id.clone();
    let control = rig.provider.control_addr().expect("control port");
    let bin = env!("CARGO_BIN_EXE_demail-provider-sim");
    let run = || {
        Command::new(bin)
            .args(["retrieve", &id, "--control", &control.to_string()])
            .output()
            .expect("runs")
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with("250 1 Abholbestätigung(en)"), "{stdout}");
    assert!(stdout.contains("delivered"), "{stdout}");
    let got = rig.received(1);
    let m = MessageParser::default()
        .parse(&got[0].data)
        .expect("parses");
    assert_eq!(
        header(&m, "X-de-mail-message-type").as_deref(),
        Some("confirmation of retrieve")
    );
    let again = run();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with("550 "),
        "{again:?}"
    );
    let reply = demail_provider_sim::send::control_command(control, "HELLO").expect("reply");
    assert!(reply.starts_with("500 "), "{reply}");
}
