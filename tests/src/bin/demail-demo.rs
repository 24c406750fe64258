//! demail-demo: the whole gateway on one machine, on loopback.
//!
//! Real Postfix (configured from `demailctl postfix-config`), Dovecot, `demail-milter` and the
//! provider simulator (both ways); then the story: a clerk sends a De-Mail with
//! `[Abholbestätigung]`, the provider dispatches and delivers it (Versand- and
//! Eingangsbestätigung arrive, verified and kept as evidence), the recipient logs in
//! (Abholbestätigung), a forged confirmation from the Internet is refused and neutralised, a
//! citizen's absenderbestätigte De-Mail arrives tagged, a Widerspruch with a qualified electronic
//! signature reaches the poststelle tagged `[QES gültig]`, an intern who may not send De-Mail is
//! refused, ordinary mail still reaches the mailbox. It
//! prints what the provider received, the per-recipient status table and where the evidence
//! is, then runs until Ctrl-C.
//! `--once` plays the story, checks it and exits (non-zero if anything did not happen).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use demail_e2e::city::{ACCOUNT, CITIZEN, CLERK, City, CityOptions, INTERN, POSTSTELLE};
use demail_e2e::message::field_values;
use demail_e2e::{ImapClient, imaplib_fetch_all, swaks};
use demail_evidence::Status;
use demail_provider_sim::{ConfirmationKind, Forge, InboundSpec, Target, Transport};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

const WAIT: Duration = Duration::from_secs(60);
/// The citizen's own (non-De-Mail) address, which her qualified signature is for.
const CITIZEN_QES: &str = "erika.mustermann@example.org";

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

    step(
        "Starting Postfix, Dovecot, demail-milter, demail-imap-proxy and the provider simulator on loopback",
    );
    let city = City::start(CityOptions {
        dovecot_users: vec![
            (CLERK.into(), "clerkpw".into()),
            (POSTSTELLE.into(), "poststellepw".into()),
        ],
        dir,
        provider_sends: true,
        imap_proxy: true,
        // Started below, once the poststelle is configured.
        milter: false,
        ..CityOptions::default()
    });
    let mut city = city;
    // Signed mail to the poststelle gets its signatures checked: `[inbound] poststelle`, which
    // the harness does not write.
    let path = city.config_path().to_path_buf();
    let toml = std::fs::read_to_string(&path).expect("demail.toml");
    std::fs::write(
        &path,
        toml.replacen(
            "[inbound]\n",
            &format!("[inbound]\npoststelle = [\"{POSTSTELLE}\"]\n"),
            1,
        ),
    )
    .expect("demail.toml");
    city.start_milter();
    let city = city;
    println!("    directory      {}", city.dir().display());
    println!("    configuration  {}", city.config_path().display());
    println!("    Postfix smtpd  {}", city.smtp_server());
    println!("    milter         {}", city.milter_addr().listen());
    println!(
        "    provider       127.0.0.1:{} (implicit TLS, client certificate required)",
        city.simulator_port()
    );
    println!(
        "    demail-in      127.0.0.1:{} (Postfix smtpd for the provider only)",
        city.inbound_port()
    );
    if let Some(p) = city.imap_port() {
        println!("    Dovecot IMAP   127.0.0.1:{p}");
    }
    if let Some(p) = city.proxy() {
        println!(
            "    IMAP proxy     127.0.0.1:{} (IMAPS), 127.0.0.1:{} (STARTTLS)",
            p.ports.imaps, p.ports.imap
        );
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
    let mut private_id = None;
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
            private_id = Some(s.private_id.clone());
            check(
                s.content.hex() == m.sha256,
                "SHA-256 in the store = SHA-256 the provider computed",
            );
            let show = city.demailctl(&["show", &s.private_id]);
            print!("{}", String::from_utf8_lossy(&show.stdout));
        }
    }

    if let Some(id) = &private_id {
        provider_story(&city, id, &mut check);
    }
    citizen_story(&city, &mut check);

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
        let fetched = wait_for_mail(port, |m| {
            String::from_utf8_lossy(m).contains("Sperrmuellabholung")
        });
        check(fetched.is_some(), "fetched over IMAP from Dovecot");
    }

    step("demailctl status: per recipient");
    let status = city.demailctl(&["status"]);
    let table = String::from_utf8_lossy(&status.stdout);
    print!("{table}");
    check(
        table
            .lines()
            .any(|l| l.contains(CITIZEN) && l.contains(" retrieved ")),
        "status shows the De-Mail to the citizen as retrieved",
    );
    let verify = city.demailctl(&["evidence", "verify"]);
    let verify_text = String::from_utf8_lossy(&verify.stdout);
    print!("    {verify_text}");
    check(
        verify.status.success() && verify_text.starts_with("OK"),
        "demailctl evidence verify: the hash chain is intact",
    );
    step(&format!(
        "What clerk {CLERK} sees through the IMAP proxy (Dovecot's folders plus De-Mail)"
    ));
    if let Some(proxy) = city.proxy() {
        let tree = folder_tree(proxy.ports.imaps, &city.pki().ca_cert, CLERK, "clerkpw");
        for (name, count) in &tree {
            match count {
                Some(n) => println!("    {name:<40} {n:>3} messages"),
                None => println!("    {name}"),
            }
        }
        let retrieve = tree
            .iter()
            .find(|(n, _)| n.ends_with("Abholbestätigungen"))
            .and_then(|(_, c)| *c);
        check(
            retrieve == Some(1),
            "the clerk finds the Abholbestätigung in De-Mail/Abholbestätigungen",
        );
        println!("\n    Thunderbird (or any IMAP client) on this machine:");
        println!(
            "      server    127.0.0.1, port {} (SSL/TLS), or port {} (STARTTLS)",
            proxy.ports.imaps, proxy.ports.imap
        );
        println!("      user      {CLERK}");
        println!("      password  clerkpw   (the poststelle: {POSTSTELLE} / poststellepw)");
        println!(
            "      test CA   {} (import it as a certificate authority)",
            city.pki().ca_cert.display()
        );
    }

    let config = city.config_path().display();
    println!(
        "\n    evidence database  {}",
        city.evidence_database().display()
    );
    println!("    evidence blobs     {}", city.evidence_blobs().display());
    println!("    try: demailctl --config {config} status");
    if let Some(id) = &private_id {
        println!("         demailctl --config {config} show '{id}'");
        println!(
            "         demailctl --config {config} export '{id}' --out evidence.tar   (for a court; README.txt inside)"
        );
    }

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

