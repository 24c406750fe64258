//! SMTPS (TLS on connect) with a client certificate: what is accepted and how it is stored,
//! and that the handshake fails without a certificate from the configured CA.

mod common;

use std::time::Duration;

use common::{Client, Fixture, RCPT, SENDER, cert_sha256, message, sha256_hex};
use demail_provider_sim::pki::CertUsage;
use demail_provider_sim::{DeMailOptions, Simulator, Stage, StoredRecord, TlsMode};

#[test]
fn accepts_with_client_cert_and_stores_exactly_what_arrived() {
    let fx = Fixture::new();
    let sim = Simulator::start(fx.config(TlsMode::Implicit)).expect("start");
    let mut c = Client::implicit(sim.addr(), &fx.pki.ca_cert, Some(&fx.client_identity()))
        .expect("TLS with client certificate");

    let ehlo = c.cmd("EHLO gateway.magdeburg.example");
    assert_eq!(ehlo.code, 250);
    for ext in [
        "PIPELINING",
        "SIZE 65536",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
    ] {
        assert!(
            ehlo.lines.iter().any(|l| l == ext),
            "{ext} missing: {ehlo:?}"
        );
    }
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");

    let first = message(
        "X-de-mail-confirmation-of-dispatch: yes\nX-de-mail-confirmation-of-receipt: no\n\
         X-de-mail-private-id: akte-4711",
        "Sehr geehrte Damen und Herren,\n.dieser Satz beginnt mit einem Punkt.\n..zwei Punkte\n.\n",
    );
    let r = c.envelope_and_data(SENDER, &[RCPT, "amt@demail.provider.example"], &first);
    assert_eq!(r.first(), "250 2.0.0 Ok: queued as 0001");

    // A second transaction on the same connection, envelope sender in another case.
    let second = String::from_utf8(message("", "Zweite Nachricht.\n"))
        .expect("utf8")
        .replace(SENDER, "wohngeld@magdeburg.de-mail.de")
        .into_bytes();
    let r = c.envelope_and_data("WOHNGELD@magdeburg.de-mail.de", &[RCPT], &second);
    assert_eq!(r.first(), "250 2.0.0 Ok: queued as 0002");
    assert_eq!(c.cmd("QUIT").code, 221);

    let got = sim.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    let a = &got[0];
    assert_eq!(a.id, "0001");
    assert_eq!(a.mail_from, SENDER);
    assert_eq!(a.rcpts, [RCPT, "amt@demail.provider.example"]);
    // Dot-unstuffing gives back exactly the message the client meant.
    assert_eq!(a.data, first);
    assert_eq!(a.sha256, sha256_hex(&first));
    assert_eq!(
        a.client_cert_subject,
        "C=DE, O=demail-provider-sim test PKI, CN=gateway.demail-sim.test"
    );
    assert_eq!(a.client_cert_sha256, cert_sha256(&fx.pki.client_cert));
    assert_eq!(a.message_id, "<20261123.1@magdeburg.example>");
    assert_eq!(a.private_id.as_deref(), Some("akte-4711"));
    assert_eq!(a.subject.as_deref(), Some("Bescheid"));
    assert_eq!(
        a.options,
        DeMailOptions {
            dispatch: true,
            ..Default::default()
        }
    );
    assert_eq!(got[1].mail_from, "WOHNGELD@magdeburg.de-mail.de");

    // On disk: the same bytes, and a record that agrees.
    assert_eq!(a.eml_path, fx.dir.path().join("store/0001.eml"));
    assert_eq!(std::fs::read(&a.eml_path).expect("eml"), first);
    let rec = StoredRecord::load(&a.json_path).expect("json");
    assert_eq!(rec.id, "0001");
    assert_eq!(rec.sha256, a.sha256);
    assert_eq!(rec.rcpts, a.rcpts);
    assert_eq!(rec.size, first.len() as u64);
    assert_eq!(rec.client_cert_sha256, a.client_cert_sha256);
    assert_eq!(rec.helo, "gateway.magdeburg.example");
    assert!(rec.tls_version.starts_with("TLS"), "{}", rec.tls_version);
    assert!(sim.rejected().is_empty(), "{:?}", sim.rejected());
    sim.stop();
}

