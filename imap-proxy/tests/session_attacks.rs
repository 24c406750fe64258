//! Hostile clients against the session code: the proxy in-process in front of a real Dovecot.
//! Each test checks that the proxy's idea of who is logged in and what Dovecot sees stay the
//! same, whatever the client pipelines.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use demail_e2e::{Dovecot, ImapClient, free_port};
use demail_imap_proxy::{Shared, bind, run};
use demail_policy::Config;
use demail_provider_sim::pki::TestPki;

const ALICE: &str = "alice@magdeburg.example";
const BOB: &str = "bob@magdeburg.example";
const PW: &str = "pw-secret";

struct Proxy {
    /// The STARTTLS port (plaintext login allowed: loopback).
    port: u16,
    _stop: tokio::sync::watch::Sender<bool>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    _dc: Dovecot,
}

fn start(extra: &str) -> Proxy {
    start_with_backend(None, extra)
}

/// The proxy in front of the test Dovecot, or of `backend` (another port) when given.
fn start_with_backend(backend: Option<u16>, extra: &str) -> Proxy {
    let dc = Dovecot::start(&[(ALICE, PW), (BOB, PW)]);
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let pki = TestPki::generate(&d.join("pki")).expect("pki");
    std::fs::create_dir(d.join("tls")).expect("tls");
    for f in ["client.pem", "client.key", "ca.pem"] {
        std::fs::write(d.join("tls").join(f), "test material\n").expect("write");
    }
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let port = free_port();
    let toml = format!(
        r#"
[gateway]
host = "gateway.provider.example"
port = 465
tls = "implicit"
client_certificate = "tls/client.pem"
client_key = "tls/client.key"
provider_ca = "tls/ca.pem"
domains = ["*.de-mail.de"]

[inbound]
poststelle = ["poststelle@magdeburg.example"]

[evidence]
database = {db}
blobs = {blobs}

[imap_proxy]
listen_imap = "127.0.0.1:{port}"
certificate = {cert}
key = {key}
backend = "127.0.0.1:{backend}"
backend_tls = "none"
state = {state}
{extra}

[[tenant]]
name = "Landeshauptstadt Magdeburg"
public_body = true
internal_domains = ["magdeburg.example"]

  [[tenant.account]]
  address = "info@magdeburg.de-mail.de"
  deliver_to = ["poststelle@magdeburg.example"]
  senders = ["*@magdeburg.example"]
  default_options = ["dispatch", "receipt"]
"#,
        db = q(&d.join("evidence.sqlite")),
        blobs = q(&d.join("blobs")),
        cert = q(&pki.server_cert),
        key = q(&pki.server_key),
        state = q(&d.join("state.sqlite")),
        backend = backend.unwrap_or(dc.imap_port),
    );
    let path = d.join("demail.toml");
    std::fs::write(&path, &toml).expect("write config");
    let config = Config::parse(&toml, &path).unwrap_or_else(|e| panic!("config: {e}"));
    let config = Arc::new(config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let shared = Shared::new(config.clone()).expect("shared");
    let listeners = rt
        .block_on(bind(config.imap_proxy.as_ref().expect("section")))
        .expect("bind");
    rt.spawn(run(shared, listeners, stop_rx));
    Proxy {
        port,
        _stop: stop,
        _rt: rt,
        _dir: dir,
        _dc: dc,
    }
}

/// Raw socket: send bytes, read what comes within a moment.
struct Raw(TcpStream);

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(300))).ok();
        let mut r = Raw(s);
        r.until("\r\n");
        r
    }
    fn send(&mut self, b: &[u8]) {
        self.0.write_all(b).expect("write");
    }
    /// Reads until `needle` appears (or 10 s pass); returns everything read.
    fn until(&mut self, needle: &str) -> String {
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            if String::from_utf8_lossy(&out).contains(needle) {
                break;
            }
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A session of `ALICE` that stays open: with one session per login allowed, any other
/// session the proxy takes for Alice's is refused with `NO [LIMIT]`.
fn alice_holds_her_one_session(port: u16) -> ImapClient {
    let mut c = ImapClient::plain(port);
    let r = c.run(&format!("LOGIN {ALICE} {PW}"));
    assert!(r.last().unwrap().contains(" OK "), "{r:?}");
    c
}

const ONE_PER_LOGIN: &str = "max_connections_per_login = 1";

#[test]
fn a_line_pipelined_behind_a_failing_idle_is_a_command_not_done() {
    let p = start(ONE_PER_LOGIN);
    let _alice = alice_holds_her_one_session(p.port);
    // Dovecot refuses IDLE before login at once; the next line is a command to it. The proxy
    // must not take it for the IDLE's DONE (it would reach Dovecot untracked, and the tagged
    // OK of Bob's login would be credited to the tracked LOGIN of Alice with the same tag).
    for (idle, tag) in [("a IDLE", "T"), ("a idle", "dmpx2"), ("a IDLE x", "T2")] {
        let mut c = Raw::connect(p.port);
        c.send(
            format!("{idle}\r\n{tag} LOGIN {BOB} {PW}\r\n{tag} LOGIN {ALICE} wrong\r\nz NOOP\r\n")
                .as_bytes(),
        );
        let out = c.until("z OK");
        assert!(
            !out.contains("[LIMIT]"),
            "{idle:?}: Bob was taken for Alice: {out}"
        );
        assert!(out.contains("z OK"), "{idle:?}: {out}");
    }
}

#[test]
fn a_line_pipelined_behind_a_refused_authenticate_is_a_command() {
    let p = start(ONE_PER_LOGIN);
    let _alice = alice_holds_her_one_session(p.port);
    // Dovecot answers these at once; the LOGIN behind them is a command to it. Alice's LOGIN
    // goes out once the refusal is seen, while Bob's is still being checked.
    for auth in [
        "a AUTHENTICATE FOO",
        "a AUTHENTICATE",
        "a AUTHENTICATE PLAIN !!",
    ] {
        let mut c = Raw::connect(p.port);
        c.send(format!("{auth}\r\nT LOGIN {BOB} {PW}\r\n").as_bytes());
        let mut out = c.until("a ");
        c.send(format!("T LOGIN {ALICE} wrong\r\nz NOOP\r\n").as_bytes());
        out.push_str(&c.until("z OK"));
        assert!(
            !out.contains("[LIMIT]"),
            "{auth:?}: Bob was taken for Alice: {out}"
        );
    }
}

fn b64(s: &str) -> String {
    openssl::base64::encode_block(s.as_bytes())
}

#[test]
fn idle_and_authenticate_still_work_pipelined() {
    let p = start("");
    // PLAIN with a continuation, with SASL-IR; the LOGIN mechanism in two steps; each followed by an IDLE whose DONE and next command are pipelined.
    let plain = b64(&format!("\0{ALICE}\0{PW}"));
    let scripts: Vec<Vec<(String, &str)>> = vec![
        vec![
            ("a AUTHENTICATE PLAIN\r\n".into(), "+"),
            (format!("{plain}\r\n"), "a OK"),
        ],
        vec![(format!("a AUTHENTICATE PLAIN {plain}\r\n"), "a OK")],
        vec![
            ("a AUTHENTICATE LOGIN\r\n".into(), "+"),
            (format!("{}\r\n", b64(ALICE)), "+"),
            (format!("{}\r\n", b64(PW)), "a OK"),
        ],
    ];
    for script in scripts {
        let mut c = Raw::connect(p.port);
        let mut out = String::new();
        for (send, want) in &script {
            c.send(send.as_bytes());
            out.push_str(&c.until(want));
        }
        assert!(out.contains("a OK"), "{script:?}: {out}");
        c.send(b"b SELECT INBOX\r\nc IDLE\r\nDONE\r\nd NOOP\r\n");
        let out = c.until("d OK");
        assert!(
            out.contains("b OK") && out.contains("c OK") && out.contains("d OK"),
            "{script:?}: {out}"
        );
    }
}

#[test]
fn a_continuation_owed_to_an_id_literal_is_not_taken_for_the_authenticate() {
    let p = start(ONE_PER_LOGIN);
    let _alice = alice_holds_her_one_session(p.port);
    // The client's ID carries a non-ASCII value, which goes to Dovecot as a literal: Dovecot's
    // `+` for it must not count as the AUTHENTICATE's.
    let mut c = Raw::connect(p.port);
    c.send(
        format!(
            "x ID (\"name\" \"Th\u{fc}nderbird\")\r\na AUTHENTICATE LOGIN\r\n{}\r\n{}\r\nT LOGIN {BOB} {PW}\r\n",
            b64("nobody"),
            b64("wrong")
        )
        .as_bytes(),
    );
    let mut out = c.until("a NO");
    c.send(format!("T LOGIN {ALICE} wrong\r\nz NOOP\r\n").as_bytes());
    out.push_str(&c.until("z OK"));
    assert!(!out.contains("[LIMIT]"), "Bob was taken for Alice: {out}");
}

#[test]
fn bytes_framed_as_a_literal_never_reach_dovecot_as_commands() {
    let p = start(ONE_PER_LOGIN);
    let _alice = alice_holds_her_one_session(p.port);
    let smuggled = format!("T LOGIN {BOB} {PW}\r\n");
    let n = smuggled.len();
    // Announcements Dovecot does not take as literals (or refuses before reading them): the
    // bytes the proxy frames as the literal would be Bob's login to Dovecot.
    for head in [
        format!("a NOOP ~{{{n}+}}\r\n"),
        format!("a NOOP ~{{{n}}}\r\n"),
        format!("a LOGIN ~{{{n}+}}\r\n"),
        format!("a LOGIN {{3+}}\r\nbob \"x {{{n}+}}\r\n"),
        format!("a LOGIN {{3+}}\r\nbob \"x {{{n}}}\r\n"),
        format!("a XYZZY {{{n}+}}\r\n"),
        format!("a XYZZY {{{n}}}\r\n"),
        format!("a NOOP {{{n}}}\r\n"),
        format!("a CAPABILITY {{{n}+}}\r\n"),
        format!("a LOGIN bob {{{n}}}\n"),
    ] {
        let mut c = Raw::connect(p.port);
        c.send(format!("{head}{smuggled}\r\n").as_bytes());
        let mut out = c.until("a ");
        std::thread::sleep(Duration::from_millis(50));
        c.send(format!("T LOGIN {ALICE} wrong\r\nz NOOP\r\n").as_bytes());
        out.push_str(&c.until("z OK"));
        assert!(
            !out.contains("[LIMIT]"),
            "{head:?}: Bob was taken for Alice: {out}"
        );
    }
}

#[test]
fn an_id_the_tokenizer_reads_as_one_word_is_answered_not_a_panic() {
    let p = start("max_connections_per_ip = 3");
    // `a[ ID` passes as tag and command, but the tokenizer reads `a[ ID` as one bracketed
    // atom. A panic would end the session without an answer and leak its connection count.
    for line in ["a[ ID", "a[ ID (\"name\" \"x\")", "a[ ID NIL"] {
        // Answered by the proxy before anything reaches Dovecot, and after (XYZZY hands the
        // session to Dovecot).
        for first in ["", "y XYZZY\r\n"] {
            for _ in 0..4 {
                let mut c = Raw::connect(p.port);
                c.send(format!("{first}{line}\r\nz NOOP\r\n").as_bytes());
                let out = c.until("z OK");
                assert!(out.contains("z OK"), "{first:?} {line:?}: {out}");
            }
        }
    }
}

#[test]
fn nothing_is_served_after_logout() {
    let p = start("");
    for (logout, after) in [
        ("a LOGOUT", "b SELECT \"De-Mail/Ausstehend\""),
        ("a logout", "b STATUS \"De-Mail/Ausstehend\" (MESSAGES)"),
        ("a LOGOUT", "b LIST \"\" \"*\""),
    ] {
        let mut c = Raw::connect(p.port);
        c.send(format!("l LOGIN {ALICE} {PW}\r\n").as_bytes());
        c.until("l OK");
        c.send(format!("{logout}\r\n{after}\r\nc FETCH 1:* BODY[]\r\n").as_bytes());
        let out = c.until("never");
        assert!(out.contains("a OK"), "{out}");
        assert!(
            !out.contains("\r\nb ") && !out.contains("\r\nc "),
            "{after:?}: {out}"
        );
    }
}

#[test]
fn no_real_folder_can_be_made_to_pass_for_evidence() {
    let p = start("");
    let mut c = Raw::connect(p.port);
    c.send(format!("l LOGIN {ALICE} {PW}\r\n").as_bytes());
    c.until("l OK");
    // Spellings of a virtual name, and anything else below the root.
    for (i, name) in [
        "\"De-Mail/Ausstehend/\"",
        "\"de-mail/AUSSTEHEND\"",
        "\"De-Mail/Privat\"",
        "\"De-Mail/Ausstehend/Alt\"",
        "{16+}\r\nDe-Mail/Neu/Neu2",
    ]
    .iter()
    .enumerate()
    {
        c.send(format!("c{i} CREATE {name}\r\n").as_bytes());
        let out = c.until(&format!("c{i} "));
        assert!(out.contains(&format!("c{i} NO [CANNOT]")), "{name}: {out}");
        c.send(format!("r{i} RENAME INBOX {name}\r\n").as_bytes());
        let out = c.until(&format!("r{i} "));
        assert!(
            out.contains(&format!("r{i} NO [CANNOT]")),
            "RENAME to {name}: {out}"
        );
    }
    // Dovecot never got one of them.
    c.send(b"x LIST \"\" \"*\"\r\n");
    let out = c.until("x OK");
    assert!(
        !out.contains("Privat") && !out.contains("Neu") && !out.contains("Alt"),
        "{out}"
    );
    // Elsewhere a folder is made as before.
    c.send(b"y CREATE Projekte\r\n");
    let out = c.until("y ");
    assert!(out.contains("y OK"), "{out}");
}

/// A backend that greets like Dovecot, answers LOGIN, then goes away.
fn vanishing_backend() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            std::thread::spawn(move || {
                use std::io::{BufRead, BufReader, Write};
                let _ = s.write_all(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] ready\r\n");
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let tag = line.split(' ').next().unwrap_or("*").to_string();
                    if line.contains(" LOGIN ") {
                        let _ = s.write_all(format!("{tag} OK Logged in\r\n").as_bytes());
                    } else if line.contains(" NAMESPACE") {
                        let _ = s.write_all(
                            format!("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n{tag} OK done\r\n")
                                .as_bytes(),
                        );
                    } else if line.contains(" ID ") {
                        let _ = s.write_all(format!("* ID NIL\r\n{tag} OK ID\r\n").as_bytes());
                    } else {
                        // Gone, as a crashed or restarted Dovecot would be.
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    port
}

#[test]
fn when_dovecot_is_unreachable_or_goes_away_the_client_gets_a_bye() {
    // Nothing listens on the backend port.
    let unused = free_port();
    let p = start_with_backend(Some(unused), "");
    let greeting = ImapClient::plain(p.port).greeting;
    assert!(greeting.starts_with("* BYE [UNAVAILABLE]"), "{greeting}");

    let p = start_with_backend(Some(vanishing_backend()), "");
    let mut c = Raw::connect(p.port);
    c.send(format!("l LOGIN {ALICE} {PW}\r\n").as_bytes());
    c.until("l OK");
    c.send(b"n NOOP\r\n");
    let out = c.until("never");
    assert!(out.contains("* BYE "), "the client is told: {out}");
    assert!(!out.contains("n OK"), "{out}");
}

#[test]
fn a_silent_session_is_logged_out_after_the_idle_timeout() {
    let p = start("idle_timeout = \"3s\"");
    let mut c = Raw::connect(p.port);
    c.send(format!("l LOGIN {ALICE} {PW}\r\n").as_bytes());
    c.until("l OK");
    let started = std::time::Instant::now();
    let out = c.until("Autologout");
    assert!(out.contains("* BYE Autologout"), "{out}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(9),
        "{waited:?}"
    );
    // A client that keeps talking stays.
    let mut busy = Raw::connect(p.port);
    busy.send(format!("l LOGIN {BOB} {PW}\r\n").as_bytes());
    busy.until("l OK");
    for i in 0..4 {
        std::thread::sleep(Duration::from_secs(1));
        busy.send(format!("n{i} NOOP\r\n").as_bytes());
        let out = busy.until(&format!("n{i} OK"));
        assert!(!out.contains("BYE"), "{out}");
    }
}

#[test]
fn compress_and_notify_are_refused_with_a_reason_and_the_session_goes_on() {
    let p = start("");
    let mut c = Raw::connect(p.port);
    c.send(format!("l LOGIN {ALICE} {PW}\r\n").as_bytes());
    let out = c.until("l OK");
    assert!(
        !out.contains("COMPRESS") && !out.contains("NOTIFY"),
        "{out}"
    );
    c.send(b"z COMPRESS DEFLATE\r\n");
    let out = c.until("z ");
    assert!(out.contains("z BAD COMPRESS is not offered"), "{out}");
    c.send(b"n NOTIFY SET (selected MessageNew)\r\n");
    let out = c.until("n ");
    assert!(out.contains("n BAD NOTIFY is not offered"), "{out}");
    // Still plain IMAP, not deflate: the next command is understood.
    c.send(b"s SELECT INBOX\r\n");
    let out = c.until("s OK");
    assert!(out.contains("s OK [READ-WRITE]"), "{out}");
}
