//! TLS towards clients: IMAPS with the test CA works; the STARTTLS port offers STARTTLS; on a
//! listener that is not loopback (a second proxy on this machine's non-loopback address) a
//! LOGIN or AUTHENTICATE before STARTTLS is refused and the greeting says LOGINDISABLED;
//! bytes pipelined behind STARTTLS are not executed (plain, before the handshake, they could
//! come from anyone on the path).
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use demail_e2e::{City, CityOptions, ImapClient, cargo_bin};

const USER: &str = "tls@example.test";
const PW: &str = "tls-pw";

fn city() -> City {
    City::start(CityOptions {
        dovecot_users: vec![(USER.into(), PW.into())],
        imap_proxy: true,
        simulator: false,
        milter: false,
        ..CityOptions::default()
    })
}

fn logins_in(city: &City) -> usize {
    city.dovecot()
        .expect("Dovecot")
        .log()
        .lines()
        .filter(|l| l.contains("imap-login: Info: Login: user=<"))
        .count()
}

/// This machine's address towards the default route, when it has one that is not loopback.
fn non_loopback_ip() -> Option<Ipv4Addr> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect((Ipv4Addr::new(192, 0, 2, 200), 9)).ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

fn free_port_on(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A second proxy with the city's configuration, its listeners on `ip`.
struct SecondProxy {
    child: Child,
    imap: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for SecondProxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- second proxy log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bind` is the listeners' address; clients reach them on `reach` (the same, or 127.0.0.1
/// for the wildcard 0.0.0.0).
fn second_proxy(city: &City, bind: Ipv4Addr, reach: Ipv4Addr) -> SecondProxy {
    let toml = std::fs::read_to_string(city.config_path()).expect("demail.toml");
    let ports = &city.proxy().expect("proxy").ports;
    let imap = SocketAddr::from((bind, free_port_on(reach)));
    let imaps = SocketAddr::from((bind, free_port_on(reach)));
    let toml = toml
        .replace(
            &format!("listen_imap = \"127.0.0.1:{}\"", ports.imap),
            &format!("listen_imap = \"{imap}\""),
        )
        .replace(
            &format!("listen_imaps = \"127.0.0.1:{}\"", ports.imaps),
            &format!("listen_imaps = \"{imaps}\""),
        )
        .replace("proxy-state.sqlite", "proxy-state-2.sqlite");
    assert!(toml.contains(&imap.to_string()), "listen_imap rewritten");
    let n = bind.octets()[0];
    let toml = toml.replace("proxy-state-2.sqlite", &format!("proxy-state-2-{n}.sqlite"));
    let config = city.dir().join(format!("demail-2-{n}.toml"));
    std::fs::write(&config, toml).expect("write demail-2.toml");
    let log = city.dir().join(format!("imap-proxy-2-{n}.log"));
    let file = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log")
    };
    let child = Command::new(cargo_bin("demail-imap-proxy"))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(file())
        .stderr(file())
        .spawn()
        .expect("start the second proxy");
    let imap = SocketAddr::from((reach, imap.port()));
    let p = SecondProxy { child, imap, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&imap, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "second proxy does not listen on {imap}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

#[test]
fn imaps_with_the_test_ca_and_starttls_on_the_loopback_port() {
    let city = city();
    let proxy = city.proxy().expect("proxy");
    let ca = &city.pki().ca_cert;

    let mut c = ImapClient::tls(proxy.ports.imaps, ca);
    assert!(c.greeting.starts_with("* OK"), "{}", c.greeting);
    let r = c.run(&format!("LOGIN {USER} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    let r = c.run("SELECT INBOX");
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    c.run("LOGOUT");

    let mut c = ImapClient::plain(proxy.ports.imap);
    let r = c.run("CAPABILITY");
    println!("{r:?}");
    assert!(
        r[0].contains(" STARTTLS"),
        "the STARTTLS port offers it: {r:?}"
    );
    // Loopback allows a plaintext login; after it STARTTLS is no longer offered (it is a
    // command of the not-authenticated state).
    let mut plain = ImapClient::plain(proxy.ports.imap);
    let r = plain.run(&format!("LOGIN {USER} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    assert!(
        !r.last().unwrap().contains("STARTTLS"),
        "after login: {r:?}"
    );
    let r = plain.run("CAPABILITY");
    assert!(!r[0].contains("STARTTLS"), "after login: {r:?}");
    plain.run("LOGOUT");

    let (mut c, out) = c.starttls(ca);
    assert!(out.last().unwrap().contains(" OK"), "{out:?}");
    let r = c.run("CAPABILITY");
    assert!(!r[0].contains("STARTTLS"), "not again under TLS: {r:?}");
    let r = c.run(&format!("LOGIN {USER} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    c.run("LOGOUT");
}

/// What a client on the path could inject behind STARTTLS in the plaintext part.
fn pipelined_behind_starttls_is_not_run(city: &City, addr: SocketAddr) {
    let before = logins_in(city);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut buf = vec![0u8; 4096];
    let _ = s.read(&mut buf).expect("greeting");
    s.write_all(format!("s1 STARTTLS\r\ns2 LOGIN {USER} {PW}\r\ns3 NOOP\r\n").as_bytes())
        .expect("write");
    std::thread::sleep(Duration::from_millis(500));
    let mut got = Vec::new();
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let got = String::from_utf8_lossy(&got).into_owned();
    println!("pipelined behind STARTTLS on {addr}: {got:?}");
    assert!(!got.contains("s2 OK"), "{got}");
    assert!(
        !got.contains("s1 OK"),
        "no TLS with injected bytes queued: {got}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(logins_in(city), before, "no login reached Dovecot");
}

#[test]
fn bytes_pipelined_behind_starttls_are_not_executed_on_loopback() {
    let city = city();
    let port = city.proxy().expect("proxy").ports.imap;
    pipelined_behind_starttls_is_not_run(&city, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
}

#[test]
fn login_before_starttls_is_refused_on_a_non_loopback_listener() {
    let city = city();
    // The wildcard address (the sample's `0.0.0.0:143`) is not loopback, even when the client
    // comes over 127.0.0.1; and, where the machine has one, its own network address.
    refused_before_starttls(&city, Ipv4Addr::UNSPECIFIED, Ipv4Addr::LOCALHOST);
    match non_loopback_ip() {
        Some(ip) => refused_before_starttls(&city, ip, ip),
        None => println!("no non-loopback IPv4 address here: the wildcard listener only"),
    }
}

fn refused_before_starttls(city: &City, bind: Ipv4Addr, reach: Ipv4Addr) {
    let p = second_proxy(city, bind, reach);
    let ca = &city.pki().ca_cert;
    let before = logins_in(city);

    let mut c = ImapClient::plain_to(p.imap);
    println!("greeting on {}: {}", p.imap, c.greeting);
    assert!(c.greeting.contains("LOGINDISABLED"), "{}", c.greeting);
    assert!(c.greeting.contains("STARTTLS"), "{}", c.greeting);
    for cmd in [
        format!("LOGIN {USER} {PW}"),
        format!(
            "AUTHENTICATE PLAIN {}",
            demail_e2e::imap_replay::base64(format!("\0{USER}\0{PW}").as_bytes())
        ),
        "SELECT INBOX".to_string(),
    ] {
        let r = c.run(&cmd);
        println!("{cmd} -> {r:?}");
        let last = r.last().unwrap();
        assert!(
            last.contains(" NO") || last.contains(" BAD"),
            "{cmd}: {r:?}"
        );
    }
    assert_eq!(logins_in(city), before, "no login reached Dovecot");
    // Under TLS the same login works.
    let (mut c, out) = c.starttls(ca);
    assert!(out.last().unwrap().contains(" OK"), "{out:?}");
    let r = c.run(&format!("LOGIN {USER} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    c.run("LOGOUT");

    pipelined_behind_starttls_is_not_run(city, p.imap);
}
