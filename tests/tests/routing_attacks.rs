//! De-Mail reaches the provider only as a message the milter handled, whatever form the
//! recipient is written in and whatever Postfix rewrites it to: through real Postfix with the
//! `demailctl postfix-config` output, and with an admin's hand-written configuration that keeps
//! Postfix's defaults (percent hack, bang paths, no route field).

use std::time::Duration;

use demail_e2e::city::{CITIZEN, CLERK, INTERN};
use demail_e2e::{City, CityOptions, PostfixOptions, SmtpClient, SmtpReply, free_port, swaks};

const WAIT: Duration = Duration::from_secs(30);
/// An Internet sender: neither a clerk nor internal.
const OUTSIDER: &str = "fremd@extern.example";

/// The forms Postfix (with its defaults) rewrites into `buerger@example.de-mail.de` when the
/// part after the last `@` is a local destination.
const REWRITTEN: [&str; 4] = [
    "buerger%example.de-mail.de@localhost",
    "\"buerger@example.de-mail.de\"@localhost",
    "example.de-mail.de!buerger@localhost",
    "@localhost:buerger@example.de-mail.de",
];

/// EHLO, MAIL, RCPT; with a positive RCPT reply also DATA with a small message. Returns the
/// RCPT reply and, if sent, the reply to the end of data.
fn attempt(port: u16, from: &str, rcpt: &str) -> (SmtpReply, Option<SmtpReply>) {
    let (mut c, _) = SmtpClient::connect(port, WAIT).expect("connect");
    assert!(c.command("EHLO angreifer.example").unwrap().is_positive());
    let mail = c.command(&format!("MAIL FROM:<{from}>")).unwrap();
    assert!(mail.is_positive(), "MAIL: {mail}");
    let reply = c.command(&format!("RCPT TO:<{rcpt}>")).unwrap();
    if !reply.is_positive() {
        let _ = c.command("QUIT");
        return (reply, None);
    }
    assert_eq!(c.command("DATA").unwrap().code, 354);
    c.send(
        b"From: <fremd@extern.example>\r\nSubject: Widerspruch\r\n\
          X-DeMail-Route: demail-send 01FORGED\r\n\r\nText\r\n.\r\n",
    )
    .unwrap();
    let end = c.read_reply().unwrap();
    let _ = c.command("QUIT");
    (reply, Some(end))
}

fn options(main_cf: &[(&str, &str)], files: &[(&str, &str)]) -> CityOptions {
    CityOptions {
        postfix: PostfixOptions {
            main_cf: main_cf
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            extra_files: files
                .iter()
                .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
                .collect(),
            // Internal mail would go to an LMTP server; none listens, so it waits (unless a
            // rewrite sends it elsewhere, which is what these tests look at).
            lmtp_port: Some(free_port()),
            ..PostfixOptions::default()
        },
        ..CityOptions::default()
    }
}

