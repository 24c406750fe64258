//! Confirmations and inbound De-Mail end to end (issue 5): real Postfix (`demail-in` with the
//! provider's client certificate), `demail-milter` as a process, Dovecot, and the provider
//! simulator both ways: it takes the clerk's De-Mail and sends back signed Versand-,
//! Eingangs- and Abholbestätigungen, notifications, inbound De-Mail and forgeries. The
//! evidence is read back with the real `demailctl`.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use demail_e2e::city::{ACCOUNT, CITIZEN, CLERK, POSTSTELLE, TENANT};
use demail_e2e::message::{decode_words, field_values};
use demail_e2e::{City, CityOptions, imaplib_fetch_all, swaks, wait_until};
use demail_provider_sim::{ConfirmationKind, Forge, InboundSpec, Target, Transport};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const WAIT: Duration = Duration::from_secs(60);
const POSTSTELLE_PW: &str = "poststelle-pw";
/// A De-Mail address the provider has no mailbox for (the city's provider knows only
/// `*@example.de-mail.de`).
const UNKNOWN: &str = "niemand@unbekannt.de-mail.de";

// ----- helpers -----

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn city_with(tenants: Option<String>) -> City {
    let mut opts = CityOptions {
        dovecot_users: vec![(POSTSTELLE.into(), POSTSTELLE_PW.into())],
        provider_sends: true,
        provider_known_recipients: vec!["*@example.de-mail.de".into()],
        ..CityOptions::default()
    };
    if let Some(t) = tenants {
        opts.tenants = t;
    }
    City::start(opts)
}

/// The clerk sends a De-Mail through the public smtpd; returns its private-id once recorded.
fn send_demail(city: &City, to: &str, subject: &str) -> String {
    let before = city.submissions().len();
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        CLERK,
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        "Sehr geehrte Damen und Herren,\r\nanbei Ihr Bescheid.\r\n",
    ]);
    assert!(out.status.success(), "swaks:\n{}", text(&out));
    let subs = wait_until(WAIT, "the submission recorded", || {
        let s = city.submissions();
        (s.len() > before).then_some(s)
    });
    subs[0].private_id.clone()
}

fn show_json(city: &City, id: &str) -> Value {
    let out = city.demailctl(&["show", id, "--json"]);
    assert!(out.status.success(), "demailctl show:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("show --json prints JSON")
}

/// Waits until `demailctl show --json` reports `status` for the (only) recipient.
fn wait_status(city: &City, id: &str, status: &str) -> Value {
    wait_until(WAIT, &format!("status {status} of {id}"), || {
        let v = show_json(city, id);
        (v["recipients"][0]["status"] == status).then_some(v)
    })
}

fn confirmations_of<'a>(show: &'a Value, kind: &str) -> Vec<&'a Value> {
    show["confirmations"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["kind"]["type"] == kind).collect())
        .unwrap_or_default()
}

/// Every message in the poststelle's Dovecot mailbox, fetched over IMAP.
fn poststelle_mail(city: &City) -> Vec<Vec<u8>> {
    imaplib_fetch_all(
        city.imap_port().expect("Dovecot runs"),
        POSTSTELLE,
        POSTSTELLE_PW,
    )
}

/// Waits until a message in the poststelle's mailbox satisfies `pred`.
fn wait_mail(city: &City, what: &str, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    wait_until(WAIT, what, || {
        poststelle_mail(city).into_iter().find(|m| pred(m))
    })
}

fn subject(m: &[u8]) -> String {
    field_values(m, "Subject")
        .first()
        .map(|s| decode_words(s))
        .unwrap_or_default()
}

