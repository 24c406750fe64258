//! The metrics endpoints of both daemons end to end: a known mix of mail through the real
//! Postfix, the provider simulator's confirmations and IMAP sessions through the proxy, then
//! a scrape with `curl`; the counts are what was sent. Hostile clients of the endpoint (an
//! enormous request head, a client that never finishes its request) neither block it nor the
//! milter.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use demail_e2e::city::{CITIZEN, CLERK, POSTSTELLE, TENANT};
use demail_e2e::proxy_city::{mail, send_demail, wait_confirmations};
use demail_e2e::{City, CityOptions, ImapClient, free_port, wait_until};
use demail_provider_sim::{ConfirmationKind, Forge};

const WAIT: Duration = Duration::from_secs(60);
const PW: &str = "secret-pw";

/// `GET /metrics` with curl: every sample, keyed `name{labels}` as written.
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20", &url])
        .output()
        .expect("cannot run curl (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            let value = value.parse().unwrap_or_else(|_| panic!("{l:?}"));
            (key.to_string(), value)
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key}; have {samples:#?}"))
}

/// Asserts each `(sample, count)`; all differences reported together.
fn assert_counts(samples: &BTreeMap<String, f64>, expected: &[(&str, f64)]) {
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| value(samples, k) != *v)
        .map(|(k, v)| format!("{k}: expected {v}, scraped {}", value(samples, k)))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

fn confirmations_of(city: &City, id: &str) -> usize {
    city.evidence()
        .and_then(|s| s.confirmations(id).ok())
        .map_or(0, |c| c.len())
}