/// The first message in the poststelle's mailbox (over IMAP) that `pred` accepts.
fn wait_for_mail(port: u16, pred: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = imaplib_fetch_all(port, POSTSTELLE, "poststellepw");
        if let Some(m) = got.into_iter().find(|m| pred(m)) {
            return Some(m);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The citizen's status as the evidence store projects it, once it is `want` (or the wait
/// is over: then the last one seen).
fn wait_status(city: &City, id: &str, want: Status) -> Option<Status> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = city
            .evidence()
            .and_then(|s| s.recipient_status(id).ok())
            .and_then(|r| r.into_iter().find(|r| r.recipient == CITIZEN))
            .map(|r| r.status);
        if now == Some(want) || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints the confirmations recorded for `id`, one line each.
fn print_confirmations(city: &City, id: &str) {
    let Some(store) = city.evidence() else {
        return;
    };
    for c in store.confirmations(id).unwrap_or_default() {
        let d = &c.data;
        println!(
            "    | {:<10} {:<28} {:<13} {}",
            d.kind.label(),
            d.recipient,
            d.indication,
            if d.trusted { "trusted" } else { "UNTRUSTED" }
        );
    }
}

/// The provider's half of the story: dispatch and delivery confirmed, the recipient
/// retrieves, a forged confirmation from the Internet counts for nothing.
fn provider_story(city: &City, id: &str, check: &mut impl FnMut(bool, &str)) {
    step(
        "The provider dispatches and delivers: Versand- and Eingangsbestätigung arrive on demail-in",
    );
    let st = wait_status(city, id, Status::Received);
    print_confirmations(city, id);
    check(
        st == Some(Status::Received),
        "both confirmations verified (qualified signature) and matched: status received",
    );

    step(&format!(
        "{CITIZEN} logs in at the provider: Abholbestätigung"
    ));
    let Some(sim) = city.simulator() else {
        check(false, "the simulator runs");
        return;
    };
    match sim.retrieve(id) {
        Ok(sent) => check(
            sent.iter().all(|o| o.delivered()),
            "the provider sent the Abholbestätigung",
        ),
        Err(e) => check(false, &format!("retrieve: {e}")),
    }
    let st = wait_status(city, id, Status::Retrieved);
    print_confirmations(city, id);
    check(st == Some(Status::Retrieved), "status retrieved");

    step("A forged Abholbestätigung arrives from the Internet (public smtpd)");
    let public = Target {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], city.smtp_port())),
        transport: Transport::Plain,
    };
    let forged =
        match sim.forge_confirmation(id, ConfirmationKind::Retrieve, Forge::None, Some(public)) {
            Ok(f) => f,
            Err(e) => {
                check(false, &format!("forge: {e}"));
                return;
            }
        };
    let refusal = forged
        .delivery
        .result
        .as_ref()
        .err()
        .cloned()
        .unwrap_or_default();
    println!("    to {ACCOUNT}: {refusal}");
    check(
        refusal.contains("5.7.1"),
        "the public smtpd refuses anything to the De-Mail account",
    );
    let eml = city.dir().join("forged-confirmation.eml");
    if std::fs::write(&eml, &forged.data).is_err() {
        check(false, "writing the forged confirmation");
        return;
    }
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
    check(
        out.status.success(),
        "sent to the poststelle instead, Postfix accepted it",
    );
    if let Some(port) = city.imap_port() {
        let got = wait_for_mail(port, |m| {
            !field_values(m, "X-Untrusted-de-mail-integrity").is_empty()
        });
        check(
            got.is_some(),
            "it arrives in Dovecot with the provider's fields renamed X-Untrusted-...",
        );
        if let Some(m) = got {
            for (n, v) in demail_e2e::message::header_fields(&m)
                .into_iter()
                .filter(|(n, _)| n.starts_with("X-Untrusted-") || n.starts_with("X-DeMail-"))
            {
                let v: String = v.chars().take(60).collect();
                println!("    | {n}: {v}");
            }
            check(
                field_values(&m, "X-DeMail-Confirmation").is_empty(),
                "not tagged as a confirmation",
            );
        }
    }
    let st = wait_status(city, id, Status::Retrieved);
    let trusted = city
        .evidence()
        .and_then(|s| s.confirmations(id).ok())
        .map(|c| c.len());
    check(
        st == Some(Status::Retrieved) && trusted == Some(3),
        "nothing counted: still retrieved, still three confirmations",
    );
}