fn has_field_with(m: &[u8], name: &str, needle: &str) -> bool {
    field_values(m, name).iter().any(|v| v.contains(needle))
}

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// `openssl dgst -sha256 FILE` → the hex digest.
fn openssl_sha256(dir: &Path, file: &str) -> String {
    let out = run("openssl", &["dgst", "-sha256", "-r", file], dir);
    assert!(out.status.success(), "openssl dgst {file}:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn read_json(path: &Path) -> Value {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ----- the tests -----

/// Done when, first point: all three confirmations, `retrieved`, each verified and matched;
/// the export archive re-verifies with the README's steps; flipping one byte of a stored blob
/// makes `demailctl evidence verify` fail naming it.
#[test]
fn all_three_confirmations_end_retrieved_and_the_export_reverifies() {
    let city = city_with(None);
    let id = send_demail(
        &city,
        CITIZEN,
        "=?utf-8?Q?Bescheid_Wohngeld_[Abholbest=C3=A4tigung]?=",
    );
    let sim = city.simulator().expect("simulator runs");
    // Versand- and Eingangsbestätigung (the account's defaults) come by themselves.
    wait_status(&city, &id, "received");

    let retrieval = sim.retrieve(&id).expect("retrieve");
    assert_eq!(retrieval.len(), 1, "{retrieval:?}");
    assert!(retrieval[0].delivered(), "{:?}", retrieval[0].delivery);
    let show = wait_status(&city, &id, "retrieved");
    assert_eq!(show["recipients"][0]["recipient"], CITIZEN);

    let all = show["confirmations"].as_array().expect("confirmations");
    assert_eq!(all.len(), 3, "{show:#}");
    for kind in ["dispatch", "receipt", "retrieve"] {
        let c = confirmations_of(&show, kind);
        assert_eq!(c.len(), 1, "one {kind}: {show:#}");
        let c = c[0];
        assert_eq!(c["private_id"], id.as_str(), "{kind} matched: {c:#}");
        assert_eq!(c["recipient"], CITIZEN, "{c:#}");
        assert_eq!(c["trusted"], true, "{c:#}");
        assert_eq!(c["indication"], "TOTAL_PASSED", "{c:#}");
        let v = &c["report"]["verification"];
        assert_eq!(v["indication"], "TOTAL_PASSED", "{c:#}");
        assert_eq!(v["qualification"], "QESig", "{kind} qualified: {c:#}");
        assert_eq!(c["report"]["received"]["service"], "demail-in", "{c:#}");
        assert!(c["xml"].is_string() && c["pdf"].is_string(), "{c:#}");
    }

    // Delivered to the mailbox too, tagged for the clerk.
    let receipt = wait_mail(&city, "the Abholbestätigung in Dovecot", |m| {
        has_field_with(m, "X-DeMail-Confirmation", "retrieve;")
    });
    let conf = field_values(&receipt, "X-DeMail-Confirmation");
    assert_eq!(
        conf,
        vec![format!(
            "retrieve; ref={id}; recipient={CITIZEN}; matched=yes"
        )]
    );
    let verified = field_values(&receipt, "X-DeMail-Verified");
    assert_eq!(verified.len(), 1, "{verified:?}");
    assert!(
        verified[0].starts_with("pass;") && verified[0].contains("qualified=yes"),
        "{verified:?}"
    );

    // The archive for a court, re-verified with the README's tools only.
    let out_dir = tempfile::tempdir().expect("tempdir");
    let archive = out_dir.path().join("evidence.tar");
    let out = city.demailctl(&["export", &id, "--out", &archive.to_string_lossy()]);
    assert!(out.status.success(), "export:\n{}", text(&out));
    let tar = run("tar", &["-xf", &archive.to_string_lossy()], out_dir.path());
    assert!(tar.status.success(), "tar:\n{}", text(&tar));
    let root = out_dir.path().join("demail-evidence");
    let readme = std::fs::read_to_string(root.join("README.txt")).expect("README.txt");
    assert!(readme.contains("sha256sum -c SHA256SUMS"), "{readme}");
    let sums = run("sha256sum", &["-c", "SHA256SUMS"], &root);
    assert!(sums.status.success(), "sha256sum -c:\n{}", text(&sums));
    let submission = read_json(&root.join("submission.json"));
    assert_eq!(
        openssl_sha256(&root, "message.eml"),
        submission["content"].as_str().unwrap_or_default(),
        "message.eml hashes to the recorded content"
    );
    let mut dirs: Vec<String> = std::fs::read_dir(root.join("confirmations"))
        .expect("confirmations/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    for d in &dirs {
        let rel = |f: &str| format!("confirmations/{d}/{f}");
        let c = read_json(&root.join(rel("confirmation.json")));
        assert_eq!(openssl_sha256(&root, &rel("raw.eml")), c["raw"], "{d}");
        assert_eq!(
            openssl_sha256(&root, &rel("acknowledge.xml")),
            c["xml"],
            "{d}"
        );
        assert_eq!(
            openssl_sha256(&root, &rel("acknowledge.pdf")),
            c["pdf"],
            "{d}"
        );
    }
    // Step 3: every event's hash is the SHA-256 of its preimage, whose last 32 bytes are
    // prev_hash; step 4: the links chain up to the head.
    let events = std::fs::read_to_string(root.join("chain/events.txt")).expect("events.txt");
    assert!(events.lines().count() >= 4, "{events}");
    for line in events.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.len(), 4, "{line}");
        let bin = format!("chain/event-{}.bin", cols[0]);
        assert_eq!(openssl_sha256(&root, &bin), cols[3], "{bin}");
        // `-v`: without it od prints `*` for repeated lines (the genesis prev_hash is all
        // zeros); the README's command lacks it (reported).
        let tail = run(
            "sh",
            &[
                "-c",
                &format!("tail -c 32 {bin} | od -An -v -tx1 | tr -d ' \\n'"),
            ],
            &root,
        );
        assert_eq!(String::from_utf8_lossy(&tail.stdout), cols[2], "{bin}");
    }
    let links = std::fs::read_to_string(root.join("chain/links.txt")).expect("links.txt");
    let mut prev: Option<String> = None;
    for line in links.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if let Some(p) = &prev {
            assert_eq!(cols[1], p, "links.txt: {line}");
        }
        prev = Some(cols[2].to_string());
    }
    let head = std::fs::read_to_string(root.join("chain/head.txt")).expect("head.txt");
    assert_eq!(head.split_whitespace().nth(1), prev.as_deref(), "{head}");

    let verify = city.demailctl(&["evidence", "verify"]);
    assert!(
        verify.status.success(),
        "evidence verify:\n{}",
        text(&verify)
    );
    assert!(text(&verify).starts_with("OK: "), "{}", text(&verify));

    // One byte of the stored Abholbestätigung flipped: the chain walk names that blob.
    let raw = confirmations_of(&show, "retrieve")[0]["raw"]
        .as_str()
        .expect("raw digest")
        .to_string();
    let store = city.evidence().expect("store");
    let stored = store.confirmations(&id).expect("confirmations");
    let retrieve = stored
        .iter()
        .find(|c| c.data.raw.hex() == raw)
        .expect("the retrieve confirmation");
    let digest = retrieve.data.raw;
    drop(store);
    let flip = || {
        demail_e2e::tamper::flip_blob_bit(city.evidence_database(), city.evidence_blobs(), &digest)
    };
    flip();
    let verify = city.demailctl(&["evidence", "verify"]);
    let out = text(&verify);
    assert!(!verify.status.success(), "{out}");
    assert!(out.starts_with("FAILED: first mismatch"), "{out}");
    assert!(out.contains(&raw), "names the blob {raw}:\n{out}");

    // Blob restored; one byte of the receipt's event row changed past the append-only
    // trigger, as someone with write access to the database could: the walk names the event.
    flip();
    let event = confirmations_of(&show, "receipt")[0]["event_id"]
        .as_i64()
        .expect("event id");
    let sql = format!(
        "DROP TRIGGER events_no_update; \
         UPDATE events SET payload = replace(payload, 'TOTAL_PASSED', 'TOTAL_PASSEE') \
         WHERE id = {event};"
    );
    let db = city.evidence_database().to_string_lossy().into_owned();
    let edit = run("sqlite3", &[&db, &sql], city.dir());
    assert!(edit.status.success(), "sqlite3:\n{}", text(&edit));
    let verify = city.demailctl(&["evidence", "verify"]);
    let out = text(&verify);
    assert!(!verify.status.success(), "{out}");
    assert!(
        out.starts_with("FAILED: first mismatch") && out.contains(&format!("event {event}")),
        "names event {event}:\n{out}"
    );
}