#[test]
fn scraped_counts_equal_what_was_sent() {
    let (milter_port, proxy_port) = (free_port(), free_port());
    let city = City::start(CityOptions {
        dovecot_users: vec![(POSTSTELLE.into(), PW.into()), (CLERK.into(), PW.into())],
        provider_sends: true,
        provider_known_recipients: vec!["*@example.de-mail.de".into()],
        imap_proxy: true,
        extra_toml: format!("\n[milter.metrics]\nlisten = \"127.0.0.1:{milter_port}\"\n"),
        proxy_toml: format!("\n[imap_proxy.metrics]\nlisten = \"127.0.0.1:{proxy_port}\"\n"),
        ..CityOptions::default()
    });

    // Nothing sent yet: every count is there, at zero.
    let before = scrape(milter_port);
    assert_eq!(
        value(
            &before,
            "demail_milter_messages_total{kind=\"demail_outbound\",outcome=\"accepted\"}"
        ),
        0.0
    );

    // Three De-Mails from the clerk; the provider confirms dispatch and receipt of each.
    let ids: Vec<String> = (1..=3)
        .map(|n| send_demail(&city, CLERK, CITIZEN, &format!("Bescheid {n}")))
        .collect();
    for id in &ids {
        wait_confirmations(&city, id, 2);
    }
    // A forged Abholbestätigung (broken signature) through the provider's service: recorded,
    // matched to its De-Mail by private-id, its verification failed.
    let sim = city.simulator().expect("simulator runs");
    let forged = sim
        .forge_confirmation(
            &ids[0],
            ConfirmationKind::Retrieve,
            Forge::BadSignature,
            None,
        )
        .expect("forge");
    assert!(forged.delivered(), "{:?}", forged.delivery);
    wait_until(WAIT, "the forged confirmation recorded", || {
        (confirmations_of(&city, &ids[0]) == 3).then_some(())
    });
    // A sender the account does not allow: refused at RCPT.
    let out = mail(&city, "robot@example.org", CITIZEN, "Werbung");
    assert!(!out.status.success(), "{out:?}");
    // Two ordinary mails to a clerk.
    for n in 1..=2 {
        let out = mail(&city, "nachbar@example.org", CLERK, &format!("Hallo {n}"));
        assert!(out.status.success(), "{out:?}");
    }

    // Two proxy sessions, one with a wrong password. The harness's readiness probes were
    // sessions too: counted from here.
    let proxy = city.proxy().expect("proxy runs");
    let probes = scrape(proxy_port);
    let started = value(&probes, "demail_proxy_sessions_total");
    let logins = value(&probes, "demail_proxy_logins_total{outcome=\"ok\"}")
        + value(&probes, "demail_proxy_logins_total{outcome=\"failed\"}");
    assert_eq!(logins, 0.0, "{probes:#?}");
    let mut ok = ImapClient::plain(proxy.ports.imap);
    let r = ok.run(&format!("LOGIN {CLERK} {PW}"));
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    // Two commands the proxy answers itself: a virtual folder selected and fetched from.
    let r = ok.run("SELECT \"De-Mail/Ausstehend\"");
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    let r = ok.run("UID FETCH 1:* (UID FLAGS)");
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    ok.run("LOGOUT");
    let mut bad = ImapClient::plain(proxy.ports.imap);
    let r = bad.run(&format!("LOGIN {CLERK} wrong-password"));
    assert!(r.last().unwrap().contains("NO"), "{r:?}");
    bad.run("LOGOUT");
    drop((ok, bad));

    // The milter counts a message when the MTA is told how it ended; Postfix closes the
    // refused sender's transaction only when the client has gone.
    let ended = |s: &BTreeMap<String, f64>, kind: &str, outcome: &str| {
        value(
            s,
            &format!("demail_milter_messages_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}"),
        )
    };
    let m = wait_until(
        WAIT,
        "the refused sender and the ordinary mail counted",
        || {
            let s = scrape(milter_port);
            (ended(&s, "demail_outbound", "rejected") >= 1.0
                && ended(&s, "ordinary", "accepted") >= 2.0)
                .then_some(s)
        },
    );
    assert_counts(
        &m,
        &[
            (
                "demail_milter_messages_total{kind=\"demail_outbound\",outcome=\"accepted\"}",
                3.0,
            ),
            (
                "demail_milter_messages_total{kind=\"demail_outbound\",outcome=\"rejected\"}",
                1.0,
            ),
            (
                "demail_milter_messages_total{kind=\"demail_outbound\",outcome=\"tempfailed\"}",
                0.0,
            ),
            (
                "demail_milter_messages_total{kind=\"ordinary\",outcome=\"accepted\"}",
                2.0,
            ),
            (
                "demail_milter_messages_total{kind=\"provider_inbound\",outcome=\"accepted\"}",
                7.0,
            ),
            (
                "demail_milter_messages_total{kind=\"poststelle\",outcome=\"accepted\"}",
                0.0,
            ),
            (
                "demail_confirmations_total{kind=\"dispatch\",matched=\"true\"}",
                3.0,
            ),
            (
                "demail_confirmations_total{kind=\"receipt\",matched=\"true\"}",
                3.0,
            ),
            (
                "demail_confirmations_total{kind=\"retrieve\",matched=\"true\"}",
                1.0,
            ),
            (
                "demail_confirmations_total{kind=\"retrieve\",matched=\"false\"}",
                0.0,
            ),
            (
                "demail_verifications_total{kind=\"provider_inbound\",indication=\"TOTAL_PASSED\"}",
                6.0,
            ),
            (
                "demail_verifications_total{kind=\"provider_inbound\",indication=\"TOTAL_FAILED\"}",
                1.0,
            ),
            (
                "demail_evidence_write_seconds_count{record=\"submission\"}",
                3.0,
            ),
            (
                "demail_evidence_write_seconds_count{record=\"confirmation\"}",
                7.0,
            ),
            (
                "demail_milter_message_duration_seconds_count{kind=\"demail_outbound\"}",
                3.0,
            ),
            (
                "demail_milter_message_duration_seconds_count{kind=\"provider_inbound\"}",
                7.0,
            ),
        ],
    );

    // Just sent: none is deemed served before its third day.
    let deemed = format!("demail_deemed_served_recipients{{tenant=\"{TENANT}\"}}");
    assert_eq!(value(&m, &deemed), 0.0);

    let p = wait_until(WAIT, "both proxy sessions ended", || {
        let s = scrape(proxy_port);
        (value(&s, "demail_proxy_sessions_active") == 0.0).then_some(s)
    });
    assert_counts(
        &p,
        &[
            ("demail_proxy_sessions_total", started + 2.0),
            ("demail_proxy_logins_total{outcome=\"ok\"}", 1.0),
            ("demail_proxy_logins_total{outcome=\"failed\"}", 1.0),
            ("demail_proxy_logins_total{outcome=\"refused\"}", 0.0),
            ("demail_proxy_backend_errors_total{kind=\"connect\"}", 0.0),
            (
                "demail_proxy_virtual_commands_total{command=\"SELECT\"}",
                1.0,
            ),
            (
                "demail_proxy_virtual_commands_total{command=\"FETCH\"}",
                1.0,
            ),
            // LOGOUT goes to Dovecot, also from a virtual folder.
            (
                "demail_proxy_virtual_commands_total{command=\"other\"}",
                0.0,
            ),
        ],
    );

    // One summary line per message at info, with queue id, kind, outcome and private-id.
    let log = city.milter_log();
    for id in &ids {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("private_id=\"{id}\"")))
            .filter(|l| l.contains("kind=\"demail_outbound\""))
            .collect();
        assert_eq!(lines.len(), 1, "{id}: {lines:#?}\n{log}");
        assert!(
            lines[0].contains(" INFO ")
                && lines[0].contains("outcome=\"accepted\"")
                && lines[0].contains("queue_id=\""),
            "{}",
            lines[0]
        );
    }
    let summaries = log
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains("demail_milter::session: message "))
        .count();
    assert_eq!(summaries, 3 + 1 + 2 + 7, "one line per message:\n{log}");
    let proxy_log = proxy.log_text();
    let ended: Vec<&str> = proxy_log
        .lines()
        .filter(|l| l.contains("session ended"))
        .collect();
    assert_eq!(ended.len() as f64, started + 2.0, "{proxy_log}");
    let clerk = format!("login=\"{CLERK}\"");
    let logged_in: Vec<&&str> = ended.iter().filter(|l| l.contains(&clerk)).collect();
    assert_eq!(logged_in.len(), 1, "{ended:#?}");
    for field in ["duration=", "bytes_in=", "bytes_out=", "reason=\"logout\""] {
        assert!(logged_in[0].contains(field), "{field}: {}", logged_in[0]);
    }
    assert!(
        !proxy_log.contains("wrong-password") && !proxy_log.contains(PW),
        "{proxy_log}"
    );
}

