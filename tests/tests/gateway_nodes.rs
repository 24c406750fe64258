//! Two gateway nodes on one PostgreSQL evidence store (issue 12), each with its own Postfix,
//! milter and IMAP proxy, sharing the provider, the Dovecot and the database, as an
//! association runs them behind one MX: a De-Mail sent through node A is confirmed through
//! node B, its status advances on both, node B's proxy shows the confirmations; a node's
//! milter killed under load loses and duplicates nothing; the whole store moves to SQLite and
//! back with the same head hash.
//!
//! Build the binaries first: `cargo build --workspace --bins`. Needs root (PostgreSQL runs as
//! the `postgres` user of the Debian package).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use demail_e2e::city::{ACCOUNT, CITIZEN, CLERK, POSTSTELLE};
use demail_e2e::load::{message, received_ids, submit_until_accepted};
use demail_e2e::postgres::GATEWAY;
use demail_e2e::proxy_city::{self, DISPATCH_FOLDER, PW, RECEIPT_FOLDER};
use demail_e2e::{City, CityOptions, PgServer, wait_until};
use demail_evidence::Status;

const WAIT: Duration = Duration::from_secs(60);

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn demailctl(args: &[&str]) -> Output {
    let bin = demail_e2e::cargo_bin("demailctl");
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run demailctl")
}

/// A fresh database with the evidence schema, migrated by its owner, the gateway role
/// granted to read and append.
fn migrated_database(pg: &PgServer) -> String {
    let db = pg.create_database();
    let owner_pw = pg.owner_password_file();
    let out = demailctl(&[
        "evidence",
        "migrate",
        "--database",
        &pg.owner_url(&db),
        "--password-file",
        &owner_pw.display().to_string(),
        "--grant",
        GATEWAY,
    ]);
    assert!(out.status.success(), "migrate:\n{}", text(&out));
    db
}

/// A city on `db`; with `proxy` also Dovecot, the proxy and a provider that sends
/// confirmations.
fn city_on(pg: &PgServer, db: &str, proxy: bool) -> City {
    City::start(CityOptions {
        tenants: proxy_city::tenants(),
        dovecot_users: if proxy {
            proxy_city::logins()
        } else {
            Vec::new()
        },
        imap_proxy: proxy,
        provider_sends: proxy,
        provider_known_recipients: vec!["*@example.de-mail.de".into()],
        // The provider starts once it knows which node's demail-in it delivers to.
        simulator: false,
        evidence_postgres: Some((pg.gateway_url(db), pg.gateway_password_file())),
        ..CityOptions::default()
    })
}

