//! SIGHUP during a stream of mail (issue 10): the next message follows the new policy, the SMTP
//! session that was open across the reload goes on (so does Postfix's milter connection for
//! it), no mail is lost; a broken configuration on SIGHUP is refused and the old policy stays.
//! The same for the IMAP proxy: open sessions go on and see the new visibility at once.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::thread;
use std::time::Duration;

use demail_e2e::city::{ACCOUNT, CITIZEN, CLERK, POSTSTELLE, TENANT};
use demail_e2e::proxy_city::{self, CLERK2, DISPATCH_FOLDER, PW};
use demail_e2e::{City, CityOptions, ImapClient, SmtpClient, SmtpReply, dot_stuff, wait_until};

const WAIT: Duration = Duration::from_secs(60);
/// Sends as the second account all along; its policy never changes.
const BAUAMT: &str = "bauamt@example.test";
const BAUAMT_ACCOUNT: &str = "bauamt@testhausen.de-mail.de";
/// Takes over the clerk's right to send as [`ACCOUNT`] with the reload.
const KOLLEGIN: &str = "kollegin@example.test";
const STREAM: usize = 30;

fn tenants(account_senders: &str) -> String {
    format!(
        r#"[[tenant]]
name = "{TENANT}"
public_body = true
internal_domains = ["example.test"]

  [[tenant.account]]
  address = "{ACCOUNT}"
  deliver_to = ["{POSTSTELLE}"]
  senders = [{account_senders}]
  default_options = ["dispatch"]

  [[tenant.account]]
  address = "{BAUAMT_ACCOUNT}"
  deliver_to = ["{POSTSTELLE}"]
  senders = ["{BAUAMT}"]
  default_options = ["dispatch"]
"#
    )
}

fn message(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {CITIZEN}\r\nSubject: {subject}\r\n\
         Message-ID: <{}@example.test>\r\n\r\nSehr geehrte Damen und Herren.\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes()
}

/// One transaction on an open session: the RCPT reply, and the end-of-data reply when the
/// recipient was taken.
fn transaction(c: &mut SmtpClient, from: &str, subject: &str) -> (SmtpReply, Option<SmtpReply>) {
    let r = c.command(&format!("MAIL FROM:<{from}>")).expect("MAIL");
    assert_eq!(r.code, 250, "MAIL FROM {from}: {r}");
    let rcpt = c.command(&format!("RCPT TO:<{CITIZEN}>")).expect("RCPT");
    if rcpt.code != 250 {
        let r = c.command("RSET").expect("RSET");
        assert_eq!(r.code, 250, "RSET: {r}");
        return (rcpt, None);
    }
    let r = c.command("DATA").expect("DATA");
    assert_eq!(r.code, 354, "DATA: {r}");
    c.send(&dot_stuff(&message(from, subject)))
        .expect("message");
    let end = c.command(".").expect("end of data");
    (rcpt, Some(end))
}

fn session(city: &City) -> SmtpClient {
    let (mut c, greeting) = SmtpClient::connect(city.smtp_port(), WAIT).expect("connect");
    assert_eq!(greeting.code, 220, "{greeting}");
    let r = c.command("EHLO clerk-pc.example.test").expect("EHLO");
    assert_eq!(r.code, 250, "EHLO: {r}");
    c
}

fn accepted(reply: &(SmtpReply, Option<SmtpReply>)) -> bool {
    reply.1.as_ref().is_some_and(|r| r.code == 250)
}

fn hangup(city: &City) {
    let pid = city.milter().expect("milter runs").pid();
    // SAFETY: kill(2) on the milter child the city started; no memory is involved.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "SIGHUP to the milter");
}

