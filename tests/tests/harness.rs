//! The harness itself: a failing test shows the daemons' logs, and nothing outlives a test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use demail_e2e::{City, CityOptions, Dovecot, Postfix, PostfixOptions, swaks, wait_until};

/// Fails on purpose once mail went through Postfix into Dovecot, so that the logs printed on
/// failure have content to show. Run on its own by the next test, which checks the output.
#[test]
#[should_panic(expected = "deliberate failure")]
fn deliberate_failure_after_a_delivery() {
    let dc = Dovecot::start(&[("alice@example.test", "alicepw")]);
    let pf = Postfix::start(PostfixOptions::for_dovecot(&dc));
    let server = format!("127.0.0.1:{}", pf.smtp_port);
    let out = swaks(&[
        "--server",
        &server,
        "--to",
        "alice@example.test",
        "--from",
        "a@example.org",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_until(Duration::from_secs(30), "delivery", || {
        (!dc.messages("alice@example.test").is_empty()).then_some(())
    });
    panic!("deliberate failure");
}

#[test]
fn a_failing_test_prints_the_logs_and_leaves_no_daemon_behind() {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args([
            "--exact",
            "deliberate_failure_after_a_delivery",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .output()
        .expect("run the test binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the should_panic test itself must pass:\n{stderr}"
    );
    assert!(stderr.contains("deliberate failure"), "{stderr}");

    // Both logs were printed, with what happened in them.
    let pf_dump = section(
        &stderr,
        "--- Postfix maillog (",
        "--- end of Postfix maillog ---",
    );
    assert!(
        pf_dump.contains("status=sent"),
        "maillog dump lacks the delivery:\n{pf_dump}"
    );
    assert!(
        pf_dump.contains("Mail queue is empty"),
        "queue listing missing:\n{pf_dump}"
    );
    let dc_dump = section(&stderr, "--- dovecot.log (", "--- end of dovecot.log ---");
    assert!(
        dc_dump.contains("lmtp(alice@example.test)"),
        "dovecot.log dump lacks the delivery:\n{dc_dump}"
    );

    // The instances' directories are gone, and no process runs from them (this check works:
    // it finds the instances of the test running now, see `live_instances_are_found`).
    for dump in [pf_dump, dc_dump] {
        let dir = PathBuf::from(dump.split_once(')').expect("dir in header").0);
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(!dir.exists(), "{} was not removed", dir.display());
        let users = processes_mentioning(&dir.to_string_lossy());
        assert!(
            users.is_empty(),
            "still running from {}: {users:?}",
            dir.display()
        );
    }
}

/// The text after `start` up to `end` (panics naming what is missing).
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in:\n{text}"))
        + start.len();
    let len = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} in:\n{text}"));
    &text[from..from + len]
}

/// Running processes whose command line or environment contains `needle` (Postfix daemons
/// carry their config dir in MAIL_CONFIG, Dovecot's master in its arguments).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let procs = std::fs::read_dir("/proc").expect("read /proc");
    procs
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let read = |f: &str| std::fs::read(e.path().join(f)).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&read("cmdline")).replace('\0', " ");
            let environ = String::from_utf8_lossy(&read("environ")).into_owned();
            (cmdline.contains(needle) || environ.contains(needle)).then_some(cmdline)
        })
        .collect()
}

#[test]
fn live_instances_are_found() {
    let dc = Dovecot::start(&[("alice@example.test", "alicepw")]);
    let pf = Postfix::start(PostfixOptions::for_dovecot(&dc));
    assert!(
        !processes_mentioning(&dc.dir.to_string_lossy()).is_empty(),
        "Dovecot not found"
    );
    let pf_root = pf.config_dir.parent().expect("config dir has a parent");
    assert!(
        !processes_mentioning(&pf_root.to_string_lossy()).is_empty(),
        "Postfix not found"
    );
}

#[test]
fn held_mail_is_counted_and_deleted() {
    let pf = Postfix::start(PostfixOptions {
        main_cf: vec![("header_checks".into(), "regexp:{dir}/hold".into())],
        extra_files: vec![("hold".into(), b"/^Subject: hold me/ HOLD\n".to_vec())],
        // Held mail is never delivered: an LMTP port nobody listens on will do.
        lmtp_port: Some(demail_e2e::free_port()),
        ..PostfixOptions::default()
    });
    let server = format!("127.0.0.1:{}", pf.smtp_port);
    for _ in 0..2 {
        let out = swaks(&[
            "--server",
            &server,
            "--to",
            "alice@example.test",
            "--header",
            "Subject: hold me",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    wait_until(Duration::from_secs(30), "two held messages", || {
        (pf.queued("hold") == 2).then_some(())
    });
    assert_eq!(pf.queued("deferred"), 0);
    pf.delete_all("hold");
    assert_eq!(pf.queued("hold"), 0);
}

#[test]
fn a_city_restarts_its_milter_and_leaves_nothing_behind() {
    let mut city = City::start(CityOptions::default());
    let dir = city.dir().to_path_buf();
    let first = city.milter().expect("milter runs").pid();
    city.kill_milter();
    assert!(
        !PathBuf::from(format!("/proc/{first}")).exists(),
        "killed milter still there"
    );
    let second = city.start_milter().pid();
    assert_ne!(first, second);
    assert!(
        city.milter()
            .expect("runs")
            .peak_rss_kib()
            .is_some_and(|k| k > 0)
    );
    assert!(city.stop_milter(), "SIGTERM stops the milter");
    let third = city.start_milter().pid();
    let log = city.milter_log();
    assert_eq!(log.matches(" ready ").count(), 3, "{log}");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    drop(city);
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(
        !PathBuf::from(format!("/proc/{third}")).exists(),
        "milter outlived its city"
    );
    let users = processes_mentioning(&dir.to_string_lossy());
    assert!(
        users.is_empty(),
        "still running from {}: {users:?}",
        dir.display()
    );
}
