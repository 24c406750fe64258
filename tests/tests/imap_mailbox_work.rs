//! Ordinary mailbox work through the proxy gives the same responses as Dovecot directly: the
//! same session (APPEND with synchronising and non-synchronising literals, a 10 MB literal,
//! FETCH, STORE, EXPUNGE, IDLE with an LMTP delivery during it, MOVE, ENABLE QRESYNC, SELECT
//! with QRESYNC parameters, FETCH CHANGEDSINCE/VANISHED) on two fresh Dovecots with the same
//! user, one reached directly, one through the proxy; tags, timings, dates and UIDVALIDITY
//! normalised. And the merged ID: an `x-originating-ip` the client forges never reaches
//! Dovecot's log; the client's real address does.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use demail_e2e::imap_replay::normalise;
use demail_e2e::{City, CityOptions, Dovecot, ImapClient, SmtpClient, wait_until};

const USER: &str = "worker@example.test";
/// What the proxy removes from Dovecot's capabilities (imap-proxy/src/capability.rs: it
/// cannot serve them for the virtual folders, or frames plain bytes); everything else must
/// be passed on.
const REMOVED: &[&str] = &[
    "COMPRESS=",
    "NOTIFY",
    "SORT",
    "THREAD=",
    "ESEARCH",
    "ESORT",
    "SEARCHRES",
    "CONTEXT=",
    "WITHIN",
    "PREVIEW",
    "SNIPPET=",
    "SAVEDATE",
    "CATENATE",
    "URL-PARTIAL",
    "URLAUTH",
    // Not served for the virtual folders (issue 9: "BINARY if you serve it").
    "BINARY",
];

/// A `[CAPABILITY ...]` or `* CAPABILITY` line with its atoms sorted, the documented removals
/// left out; other lines as they are.
fn comparable(line: &str) -> String {
    let Some((head, rest)) = line
        .split_once("[CAPABILITY ")
        .or_else(|| line.split_once("* CAPABILITY "))
    else {
        return line.to_string();
    };
    let (list, tail) = rest.split_once(']').unwrap_or((rest, ""));
    let mut atoms: Vec<&str> = list
        .split(' ')
        .filter(|a| !a.is_empty())
        .filter(|a| {
            !REMOVED
                .iter()
                .any(|r| a.to_ascii_uppercase().starts_with(r))
        })
        .collect();
    atoms.sort();
    format!("{head}[CAPABILITY {}]{tail}", atoms.join(" "))
}
const PW: &str = "worker-pw";

fn city() -> City {
    City::start(CityOptions {
        dovecot_users: vec![(USER.into(), PW.into())],
        imap_proxy: true,
        simulator: false,
        milter: false,
        ..CityOptions::default()
    })
}

fn message(i: usize, body: &str) -> String {
    format!(
        "From: Kollege <kollege@example.test>\r\nTo: {USER}\r\nSubject: Akte {i}\r\n\
         Message-ID: <akte-{i}@example.test>\r\nDate: Thu, 03 Dec 2026 09:00:00 +0100\r\n\r\n{body}\r\n"
    )
}

/// A 10 MB message with a deterministic body (base64-like lines).
fn big_message() -> String {
    let mut body = String::with_capacity(10 << 20);
    let line: String = (0..76).map(|i| (b'A' + (i % 26) as u8) as char).collect();
    while body.len() < 10 << 20 {
        body.push_str(&line);
        body.push_str("\r\n");
    }
    message(99, &body)
}

fn lmtp_deliver(port: u16, subject: &str) {
    let (mut c, greeting) = SmtpClient::connect(port, Duration::from_secs(10)).expect("LMTP");
    assert_eq!(greeting.code, 220, "{greeting}");
    for line in [
        "LHLO e2e".to_string(),
        "MAIL FROM:<absender@example.test>".into(),
        format!("RCPT TO:<{USER}>"),
    ] {
        let r = c.command(&line).expect("LMTP");
        assert!(r.is_positive(), "{line}: {r}");
    }
    let r = c.command("DATA").expect("LMTP DATA");
    assert_eq!(r.code, 354, "{r}");
    let msg = format!(
        "From: absender@example.test\r\nTo: {USER}\r\nSubject: {subject}\r\n\
         Message-ID: <lmtp-idle@example.test>\r\n\r\nDuring IDLE.\r\n.\r\n"
    );
    c.send(msg.as_bytes()).expect("LMTP data");
    let r = c.read_reply().expect("LMTP reply");
    assert!(r.is_positive(), "{r}");
}

/// One command and its normalised responses.
type Exchange = (String, Vec<String>);

struct Session {
    c: ImapClient,
    out: Vec<Exchange>,
    uidvalidity: String,
}

impl Session {
    fn record(&mut self, shown: &str, tag: &str, responses: Vec<Vec<u8>>) -> Vec<String> {
        let lines: Vec<String> = responses
            .iter()
            .map(|r| normalise(&String::from_utf8_lossy(r), Some(tag)))
            .collect();
        self.out.push((shown.to_string(), lines.clone()));
        lines
    }

