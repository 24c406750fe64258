//! What Thunderbird, Outlook (classic and new) and mbsync send, replayed from
//! `tests/imap-scripts/*.imap` against Dovecot directly and through the proxy: the proxy
//! (its STARTTLS port, plaintext on loopback, and IMAPS with the test CA) gives no NO/BAD/BYE
//! Dovecot alone would not give, and opening a confirmation folder shows the
//! confirmations the clerk's De-Mail got (evidence from the real confirmation flow).
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::path::PathBuf;

use demail_e2e::city::{CITIZEN, CLERK};
use demail_e2e::imap_replay::{Script, Target, Transcript, replay, worse_through_proxy};
use demail_e2e::proxy_city::{self, DISPATCH_FOLDER, PW};
use demail_e2e::{City, ImapClient};

fn scripts() -> Vec<Script> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("imap-scripts");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "imap"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Script::load(p)).collect()
}

/// Three ordinary messages in the clerk's INBOX, appended straight to Dovecot.
fn seed_inbox(city: &City) {
    let mut c = ImapClient::plain(city.imap_port().expect("Dovecot"));
    let r = c.run(&format!("LOGIN {CLERK} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    for i in 1..=3 {
        let msg = format!(
            "From: Kollege <kollege@example.test>\r\nTo: {CLERK}\r\nSubject: Vorgang {i}\r\n\
             Message-ID: <vorgang-{i}@example.test>\r\nDate: Thu, 03 Dec 2026 09:0{i}:00 +0100\r\n\
             \r\nText {i}\r\n"
        );
        let tag = c.next_tag();
        c.send_raw(format!("{tag} APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
        let r = c.until_tagged(&tag);
        let last = String::from_utf8_lossy(r.last().unwrap()).into_owned();
        assert!(last.contains(" OK"), "{last}");
    }
}

fn save(t: &Transcript, target: &str) {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("imap-transcripts");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{}.{target}.txt", t.script)), t.text());
}

/// The FETCH literals of a step (the header sections fetched), by their announced length.
fn literals(step_responses: &[String]) -> Vec<String> {
    step_responses
        .iter()
        .filter(|r| r.starts_with("* ") && r.contains(" FETCH "))
        .filter_map(|r| {
            let end = r.find("}\r\n")?;
            let open = r[..end].rfind('{')?;
            let len: usize = r[open + 1..end].parse().ok()?;
            r.get(end + 3..end + 3 + len).map(str::to_string)
        })
        .collect()
}

#[test]
fn client_scripts_get_no_worse_answers_through_the_proxy_and_show_the_confirmations() {
    let city = proxy_city::start("");
    seed_inbox(&city);
    let id = proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid Hundesteuer");
    // Versand- and Eingangsbestätigung (the account's defaults).
    proxy_city::wait_confirmations(&city, &id, 2);
    let dispatch: Vec<Vec<u8>> = {
        let store = city.evidence().expect("evidence");
        store
            .confirmations(&id)
            .expect("confirmations")
            .into_iter()
            .filter(|c| c.data.kind == demail_evidence::ConfirmationKind::Dispatch)
            .map(|c| store.read_blob(&c.data.raw).expect("blob"))
            .collect()
    };
    assert_eq!(dispatch.len(), 1, "one Versandbestätigung recorded");
    // BODY[HEADER] is the header with the blank line that ends it (RFC 9051 6.4.5).
    let header_end = dispatch[0]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section")
        + 4;
    let expected_header = String::from_utf8_lossy(&dispatch[0][..header_end]).into_owned();

    let dovecot = city.imap_port().expect("Dovecot");
    let proxy = city.proxy().expect("proxy").ports.imap;
    let imaps = city.proxy().expect("proxy").ports.imaps;
    let mut problems = Vec::new();
    let all = scripts();
    assert!(all.len() >= 4, "the four client scripts: {}", all.len());
    for script in &all {
        let direct = replay(
            ImapClient::plain(dovecot),
            script,
            CLERK,
            PW,
            Target::Dovecot,
        );
        let proxied = replay(ImapClient::plain(proxy), script, CLERK, PW, Target::Proxy);
        // And over IMAPS (new Outlook connects with implicit TLS, its ID and LOGIN literals
        // then meet the TLS session, not the STARTTLS port's plaintext phase).
        let over_tls = replay(
            ImapClient::tls(imaps, &city.pki().ca_cert),
            script,
            CLERK,
            PW,
            Target::Proxy,
        );
        save(&direct, "dovecot");
        save(&proxied, "proxy");
        save(&over_tls, "proxy-imaps");
        println!("{}", proxied.text());
        problems.extend(worse_through_proxy(&direct, &proxied));
        problems.extend(
            worse_through_proxy(&direct, &over_tls)
                .into_iter()
                .map(|p| format!("IMAPS: {p}")),
        );

        // Opening the confirmation folder: SELECT shows one message, the header fetch gives
        // the Versandbestätigung's header as stored.
        let select = proxied
            .steps
            .iter()
            .find(|s| {
                s.proxy_only
                    && s.command.to_ascii_uppercase().starts_with("SELECT")
                    && s.command.contains(DISPATCH_FOLDER)
            })
            .unwrap_or_else(|| panic!("{}: no SELECT of {DISPATCH_FOLDER}", script.name));
        if select.status != "OK"
            || !select
                .responses
                .iter()
                .any(|r| r.trim_end() == "* 1 EXISTS")
        {
            problems.push(format!(
                "{}: `{}` should show 1 message: {:?}",
                script.name, select.command, select.responses
            ));
        }
        let fetch = proxied
            .steps
            .iter()
            .find(|s| {
                s.proxy_only
                    && s.command.eq_ignore_ascii_case(
                        "UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])",
                    )
            })
            .unwrap_or_else(|| panic!("{}: no header fetch in the folder", script.name));
        let got = literals(&fetch.responses);
        if got != vec![expected_header.clone()] {
            problems.push(format!(
                "{}: `{}` should give the Versandbestätigung's header {:?}, got {:?}",
                script.name,
                fetch.command,
                expected_header.lines().take(3).collect::<Vec<_>>(),
                fetch
                    .responses
                    .iter()
                    .map(|r| r.chars().take(300).collect::<String>())
                    .collect::<Vec<_>>()
            ));
        }
        for s in proxied.steps.iter().filter(|s| s.proxy_only) {
            if s.status != "OK" {
                problems.push(format!(
                    "{}: virtual-folder command `{}`: {:?}",
                    script.name,
                    s.command,
                    s.responses.last()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