/// Done when, second point: forgeries count for nothing. A confirmation with a broken
/// signature through `demail-in` is kept as untrusted and changes no status; the public smtpd
/// refuses anything to the De-Mail account; a spoofed `X-de-mail-authoritative: yes` from the
/// Internet arrives renamed and never with the absenderbestätigt tag, while a genuine one from
/// the provider does.
#[test]
fn forgeries_count_for_nothing_and_only_the_provider_earns_the_tag() {
    let city = city_with(None);
    let sim = city.simulator().expect("simulator runs");
    let id = send_demail(&city, CITIZEN, "Anhoerung");
    let before = wait_status(&city, &id, "received");
    assert_eq!(before["confirmations"].as_array().map(Vec::len), Some(2));

    // An Abholbestätigung with one character of its signature value changed.
    let forged = sim
        .forge_confirmation(&id, ConfirmationKind::Retrieve, Forge::BadSignature, None)
        .expect("forge");
    assert!(forged.delivered(), "{:?}", forged.delivery);
    let after = wait_until(WAIT, "the forged confirmation recorded", || {
        let v = show_json(&city, &id);
        (v["confirmations"].as_array().map(Vec::len) == Some(3)).then_some(v)
    });
    assert_eq!(after["recipients"][0]["status"], "received", "{after:#}");
    let f = confirmations_of(&after, "retrieve");
    assert_eq!(f.len(), 1, "{after:#}");
    assert_eq!(f[0]["trusted"], false, "{:#}", f[0]);
    assert_eq!(f[0]["indication"], "TOTAL_FAILED", "{:#}", f[0]);
    let m = wait_mail(&city, "the forged confirmation in Dovecot", |m| {
        has_field_with(m, "X-DeMail-Confirmation", "retrieve;")
    });
    let verified = field_values(&m, "X-DeMail-Verified");
    assert!(
        verified.len() == 1 && verified[0].starts_with("fail;"),
        "{verified:?}"
    );

    // The same forgery from the Internet: the public smtpd takes nothing for the account.
    let public = Target {
        addr: format!("127.0.0.1:{}", city.smtp_port())
            .parse()
            .expect("addr"),
        transport: Transport::Plain,
    };
    let outside = sim
        .forge_confirmation(&id, ConfirmationKind::Retrieve, Forge::None, Some(public))
        .expect("forge");
    let refused = outside.delivery.result.as_ref().expect_err("refused");
    assert!(refused.contains("5.7.1"), "{refused}");
    // ... and sent to an internal mailbox instead it is neutralised, not counted.
    let dir = tempfile::tempdir().expect("tempdir");
    let eml = dir.path().join("forged.eml");
    std::fs::write(&eml, &outside.data).expect("write");
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        "Abholbestaetigung@provider-sim.de-mail.test",
        "--to",
        POSTSTELLE,
        "--data",
        &eml.to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let spoof = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        "spoofer@example.org",
        "--to",
        POSTSTELLE,
        "--header",
        "Subject: Dringend: Zahlungsaufforderung",
        "--header",
        "X-de-mail-authoritative: yes",
    ]);
    assert!(spoof.status.success(), "{}", text(&spoof));

    let mut genuine = InboundSpec::new(
        "amt@example.de-mail.de",
        ACCOUNT,
        "Bescheid der Nachbargemeinde",
        "Sehr geehrte Damen und Herren,\r\nim Anhang.\r\n",
    );
    genuine.authoritative = true;
    let injected = sim.inject(&genuine).expect("inject");
    assert!(injected.delivered(), "{:?}", injected.delivery);
    // From the provider too, but only hashed: no qualified signature, no tag.
    let mut hashed = genuine.clone();
    hashed.subject = "Nur gehasht".into();
    hashed.signed = false;
    let injected = sim.inject(&hashed).expect("inject");
    assert!(injected.delivered(), "{:?}", injected.delivery);

    let m = wait_mail(&city, "the genuine authoritative De-Mail", |m| {
        subject(m).contains("Nachbargemeinde")
    });
    assert_eq!(
        subject(&m),
        "[De-Mail absenderbestätigt] Bescheid der Nachbargemeinde"
    );
    let v = field_values(&m, "X-DeMail-Verified");
    assert!(
        v.len() == 1 && v[0].starts_with("pass;") && v[0].contains("qualified=yes"),
        "{v:?}"
    );

    let m = wait_mail(&city, "the hashed authoritative De-Mail", |m| {
        subject(m).contains("Nur gehasht")
    });
    assert_eq!(subject(&m), "Nur gehasht");
    let v = field_values(&m, "X-DeMail-Verified");
    assert!(
        v.len() == 1 && !v[0].starts_with("pass;") && v[0].contains("qualified=no"),
        "{v:?}"
    );

    let m = wait_mail(&city, "the spoofed mail", |m| {
        subject(m).contains("Zahlungsaufforderung")
    });
    assert_eq!(subject(&m), "Dringend: Zahlungsaufforderung");
    assert!(field_values(&m, "X-de-mail-authoritative").is_empty());
    assert_eq!(
        field_values(&m, "X-Untrusted-de-mail-authoritative"),
        vec!["yes".to_string()]
    );
    assert!(field_values(&m, "X-DeMail-Verified").is_empty());

    let m = wait_mail(&city, "the forged confirmation via the public smtpd", |m| {
        has_field_with(m, "X-Untrusted-de-mail-integrity", "b=")
    });
    assert!(field_values(&m, "X-DeMail-Confirmation").is_empty());
    assert!(field_values(&m, "X-de-mail-message-id").is_empty());

    // Nothing of it counted: still received, still the three confirmations.
    let last = show_json(&city, &id);
    assert_eq!(last["recipients"][0]["status"], "received", "{last:#}");
    assert_eq!(last["confirmations"].as_array().map(Vec::len), Some(3));
}