/// A clerk's genuine De-Mail still arrives: the configuration under test is not just broken.
fn clerk_de_mail_arrives(city: &City, subject: &str) {
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        CLERK,
        "--to",
        CITIZEN,
        "--header",
        &format!("Subject: {subject}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sim = city.simulator().expect("runs");
    let got = sim.wait_for(1, WAIT);
    assert!(
        got.iter().any(|a| a.subject.as_deref() == Some(subject)),
        "the clerk's De-Mail did not arrive: {got:?}"
    );
}

fn assert_nothing_for_the_citizen_but(city: &City, subjects: &[&str]) {
    for a in city.simulator().expect("runs").accepted() {
        assert!(
            subjects.contains(&a.subject.as_deref().unwrap_or("")),
            "the provider got a message the milter did not handle: {a:?}"
        );
    }
}

#[test]
fn rewritten_recipient_forms_are_refused_at_rcpt_with_the_generated_config() {
    let city = City::start(options(&[("mydestination", "localhost")], &[]));
    for from in [OUTSIDER, INTERN, CLERK] {
        for rcpt in REWRITTEN {
            let (reply, end) = attempt(city.smtp_port(), from, rcpt);
            assert_eq!(reply.code, 550, "{from} -> {rcpt}: {reply} / {end:?}");
            assert!(reply.text().starts_with("5.1.3 "), "{rcpt}: {reply}");
            assert!(reply.text().contains("routing operators"), "{reply}");
        }
    }
    assert!(city.submissions().is_empty());
    assert!(city.simulator().expect("runs").accepted().is_empty());
}

/// Rewrites after the milter (virtual aliases, canonical maps) are the residue no RCPT check
/// can see: the transport De-Mail domains resolve to refuses what the milter did not route.
#[test]
fn aliases_that_expand_to_de_mail_after_the_milter_bounce_and_never_leave() {
    let city = City::start(options(
        &[
            ("virtual_alias_maps", "texthash:{dir}/aliases"),
            ("recipient_canonical_maps", "texthash:{dir}/canonical"),
        ],
        &[
            (
                "aliases",
                "weiterleitung@example.test buerger@example.de-mail.de\n",
            ),
            (
                "canonical",
                "kanonisch@example.test buerger@example.de-mail.de\n",
            ),
        ],
    ));
    for (from, rcpt) in [
        (OUTSIDER, "weiterleitung@example.test"),
        (OUTSIDER, "kanonisch@example.test"),
        (INTERN, "weiterleitung@example.test"),
        (CLERK, "kanonisch@example.test"),
    ] {
        let (reply, end) = attempt(city.smtp_port(), from, rcpt);
        assert!(reply.is_positive(), "{rcpt}: {reply}");
        let end = end.expect("data sent");
        assert_eq!(end.code, 250, "{rcpt}: {end}");
    }
    let pf = city.postfix();
    let bounced = demail_e2e::wait_until(WAIT, "four bounces", || {
        let log = pf.log();
        let n = log
            .lines()
            .filter(|l| {
                l.contains(&format!("to=<{CITIZEN}>"))
                    && l.contains("status=bounced")
                    && l.contains("De-Mail leaves only through the checks of demail-milter")
            })
            .count();
        (n >= 4).then_some(n)
    });
    assert_eq!(bounced, 4);
    // A genuine De-Mail still leaves, and it is the only thing the provider ever got.
    clerk_de_mail_arrives(&city, "Bescheid nach Weiterleitungsversuch");
    assert_nothing_for_the_citizen_but(&city, &["Bescheid nach Weiterleitungsversuch"]);
    assert_eq!(city.submissions().len(), 1);
}

#[test]
fn with_postfix_defaults_and_a_hand_written_transport_de_mail_still_needs_the_milter() {
    let city = City::start(options(&[("mydestination", "localhost")], &[]));
    let pf = city.postfix();
    // The admin wrote transport and master.cf by hand: De-Mail domains and a partner
    // authority's domain straight to an smtp transport called `demail`, percent hack and bang
    // paths as Postfix ships them, no route field.
    let master = std::fs::read_to_string(city.tables_dir().join("master.cf")).unwrap();
    let send_params: Vec<String> = master
        .split("\ndemail-send ")
        .nth(1)
        .expect("generated demail-send entry")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  -o "))
        .map(|l| {
            let kv = l.trim_start_matches("  -o ").trim_matches(['{', '}', ' ']);
            let (k, v) = kv.split_once('=').expect("key=value");
            format!("demail/unix/{}={}", k.trim(), v.trim())
        })
        .collect();
    let params: Vec<&str> = send_params.iter().map(String::as_str).collect();
    let transport = format!(
        ".de-mail.de demail:[localhost]:{port}\nbehoerde.example demail:[localhost]:{port}\n",
        port = city.simulator_port()
    );
    std::fs::write(pf.config_dir.join("admin_transport"), transport).unwrap();
    pf.edit(
        &[
            ("allow_percent_hack", "yes"),
            ("swap_bangpath", "yes"),
            ("milter_header_checks", ""),
            ("transport_maps", "texthash:{dir}/admin_transport"),
        ],
        &[("demail/unix", "demail unix - - n - - smtp")],
        &params,
    );
    assert_eq!(pf.postconf("allow_percent_hack"), "yes");
    clerk_de_mail_arrives(&city, "Bescheid ueber die Hand-Konfiguration");

    // Every rewritten form: refused at RCPT for everybody.
    for from in [OUTSIDER, CLERK] {
        for rcpt in REWRITTEN {
            let (reply, end) = attempt(city.smtp_port(), from, rcpt);
            assert_eq!(reply.code, 550, "{from} -> {rcpt}: {reply} / {end:?}");
            assert!(reply.text().starts_with("5.1.3 "), "{rcpt}: {reply}");
        }
    }
    // Not a configured De-Mail domain, but Postfix would deliver it through `demail`: De-Mail
    // rules apply (an outsider is refused; the clerk's message is recorded and sent).
    let (reply, _) = attempt(city.smtp_port(), OUTSIDER, "amt@behoerde.example");
    assert_eq!(reply.code, 550, "{reply}");
    assert!(reply.text().starts_with("5.7.1 "), "{reply}");
    assert!(reply.text().contains("not authorised"), "{reply}");

    // The same admin routes De-Mail domains through the plain smtp transport: the milter
    // sees a De-Mail address that would not go to the provider's transport and refuses to
    // let it leave (temporarily, so nothing is lost while the admin fixes it).
    std::fs::write(
        pf.config_dir.join("admin_transport"),
        format!(".de-mail.de smtp:[localhost]:{}\n", city.simulator_port()),
    )
    .unwrap();
    pf.edit(&[], &[], &[]);
    let (reply, _) = attempt(city.smtp_port(), CLERK, CITIZEN);
    assert_eq!(reply.code, 451, "{reply}");
    assert!(reply.text().starts_with("4.3.5 "), "{reply}");
    assert!(reply.text().contains("\"smtp\""), "{reply}");

    assert_nothing_for_the_citizen_but(&city, &["Bescheid ueber die Hand-Konfiguration"]);
}