    fn cmd(&mut self, command: &str) -> Vec<String> {
        let command = command.replace("$UV", &self.uidvalidity);
        let tag = self.c.next_tag();
        self.c.send_raw(format!("{tag} {command}\r\n").as_bytes());
        let r = self.c.until_tagged(&tag);
        self.record(&command, &tag, r)
    }

    /// APPEND with a literal; `sync` waits for the continuation.
    fn append(&mut self, mailbox: &str, flags: &str, msg: &str, sync: bool) -> Vec<String> {
        let tag = self.c.next_tag();
        let shown = format!(
            "APPEND {mailbox} {flags} <{} bytes, sync {sync}>",
            msg.len()
        );
        let mut responses = Vec::new();
        if sync {
            self.c.send_raw(
                format!("{tag} APPEND {mailbox} {flags} {{{}}}\r\n", msg.len()).as_bytes(),
            );
            let cont = self.c.read_response();
            let is_cont = cont.starts_with(b"+");
            responses.push(cont);
            if !is_cont {
                return self.record(&shown, &tag, responses);
            }
            self.c.send_raw(msg.as_bytes());
            self.c.send_raw(b"\r\n");
        } else {
            let mut all =
                format!("{tag} APPEND {mailbox} {flags} {{{}+}}\r\n", msg.len()).into_bytes();
            all.extend_from_slice(msg.as_bytes());
            all.extend_from_slice(b"\r\n");
            self.c.send_raw(&all);
        }
        responses.extend(self.c.until_tagged(&tag));
        self.record(&shown, &tag, responses)
    }

    /// IDLE; a message is delivered over LMTP while idling; DONE once EXISTS came.
    fn idle_with_delivery(&mut self, lmtp: u16) {
        let tag = self.c.next_tag();
        self.c.send_raw(format!("{tag} IDLE\r\n").as_bytes());
        let mut responses = vec![self.c.read_response()];
        assert!(
            responses[0].starts_with(b"+"),
            "{:?}",
            responses[0].escape_ascii()
        );
        lmtp_deliver(lmtp, "Neu waehrend IDLE");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.c.read_response();
            let exists = r.ends_with(b" EXISTS\r\n");
            responses.push(r);
            if exists {
                break;
            }
            assert!(Instant::now() < deadline, "no EXISTS during IDLE");
        }
        self.c.send_raw(b"DONE\r\n");
        responses.extend(self.c.until_tagged(&tag));
        // RECENT may come before or after EXISTS depending on timing; order-independent.
        let mut lines: Vec<String> = responses
            .iter()
            .map(|r| normalise(&String::from_utf8_lossy(r), Some(&tag)))
            .collect();
        lines.sort();
        self.out.push(("IDLE + LMTP delivery + DONE".into(), lines));
    }
}

/// The whole session; returns the exchanges.
fn work(port: u16, lmtp: u16) -> Vec<Exchange> {
    let c = ImapClient::plain(port);
    let mut s = Session {
        c,
        out: Vec::new(),
        uidvalidity: String::new(),
    };
    s.cmd(&format!("LOGIN {USER} {PW}"));
    s.cmd("ENABLE QRESYNC");
    s.cmd("CREATE Akten");
    let sel = s.cmd("SELECT INBOX");
    s.uidvalidity = uidvalidity(&sel);
    s.append("INBOX", "(\\Seen)", &message(1, "eins"), true);
    s.append("INBOX", "()", &message(2, "zwei"), false);
    s.append("INBOX", "(\\Flagged)", &message(3, "drei"), true);
    let started = Instant::now();
    s.append("INBOX", "()", &big_message(), true);
    println!("10 MB APPEND on port {port}: {:?}", started.elapsed());
    s.cmd("NOOP");
    s.cmd("FETCH 1:* (UID FLAGS RFC822.SIZE)");
    s.cmd("UID FETCH 1:* (FLAGS MODSEQ)");
    s.cmd("FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.100>)");
    s.cmd("FETCH 2 BODY[]");
    s.cmd("UID FETCH 4 (BODY.PEEK[]<10485000.1000>)");
    s.cmd("STORE 1 +FLAGS (\\Flagged)");
    s.cmd("UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    s.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3)");
    s.cmd("SEARCH UNSEEN");
    s.cmd("UID SEARCH SUBJECT \"Akte 3\"");
    s.cmd("EXPUNGE");
    s.idle_with_delivery(lmtp);
    s.cmd("UID FETCH 1:* (UID FLAGS)");
    s.cmd("UID MOVE 1 Akten");
    s.cmd("UID COPY 3 Akten");
    s.cmd("STATUS Akten (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)");
    s.cmd("SELECT INBOX (QRESYNC ($UV 2 1:10))");
    s.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    s.cmd("EXAMINE Akten (CONDSTORE)");
    s.cmd("FETCH 1:* (UID FLAGS MODSEQ)");
    s.cmd("UNSELECT");
    s.cmd("DELETE Akten");
    s.cmd("LOGOUT");
    s.out
}

