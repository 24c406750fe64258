//! STARTTLS mode: nothing but EHLO/STARTTLS before TLS, the client certificate checked at the
//! upgrade, and SMTP AUTH (PLAIN and LOGIN) required after it when configured.

mod common;

use common::{Client, Fixture, RCPT, SENDER, message};
use demail_provider_sim::{Simulator, Stage, TlsMode};
use openssl::base64::encode_block;

fn start(fx: &Fixture, auth: bool) -> Simulator {
    let mut cfg = fx.config(TlsMode::Starttls);
    if auth {
        cfg.auth = Some(("magdeburg-gw".into(), "s3cret pass".into()));
    }
    Simulator::start(cfg).expect("start")
}

#[test]
fn mail_before_tls_is_refused_and_tls_upgrade_works() {
    let fx = Fixture::new();
    let sim = start(&fx, false);
    let mut c = Client::plain(sim.addr(), &fx.pki.ca_cert);
    let ehlo = c.cmd("EHLO gw.magdeburg.example");
    assert!(ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    for cmd in [
        format!("MAIL FROM:<{SENDER}>"),
        format!("RCPT TO:<{RCPT}>"),
        "DATA".into(),
    ] {
        let r = c.cmd(&cmd);
        assert_eq!(
            r.first(),
            "530 5.7.0 Must issue a STARTTLS command first",
            "{cmd}"
        );
    }
    let stages: Vec<Stage> = sim.rejected().iter().map(|r| r.stage).collect();
    assert_eq!(stages, [Stage::Mail, Stage::Rcpt, Stage::Data]);

    c.starttls(Some(&fx.client_identity())).expect("upgrade");
    let ehlo = c.cmd("EHLO gw.magdeburg.example");
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    let r = c.envelope_and_data(SENDER, &[RCPT], &message("", "über STARTTLS\n"));
    assert_eq!(r.first(), "250 2.0.0 Ok: queued as 0001");
    let got = sim.accepted();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .client_cert_subject
            .ends_with("CN=gateway.demail-sim.test")
    );
}

#[test]
fn starttls_without_client_certificate_fails() {
    let fx = Fixture::new();
    let sim = start(&fx, false);
    let mut c = Client::plain(sim.addr(), &fx.pki.ca_cert);
    c.cmd("EHLO gw.magdeburg.example");
    // TLS 1.3: the refusal may reach the client only at its first read after the handshake.
    let failed = c.starttls(None).is_err() || c.read_reply().is_err();
    assert!(
        failed,
        "the server must not talk to a client without certificate"
    );
    assert!(common::eventually(|| !sim.rejected().is_empty()));
    let rejected = sim.rejected();
    let last = rejected.last().expect("rejection");
    assert_eq!(last.stage, Stage::Tls);
    assert!(
        last.reply.contains("peer did not return a certificate"),
        "{last:?}"
    );
}

#[test]
fn commands_pipelined_after_starttls_are_not_executed() {
    let fx = Fixture::new();
    let sim = start(&fx, false);
    let mut c = Client::plain(sim.addr(), &fx.pki.ca_cert);
    c.cmd("EHLO gw.magdeburg.example");
    // Plain text riding along with STARTTLS (CVE-2011-0411 style) must not be executed as if
    // it had come over TLS: the first reply inside TLS must answer our EHLO.
    c.starttls_with(b"RSET\r\nXINJECTED\r\n", Some(&fx.client_identity()))
        .expect("upgrade");
    let ehlo = c.cmd("EHLO gw.magdeburg.example");
    assert_eq!(ehlo.code, 250, "{ehlo:?}");
    assert_eq!(ehlo.lines[0], "provider-sim.de-mail.test", "{ehlo:?}");
    assert_eq!(c.cmd("NOOP").first(), "250 2.0.0 Ok");
    assert!(sim.rejected().is_empty(), "{:?}", sim.rejected());
}

#[test]
fn auth_is_offered_only_inside_tls_and_required_for_mail() {
    let fx = Fixture::new();
    let sim = start(&fx, true);
    let mut c = Client::plain(sim.addr(), &fx.pki.ca_cert);
    let ehlo = c.cmd("EHLO gw.magdeburg.example");
    assert!(
        !ehlo.lines.iter().any(|l| l.starts_with("AUTH")),
        "{ehlo:?}"
    );
    let plain = encode_block(b"\0magdeburg-gw\0s3cret pass");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {plain}")).first(),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );

    c.starttls(Some(&fx.client_identity())).expect("upgrade");
    let ehlo = c.cmd("EHLO gw.magdeburg.example");
    assert!(
        ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"),
        "{ehlo:?}"
    );
    assert_eq!(
        c.cmd(&format!("MAIL FROM:<{SENDER}>")).first(),
        "530 5.7.0 Authentication required"
    );
    let wrong = encode_block(b"\0magdeburg-gw\0wrong");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {wrong}")).first(),
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(c.cmd("AUTH CRAM-MD5").code, 504);
    // PLAIN without initial response: empty challenge, then the response.
    assert_eq!(c.cmd("AUTH PLAIN").first(), "334 ");
    assert_eq!(c.cmd(&plain).first(), "235 2.7.0 Authentication successful");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {plain}")).first(),
        "503 5.5.1 Already authenticated"
    );
    let r = c.envelope_and_data(SENDER, &[RCPT], &message("", "authentisiert\n"));
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(sim.accepted()[0].auth_user.as_deref(), Some("magdeburg-gw"));
    let stages: Vec<Stage> = sim.rejected().iter().map(|r| r.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Auth,
            Stage::Mail,
            Stage::Auth,
            Stage::Auth,
            Stage::Auth
        ]
    );
}

#[test]
fn auth_login_and_cancel_and_lockout() {
    let fx = Fixture::new();
    let sim = start(&fx, true);
    let mut c = Client::plain(sim.addr(), &fx.pki.ca_cert);
    c.cmd("EHLO gw");
    c.starttls(Some(&fx.client_identity())).expect("upgrade");
    c.cmd("EHLO gw");
    // LOGIN: username and password prompts (base64 "Username:" / "Password:").
    assert_eq!(c.cmd("AUTH LOGIN").first(), "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd("*").first(), "501 5.7.0 Authentication cancelled");
    assert_eq!(c.cmd("AUTH LOGIN").code, 334);
    assert_eq!(
        c.cmd(&encode_block(b"magdeburg-gw")).first(),
        "334 UGFzc3dvcmQ6"
    );
    assert_eq!(c.cmd(&encode_block(b"nope")).code, 535);
    // The third failure closes the connection.
    let bad = encode_block(b"\0magdeburg-gw\0nope");
    assert_eq!(c.cmd(&format!("AUTH PLAIN {bad}")).code, 535);
    let r = c.read_reply().expect("421");
    assert_eq!(r.code, 421, "{r:?}");

    let mut c = Client::plain(sim.addr(), &fx.pki.ca_cert);
    c.cmd("EHLO gw");
    c.starttls(Some(&fx.client_identity())).expect("upgrade");
    c.cmd("EHLO gw");
    assert_eq!(
        c.cmd(&format!("AUTH LOGIN {}", encode_block(b"magdeburg-gw")))
            .first(),
        "334 UGFzc3dvcmQ6"
    );
    assert_eq!(c.cmd(&encode_block(b"s3cret pass")).code, 235);
    assert_eq!(
        c.envelope_and_data(SENDER, &[RCPT], &message("", "login\n"))
            .code,
        250
    );
}