/// UIDs in `folder` as `login` sees them through a proxy's loopback port (imaplib).
fn folder_count(port: u16, login: &str, folder: &str) -> usize {
    const SCRIPT: &str = r#"
import imaplib, sys
port, user, pw, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4('127.0.0.1', port)
m.login(user, pw)
typ, data = m.select('"%s"' % folder, readonly=True)
assert typ == 'OK', (typ, data)
typ, data = m.uid('SEARCH', None, 'ALL')
assert typ == 'OK', (typ, data)
print(len(data[0].split()))
m.logout()
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), login, PW, folder])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    assert!(out.status.success(), "imaplib:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

/// A copy of `config` whose `[evidence]` is `database` (with `password_file`, if any).
fn config_with_database(
    config: &Path,
    out: &Path,
    database: &str,
    password_file: Option<&Path>,
    blobs: &Path,
) {
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(config)
        .expect("demail.toml")
        .parse()
        .expect("TOML");
    let ev = &mut doc["evidence"];
    ev["database"] = toml_edit::value(database);
    ev["blobs"] = toml_edit::value(blobs.display().to_string());
    match password_file {
        Some(p) => ev["password_file"] = toml_edit::value(p.display().to_string()),
        None => {
            if let Some(t) = ev.as_table_like_mut() {
                t.remove("password_file");
            }
        }
    }
    std::fs::write(out, doc.to_string()).expect("write demail.toml");
}

/// `demailctl --config CONFIG evidence copy --to TO ARGS..`: what it did.
fn copy(config: &Path, to: &str, args: &[&str]) -> Output {
    let config = config.display().to_string();
    let mut all = vec!["--config", &config, "evidence", "copy", "--to", to];
    all.extend_from_slice(args);
    demailctl(&all)
}

/// `evidence verify` through `config`: OK, and the head it names.
fn verified_head(config: &Path) -> String {
    let out = demailctl(&[
        "--config",
        &config.display().to_string(),
        "evidence",
        "verify",
    ]);
    let t = text(&out);
    assert!(out.status.success() && t.starts_with("OK"), "verify:\n{t}");
    t.split("; ").nth(1).expect("the head").trim().to_string()
}

#[test]
fn a_de_mail_sent_through_node_a_is_confirmed_through_node_b_and_shown_by_its_proxy() {
    let pg = PgServer::start();
    let db = migrated_database(&pg);
    let mut a = city_on(&pg, &db, true);
    let b = a.start_node();
    // Everything the provider sends goes to node B's demail-in.
    a.send_provider_mail_to(b.inbound_port());

    let private_id = proxy_city::send_demail(&a, CLERK, CITIZEN, "Bescheid über zwei Knoten");
    proxy_city::wait_confirmations(&a, &private_id, 2);
    let store = a.evidence().expect("the shared store");
    let status = store.recipient_status(&private_id).expect("status");
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0].status, Status::Received, "{status:?}");
    let confirmations = store.confirmations(&private_id).expect("confirmations");
    assert!(
        confirmations.iter().all(|c| c.data.trusted),
        "{confirmations:?}"
    );
    // Node B recorded them: its milter's log names the private-id, node A's never saw them.
    wait_until(WAIT, "node B's milter log names the confirmation", || {
        b.milter_log().contains(&private_id).then_some(())
    });

    // demailctl on either node reads the one store.
    for (node, out) in [
        ("A", a.demailctl(&["status"])),
        ("B", b.demailctl(&["status"])),
    ] {
        let t = text(&out);
        assert!(out.status.success(), "status on node {node}:\n{t}");
        assert!(
            t.contains(&private_id) && t.contains("received"),
            "status on node {node}:\n{t}"
        );
    }

    // The proxy of node B shows the clerk his confirmations, the poststelle the account's.
    let port_b = b.proxy().expect("node B's proxy").ports.imap;
    assert_eq!(folder_count(port_b, CLERK, DISPATCH_FOLDER), 1);
    assert_eq!(folder_count(port_b, CLERK, RECEIPT_FOLDER), 1);
    assert_eq!(folder_count(port_b, POSTSTELLE, RECEIPT_FOLDER), 1);
    let port_a = a.proxy().expect("node A's proxy").ports.imap;
    assert_eq!(folder_count(port_a, CLERK, RECEIPT_FOLDER), 1);
    assert_eq!(
        folder_count(port_b, proxy_city::OTHER_CLERK, RECEIPT_FOLDER),
        0,
        "another tenant sees nothing of {ACCOUNT}"
    );

    // Moving the store: to SQLite and back into a second database, the same head each time.
    let work = tempfile::tempdir().expect("temp dir");
    let pg_config = a.dir().join("demail.toml");
    let head = verified_head(&pg_config);
    let sqlite = work.path().join("copy.sqlite");
    let sqlite_blobs = work.path().join("copy-blobs");
    let out = copy(
        &pg_config,
        &sqlite.display().to_string(),
        &["--to-blobs", &sqlite_blobs.display().to_string()],
    );
    assert!(out.status.success(), "copy to SQLite:\n{}", text(&out));
    assert!(text(&out).contains(&head), "{}", text(&out));
    let sqlite_config = work.path().join("sqlite.toml");
    config_with_database(
        &pg_config,
        &sqlite_config,
        &sqlite.display().to_string(),
        None,
        &sqlite_blobs,
    );
    assert_eq!(verified_head(&sqlite_config), head);

    let db2 = migrated_database(&pg);
    let gateway_pw = [
        "--to-password-file",
        &pg.gateway_password_file().display().to_string(),
    ];
    let out = copy(&sqlite_config, &pg.gateway_url(&db2), &gateway_pw);
    assert!(out.status.success(), "copy to PostgreSQL:\n{}", text(&out));
    let pg2_config = work.path().join("pg2.toml");
    config_with_database(
        &pg_config,
        &pg2_config,
        &pg.gateway_url(&db2),
        Some(&pg.gateway_password_file()),
        &work.path().join("pg2-spool"),
    );
    assert_eq!(verified_head(&pg2_config), head);
    // A copy goes only into an empty store.
    let out = copy(&sqlite_config, &pg.gateway_url(&db2), &gateway_pw);
    assert!(!out.status.success());
    assert!(text(&out).contains("empty store"), "{}", text(&out));

    // SQLite's backup and restore name the way for a PostgreSQL store instead of half-working.
    let pg_config_arg = pg_config.display().to_string();
    let tar = work.path().join("backup.tar").display().to_string();
    let out = demailctl(&[
        "--config",
        &pg_config_arg,
        "evidence",
        "backup",
        "--out",
        &tar,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("pg_dump"), "{}", text(&out));
    let out = demailctl(&["--config", &pg_config_arg, "evidence", "restore", &tar]);
    assert!(!out.status.success());
    assert!(text(&out).contains("evidence copy"), "{}", text(&out));
}

