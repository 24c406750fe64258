//! Real Postfix delivering to real Dovecot, read back with real IMAP clients.

use std::time::Duration;

use demail_e2e::{
    Dovecot, Postfix, PostfixOptions, imaplib_fetch_all, mbsync_fetch_all, swaks, wait_for_port,
    wait_until,
};

const DELIVERY: Duration = Duration::from_secs(30);

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Sends one mail through `pf` with swaks and asserts Postfix queued it.
fn send(pf: &Postfix, to: &str, subject: &str, body: &str) {
    let server = format!("127.0.0.1:{}", pf.smtp_port);
    let out = swaks(&[
        "--server",
        &server,
        "--from",
        "sender@example.org",
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        body,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("250 2.0.0 Ok: queued as"),
        "not queued:\n{text}"
    );
}

fn wait_for_messages(dc: &Dovecot, user: &str, n: usize) -> Vec<Vec<u8>> {
    wait_until(
        DELIVERY,
        &format!("{n} message(s) in {user}'s Maildir"),
        || {
            let msgs = dc.messages(user);
            (msgs.len() >= n).then_some(msgs)
        },
    )
}

#[test]
fn mail_through_postfix_reaches_dovecot_and_imap_clients() {
    let dc = Dovecot::start(&[
        ("alice@example.test", "alicepw"),
        ("bob@example.test", "bobpw"),
    ]);
    let pf = Postfix::start(PostfixOptions::for_dovecot(&dc));
    send(
        &pf,
        "alice@example.test",
        "Grüße aus dem Rathaus 4711",
        "Der Antrag liegt bei.",
    );

    let stored = wait_for_messages(&dc, "alice@example.test", 1);
    assert_eq!(stored.len(), 1);
    assert!(contains(&stored[0], "Der Antrag liegt bei."));
    assert!(
        dc.messages("bob@example.test").is_empty(),
        "bob got alice's mail"
    );
    // Dovecot has the message before Postfix has logged Dovecot's answer.
    let lmtp = format!("relay=127.0.0.1[127.0.0.1]:{}", dc.lmtp_port);
    wait_until(
        DELIVERY,
        "the LMTP delivery to Dovecot in the maillog",
        || {
            pf.log()
                .lines()
                .any(|l| l.contains(&lmtp) && l.contains("status=sent"))
                .then_some(())
        },
    );

    // swaks encodes the non-ASCII subject as RFC 2047; the raw header must arrive unchanged.
    let subject_line = stored[0]
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"Subject:"))
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .expect("stored message has a Subject");

    let fetched = imaplib_fetch_all(dc.imap_port, "alice@example.test", "alicepw");
    assert_eq!(fetched.len(), 1, "imaplib sees one message");
    assert!(
        contains(&fetched[0], &subject_line),
        "imaplib: subject {subject_line:?} missing"
    );
    assert!(
        contains(&fetched[0], "4711"),
        "imaplib: subject text missing"
    );
    assert!(
        contains(&fetched[0], "Der Antrag liegt bei."),
        "imaplib: body missing"
    );

    let synced = mbsync_fetch_all(dc.imap_port, "alice@example.test", "alicepw");
    assert_eq!(synced.len(), 1, "mbsync copied one message");
    assert!(
        contains(&synced[0], &subject_line),
        "mbsync: subject missing"
    );
    assert!(
        contains(&synced[0], "Der Antrag liegt bei."),
        "mbsync: body missing"
    );
    // Both clients got exactly what Dovecot stored (mbsync may add nothing but flags).
    assert_eq!(fetched[0], stored[0].replace_crlf());
}

/// Dovecot stores LF line ends; IMAP serves CRLF.
trait Crlf {
    fn replace_crlf(&self) -> Vec<u8>;
}

impl Crlf for Vec<u8> {
    fn replace_crlf(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() + self.len() / 40);
        for (i, &b) in self.iter().enumerate() {
            if b == b'\n' && (i == 0 || self[i - 1] != b'\r') {
                out.push(b'\r');
            }
            out.push(b);
        }
        out
    }
}

