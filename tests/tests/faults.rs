//! Faults with real Postfix (issue 11): the milter killed during a loaded run, the evidence
//! file system full, SQLite held by a long-running reader, Dovecot restarted under the IMAP
//! proxy. The provider down for a while is `demail_routing.rs`
//! (`demail_goes_only_to_the_gateway_and_waits_for_it_when_it_is_down`).
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use demail_e2e::city::CLERK;
use demail_e2e::load::{message, received_ids, submit, submit_until_accepted};
use demail_e2e::{City, CityOptions, ImapClient, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn verify_ok(city: &City) -> String {
    let out = city.demailctl(&["evidence", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.starts_with("OK"),
        "demailctl evidence verify:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn milter_killed_during_a_loaded_run_loses_and_duplicates_nothing() {
    const SENDERS: usize = 4;
    const EACH: usize = 12;
    let mut city = City::start(CityOptions::default());
    let port = city.smtp_port();
    let deadline = Instant::now() + Duration::from_secs(180);
    let senders: Vec<_> = (0..SENDERS)
        .map(|t| {
            thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        submit_until_accepted(
                            &[port],
                            0,
                            &message(&format!("load-{t}-{i}")),
                            deadline,
                        )
                    })
                    .sum::<usize>()
            })
        })
        .collect();
    // Kill it once the stream is under way, and again while it restarts its work.
    wait_until(WAIT, "the first De-Mails recorded", || {
        (city.submissions().len() >= 6).then_some(())
    });
    city.kill_milter();
    thread::sleep(Duration::from_millis(700));
    city.start_milter();
    wait_until(WAIT, "more De-Mails recorded after the restart", || {
        (city.submissions().len() >= 20).then_some(())
    });
    city.kill_milter();
    thread::sleep(Duration::from_millis(300));
    city.start_milter();
    let tempfails: usize = senders.into_iter().map(|s| s.join().expect("sender")).sum();
    println!("temporary failures the clients saw and retried: {tempfails}");
    assert!(tempfails > 0, "the kills happened while mail was flowing");

    let total = SENDERS * EACH;
    let ids = received_ids(&city, total);
    assert_eq!(
        ids.len(),
        total,
        "every De-Mail reached the provider: {ids:?}"
    );
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    // A retry after a crash reuses the record of the attempt Postfix never completed.
    let subs = city.submissions();
    let mut per_id: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in &subs {
        per_id.entry(&s.message_id).or_default().push(format!(
            "{} event {} queue {} origin {} at {}",
            s.private_id,
            s.event_id,
            s.queue_id,
            s.origin_key.hex(),
            s.time
        ));
    }
    let doubled: Vec<_> = per_id.iter().filter(|(_, p)| p.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "recorded more than once: {doubled:?}\n{}",
        city.milter_log()
    );
    assert_eq!(subs.len(), total, "one record per accepted De-Mail");
    let mut recorded: Vec<String> = subs.iter().map(|s| s.message_id.clone()).collect();
    recorded.sort();
    recorded.dedup();
    assert_eq!(recorded.len(), total, "no De-Mail recorded twice");
    for s in &subs {
        assert!(
            ids.contains_key(&s.message_id),
            "recorded but never sent: {s:?}"
        );
    }
    // Every record is whole: verify reads each event and each blob it names.
    verify_ok(&city);
}