/// The citizen's half: an absenderbestätigte De-Mail through the provider, and a Widerspruch
/// with a qualified electronic signature as ordinary mail to the poststelle.
fn citizen_story(city: &City, check: &mut impl FnMut(bool, &str)) {
    step(&format!(
        "{CITIZEN} sends an absenderbestätigte De-Mail to {ACCOUNT} (through the provider)"
    ));
    let Some(sim) = city.simulator() else {
        check(false, "the simulator runs");
        return;
    };
    let mut spec = InboundSpec::new(
        CITIZEN,
        ACCOUNT,
        "Antrag auf Akteneinsicht",
        "Sehr geehrte Damen und Herren,\r\nich beantrage Akteneinsicht.\r\n",
    );
    spec.authoritative = true;
    match sim.inject(&spec) {
        Ok(o) => check(o.delivered(), "the provider delivered it to demail-in"),
        Err(e) => check(false, &format!("inject: {e}")),
    }
    let Some(imap) = city.imap_port() else {
        return;
    };
    let got = wait_for_mail(imap, |m| subject_of(m).contains("Akteneinsicht"));
    let subject = got.as_deref().map(subject_of).unwrap_or_default();
    println!("    Subject: {subject}");
    check(
        subject == "[De-Mail absenderbestätigt] Antrag auf Akteneinsicht",
        "the poststelle sees it tagged [De-Mail absenderbestätigt] (provider seal verified)",
    );

    step(&format!(
        "A Widerspruch with a qualified electronic signature (S/MIME) reaches {POSTSTELLE} as ordinary mail"
    ));
    match qes_widerspruch(city) {
        Ok(mail) => {
            let out = swaks_data(city, &mail);
            check(out, "Postfix accepted the signed mail");
            let got = wait_for_mail(imap, |m| subject_of(m).contains("Widerspruch"));
            let subject = got.as_deref().map(subject_of).unwrap_or_default();
            println!("    Subject: {subject}");
            if let Some(m) = &got {
                for v in field_values(m, "X-QES-Validation") {
                    println!("    X-QES-Validation: {v}");
                }
            }
            check(
                subject.starts_with("[QES gültig] Widerspruch"),
                "tagged [QES gültig]: the signature verified against the trusted list (TOTAL_PASSED, QESig)",
            );
        }
        Err(e) => check(false, &format!("signing the Widerspruch: {e}")),
    }
}