#[test]
fn a_node_killed_under_load_loses_and_duplicates_nothing() {
    const SENDERS: usize = 4;
    const EACH: usize = 10;
    let pg = PgServer::start();
    let db = migrated_database(&pg);
    let mut a = city_on(&pg, &db, false);
    a.start_simulator();
    let mut b = a.start_node();
    let ports = [a.smtp_port(), b.smtp_port()];
    let deadline = Instant::now() + Duration::from_secs(180);
    let senders: Vec<_> = (0..SENDERS)
        .map(|t| {
            thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        let msg = message(&format!("nodes-{t}-{i}"));
                        submit_until_accepted(&ports, t + i, &msg, deadline)
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    wait_until(WAIT, "the first De-Mails recorded", || {
        (a.submissions().len() >= 6).then_some(())
    });
    b.kill_milter();
    thread::sleep(Duration::from_millis(700));
    b.start_milter();
    wait_until(WAIT, "more De-Mails recorded after the restart", || {
        (a.submissions().len() >= 20).then_some(())
    });
    b.kill_milter();
    thread::sleep(Duration::from_millis(300));
    b.start_milter();
    let tempfails: usize = senders.into_iter().map(|s| s.join().expect("sender")).sum();
    println!("temporary failures the clients saw and retried on the other node: {tempfails}");
    assert!(tempfails > 0, "the kills happened while mail was flowing");

    let total = SENDERS * EACH;
    let ids = received_ids(&a, total);
    assert_eq!(ids.len(), total, "every De-Mail reached the provider");
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let subs = a.submissions();
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &subs {
        *per_id.entry(&s.message_id).or_default() += 1;
    }
    let doubled: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "recorded more than once: {doubled:?}");
    assert_eq!(subs.len(), total, "one record per accepted De-Mail");
    // Both nodes wrote into the one chain, and it is whole.
    let store = a.evidence().expect("store");
    let events = store.events_after(0, 100_000).expect("events");
    let ids: Vec<i64> = events.iter().map(|e| e.event_id()).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as i64).collect::<Vec<_>>(),
        "one chain without gaps"
    );
    assert!(
        ids.len() >= total,
        "the submissions and the provider's confirmations"
    );
    verified_head(&a.dir().join("demail.toml"));
}