fn assert_tls_refused(
    fx: &Fixture,
    sim: &Simulator,
    identity: Option<&common::Identity>,
    why: &str,
    reason: &str,
) {
    let before = sim.rejected().len();
    let result = Client::implicit(sim.addr(), &fx.pki.ca_cert, identity);
    assert!(result.is_err(), "{why}: the handshake must fail");
    // The server records the failed handshake (after the client sees it fail).
    assert!(
        common::eventually(|| sim.rejected().len() > before),
        "{why}: nothing recorded"
    );
    let rejected = sim.rejected();
    let last = rejected.last().expect("a rejection is recorded");
    assert_eq!(last.stage, Stage::Tls, "{why}: {last:?}");
    assert!(
        last.reply.starts_with("TLS handshake failed"),
        "{why}: {last:?}"
    );
    assert!(last.reply.contains(reason), "{why}: {last:?}");
}

#[test]
fn refuses_clients_without_a_certificate_from_the_ca() {
    let fx = Fixture::new();
    let sim = Simulator::start(fx.config(TlsMode::Implicit)).expect("start");

    assert_tls_refused(
        &fx,
        &sim,
        None,
        "no client certificate",
        "peer did not return a certificate",
    );

    let other = tempfile::tempdir().expect("tempdir");
    let foreign = demail_provider_sim::pki::TestPki::generate(other.path()).expect("pki");
    let foreign_id = common::Identity {
        cert: foreign.client_cert.clone(),
        key: foreign.client_key.clone(),
    };
    assert_tls_refused(
        &fx,
        &sim,
        Some(&foreign_id),
        "certificate of another CA",
        "unable to get local issuer certificate",
    );

    // Issued by the right CA but for servers only: not a client certificate.
    let server_only = fx
        .pki
        .issue(
            "server-only",
            "gateway.demail-sim.test",
            &[],
            CertUsage::Server,
        )
        .expect("issue");
    let server_id = common::Identity {
        cert: server_only.cert,
        key: server_only.key,
    };
    assert_tls_refused(
        &fx,
        &sim,
        Some(&server_id),
        "serverAuth-only certificate",
        "unsuitable certificate purpose",
    );

    // The right certificate still works afterwards, and nothing was accepted before.
    assert!(sim.accepted().is_empty());
    let mut c = Client::implicit(sim.addr(), &fx.pki.ca_cert, Some(&fx.client_identity()))
        .expect("good client");
    let r = c.send(SENDER, &[RCPT], &message("", "ok\n"));
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(sim.accepted().len(), 1);
}

#[test]
fn an_extra_client_leaf_from_the_same_ca_is_accepted() {
    let fx = Fixture::new();
    let sim = Simulator::start(fx.config(TlsMode::Implicit)).expect("start");
    let leaf = fx
        .pki
        .issue(
            "zarrentin",
            "gateway.zarrentin.example",
            &["gateway.zarrentin.example"],
            CertUsage::Client,
        )
        .expect("issue");
    let id = common::Identity {
        cert: leaf.cert.clone(),
        key: leaf.key,
    };
    let mut c = Client::implicit(sim.addr(), &fx.pki.ca_cert, Some(&id)).expect("TLS");
    assert_eq!(c.send(SENDER, &[RCPT], &message("", "x\n")).code, 250);
    let got = sim.accepted();
    assert!(
        got[0]
            .client_cert_subject
            .ends_with("CN=gateway.zarrentin.example")
    );
    assert_eq!(got[0].client_cert_sha256, cert_sha256(&leaf.cert));
}