/// A tmpfs of its own over a directory, unmounted on drop (before the city removes it).
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(dir: &Path, size: &str) -> SmallFs {
        std::fs::create_dir_all(dir).expect("evidence directory");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount tmpfs on {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        SmallFs(dir.to_path_buf())
    }

    /// Fills what is left with a file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        // The last partial chunk may have fitted byte by byte.
        while f.write_all(&[0u8]).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_evidence_file_system_tempfails_and_recovers_when_space_returns() {
    let mut city = City::start(CityOptions {
        milter: false,
        ..CityOptions::default()
    });
    let evidence_dir = city
        .evidence_database()
        .parent()
        .expect("the database lives in a directory")
        .to_path_buf();
    assert!(
        city.evidence_blobs().starts_with(&evidence_dir),
        "the blobs share the evidence file system"
    );
    let fs = SmallFs::mount(&evidence_dir, "8m");
    city.start_milter();
    let port = city.smtp_port();

    for i in 0..2 {
        assert_eq!(submit(port, &message(&format!("before-full-{i}"))), Ok(()));
    }
    let filler = fs.fill();
    let full = submit(port, &message("while-full"));
    let code = full.expect_err("a De-Mail cannot be accepted without its evidence");
    assert!(
        (400..500).contains(&code),
        "a full disk is a temporary failure, got {code}"
    );
    let log = city.milter_log();
    assert!(
        log.contains("tempfail") || log.contains("No space left"),
        "the milter says why:\n{log}"
    );

    std::fs::remove_file(&filler).expect("free the space");
    assert_eq!(
        submit(port, &message("while-full")),
        Ok(()),
        "accepted once there is room"
    );
    assert_eq!(submit(port, &message("after-full")), Ok(()));

    let ids = received_ids(&city, 4);
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
    let subs = city.submissions();
    assert_eq!(subs.len(), 4, "{subs:#?}");
    verify_ok(&city);
    city.stop_milter();
    drop(fs);
}

#[test]
fn a_long_running_reader_does_not_stop_the_milter() {
    let city = City::start(CityOptions::default());
    let port = city.smtp_port();
    assert_eq!(submit(port, &message("first")), Ok(()));
    wait_until(WAIT, "the first record", || {
        (city.submissions().len() == 1).then_some(())
    });

    // A reader that opens a transaction and keeps it: its snapshot stays while it lives.
    let mut reader = Command::new("sqlite3")
        .arg(city.evidence_database())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sqlite3 (Debian package sqlite3)");
    let mut stdin = reader.stdin.take().expect("stdin");
    stdin
        .write_all(b"BEGIN;\nSELECT count(*) FROM events;\n")
        .expect("reader");
    stdin.flush().expect("reader");
    thread::sleep(Duration::from_millis(300));
    // And demailctl reading at the same time.
    let status = city.demailctl(&["status", "--json"]);
    assert!(status.status.success());

    let started = Instant::now();
    for i in 0..5 {
        assert_eq!(
            submit(port, &message(&format!("while-read-{i}"))),
            Ok(()),
            "accepted while a reader holds its snapshot"
        );
    }
    println!(
        "5 De-Mails accepted in {:.1} s while the reader held its transaction",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(city.submissions().len(), 6);

    stdin
        .write_all(b"SELECT count(*) FROM events;\nCOMMIT;\n.quit\n")
        .expect("reader");
    drop(stdin);
    let out = reader.wait_with_output().expect("reader ends");
    let counts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        counts.len(),
        2,
        "the reader ran both queries: {counts:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        counts[0], counts[1],
        "the reader kept one snapshot throughout: {counts:?}"
    );
    let _ = received_ids(&city, 6);
    verify_ok(&city);
}

const PW: &str = "clerk-pw";

fn proxy_client(port: u16) -> ImapClient {
    let mut c = ImapClient::plain(port);
    c.set_read_timeout(Duration::from_secs(20));
    let r = c.run(&format!("LOGIN {CLERK} {PW}"));
    assert!(r.last().is_some_and(|l| l.contains(" OK")), "{r:?}");
    c
}

/// Reads until a `* BYE` or the end of the connection; the responses seen, and whether BYE
/// came. A read timeout (a hang) fails the test.
fn until_bye_or_close(c: &mut ImapClient) -> (Vec<String>, bool) {
    let mut seen = Vec::new();
    let started = Instant::now();
    while let Some(r) = c.try_read_response() {
        let line = String::from_utf8_lossy(&r).into_owned();
        let bye = line.starts_with("* BYE");
        seen.push(line);
        if bye {
            return (seen, true);
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(19),
        "the client waited for its read timeout: a hang ({seen:?})"
    );
    (seen, false)
}

#[test]
fn dovecot_restarted_under_the_proxy_gives_clients_a_clean_bye_and_a_way_back() {
    let mut city = City::start(CityOptions {
        dovecot_users: vec![(CLERK.into(), PW.into())],
        imap_proxy: true,
        simulator: false,
        milter: false,
        ..CityOptions::default()
    });
    let port = city.proxy().expect("proxy").ports.imap;
    let mut idle = proxy_client(port);
    let r = idle.run("SELECT INBOX");
    assert!(r.last().is_some_and(|l| l.contains(" OK")), "{r:?}");
    idle.send_raw(b"i1 IDLE\r\n");
    let cont = idle.read_response();
    assert!(cont.starts_with(b"+"), "{:?}", cont.escape_ascii());
    let mut quiet = proxy_client(port);

    let stopped = Instant::now();
    city.dovecot_mut().expect("Dovecot").stop();

    let (seen, bye) = until_bye_or_close(&mut idle);
    println!("idle client: {seen:?}");
    assert!(bye, "the idling client is told: {seen:?}");
    // The quiet one learns at its next command at the latest.
    let _ = quiet.try_send(b"q1 NOOP\r\n");
    let (seen, bye) = until_bye_or_close(&mut quiet);
    println!("quiet client: {seen:?}");
    assert!(
        bye || seen.iter().all(|l| !l.starts_with("q1 OK")),
        "no OK from a Dovecot that is gone: {seen:?}"
    );
    println!(
        "both sessions ended {:.1} s after Dovecot stopped",
        stopped.elapsed().as_secs_f64()
    );

    // While Dovecot is down, a new client gets a clean answer at once, not a hang.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut greeting = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut greeting);
    let greeting = String::from_utf8_lossy(&greeting).into_owned();
    println!("new client while Dovecot is down: {greeting:?}");
    assert!(greeting.starts_with("* BYE"), "{greeting:?}");

    city.dovecot_mut().expect("Dovecot").start_again();
    let mut back = proxy_client(port);
    let r = back.run("SELECT INBOX");
    assert!(r.last().is_some_and(|l| l.contains(" OK")), "{r:?}");
    let r = back.run("LOGOUT");
    assert!(r.iter().any(|l| l.starts_with("* BYE")), "{r:?}");
}
