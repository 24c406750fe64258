//! demail-demo: the whole gateway on one machine, on loopback.
//!
//! Real Postfix (configured from `demailctl postfix-config`), Dovecot, `demail-milter` and the
//! provider simulator; then the story: a clerk sends a De-Mail with `[Abholbestätigung]`, an
//! intern who may not send De-Mail is refused, ordinary mail still reaches the mailbox. It
//! prints what the provider received and the status table, then runs until Ctrl-C.
//! `--once` plays the story, checks it and exits (non-zero if anything did not happen).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use demail_e2e::city::{ACCOUNT, CITIZEN, CLERK, City, CityOptions, INTERN, POSTSTELLE};
use demail_e2e::{imaplib_fetch_all, swaks};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

const WAIT: Duration = Duration::from_secs(60);

fn main() {
    let mut once = false;
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--once" => once = true,
            "--dir" => dir = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: demail-demo [--once] [--dir DIR]");
                return;
            }
            other => {
                eprintln!("demail-demo: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let failures = play(once, dir);
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("demail-demo: FAILED: {f}");
        }
        std::process::exit(1);
    }
}

fn step(text: &str) {
    println!("\n==> {text}");
}

/// Plays the story; returns what did not happen as it should.
fn play(once: bool, dir: Option<PathBuf>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if ok {
            println!("    ok: {what}");
        } else {
            println!("    NOT OK: {what}");
            failures.push(what.to_string());
        }
    };

    step("Starting Postfix, Dovecot, demail-milter and the provider simulator on loopback");
    let city = City::start(CityOptions {
        dovecot_users: vec![
            (CLERK.into(), "clerkpw".into()),
            (POSTSTELLE.into(), "poststellepw".into()),
        ],
        dir,
        ..CityOptions::default()
    });
    println!("    directory      {}", city.dir().display());
    println!("    configuration  {}", city.config_path().display());
    println!("    Postfix smtpd  {}", city.smtp_server());
    println!("    milter         127.0.0.1:{}", city.milter_port());
    println!(
        "    provider       127.0.0.1:{} (implicit TLS, client certificate required)",
        city.simulator_port()
    );
    if let Some(p) = city.imap_port() {
        println!("    Dovecot IMAP   127.0.0.1:{p}");
    }

    step(&format!(
        "Clerk {CLERK} sends a De-Mail to {CITIZEN} with [Abholbestätigung] in the subject"
    ));
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        CLERK,
        "--to",
        CITIZEN,
        "--header",
        "Subject: =?utf-8?Q?Bescheid_Wohngeld_[Abholbest=C3=A4tigung]?=",
        "--body",
        "Sehr geehrte Damen und Herren,\r\nanbei Ihr Bescheid.\r\n",
    ]);
    check(out.status.success(), "Postfix accepted the De-Mail");
    let sim = city.simulator().expect("simulator runs");
    let got = sim.wait_for(1, WAIT);
    check(
        got.len() == 1,
        "the provider received it over TLS with the city's client certificate",
    );
    if let Some(m) = got.first() {
        println!("    envelope sender  {}", m.mail_from);
        println!("    client cert      {}", m.client_cert_subject);
        let text = String::from_utf8_lossy(&m.data);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        for line in head.lines().filter(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("from:") || l.starts_with("subject:") || l.starts_with("x-de-mail-")
        }) {
            println!("    | {line}");
        }
        check(
            m.mail_from == ACCOUNT,
            "the envelope sender is the tenant's De-Mail account",
        );
        check(
            head.contains("X-de-mail-confirmation-of-retrieve: yes"),
            "Abholbestätigung requested",
        );
        check(
            !head.contains("[Abholbest"),
            "the tag is gone from the subject",
        );

        step("The evidence store has the exact bytes the provider received");
        let subs = city.submissions();
        check(subs.len() == 1, "one record");
        if let Some(s) = subs.first() {
            check(
                s.content.hex() == m.sha256,
                "SHA-256 in the store = SHA-256 the provider computed",
            );
            let show = city.demailctl(&["show", &s.private_id]);
            print!("{}", String::from_utf8_lossy(&show.stdout));
        }
    }

    step(&format!(
        "Intern {INTERN} may not send De-Mail: refused at RCPT, nothing recorded"
    ));
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        INTERN,
        "--to",
        CITIZEN,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(line) = text.lines().find(|l| l.contains(" 5.7.1 ")) {
        println!("    {line}");
    }
    check(
        !out.status.success() && text.contains("5.7.1"),
        "the intern got a 5.7.1 refusal",
    );
    check(city.submissions().len() == 1, "still one record");

    step(&format!(
        "Ordinary mail to {POSTSTELLE} is not De-Mail and reaches Dovecot untouched"
    ));
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        "nachbar@example.org",
        "--to",
        POSTSTELLE,
        "--header",
        "Subject: Frage zur Sperrmuellabholung",
    ]);
    check(out.status.success(), "Postfix accepted the ordinary mail");
    if let Some(port) = city.imap_port() {
        let fetched = wait_for_mail(port);
        check(
            fetched
                .iter()
                .any(|m| String::from_utf8_lossy(m).contains("Sperrmuellabholung")),
            "fetched over IMAP from Dovecot",
        );
    }

    step("demailctl status");
    let status = city.demailctl(&["status"]);
    print!("{}", String::from_utf8_lossy(&status.stdout));
    check(
        String::from_utf8_lossy(&status.stdout).contains("submitted"),
        "status shows the De-Mail as submitted",
    );
    println!(
        "\n    evidence database  {}",
        city.evidence_database().display()
    );
    println!("    evidence blobs     {}", city.evidence_blobs().display());
    println!(
        "    try: demailctl --config {} status",
        city.config_path().display()
    );

    if !once {
        println!("\nRunning until Ctrl-C.");
        while !STOP.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
        println!("stopping");
    }
    drop(city);
    failures
}

fn wait_for_mail(port: u16) -> Vec<Vec<u8>> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = imaplib_fetch_all(port, POSTSTELLE, "poststellepw");
        if !got.is_empty() || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
