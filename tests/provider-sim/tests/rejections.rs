//! Every TR-01201 rule the provider applies, each triggered once, with its reply and stage.

mod common;

use std::time::Duration;

use common::{Client, Fixture, RCPT, SENDER, message};
use demail_provider_sim::receive::{Limits, RunOptions};
use demail_provider_sim::{Simulator, Stage, TlsMode};

struct Rig {
    fx: Fixture,
    sim: Simulator,
}

impl Rig {
    fn new() -> Rig {
        Self::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> Rig {
        let fx = Fixture::new();
        let opts = RunOptions {
            limits,
            log_to_stderr: false,
            send: None,
        };
        let sim = Simulator::start_with(fx.config(TlsMode::Implicit), opts).expect("start");
        Rig { fx, sim }
    }

    fn client(&self) -> Client {
        let mut c = Client::implicit(
            self.sim.addr(),
            &self.fx.pki.ca_cert,
            Some(&self.fx.client_identity()),
        )
        .expect("TLS");
        assert_eq!(c.cmd("EHLO gw.magdeburg.example").code, 250);
        c
    }

    /// Sends a message with a good envelope; returns the end-of-data reply line.
    fn end_of_data(&self, msg: &[u8]) -> String {
        let mut c = self.client();
        c.envelope_and_data(SENDER, &[RCPT], msg).first()
    }

    /// The last rejection must be at `stage` with exactly `reply`; nothing accepted.
    fn assert_last(&self, stage: Stage, reply: &str) {
        let rejected = self.sim.rejected();
        let last = rejected.last().expect("a rejection");
        assert_eq!((last.stage, last.reply.as_str()), (stage, reply));
        assert!(self.sim.accepted().is_empty(), "{:?}", self.sim.accepted());
    }
}

#[test]
fn unknown_sender_account_at_mail() {
    let rig = Rig::new();
    let mut c = rig.client();
    let r = c.cmd("MAIL FROM:<clerk@magdeburg.example>");
    assert_eq!(
        r.first(),
        "550 5.7.1 <clerk@magdeburg.example>: sender is not a De-Mail account of this gateway"
    );
    rig.assert_last(Stage::Mail, &r.first());
    // The null sender is no account either.
    assert_eq!(c.cmd("MAIL FROM:<>").code, 550);
}

#[test]
fn non_demail_recipient_at_rcpt() {
    let rig = Rig::new();
    let mut c = rig.client();
    assert_eq!(c.cmd(&format!("MAIL FROM:<{SENDER}>")).code, 250);
    for rcpt in [
        "buerger@gmail.com",
        "x@de-mail.de",
        "x@sub.demail.provider.example",
        "postmaster",
    ] {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert_eq!(
            r.first(),
            format!("550 5.1.1 <{rcpt}>: not a De-Mail address (De-Mail is a closed network)")
        );
        rig.assert_last(Stage::Rcpt, &r.first());
    }
    // With no accepted recipient there is nothing to send.
    assert_eq!(c.cmd("DATA").first(), "554 5.5.1 No valid recipients");
    // A good recipient in the same transaction is still taken.
    assert_eq!(c.cmd(&format!("RCPT TO:<{RCPT}>")).code, 250);
    assert_eq!(c.data(&message("", "x\n")).code, 250);
    assert_eq!(rig.sim.accepted()[0].rcpts, [RCPT]);
}

#[test]
fn from_header_must_equal_the_envelope_sender() {
    let rig = Rig::new();
    let msg = String::from_utf8(message("", "x\n"))
        .expect("utf8")
        .replace(&format!("<{SENDER}>"), "<wohngeld@magdeburg.de-mail.de>");
    let r = rig.end_of_data(msg.as_bytes());
    assert_eq!(
        r,
        "550 5.7.1 From <wohngeld@magdeburg.de-mail.de> does not match the envelope sender \
         <info@magdeburg.de-mail.de>"
    );
    rig.assert_last(Stage::EndOfData, &r);
}

#[test]
fn option_fields_must_be_exactly_yes_or_no() {
    let rig = Rig::new();
    for field in [
        "X-de-mail-confirmation-of-dispatch",
        "X-de-mail-confirmation-of-receipt",
        "X-de-mail-confirmation-of-retrieve",
        "X-de-mail-authoritative",
        "X-de-mail-private",
    ] {
        let r = rig.end_of_data(&message(&format!("{field}: Yes"), "x\n"));
        assert_eq!(
            r,
            format!(
                "554 5.6.0 Header field {field}: value \"Yes\" is not exactly \"yes\" or \"no\""
            )
        );
        rig.assert_last(Stage::EndOfData, &r);
    }
}

#[test]
fn option_fields_at_most_once() {
    let rig = Rig::new();
    let r = rig.end_of_data(&message(
        "X-de-mail-private: no\nx-de-mail-private: no",
        "x\n",
    ));
    assert_eq!(
        r,
        "554 5.6.0 Header field X-de-mail-private occurs 2 times; at most once allowed"
    );
    rig.assert_last(Stage::EndOfData, &r);
}

#[test]
fn private_id_at_most_1024_characters_in_both_spellings() {
    let rig = Rig::new();
    // No line may exceed 998 octets, so a long value is folded; unfolding keeps the space.
    let folded = format!("{}\n {}", "a".repeat(600), "b".repeat(424));
    for name in ["X-de-mail-private-id", "X-de-mail-privat-id"] {
        let r = rig.end_of_data(&message(&format!("{name}: {folded}"), "x\n"));
        assert_eq!(
            r,
            format!("554 5.6.0 Header field {name} is 1025 characters long; at most 1024 allowed")
        );
        rig.assert_last(Stage::EndOfData, &r);
    }
    let exact = format!("{}\n {}", "a".repeat(600), "b".repeat(423));
    let ok = rig.end_of_data(&message(&format!("X-de-mail-privat-id: {exact}"), "x\n"));
    assert_eq!(ok, "250 2.0.0 Ok: queued as 0001");
    assert_eq!(
        rig.sim.accepted()[0].private_id.as_deref().map(str::len),
        Some(1024)
    );
}

#[test]
fn message_id_is_required() {
    let rig = Rig::new();
    let msg = String::from_utf8(message("", "x\n"))
        .expect("utf8")
        .replace("Message-ID: <20261123.1@magdeburg.example>\r\n", "");
    let r = rig.end_of_data(msg.as_bytes());
    assert_eq!(r, "554 5.6.0 Message-ID header field missing");
    rig.assert_last(Stage::EndOfData, &r);
}

#[test]
fn message_must_parse() {
    let rig = Rig::new();
    let mut msg = b"this is not a header\r\n".to_vec();
    msg.extend_from_slice(&message("", "x\n"));
    let r = rig.end_of_data(&msg);
    assert_eq!(
        r,
        "554 5.6.0 Malformed header section, line 1: header line without a colon"
    );
    rig.assert_last(Stage::EndOfData, &r);
}

#[test]
fn size_limit_at_mail_and_at_end_of_data() {
    let rig = Rig::new();
    let mut c = rig.client();
    let r = c.cmd(&format!("MAIL FROM:<{SENDER}> SIZE=65537"));
    assert_eq!(
        r.first(),
        "552 5.3.4 Message size exceeds fixed maximum message size (65536)"
    );
    rig.assert_last(Stage::Mail, &r.first());

    // Declared small, sent big: refused after the data, and the connection stays usable.
    let body = "0123456789012345678901234567890123456789\n".repeat(2000);
    let r = c.envelope_and_data(SENDER, &[RCPT], &message("", &body));
    assert_eq!(
        r.first(),
        "552 5.3.4 Message size exceeds fixed maximum message size (65536)"
    );
    rig.assert_last(Stage::EndOfData, &r.first());
    assert_eq!(
        c.envelope_and_data(SENDER, &[RCPT], &message("", "small\n"))
            .code,
        250
    );
}

#[test]
fn overlong_message_line() {
    let rig = Rig::new();
    let r = rig.end_of_data(&message("", &format!("{}\n", "x".repeat(1200))));
    assert_eq!(
        r,
        "554 5.6.0 Line 6 of the message is longer than 999 octets"
    );
    rig.assert_last(Stage::EndOfData, &r);
}

#[test]
fn recipient_limit() {
    let rig = Rig::with_limits(Limits {
        max_recipients: 2,
        ..Limits::default()
    });
    let mut c = rig.client();
    assert_eq!(c.cmd(&format!("MAIL FROM:<{SENDER}>")).code, 250);
    assert_eq!(c.cmd("RCPT TO:<a@x.de-mail.de>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<b@x.de-mail.de>").code, 250);
    let r = c.cmd("RCPT TO:<c@x.de-mail.de>");
    assert_eq!(r.first(), "452 4.5.3 Too many recipients");
    rig.assert_last(Stage::Rcpt, &r.first());
}

#[test]
fn sequence_and_syntax_errors() {
    let rig = Rig::new();
    let mut c = rig.client();
    assert_eq!(
        c.cmd(&format!("RCPT TO:<{RCPT}>")).first(),
        "503 5.5.1 Need MAIL command"
    );
    assert_eq!(c.cmd("DATA").first(), "503 5.5.1 Need MAIL command");
    assert_eq!(c.cmd("MAIL FROM:info@magdeburg.de-mail.de").code, 501);
    assert_eq!(
        c.cmd(&format!("MAIL FROM:<{SENDER}> FOO=BAR")).first(),
        "555 5.5.4 Unsupported parameter FOO"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<bürger@magdeburg.de-mail.de>").first(),
        "553 5.6.7 Non-ASCII address requires SMTPUTF8"
    );
    assert_eq!(
        c.cmd(&format!("MAIL FROM:<{SENDER}> BODY=8BITMIME SMTPUTF8"))
            .code,
        250
    );
    assert_eq!(
        c.cmd(&format!("MAIL FROM:<{SENDER}>")).first(),
        "503 5.5.1 Nested MAIL command"
    );
    assert_eq!(c.cmd("RSET").code, 250);
    assert_eq!(c.cmd("STARTTLS").first(), "503 5.5.1 TLS already active");
    assert_eq!(c.cmd("AUTH PLAIN").first(), "503 5.5.1 AUTH not offered");
    assert_eq!(
        c.cmd("BDAT 10 LAST").first(),
        "500 5.5.2 Command unrecognized"
    );
    assert_eq!(c.cmd("NOOP").code, 250);
    let stages: Vec<Stage> = rig.sim.rejected().iter().map(|r| r.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Rcpt,
            Stage::Data,
            Stage::Mail,
            Stage::Mail,
            Stage::Mail,
            Stage::Mail,
            Stage::StartTls,
            Stage::Auth,
            Stage::Other
        ]
    );
}

#[test]
fn too_many_errors_close_the_connection() {
    let rig = Rig::with_limits(Limits {
        max_errors: 3,
        ..Limits::default()
    });
    let mut c = rig.client();
    for _ in 0..2 {
        assert_eq!(c.cmd("XYZZY").code, 500);
    }
    assert_eq!(c.cmd("XYZZY").code, 500);
    let r = c.read_reply().expect("421");
    assert_eq!(r.code, 421, "{r:?}");
    assert!(c.read_reply().is_err(), "connection must be closed");
}

#[test]
fn idle_client_times_out() {
    let rig = Rig::with_limits(Limits {
        command_timeout: Duration::from_secs(1),
        ..Limits::default()
    });
    let mut c = rig.client();
    let r = c.read_reply().expect("421 after the timeout");
    assert_eq!(
        r.first(),
        "421 4.4.2 provider-sim.de-mail.test Error: timeout exceeded"
    );
    rig.assert_last(Stage::Other, &r.first());
}
