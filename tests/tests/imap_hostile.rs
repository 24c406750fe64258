//! Hostile clients against the proxy: an endless line (no CRLF, megabytes, before and after
//! login), huge literal announcements (`{4000000000}` and `{4000000000+}`), 500 idle
//! connections, a client that asks for every body of a big mailbox and stops reading, and one
//! address opening more connections than `max_connections_per_ip`.
//! Each time the proxy's memory stays bounded (RSS printed) and a normal client is served.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use demail_e2e::{City, CityOptions, ImapClient, ProxyProcess};

const USER: &str = "viel@example.test";
const OTHER: &str = "normal@example.test";
const PW: &str = "hostile-pw";
/// How much a hostile client may make the proxy grow (its buffers are bounded far below).
const MAX_GROWTH_KIB: u64 = 16 * 1024;

fn city() -> City {
    City::start(CityOptions {
        dovecot_users: vec![(USER.into(), PW.into()), (OTHER.into(), PW.into())],
        imap_proxy: true,
        // 500 idle connections come from one address.
        proxy_toml: "max_connections_per_ip = 2000\n".into(),
        simulator: false,
        milter: false,
        ..CityOptions::default()
    })
}

fn rss(p: &ProxyProcess) -> u64 {
    p.rss_kib().expect("proxy RSS")
}