fn uidvalidity(select: &[String]) -> String {
    select
        .iter()
        .find_map(|l| l.split("[UIDVALIDITY ").nth(1))
        .and_then(|r| r.split(']').next())
        .unwrap_or("1")
        .to_string()
}

#[test]
fn mailbox_work_gets_the_same_answers_through_the_proxy_as_from_dovecot() {
    let city = city();
    let proxied_dc = city.dovecot().expect("Dovecot");
    let direct_dc = Dovecot::start(&[(USER, PW)]);
    // `normalise` hides UIDVALIDITY, so the QRESYNC SELECT gets each server's own value.
    let direct = work(direct_dc.imap_port, direct_dc.lmtp_port);
    let proxied = work(
        city.proxy().expect("proxy").ports.imap,
        proxied_dc.lmtp_port,
    );
    let mut diffs = Vec::new();
    for (i, (d, p)) in direct.iter().zip(&proxied).enumerate() {
        assert_eq!(d.0, p.0, "same command at step {i}");
        let dc: Vec<String> = d.1.iter().map(|l| comparable(l)).collect();
        let pc: Vec<String> = p.1.iter().map(|l| comparable(l)).collect();
        if dc != pc {
            let cut = |v: &Vec<String>| -> Vec<String> {
                v.iter().map(|l| l.chars().take(200).collect()).collect()
            };
            diffs.push(format!(
                "`{}`:\n  Dovecot: {:?}\n  proxy:   {:?}",
                d.0,
                cut(&dc),
                cut(&pc)
            ));
        }
    }
    for (cmd, lines) in &proxied {
        println!("C: {cmd}");
        for l in lines {
            println!("S: {}", l.chars().take(160).collect::<String>());
        }
    }
    assert_eq!(direct.len(), proxied.len());
    assert!(
        diffs.is_empty(),
        "{} difference(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// A client's own `x-originating-ip` (plain, and as a non-synchronising literal as new
/// Outlook sends ID) must not become the address Dovecot logs; the proxy's merged ID with the
/// client's real address (127.0.0.2 here, the proxy itself connects from 127.0.0.1) must.
#[test]
fn a_forged_originating_ip_never_reaches_dovecot() {
    let city = city();
    let dc = city.dovecot().expect("Dovecot");
    let port = city.proxy().expect("proxy").ports.imap;
    let forged = ["203.0.113.66", "198.51.100.77"];
    let ids = [
        format!(
            "ID (\"name\" \"Evil\" \"x-originating-ip\" \"{}\" \"x-originating-port\" \"4444\")",
            forged[0]
        ),
        format!(
            "ID (\"name\" \"Evil\" \"x-originating-ip\" {{{}+}}\r\n{} \"x-session-id\" \"forged-session\")",
            forged[1].len(),
            forged[1]
        ),
    ];
    let imaps = city.proxy().expect("proxy").ports.imaps;
    let ca = city.pki().ca_cert.clone();
    // Each ID on the STARTTLS port (plaintext on loopback) and over IMAPS.
    let sessions = ids.iter().flat_map(|id| [(id, false), (id, true)]);
    for (id, tls) in sessions {
        let source = Ipv4Addr::new(127, 0, 0, 2);
        let mut c = if tls {
            ImapClient::tls_from(source, imaps, &ca)
        } else {
            ImapClient::plain_from(source, port)
        };
        let r = c.run(id);
        println!("{r:?}");
        let r = c.run(&format!("LOGIN {USER} {PW}"));
        assert!(r.last().unwrap().contains(" OK"), "{r:?}");
        c.run("LOGOUT");
    }
    let logins = wait_until(
        Duration::from_secs(10),
        "four logins in dovecot.log",
        || {
            let lines: Vec<String> = dc
                .log()
                .lines()
                .filter(|l| l.contains("imap-login: Info: Login: user=<"))
                .map(str::to_string)
                .collect();
            (lines.len() >= 4).then_some(lines)
        },
    );
    println!("{}", logins.join("\n"));
    let log = dc.log();
    for f in forged {
        assert!(!log.contains(f), "forged {f} in dovecot.log:\n{log}");
    }
    assert!(!log.contains("forged-session"), "{log}");
    // The client's own fields reached Dovecot, in the one ID that carries its real address.
    let ids: Vec<&str> = log.lines().filter(|l| l.contains("ID sent:")).collect();
    println!("{}", ids.join("\n"));
    assert!(
        ids.iter()
            .filter(|l| l.contains("name=Evil") && l.contains("x-originating-ip=127.0.0.2"))
            .count()
            >= 4,
        "four merged IDs: {ids:?}"
    );
    for l in &logins {
        assert!(
            l.contains("rip=127.0.0.2"),
            "the client's real address: {l}"
        );
    }
}
