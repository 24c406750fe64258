//! `demailctl evidence verify|prune`, `status --now` and `export` on a prepared store.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use demail_evidence::{ConfirmationKind, Digest, NewConfirmation, NewSubmission, Store};
use time::macros::datetime;

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    blobs: PathBuf,
}

/// The shipped sample with the store moved into a temp dir.
fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/demail.toml");
    let tls = sample.parent().unwrap().join("tls");
    let db = dir.path().join("evidence.sqlite");
    let blobs = dir.path().join("blobs");
    let text: String = std::fs::read_to_string(&sample)
        .unwrap()
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("database =") {
                format!("database = {:?}", db.display().to_string())
            } else if t.starts_with("blobs =") {
                format!("blobs = {:?}", blobs.display().to_string())
            } else {
                l.replace("\"tls/", &format!("\"{}/", tls.display()))
            }
        })
        .map(|l| l + "\n")
        .collect();
    let config = dir.path().join("demail.toml");
    std::fs::write(&config, text).unwrap();
    Env {
        dir,
        config,
        db,
        blobs,
    }
}

fn ctl(e: &Env, args: &[&str]) -> Output {
    ctl_with(&e.config, args)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One De-Mail with Abholbestätigung requested and only a trusted Versandbestätigung.
fn prepare(e: &Env) -> (NewSubmission, NewConfirmation) {
    let store = Store::open(&e.db, &e.blobs).unwrap();
    let msg = b"From: clerk@city.example\r\nTo: b@example.de-mail.de\r\nSubject: Bescheid\r\n\r\nHallo\r\n";
    let s = NewSubmission {
        private_id: "city-000001".into(),
        origin_key: Digest::of(b"origin"),
        tenant: "city".into(),
        account: "city@city.de-mail.de".into(),
        clerk: "clerk@city.example".into(),
        sasl_login: None,
        recipients: vec!["b@example.de-mail.de".into()],
        subject: "Bescheid".into(),
        message_id: "<m1@city.example>".into(),
        queue_id: "4Q1".into(),
        options: vec!["dispatch".into(), "retrieve".into()],
        content: store.put_blob(msg).unwrap(),
        size: msg.len() as u64,
        time: datetime!(2026-11-02 08:00 UTC),
    };
    store.record_submission(&s).unwrap();
    let c = NewConfirmation {
        kind: ConfirmationKind::Dispatch,
        private_id: Some(s.private_id.clone()),
        recipient: s.recipients[0].clone(),
        provider_message_id: Some("<p1@provider.example>".into()),
        raw: store
            .put_blob(b"Subject: Versandbestaetigung\r\n\r\nraw\r\n")
            .unwrap(),
        xml: Some(store.put_blob(b"<Acknowledge-Message/>").unwrap()),
        pdf: Some(store.put_blob(b"%PDF-1.4 dispatch").unwrap()),
        report: serde_json::json!({"indication": "TOTAL_PASSED"}),
        indication: "TOTAL_PASSED".into(),
        stated_time: Some(datetime!(2026-11-02 09:00 UTC)),
        trusted: true,
    };
    store.record_confirmation(&c).unwrap();
    (s, c)
}

/// Flips a bit of a blob kept in the database, as someone with write access to it could.
fn flip(db: &Path, d: &Digest) {
    let raw = rusqlite::Connection::open(db).unwrap();
    let key = &d.0[..];
    let mut b: Vec<u8> = raw
        .query_row("SELECT bytes FROM blobs WHERE digest = ?1", [key], |r| {
            r.get(0)
        })
        .unwrap();
    b[3] ^= 1;
    raw.execute_batch("DROP TRIGGER blobs_no_update").unwrap();
    raw.execute(
        "UPDATE blobs SET bytes = ?1 WHERE digest = ?2",
        rusqlite::params![b, key],
    )
    .unwrap();
}

#[test]
fn verify_ok_then_names_a_flipped_blob() {
    let e = env();
    let (_, c) = prepare(&e);
    let ok = ctl(&e, &["evidence", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("OK: 2 events, 4 blobs verified"),
        "{}",
        text(&ok)
    );
    assert!(text(&ok).contains("head event 2 hash "), "{}", text(&ok));
    flip(&e.db, &c.xml.unwrap());
    let bad = ctl(&e, &["evidence", "verify"]);
    assert!(!bad.status.success());
    let t = text(&bad);
    assert!(t.contains("FAILED: first mismatch: event 2: blob"), "{t}");
    assert!(
        t.contains("kind confirmation, private-id city-000001"),
        "{t}"
    );
}

#[test]
fn verify_names_an_event_changed_in_the_database() {
    let e = env();
    prepare(&e);
    let raw = rusqlite::Connection::open(&e.db).unwrap();
    // An attacker with file access drops the append-only trigger and edits the payload.
    raw.execute_batch(
        "DROP TRIGGER events_no_update;
         UPDATE events SET payload = replace(payload, 'TOTAL_PASSED', 'TOTAL_PASSEE') WHERE id = 2;",
    )
    .unwrap();
    drop(raw);
    let bad = ctl(&e, &["evidence", "verify"]);
    assert!(!bad.status.success());
    let t = text(&bad);
    assert!(t.contains("event 2: content hashes to"), "{t}");
    assert!(
        t.contains("(event 2, kind confirmation, private-id city-000001)"),
        "{t}"
    );
}

#[test]
fn status_shows_deemed_served_after_the_third_day() {
    let e = env();
    prepare(&e);
    // Dispatched Monday 10:00 Berlin: the deadline is the end of Thursday, German time.
    let before = ctl(&e, &["status", "--now", "2026-11-05T22:59:00Z"]);
    let t = text(&before);
    assert!(before.status.success(), "{t}");
    assert!(t.contains("DEEMED-SERVED-AT-END-OF"), "{t}");
    assert!(t.contains("2026-11-05T23:59:59+01:00"), "{t}");
    assert!(t.contains("dispatched"), "{t}");
    assert!(!t.contains("deemed-served"), "{t}");
    let after = ctl(&e, &["status", "--now", "2026-11-05T23:00:00Z"]);
    assert!(text(&after).contains("deemed-served"), "{}", text(&after));
    let json = ctl(&e, &["status", "--json", "--now", "2026-11-06T00:00:00Z"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["recipients"][0]["deemed_served"], true);
    assert_eq!(v[0]["recipients"][0]["status"], "dispatched");
    let bad = ctl(&e, &["status", "--now", "tomorrow"]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("--now \"tomorrow\""), "{}", text(&bad));
}

#[test]
fn prune_dry_run_then_prune_keeps_the_chain_verifiable() {
    let e = env();
    let (s, _) = prepare(&e);
    let now = time::OffsetDateTime::now_utc();
    let far = (now + time::Duration::days(366 * 11))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let dry = ctl(&e, &["evidence", "prune", "--dry-run", "--now", &far]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("dry run: 4 blob(s)"), "{}", text(&dry));
    let store = Store::open(&e.db, &e.blobs).unwrap();
    assert!(store.read_blob(&s.content).is_ok());
    let soon = ctl(&e, &["evidence", "prune"]);
    assert!(
        text(&soon).contains("nothing older than"),
        "{}",
        text(&soon)
    );
    let done = ctl(&e, &["evidence", "prune", "--now", &far]);
    assert!(
        text(&done).contains("recorded as event 3"),
        "{}",
        text(&done)
    );
    assert!(matches!(
        store.read_blob(&s.content),
        Err(demail_evidence::Error::BlobMissing { .. })
    ));
    let ok = ctl(&e, &["evidence", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("4 pruned blobs accepted"),
        "{}",
        text(&ok)
    );
    // The export still works and lists what is gone.
    let out = e.dir.path().join("pruned.tar");
    let ex = ctl(
        &e,
        &["export", "city-000001", "--out", out.to_str().unwrap()],
    );
    assert!(text(&ex).contains("listed in MISSING.txt"), "{}", text(&ex));
}

#[test]
fn export_writes_an_archive_that_sha256sum_accepts() {
    let e = env();
    prepare(&e);
    let out = e.dir.path().join("case.tar");
    let ex = ctl(
        &e,
        &[
            "export",
            "<m1@city.example>",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(ex.status.success(), "{}", text(&ex));
    let x = e.dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    assert!(
        Command::new("tar")
            .arg("-xf")
            .arg(&out)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap()
            .success()
    );
    let root = x.join("demail-evidence");
    let sums = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{}", text(&sums));
    assert!(
        text(&sums).contains("confirmations/01-dispatch/acknowledge.xml: OK"),
        "{}",
        text(&sums)
    );
    let readme = std::fs::read_to_string(root.join("README.txt")).unwrap();
    assert!(readme.contains("sha256sum -c SHA256SUMS"));
    let show = ctl(&e, &["show", "city-000001"]);
    assert!(text(&show).contains("dispatch"), "{}", text(&show));
    assert!(
        text(&show).contains("TOTAL_PASSED   trusted"),
        "{}",
        text(&show)
    );
    let missing = ctl(&e, &["export", "nope", "--out", out.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
}

/// A config like `e`'s with the store at `db` and `blobs`.
fn config_for(e: &Env, name: &str, db: &Path, blobs: &Path) -> PathBuf {
    let text = std::fs::read_to_string(&e.config)
        .unwrap()
        .replace(&e.db.display().to_string(), &db.display().to_string())
        .replace(&e.blobs.display().to_string(), &blobs.display().to_string());
    let path = e.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn ctl_with(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_demailctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// The `hash H` after "head event N" in a line of demailctl's output.
fn head_of(t: &str) -> String {
    let at = t
        .find("head event ")
        .unwrap_or_else(|| panic!("no head in {t}"));
    t[at..]
        .split_whitespace()
        .take(5)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn backup_then_restore_elsewhere_verifies_with_the_same_head() {
    use std::os::unix::fs::PermissionsExt;
    let e = env();
    prepare(&e);
    let file = e.dir.path().join("evidence.backup");
    let f = file.to_str().unwrap();
    let b = ctl(&e, &["evidence", "backup", "--out", f]);
    let t = text(&b);
    assert!(b.status.success(), "{t}");
    assert!(
        t.contains("2 events, 4 blobs (0 pruned, not included)"),
        "{t}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    let again = ctl(&e, &["evidence", "backup", "--out", f]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("exists already (--force replaces it)"),
        "{}",
        text(&again)
    );
    let forced = ctl(&e, &["evidence", "backup", "--out", f, "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));

    // Into the configured paths of another machine's config.
    let new_db = e.dir.path().join("new/evidence.sqlite");
    let new_blobs = e.dir.path().join("new/blobs");
    let other = config_for(&e, "other.toml", &new_db, &new_blobs);
    let r = ctl_with(&other, &["evidence", "restore", f]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(text(&r).contains("2 events, 4 blobs"), "{}", text(&r));
    let v = ctl_with(&other, &["evidence", "verify"]);
    assert!(v.status.success(), "{}", text(&v));
    assert!(
        text(&v).starts_with("OK: 2 events, 4 blobs verified"),
        "{}",
        text(&v)
    );
    assert_eq!(head_of(&text(&v)), head_of(&text(&forced)));
    let show = ctl_with(&other, &["show", "city-000001"]);
    assert!(text(&show).contains("Bescheid"), "{}", text(&show));

    // No silent overwrite of a store that is there.
    let twice = ctl_with(&other, &["evidence", "restore", f]);
    assert!(!twice.status.success());
    assert!(
        text(&twice).contains("exists already: restore only into an empty place"),
        "{}",
        text(&twice)
    );

    // A damaged backup names the member and leaves nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 1024 - 512 - 1;
    let member = (0..bytes.len() / 512)
        .map(|i| i * 512)
        .rev()
        .find(|&o| o < at && bytes[o + 257..o + 262] == *b"ustar")
        .unwrap();
    let name = String::from_utf8_lossy(&bytes[member..member + 100])
        .trim_end_matches('\0')
        .to_string();
    bytes[member + 512] ^= 0x20;
    let bad = e.dir.path().join("bad.backup");
    std::fs::write(&bad, &bytes).unwrap();
    let x = e.dir.path().join("x");
    let r = ctl(
        &e,
        &[
            "evidence",
            "restore",
            bad.to_str().unwrap(),
            "--database",
            x.join("e.sqlite").to_str().unwrap(),
            "--blobs",
            x.join("blobs").to_str().unwrap(),
        ],
    );
    assert!(!r.status.success());
    let t = text(&r);
    assert!(
        t.contains(&format!("member {name}: content hashes to")),
        "{t}"
    );
    assert_eq!(
        std::fs::read_dir(&x).unwrap().count(),
        0,
        "nothing restored"
    );
}

/// `status --csv`, `--pending`, `--deemed-served` on a store whose content the test knows.
#[test]
fn status_csv_and_filters_follow_the_deadline() {
    let e = env();
    let (s1, _) = prepare(&e);
    let store = Store::open(&e.db, &e.blobs).unwrap();
    let msg = b"Subject: x\r\n\r\nx\r\n";
    let hostile =
        "=HYPERLINK(\"http://evil.example\";\"Bescheid\")\r\nGr\u{fc}\u{df}e, \"M\u{fc}ller\"";
    let s2 = NewSubmission {
        private_id: "city-000002".into(),
        origin_key: Digest::of(b"origin2"),
        subject: hostile.into(),
        message_id: "<m2@city.example>".into(),
        recipients: vec!["-c@example.de-mail.de".into()],
        options: vec!["dispatch".into()],
        content: store.put_blob(msg).unwrap(),
        size: msg.len() as u64,
        time: datetime!(2026-11-03 08:00 UTC),
        ..s1.clone()
    };
    store.record_submission(&s2).unwrap();

    let run = |args: &[&str]| {
        let o = ctl(&e, args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let before = "2026-11-05T22:59:00Z";
    let after = "2026-11-05T23:00:00Z";
    let csv = run(&["status", "--csv", "--now", before]);
    assert!(
        csv.starts_with("\u{feff}\"private_id\",\"message_id\",\"tenant\""),
        "{csv}"
    );
    let records: Vec<&str> = csv.split_terminator("\r\n\"").collect();
    assert_eq!(records.len(), 3, "header and two recipients: {csv}");
    // Newest first; the hostile subject stays one quoted field, its formula neutralised.
    assert!(
        records[1].contains(
            "\"'=HYPERLINK(\"\"http://evil.example\"\";\"\"Bescheid\"\")\r\nGr\u{fc}\u{df}e, \"\"M\u{fc}ller\"\"\""
        ),
        "{csv}"
    );
    assert!(records[1].contains("\"'-c@example.de-mail.de\""), "{csv}");
    assert!(
        records[1].ends_with("\"submitted\",\"\",\"\",\"dispatch\""),
        "{csv}"
    );
    // Dispatched 10:00 German time; the deadline is the end of Thursday, German time.
    assert!(
        records[2].contains(
            "\"2026-11-02 09:00:00\",\"dispatched\",\"2026-11-02 10:00:00\",\"2026-11-05 23:59:59\",\"retrieve\""
        ),
        "{csv}"
    );
    let pending = run(&["status", "--pending", "--now", before]);
    assert!(
        pending.contains("city-000001") && pending.contains("city-000002"),
        "{pending}"
    );
    assert!(
        run(&["status", "--deemed-served", "--now", before]).contains("no De-Mail deemed served")
    );

    let pending = run(&["status", "--pending", "--now", after]);
    assert!(
        !pending.contains("city-000001") && pending.contains("city-000002"),
        "{pending}"
    );
    let served = run(&["status", "--deemed-served", "--csv", "--now", after]);
    let rows: Vec<&str> = served.split_terminator("\r\n\"").collect();
    assert_eq!(rows.len(), 2, "{served}");
    assert!(rows[1].starts_with("city-000001\""), "{served}");
    assert!(
        rows[1].contains("\"deemed-served\",\"2026-11-02 10:00:00\",\"2026-11-05 23:59:59\",\"\""),
        "{served}"
    );
    let json = run(&["status", "--deemed-served", "--json", "--now", after]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(v[0]["submission"]["private_id"], "city-000001");
    let limited = run(&["status", "--pending", "--limit", "1", "--now", after]);
    assert!(limited.contains("city-000002"), "{limited}");

    for clash in [
        &["status", "--json", "--csv"][..],
        &["status", "--pending", "--deemed-served"][..],
    ] {
        let o = ctl(&e, clash);
        assert!(!o.status.success());
        assert!(text(&o).contains("cannot be used with"), "{}", text(&o));
    }
}
