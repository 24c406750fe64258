//! `demailctl evidence backup` while De-Mail flows through Postfix and the milter, and
//! `evidence restore` of such a backup (issue 10, "Done when", third point).
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use demail_e2e::city::{CITIZEN, CLERK};
use demail_e2e::{City, CityOptions, cargo_bin, swaks, wait_until};
use demail_evidence::Store;

const MAILS: usize = 40;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn demailctl(config: &Path, args: &[&str]) -> Output {
    Command::new(cargo_bin("demailctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run demailctl")
}

/// "head event N hash H" as demailctl prints it.
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

fn subject(n: usize) -> String {
    format!("Sicherungstest {n:02}")
}

/// One backup: the subjects accepted before it started, its file and what demailctl printed.
struct Taken {
    accepted_before: Vec<String>,
    file: PathBuf,
    output: String,
    seconds: f64,
}

/// The city's demail.toml with the store moved to `db` and `blobs`.
fn config_for(city: &City, db: &Path, blobs: &Path) -> PathBuf {
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let text = std::fs::read_to_string(city.config_path())
        .expect("demail.toml")
        .replace(&q(city.evidence_database()), &q(db))
        .replace(&q(city.evidence_blobs()), &q(blobs));
    assert!(text.contains(&q(db)), "database path not replaced:\n{text}");
    let path = city.dir().join("restored.toml");
    std::fs::write(&path, text).expect("write restored.toml");
    path
}

#[test]
fn a_backup_taken_while_mails_flow_restores_every_accepted_demail() {
    let city = City::start(CityOptions::default());
    let config = city.config_path().to_path_buf();
    let server = city.smtp_server();
    let accepted: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let sending = AtomicBool::new(true);
    let taken: Mutex<Vec<Taken>> = Mutex::new(Vec::new());
    let backups = city.dir().join("backups");
    std::fs::create_dir(&backups).expect("backups dir");

    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 0..MAILS {
                let out = swaks(&[
                    "--server",
                    &server,
                    "--from",
                    CLERK,
                    "--to",
                    CITIZEN,
                    "--header",
                    &format!("Subject: {}", subject(n)),
                    "--body",
                    "Sehr geehrte Damen und Herren,\r\nanbei Ihr Bescheid.\r\n",
                ]);
                // A 250 after end of data: the milter recorded the evidence before it.
                assert!(out.status.success(), "swaks {n}:\n{}", text(&out));
                accepted.lock().unwrap().push(subject(n));
            }
            sending.store(false, Ordering::SeqCst);
        });
        // Two backups at a time, over and over, while the mails flow.
        for worker in 0..2 {
            let (accepted, sending, taken, backups, config) =
                (&accepted, &sending, &taken, &backups, &config);
            scope.spawn(move || {
                // The milter creates the store with the first De-Mail.
                wait_until(
                    Duration::from_secs(60),
                    "the first accepted De-Mail",
                    || (!accepted.lock().unwrap().is_empty()).then_some(()),
                );
                let mut i = 0;
                while sending.load(Ordering::SeqCst) || i < 3 {
                    let accepted_before = accepted.lock().unwrap().clone();
                    let file = backups.join(format!("w{worker}-{i:03}.backup"));
                    let started = Instant::now();
                    let out = demailctl(
                        config,
                        &["evidence", "backup", "--out", &file.to_string_lossy()],
                    );
                    let seconds = started.elapsed().as_secs_f64();
                    assert!(out.status.success(), "backup {i}: {}", text(&out));
                    taken.lock().unwrap().push(Taken {
                        accepted_before,
                        file,
                        output: text(&out),
                        seconds,
                    });
                    i += 1;
                    // The next one once the store has changed (or the sender is done).
                    let seen = taken
                        .lock()
                        .unwrap()
                        .last()
                        .map(|t| t.accepted_before.len());
                    wait_until(Duration::from_secs(60), "another accepted De-Mail", || {
                        let now = accepted.lock().unwrap().len();
                        (Some(now) != seen || !sending.load(Ordering::SeqCst)).then_some(())
                    });
                }
            });
        }
    });

    let taken = taken.into_inner().unwrap();
    assert_eq!(accepted.lock().unwrap().len(), MAILS);
    // The last backup that started while mails were still being accepted.
    let during = taken
        .iter()
        .filter(|t| !t.accepted_before.is_empty() && t.accepted_before.len() < MAILS)
        .max_by_key(|t| t.accepted_before.len())
        .unwrap_or_else(|| {
            panic!(
                "no backup started while mails flowed ({} taken)",
                taken.len()
            )
        });
    let slowest = taken.iter().map(|t| t.seconds).fold(0.0, f64::max);
    eprintln!(
        "{} backups, slowest {slowest:.2} s (demailctl start included); restoring the one taken after {} of {MAILS} mails: {}",
        taken.len(),
        during.accepted_before.len(),
        during.output.trim()
    );

    let fresh = city.dir().join("fresh");
    let db = fresh.join("evidence.sqlite");
    let blobs = fresh.join("blobs");
    let restored_config = config_for(&city, &db, &blobs);
    let r = demailctl(
        &restored_config,
        &["evidence", "restore", &during.file.to_string_lossy()],
    );
    assert!(r.status.success(), "restore: {}", text(&r));
    let verify = demailctl(&restored_config, &["evidence", "verify"]);
    assert!(verify.status.success(), "verify: {}", text(&verify));
    assert!(text(&verify).starts_with("OK: "), "{}", text(&verify));
    assert_eq!(head_of(&text(&verify)), head_of(&during.output));

    let store = Store::open_read_only(&db, &blobs).expect("restored store");
    let restored = store.list(None, None, usize::MAX).expect("list");
    let subjects: Vec<&str> = restored.iter().map(|s| s.subject.as_str()).collect();
    for s in &during.accepted_before {
        assert!(
            subjects.contains(&s.as_str()),
            "{s} missing from {subjects:?}"
        );
    }
    // None half: every restored submission has its message, byte for byte as recorded.
    let live = city.evidence().expect("live store");
    for s in &restored {
        let bytes = store.read_blob(&s.content).expect("restored message");
        assert_eq!(bytes.len() as u64, s.size);
        let original = live
            .find(&s.private_id)
            .expect("find")
            .expect("in the live store");
        assert_eq!(original.content, s.content);
    }
    // The restored store is one the gateway reads: status works on it.
    let st = demailctl(&restored_config, &["status", "--csv", "--limit", "1000"]);
    assert!(st.status.success(), "{}", text(&st));
    let rows = String::from_utf8_lossy(&st.stdout).matches("\r\n").count();
    assert_eq!(rows, restored.len() + 1, "header and one row per recipient");
}