/// Done when, fourth point: an unknown recipient at the provider ends `failed`, with the
/// notification stored and verified.
#[test]
fn unknown_recipient_ends_failed_with_the_notification_stored() {
    let city = city_with(None);
    let id = send_demail(&city, UNKNOWN, "Bescheid");
    let show = wait_status(&city, &id, "failed");
    let n = confirmations_of(&show, "notification");
    assert_eq!(n.len(), 1, "{show:#}");
    assert_eq!(
        n[0]["kind"]["notification"], "unknown-recipient",
        "{show:#}"
    );
    assert_eq!(n[0]["recipient"], UNKNOWN);
    assert_eq!(n[0]["trusted"], true);
    assert_eq!(n[0]["indication"], "TOTAL_PASSED");
    let store = city.evidence().expect("store");
    let stored = store.confirmations(&id).expect("confirmations");
    let raw = store.read_blob(&stored[0].data.raw).expect("raw blob");
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("X-de-mail-notification-type: unknown-recipient"),
        "{raw}"
    );
    assert_eq!(confirmations_of(&show, "dispatch").len(), 0);
}

/// Done when, fifth point: Abholbestätigung requested, only a Versandbestätigung arrives:
/// deemed served after the third day, with the deadline, on a clock the test sets.
#[test]
fn only_a_versandbestaetigung_is_deemed_served_after_the_third_day() {
    let tenants = format!(
        "[[tenant]]\nname = \"{TENANT}\"\npublic_body = true\ninternal_domains = [\"example.test\"]\n\n\
         [[tenant.account]]\naddress = \"{ACCOUNT}\"\ndeliver_to = [\"{POSTSTELLE}\"]\n\
         senders = [\"{CLERK}\"]\nvisible_to = [\"{POSTSTELLE}\"]\ndefault_options = [\"dispatch\"]\n"
    );
    let city = city_with(Some(tenants));
    let id = send_demail(&city, CITIZEN, "Ladung [Abholbestaetigung]");
    let show = wait_status(&city, &id, "dispatched");
    assert_eq!(show["confirmations"].as_array().map(Vec::len), Some(1));
    let dispatched = show["recipients"][0]["dispatched"]
        .as_str()
        .expect("dispatch time");
    let dispatched = OffsetDateTime::parse(dispatched, &Rfc3339).expect("RFC 3339");
    let deadline = show["recipients"][0]["deemed_served_deadline"]
        .as_str()
        .expect("deadline")
        .to_string();

    let at = |days: i64| {
        let now = (dispatched + time::Duration::days(days))
            .format(&Rfc3339)
            .expect("format");
        let out = city.demailctl(&["status", "--now", &now]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains(&id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{}", text(&out)))
            .to_string()
    };
    let early = at(1);
    assert!(early.contains(" dispatched "), "{early}");
    assert!(early.contains(&deadline), "deadline shown: {early}");
    let late = at(4);
    assert!(late.contains(" deemed-served "), "{late}");
    assert!(late.contains(&deadline), "{late}");
}

/// `swaks` to `demail-in` (implicit TLS) presenting `cert`/`key`, with `data` as the message.
fn to_demail_in(city: &City, cert: &Path, key: &Path, data: &Path) -> Output {
    swaks(&[
        "--server",
        &format!("127.0.0.1:{}", city.inbound_port()),
        "--tlsc",
        "--tls-cert",
        &cert.to_string_lossy(),
        "--tls-key",
        &key.to_string_lossy(),
        "--from",
        "Abholbestaetigung@provider-sim.de-mail.test",
        "--to",
        ACCOUNT,
        "--data",
        &data.to_string_lossy(),
    ])
}

/// A citizen holds a TLS client certificate from the CA of the gateway's server certificate
/// (often a public CA) and a genuinely signed confirmation of the provider. `demail-in` as
/// generated refuses him; where an admin merged it by hand (that CA, no fingerprint pin) Postfix
/// lets him in, and the milter still trusts him with nothing.
#[test]
fn only_the_pinned_provider_client_certificate_delivers_confirmations() {
    use demail_provider_sim::pki::CertUsage;
    let city = city_with(None);
    let sim = city.simulator().expect("simulator runs");
    let id = send_demail(&city, CITIZEN, "Bescheid 77");
    wait_status(&city, &id, "received");
    let count = |city: &City| {
        show_json(city, &id)["confirmations"]
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(count(&city), Some(2));
    // A real, signed Abholbestätigung, taken from where it was refused (the public smtpd).
    let public = Target {
        addr: format!("127.0.0.1:{}", city.smtp_port())
            .parse()
            .expect("addr"),
        transport: Transport::Plain,
    };
    let lifted = sim
        .forge_confirmation(&id, ConfirmationKind::Retrieve, Forge::None, Some(public))
        .expect("forge");
    let dir = tempfile::tempdir().expect("tempdir");
    let eml = dir.path().join("lifted.eml");
    std::fs::write(&eml, &lifted.data).expect("write");
    let pki = city.pki();
    let citizen = pki
        .issue("citizen-tls", "buerger.example", &[], CertUsage::Client)
        .expect("citizen certificate");
    // The provider's own name, from the wrong CA.
    let lookalike = pki
        .issue(
            "lookalike-tls",
            "mx.provider-sim.de-mail.test",
            &["mx.provider-sim.de-mail.test"],
            CertUsage::Client,
        )
        .expect("look-alike certificate");

    // 1. As generated: only the provider's client CA, and its pinned fingerprint.
    for c in [&citizen, &lookalike] {
        let out = to_demail_in(&city, &c.cert, &c.key, &eml);
        assert!(!out.status.success(), "accepted:\n{}", text(&out));
    }
    assert_eq!(count(&city), Some(2));

    // 2. Merged by hand: the server CA as client CA, no check_ccert_access.
    let service = format!("127.0.0.1:{}/inet", city.inbound_port());
    let ca = format!("{service}/smtpd_tls_CAfile={}", pki.ca_cert.display());
    let open = format!("{service}/smtpd_client_restrictions=");
    city.postfix().edit(&[], &[], &[&ca, &open]);
    for c in [&citizen, &lookalike] {
        let out = to_demail_in(&city, &c.cert, &c.key, &eml);
        assert!(
            out.status.success(),
            "Postfix now lets him in:\n{}",
            text(&out)
        );
    }
    let delivered = wait_until(WAIT, "both deliveries in the mailbox", || {
        let m: Vec<Vec<u8>> = poststelle_mail(&city)
            .into_iter()
            .filter(|m| has_field_with(m, "X-Untrusted-de-mail-message-type", "confirmation"))
            .collect();
        (m.len() == 2).then_some(m)
    });
    for m in &delivered {
        // The provider's vocabulary is renamed, and nothing vouches for the message.
        assert!(field_values(m, "X-de-mail-message-type").is_empty());
        assert!(field_values(m, "X-DeMail-Verified").is_empty());
        assert!(field_values(m, "X-DeMail-Confirmation").is_empty());
    }
    // Nothing was recorded for the De-Mail, and its status did not move.
    let after = show_json(&city, &id);
    assert_eq!(
        after["confirmations"].as_array().map(Vec::len),
        Some(2),
        "{after:#}"
    );
    assert_eq!(after["recipients"][0]["status"], "received", "{after:#}");
    let log = city.milter_log();
    assert!(
        log.contains("TLS client certificate is not a pinned provider certificate"),
        "{log}"
    );
}

/// A genuine De-Mail, sealed by the provider without a message type or private-id in `h=`
/// (the provider signs the fields a message has), delivered over the pinned TLS connection with
/// a message type and the sent De-Mail's private-id put in front by whoever relayed it: the
/// seal still verifies, but it does not cover what was prepended, so the De-Mail neither fails
/// nor loses its Zustellfiktion.
#[test]
fn fields_prepended_to_a_genuine_signed_message_move_nothing() {
    use demail_provider_sim::send::compose::Signer;
    let city = city_with(None);
    let id = send_demail(&city, CITIZEN, "Bescheid 78");
    wait_status(&city, &id, "received");
    let provider = city.send_config().expect("the provider sends");
    let seal = Signer::load(provider).expect("the provider's seal");
    let genuine = seal
        .sign(
            format!(
                "From: <amt@example.de-mail.de>\r\nTo: <{ACCOUNT}>\r\n\
                 Date: Thu, 03 Dec 2026 10:00:00 +0100\r\nMessage-ID: <rq-1@provider-sim>\r\n\
                 Subject: Rueckfrage\r\nX-de-mail-sender: amt@example.de-mail.de\r\n\
                 X-de-mail-version: 1.8\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\nEine Rueckfrage.\r\n"
            )
            .as_bytes(),
        )
        .expect("seal");
    let dir = tempfile::tempdir().expect("tempdir");
    for (n, prefix) in [
        format!("X-de-mail-message-type: notification\r\nX-de-mail-private-id: {id}\r\n"),
        format!(
            "X-de-mail-private-id: {id}\r\nX-de-mail-message-type: confirmation of retrieve\r\n"
        ),
    ]
    .iter()
    .enumerate()
    {
        let eml = dir.path().join(format!("relayed-{n}.eml"));
        let mut data = prefix.clone().into_bytes();
        data.extend_from_slice(&genuine);
        std::fs::write(&eml, &data).expect("write");
        let out = to_demail_in(
            &city,
            &provider.tls_client_cert,
            &provider.tls_client_key,
            &eml,
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let after = wait_until(WAIT, "both relayed messages recorded", || {
        let v = show_json(&city, &id);
        (v["confirmations"].as_array().map(Vec::len) == Some(4)).then_some(v)
    });
    assert_eq!(after["recipients"][0]["status"], "received", "{after:#}");
    for c in after["confirmations"].as_array().unwrap().iter().skip(2) {
        // The seal verifies and is the provider's: only the binding is missing.
        assert_eq!(c["indication"], "TOTAL_PASSED", "{c:#}");
        assert_eq!(c["trusted"], false, "{c:#}");
    }
}

/// The header section of `msg` without the fields named in `drop` (with their continuation
/// lines), then the body.
fn without_fields(msg: &[u8], drop: &[&str]) -> Vec<u8> {
    let text = String::from_utf8_lossy(msg);
    let (head, body) = text.split_once("\r\n\r\n").expect("header and body");
    let mut out = String::new();
    let mut skipping = false;
    for line in head.split("\r\n") {
        let continuation = line.starts_with([' ', '\t']);
        if !continuation {
            let name = line.split(':').next().unwrap_or("");
            skipping = drop.iter().any(|d| d.eq_ignore_ascii_case(name));
        }
        if !skipping {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// Two towns on one gateway: a genuine, sealed Abholbestätigung for a De-Mail of Testhausen
/// that the provider delivers to the other town's account (by private-id, and resealed with
/// the private-id removed so that only subject and hash could match) moves nothing of
/// Testhausen's.
#[test]
fn a_confirmation_delivered_to_another_town_moves_nothing_of_this_one() {
    use demail_provider_sim::send::compose::Signer;
    let other = "info@nebenan.de-mail.de";
    let tenants = format!(
        "{}\n[[tenant]]\nname = \"Gemeinde Nebenan\"\npublic_body = true\n\
         internal_domains = [\"nebenan.test\"]\n\n  [[tenant.account]]\n  address = \"{other}\"\n  \
         deliver_to = [\"{POSTSTELLE}\"]\n  senders = [\"amt@nebenan.test\"]\n  \
         visible_to = [\"{POSTSTELLE}\"]\n",
        demail_e2e::city::default_tenants()
    );
    let city = city_with(Some(tenants));
    let sim = city.simulator().expect("simulator runs");
    let id = send_demail(&city, CITIZEN, "Bescheid 79");
    wait_status(&city, &id, "received");
    let public = Target {
        addr: format!("127.0.0.1:{}", city.smtp_port())
            .parse()
            .expect("addr"),
        transport: Transport::Plain,
    };
    let lifted = sim
        .forge_confirmation(&id, ConfirmationKind::Retrieve, Forge::None, Some(public))
        .expect("forge");
    let provider = city.send_config().expect("the provider sends");
    let seal = Signer::load(provider).expect("the provider's seal");
    let unsealed = without_fields(
        &lifted.data,
        &[
            "X-de-mail-integrity",
            "X-de-mail-signature-certificate",
            "X-de-mail-private-id",
        ],
    );
    let resealed = seal.sign(&unsealed).expect("seal");
    let dir = tempfile::tempdir().expect("tempdir");
    for (n, data) in [&lifted.data, &resealed].into_iter().enumerate() {
        let eml = dir.path().join(format!("other-town-{n}.eml"));
        std::fs::write(&eml, data).expect("write");
        let out = swaks(&[
            "--server",
            &format!("127.0.0.1:{}", city.inbound_port()),
            "--tlsc",
            "--tls-cert",
            &provider.tls_client_cert.to_string_lossy(),
            "--tls-key",
            &provider.tls_client_key.to_string_lossy(),
            "--from",
            "Abholbestaetigung@provider-sim.de-mail.test",
            "--to",
            other,
            "--data",
            &eml.to_string_lossy(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let unmatched = wait_until(WAIT, "both delivered, unmatched", || {
        let m: Vec<Vec<u8>> = poststelle_mail(&city)
            .into_iter()
            .filter(|m| has_field_with(m, "X-DeMail-Confirmation", "retrieve; "))
            .collect();
        (m.len() == 2).then_some(m)
    });
    for m in &unmatched {
        let note = field_values(m, "X-DeMail-Confirmation");
        assert!(note[0].trim_end().ends_with("matched=no"), "{note:?}");
        assert!(field_values(m, "X-DeMail-Verified")[0].starts_with("pass;"));
    }
    let after = show_json(&city, &id);
    assert_eq!(
        after["confirmations"].as_array().map(Vec::len),
        Some(2),
        "{after:#}"
    );
    assert_eq!(after["recipients"][0]["status"], "received", "{after:#}");
}