#[test]
fn sighup_applies_the_new_policy_to_the_next_message_and_refuses_a_broken_one() {
    let city = City::start(CityOptions {
        tenants: tenants(&format!("\"{CLERK}\"")),
        ..CityOptions::default()
    });
    let config = city.config_path().to_path_buf();
    let original = std::fs::read_to_string(&config).expect("demail.toml");

    // A session that stays open across both reloads.
    let mut open = session(&city);
    let first = transaction(&mut open, CLERK, "vor dem Neuladen");
    assert!(accepted(&first), "the clerk may send before: {first:?}");

    // A stream of mail from the other account, through the reloads.
    let port = city.smtp_port();
    let stream = thread::spawn(move || {
        (0..STREAM)
            .map(|i| {
                let (mut c, _) = SmtpClient::connect(port, WAIT).expect("connect");
                c.command("EHLO bauamt-pc.example.test").expect("EHLO");
                let r = transaction(&mut c, BAUAMT, &format!("Strom {i}"));
                let _ = c.command("QUIT");
                thread::sleep(Duration::from_millis(50));
                r
            })
            .collect::<Vec<_>>()
    });

    // The admin gives the clerk's right to a colleague and reloads.
    let changed = original.replace(
        &format!("senders = [\"{CLERK}\"]"),
        &format!("senders = [\"{KOLLEGIN}\"]"),
    );
    assert_ne!(changed, original, "the test's edit applies");
    std::fs::write(&config, &changed).expect("write demail.toml");
    thread::sleep(Duration::from_millis(300));
    hangup(&city);
    wait_until(WAIT, "the milter reloaded its configuration", || {
        city.milter_log()
            .contains("configuration reloaded")
            .then_some(())
    });

    let refused = transaction(&mut open, CLERK, "nach dem Neuladen");
    assert_eq!(
        refused.0.code, 550,
        "the next message follows the new policy: the clerk is refused at RCPT: {:?}",
        refused.0
    );
    assert!(refused.0.text().contains("5.7.1"), "{}", refused.0.text());
    let taken = transaction(&mut open, KOLLEGIN, "Kollegin nach dem Neuladen");
    assert!(accepted(&taken), "the colleague may send now: {taken:?}");

    // A broken file: refused, logged with its place, the policy of the last good one stays.
    std::fs::write(
        &config,
        changed.replace("default_options = [\"dispatch\"]", "default_options = 7"),
    )
    .expect("write demail.toml");
    hangup(&city);
    let log = wait_until(WAIT, "the milter refused the broken configuration", || {
        let log = city.milter_log();
        log.contains("not reloaded").then_some(log)
    });
    assert!(
        log.contains(&format!("{}:", config.display())) && log.contains("default_options"),
        "the refusal names the file, the line and the key:\n{log}"
    );
    let still_refused = transaction(&mut open, CLERK, "nach dem Fehler");
    assert_eq!(still_refused.0.code, 550, "{:?}", still_refused.0);
    let still_taken = transaction(&mut open, KOLLEGIN, "Kollegin nach dem Fehler");
    assert!(accepted(&still_taken), "{still_taken:?}");

    // The session that was open all along still works, and nothing of the stream was lost.
    let quit = open
        .command("QUIT")
        .expect("QUIT on the session open across the reloads");
    assert_eq!(quit.code, 221, "{quit}");
    let streamed = stream.join().expect("stream thread");
    let lost: Vec<_> = streamed
        .iter()
        .enumerate()
        .filter(|(_, r)| !accepted(r))
        .collect();
    assert!(lost.is_empty(), "mail of the stream not accepted: {lost:?}");

    let sent = 1 + STREAM + 2;
    let sim = city.simulator().expect("simulator");
    let got = sim.wait_for(sent, WAIT);
    assert_eq!(
        got.len(),
        sent,
        "the provider received every accepted De-Mail"
    );
    let subs = city.submissions();
    assert_eq!(subs.len(), sent, "one evidence record per accepted De-Mail");
    assert_eq!(
        subs.iter().filter(|s| s.clerk == BAUAMT).count(),
        STREAM,
        "every mail of the stream is recorded"
    );
    assert!(
        subs.iter()
            .all(|s| s.clerk != CLERK || s.subject == "vor dem Neuladen"),
        "nothing of the clerk's after the reload"
    );
}

/// Messages in `folder` as the session sees it now (STATUS).
fn messages(c: &mut ImapClient, folder: &str) -> Option<u64> {
    c.run(&format!("STATUS \"{folder}\" (MESSAGES)"))
        .iter()
        .find_map(|l| l.split("MESSAGES ").nth(1))
        .and_then(|n| n.trim_end_matches([')', '\r', '\n']).parse().ok())
}

fn proxy_login(city: &City, user: &str) -> ImapClient {
    let port = city.proxy().expect("proxy").ports.imaps;
    let mut c = ImapClient::tls(port, &city.pki().ca_cert);
    let r = c.run(&format!("LOGIN \"{user}\" \"{PW}\""));
    assert!(r.last().is_some_and(|l| l.contains(" OK")), "{user}: {r:?}");
    c
}

#[test]
fn sighup_changes_what_open_proxy_sessions_see_and_a_broken_file_changes_nothing() {
    let city = proxy_city::start("");
    let id = proxy_city::send_demail(&city, CLERK, "buerger@example.de-mail.de", "Bescheid");
    proxy_city::wait_confirmations(&city, &id, 2);

    // Both sessions stay open across the reloads.
    let mut poststelle = proxy_login(&city, POSTSTELLE);
    let mut bauamt = proxy_login(&city, CLERK2);
    assert_eq!(messages(&mut poststelle, DISPATCH_FOLDER), Some(1));
    assert_eq!(messages(&mut bauamt, DISPATCH_FOLDER), Some(0));

    // The account's evidence moves from the poststelle to the Bauamt.
    let config = city.config_path().to_path_buf();
    let original = std::fs::read_to_string(&config).expect("demail.toml");
    let changed = original.replacen(
        &format!("visible_to = [\"{POSTSTELLE}\"]"),
        &format!("visible_to = [\"{CLERK2}\"]"),
        1,
    );
    assert_ne!(changed, original, "the test's edit applies");
    std::fs::write(&config, &changed).expect("write demail.toml");
    let proxy = city.proxy().expect("proxy");
    proxy.reload();
    wait_until(WAIT, "the proxy reloaded its configuration", || {
        proxy
            .log_text()
            .contains("configuration reloaded")
            .then_some(())
    });
    let noop = poststelle.run("NOOP");
    assert!(
        noop.last().is_some_and(|l| l.contains(" OK")),
        "the open session goes on: {noop:?}"
    );
    assert_eq!(messages(&mut poststelle, DISPATCH_FOLDER), Some(0));
    assert_eq!(messages(&mut bauamt, DISPATCH_FOLDER), Some(1));

    // A broken file is refused, with its place; nobody's view changes.
    std::fs::write(
        &config,
        changed.replace("public_body = true", "public_body = 3"),
    )
    .expect("write demail.toml");
    proxy.reload();
    let log = wait_until(WAIT, "the proxy refused the broken configuration", || {
        let log = proxy.log_text();
        log.contains("reload refused").then_some(log)
    });
    assert!(
        log.contains("public_body"),
        "the refusal names the key:\n{log}"
    );
    assert_eq!(messages(&mut poststelle, DISPATCH_FOLDER), Some(0));
    assert_eq!(messages(&mut bauamt, DISPATCH_FOLDER), Some(1));
    let mut fresh = proxy_login(&city, CLERK2);
    assert_eq!(messages(&mut fresh, DISPATCH_FOLDER), Some(1));
    for c in [&mut poststelle, &mut bauamt, &mut fresh] {
        let r = c.run("LOGOUT");
        assert!(r.last().is_some_and(|l| l.contains(" OK")), "{r:?}");
    }
}