#[test]
fn hostile_clients_block_neither_the_endpoint_nor_the_milter() {
    let port = free_port();
    let city = City::start(CityOptions {
        dovecot_users: vec![(CLERK.into(), PW.into())],
        extra_toml: format!("\n[milter.metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
        ..CityOptions::default()
    });
    // Clients that start a request and never finish it.
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
                .expect("write");
            s
        })
        .collect();
    // A request head of a mebibyte: answered 431 (or cut off), never served.
    let mut big = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    big.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut head = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 1 << 20));
    let _ = big.write_all(&head);
    let mut answer = Vec::new();
    let _ = big.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431 "),
        "{answer}"
    );
    assert!(!answer.contains("demail_milter_messages_total"), "{answer}");
    // Another path: 404.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");

    // Meanwhile the milter takes mail and the endpoint answers.
    let out = mail(&city, "nachbar@example.org", CLERK, "Hallo");
    assert!(out.status.success(), "{out:?}");
    let s = wait_until(WAIT, "the mail counted", || {
        let s = scrape(port);
        (value(
            &s,
            "demail_milter_messages_total{kind=\"ordinary\",outcome=\"accepted\"}",
        ) >= 1.0)
            .then_some(s)
    });
    assert_eq!(
        value(
            &s,
            "demail_milter_messages_total{kind=\"ordinary\",outcome=\"accepted\"}"
        ),
        1.0
    );
    drop(slow);
}