/// A normal client logs in, selects its INBOX and logs out, within 15 s.
fn normal_client_served(port: u16) {
    let started = Instant::now();
    let mut c = ImapClient::plain(port);
    c.set_read_timeout(Duration::from_secs(15));
    let r = c.run(&format!("LOGIN {OTHER} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    let r = c.run("SELECT INBOX");
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    let r = c.run("LOGOUT");
    assert!(r.iter().any(|l| l.starts_with("* BYE")), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

fn logged_in(port: u16) -> ImapClient {
    let mut c = ImapClient::plain(port);
    let r = c.run(&format!("LOGIN {USER} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    c
}

/// Writes `total` bytes without a line end; returns what the proxy answered (until it closed
/// or 10 s passed).
fn endless_line(mut s: TcpStream, prefix: &[u8], total: usize) -> (usize, String) {
    s.set_write_timeout(Some(Duration::from_secs(10))).ok();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = s.write_all(prefix);
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    (sent, String::from_utf8_lossy(&got).into_owned())
}

fn connect(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut greeting = [0u8; 1024];
    let n = s.read(&mut greeting).expect("greeting");
    assert!(greeting[..n].starts_with(b"* OK"), "{:?}", &greeting[..n]);
    s
}

#[test]
fn an_endless_line_is_cut_off_with_bounded_memory() {
    let city = city();
    let proxy = city.proxy().expect("proxy");
    let port = proxy.ports.imap;
    let before = rss(proxy);
    // Before login, and after login (then the proxy is passing through to Dovecot).
    let (sent, answer) = endless_line(connect(port), b"a1 LOGIN ", 64 << 20);
    let during = rss(proxy);
    println!(
        "endless line before login: sent {} MiB, RSS {before} -> {during} KiB, answer {:?}",
        sent >> 20,
        answer.chars().take(200).collect::<String>()
    );
    assert!(
        answer.contains("BYE") || answer.contains("BAD"),
        "the proxy says why: {answer:?}"
    );
    assert!(
        during < before + MAX_GROWTH_KIB,
        "RSS {before} -> {during} KiB"
    );

    let c = logged_in(port);
    drop(c);
    let mut s = connect(port);
    s.write_all(format!("a1 LOGIN {USER} {PW}\r\n").as_bytes())
        .expect("login");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("login answer");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("a1 OK"));
    let (sent, answer) = endless_line(s, b"a2 SEARCH SUBJECT ", 64 << 20);
    let after = rss(proxy);
    println!(
        "endless line after login: sent {} MiB, RSS {before} -> {after} KiB, answer {:?}",
        sent >> 20,
        answer.chars().take(200).collect::<String>()
    );
    assert!(
        after < before + MAX_GROWTH_KIB,
        "RSS {before} -> {after} KiB"
    );
    normal_client_served(port);
}

#[test]
fn a_huge_literal_announcement_is_refused_without_allocating() {
    let city = city();
    let proxy = city.proxy().expect("proxy");
    let port = proxy.ports.imap;
    let before = rss(proxy);
    let mut answers = Vec::new();
    // Synchronising: refused before the client sends a byte of it; the session goes on.
    for (when, command) in [
        ("before login", "a1 LOGIN {4000000000}\r\n"),
        ("after login", "a2 APPEND INBOX {4000000000}\r\n"),
    ] {
        let mut c = if when == "after login" {
            logged_in(port)
        } else {
            ImapClient::plain(port)
        };
        c.send_raw(command.as_bytes());
        let r = String::from_utf8_lossy(&c.read_response()).into_owned();
        answers.push(format!("{when} sync: {}", r.trim_end()));
        assert!(!r.starts_with('+'), "{when}: no continuation for 4 GB: {r}");
        assert!(
            r.contains(" NO") || r.contains(" BAD") || r.contains("BYE"),
            "{r}"
        );
        if !r.contains("BYE") {
            let r = c.run("NOOP");
            assert!(
                r.last().unwrap().contains(" OK"),
                "{when}: still usable: {r:?}"
            );
        }
    }
    // Non-synchronising: the client may send the bytes right away; the proxy must not wait
    // for or buffer 4 GB. Then it sends 8 MiB of them.
    for (when, command) in [
        ("before login", "a3 LOGIN {4000000000+}\r\n"),
        ("after login", "a4 APPEND INBOX {4000000000+}\r\n"),
    ] {
        let s = if when == "after login" {
            let mut s = connect(port);
            s.write_all(format!("a0 LOGIN {USER} {PW}\r\n").as_bytes())
                .unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            s
        } else {
            connect(port)
        };
        let (sent, answer) = endless_line(s, command.as_bytes(), 8 << 20);
        answers.push(format!(
            "{when} non-sync: sent {} MiB, {:?}",
            sent >> 20,
            answer.chars().take(200).collect::<String>()
        ));
        assert!(
            answer.contains("BYE") || answer.contains(" NO") || answer.contains(" BAD"),
            "{when}: the proxy says why: {answer:?}"
        );
    }
    let after = rss(proxy);
    println!("{}\nRSS {before} -> {after} KiB", answers.join("\n"));
    assert!(
        after < before + MAX_GROWTH_KIB,
        "RSS {before} -> {after} KiB"
    );
    normal_client_served(port);
}

#[test]
fn five_hundred_idle_connections_cost_little_and_others_are_served() {
    let city = city();
    let proxy = city.proxy().expect("proxy");
    let port = proxy.ports.imap;
    let before = rss(proxy);
    let started = Instant::now();
    // Eight openers at once: Dovecot starts a login process per connection.
    let openers: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                (0..500)
                    .filter(|n| n % 8 == i)
                    .map(|_| connect(port))
                    .collect::<Vec<TcpStream>>()
            })
        })
        .collect();
    let conns: Vec<TcpStream> = openers
        .into_iter()
        .flat_map(|t| t.join().expect("opener"))
        .collect();
    assert_eq!(conns.len(), 500);
    let opened = started.elapsed();
    let during = rss(proxy);
    println!(
        "500 idle connections (greeted) in {opened:?}: RSS {before} -> {during} KiB ({} KiB each)",
        during.saturating_sub(before) / 500
    );
    normal_client_served(port);
    // 500 sessions with their Dovecot connections: well under 100 KiB each.
    assert!(during < before + 500 * 100, "RSS {before} -> {during} KiB");
    drop(conns);
    normal_client_served(port);
}

#[test]
fn a_client_that_stops_reading_does_not_make_the_proxy_buffer_the_mailbox() {
    let city = city();
    let proxy = city.proxy().expect("proxy");
    let port = proxy.ports.imap;
    // 48 messages of 1 MiB straight into Dovecot.
    let mut direct = ImapClient::plain(city.imap_port().expect("Dovecot"));
    direct.run(&format!("LOGIN {USER} {PW}"));
    let body: String = "0123456789abcdef".repeat(64 * 1024);
    for i in 0..48 {
        let msg =
            format!("Subject: gross {i}\r\nMessage-ID: <gross-{i}@example.test>\r\n\r\n{body}\r\n");
        let tag = direct.next_tag();
        direct.send_raw(format!("{tag} APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
        let r = direct.until_tagged(&tag);
        assert!(String::from_utf8_lossy(r.last().unwrap()).contains(" OK"));
    }
    let before = rss(proxy);
    let mut s = connect(port);
    s.write_all(
        format!("a1 LOGIN {USER} {PW}\r\na2 SELECT INBOX\r\na3 UID FETCH 1:* BODY[]\r\n")
            .as_bytes(),
    )
    .unwrap();
    // Read a little, then stop reading.
    let mut buf = vec![0u8; 16 * 1024];
    let _ = s.read(&mut buf);
    let mut peak = before;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(rss(proxy));
    }
    println!(
        "slow reader, 48 MiB answer: proxy RSS {before} -> peak {peak} KiB (growth {} KiB)",
        peak - before
    );
    // Others are served while it stalls.
    normal_client_served(port);
    assert!(peak < before + MAX_GROWTH_KIB, "RSS {before} -> {peak} KiB");
    drop(s);
    normal_client_served(port);
}

#[test]
fn one_address_cannot_take_every_connection() {
    let city = City::start(CityOptions {
        dovecot_users: vec![(OTHER.into(), PW.into())],
        imap_proxy: true,
        proxy_toml: "max_connections_per_ip = 20\n".into(),
        simulator: false,
        milter: false,
        ..CityOptions::default()
    });
    let proxy = city.proxy().expect("proxy");
    let port = proxy.ports.imap;
    let held: Vec<TcpStream> = (0..20).map(|_| connect(port)).collect();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let got = String::from_utf8_lossy(&got).into_owned();
    println!("21st connection from 127.0.0.1: {got:?}");
    assert!(got.starts_with("* BYE"), "{got:?}");
    // Another address is served meanwhile.
    let mut c = ImapClient::plain_from(std::net::Ipv4Addr::new(127, 0, 0, 3), port);
    let r = c.run(&format!("LOGIN {OTHER} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    c.run("LOGOUT");
    drop(held);
    // The count goes down again as connections close.
    demail_e2e::wait_until(Duration::from_secs(10), "a slot again", || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut b = [0u8; 64];
        let n = s.read(&mut b).ok()?;
        b[..n].starts_with(b"* OK").then_some(())
    });
}