#[test]
fn two_postfix_dovecot_pairs_run_side_by_side() {
    // Start both pairs at once, as parallel tests do.
    let starts: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let dc = Dovecot::start(&[("alice@example.test", "alicepw")]);
                let pf = Postfix::start(PostfixOptions::for_dovecot(&dc));
                (dc, pf)
            })
        })
        .collect();
    let pairs: Vec<(Dovecot, Postfix)> = starts
        .into_iter()
        .map(|h| h.join().expect("a pair failed to start"))
        .collect();
    let (a, b) = (&pairs[0], &pairs[1]);
    assert_ne!(a.1.smtp_port, b.1.smtp_port);
    assert_ne!(a.0.imap_port, b.0.imap_port);
    assert_ne!(
        a.1.postconf("queue_directory"),
        b.1.postconf("queue_directory")
    );
    assert_ne!(
        a.1.postconf("data_directory"),
        b.1.postconf("data_directory")
    );

    send(&a.1, "alice@example.test", "for pair A", "body A");
    send(&b.1, "alice@example.test", "for pair B", "body B");
    let got_a = wait_for_messages(&a.0, "alice@example.test", 1);
    let got_b = wait_for_messages(&b.0, "alice@example.test", 1);
    assert!(contains(&got_a[0], "for pair A") && contains(&got_a[0], "body A"));
    assert!(contains(&got_b[0], "for pair B") && contains(&got_b[0], "body B"));
    // Each pair logs only its own traffic.
    assert!(
        a.1.log().contains("status=sent") && !a.1.log().contains(&format!(":{}", b.0.lmtp_port))
    );
    assert!(
        b.1.log().contains("status=sent") && !b.1.log().contains(&format!(":{}", a.0.lmtp_port))
    );
    // Nothing left behind in either queue.
    for (_, pf) in &pairs {
        wait_until(DELIVERY, "an empty queue", || {
            pf.queue().contains("Mail queue is empty").then_some(())
        });
    }
}

#[test]
fn options_add_domains_maps_services_and_files() {
    let dc = Dovecot::start(&[
        ("carol@other.test", "carolpw"),
        ("dave@third.test", "davepw"),
    ]);
    let second_port = demail_e2e::free_port();
    let lmtp = format!("lmtp:inet:127.0.0.1:{}", dc.lmtp_port);
    let opts = PostfixOptions {
        main_cf: vec![
            (
                "relay_domains".into(),
                "example.test, other.test, third.test".into(),
            ),
            ("transport_maps".into(), "hash:{dir}/transport.map".into()),
            ("myhostname".into(), "mx2.example.test".into()),
        ],
        master_cf: vec![format!(
            "127.0.0.1:{second_port} inet n - n - - smtpd\n  -o syslog_name=postfix/second"
        )],
        // third.test leaves through a transport of its own, named in a hashed map.
        extra_files: vec![(
            "transport.map".into(),
            format!("third.test {lmtp}\n").into_bytes(),
        )],
        ..PostfixOptions::for_dovecot(&dc)
    };
    let pf = Postfix::start(opts);
    let conf = pf.config_dir.display().to_string();
    assert_eq!(
        pf.postconf("transport_maps"),
        format!("hash:{conf}/transport.map")
    );
    assert_eq!(pf.postconf("myhostname"), "mx2.example.test");
    assert!(
        pf.config_dir.join("transport.map.db").is_file(),
        "postmap did not run"
    );

    // An added relay domain goes to Dovecot like example.test.
    send(
        &pf,
        "carol@other.test",
        "to an added domain",
        "carol's body",
    );
    let got = wait_for_messages(&dc, "carol@other.test", 1);
    assert!(contains(&got[0], "carol's body"));

    // The extra smtpd of master.cf takes mail too, and the mapped domain is delivered.
    wait_for_port(second_port, DELIVERY).expect("second smtpd listens");
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{second_port}"),
        "--from",
        "x@example.org",
        "--to",
        "dave@third.test",
        "--body",
        "via the second smtpd",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let got = wait_for_messages(&dc, "dave@third.test", 1);
    assert!(contains(&got[0], "via the second smtpd"));
    assert!(pf.log().contains("postfix/second/smtpd"), "{}", pf.log());
}

#[test]
fn without_dovecot_internal_mail_is_refused_with_the_reason() {
    let pf = Postfix::start(PostfixOptions::default());
    let server = format!("127.0.0.1:{}", pf.smtp_port);
    let out = swaks(&[
        "--server",
        &server,
        "--to",
        "alice@example.test",
        "--from",
        "a@example.org",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "accepted without a Dovecot:\n{text}");
    assert!(
        text.contains("550 5.3.0") && text.contains("no Dovecot"),
        "{text}"
    );
}