/// The decoded Subject of a message, as a mail client shows it.
fn subject_of(m: &[u8]) -> String {
    field_values(m, "Subject")
        .first()
        .map(|s| demail_policy::decode_encoded_words(s))
        .unwrap_or_default()
}

/// A multipart/signed Widerspruch from [`CITIZEN_QES`], signed with `openssl smime` by a test
/// qualified certificate of the CA the city's test trusted list names.
fn qes_widerspruch(city: &City) -> Result<Vec<u8>, String> {
    let cert = city
        .pki()
        .issue_qualified("buergerin-qes", "Erika Mustermann")
        .map_err(|e| e.to_string())?;
    let content = city.dir().join("widerspruch.txt");
    std::fs::write(
        &content,
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHiermit lege ich Widerspruch gegen den Bescheid ein.\r\n",
    )
    .map_err(|e| e.to_string())?;
    let out = std::process::Command::new("openssl")
        .args(["smime", "-sign", "-md", "sha256", "-in"])
        .arg(&content)
        .arg("-signer")
        .arg(&cert.cert)
        .arg("-inkey")
        .arg(&cert.key)
        .args(["-from", CITIZEN_QES, "-to", POSTSTELLE])
        .args(["-subject", "Widerspruch gegen den Bescheid"])
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .map_err(|e| e.to_string())?;
    // openssl writes LF in places; one line ending for the whole message, as a client sends it.
    let signed = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    Ok(
        format!("Date: {date}\nMessage-ID: <widerspruch-1@example.org>\n{signed}")
            .replace('\n', "\r\n")
            .into_bytes(),
    )
}

/// Sends `mail` as it is from [`CITIZEN_QES`] to the poststelle through the public smtpd.
fn swaks_data(city: &City, mail: &[u8]) -> bool {
    let file = city.dir().join("widerspruch.eml");
    if std::fs::write(&file, mail).is_err() {
        return false;
    }
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        CITIZEN_QES,
        "--to",
        POSTSTELLE,
        "--data",
        &file.to_string_lossy(),
    ]);
    out.status.success()
}

/// Every folder the login sees through the proxy, with its message count (`None`: not
/// selectable), names decoded from modified UTF-7.
fn folder_tree(
    port: u16,
    ca: &std::path::Path,
    user: &str,
    pw: &str,
) -> Vec<(String, Option<u64>)> {
    let mut c = ImapClient::tls(port, ca);
    c.run(&format!("LOGIN \"{user}\" \"{pw}\""));
    let mut out = Vec::new();
    for line in c.run("LIST \"\" \"*\"") {
        let Some(rest) = line.strip_prefix("* LIST (") else {
            continue;
        };
        let (attrs, rest) = rest.split_once(')').unwrap_or_default();
        let wire = rest
            .trim()
            .split_once(' ')
            .map(|x| x.1)
            .unwrap_or_default()
            .trim()
            .trim_matches('"')
            .to_string();
        let count = if attrs.contains("\\Noselect") {
            None
        } else {
            c.run(&format!("STATUS \"{wire}\" (MESSAGES)"))
                .iter()
                .find_map(|l| l.split("MESSAGES ").nth(1))
                .and_then(|n| n.trim_end_matches([')', '\r', '\n']).parse().ok())
        };
        let name = demail_imap_proxy::mutf7::decode(wire.as_bytes()).unwrap_or(wire);
        out.push((name, count));
    }
    c.run("LOGOUT");
    out.sort();
    out
}
