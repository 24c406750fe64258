//! Starting, stopping, restarting on the same store, pipelining, and connection limits.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Client, Fixture, RCPT, SENDER, message};
use demail_provider_sim::receive::{Limits, RunOptions};
use demail_provider_sim::{Simulator, Stage, TlsMode};

#[test]
fn stop_frees_the_port_and_a_restart_continues_numbering() {
    let fx = Fixture::new();
    let sim = Simulator::start(fx.config(TlsMode::Implicit)).expect("start");
    let addr = sim.addr();
    assert_ne!(addr.port(), 0);
    let mut c = Client::implicit(addr, &fx.pki.ca_cert, Some(&fx.client_identity())).expect("TLS");
    assert_eq!(
        c.send(SENDER, &[RCPT], &message("", "eins\n")).first(),
        "250 2.0.0 Ok: queued as 0001"
    );

    // An open connection does not keep stop() waiting, and is closed by it.
    let t = Instant::now();
    sim.stop();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(
        c.read_reply().is_err(),
        "connection must be closed by stop()"
    );

    // The port can be bound again: by a plain listener, then by a new simulator.
    drop(TcpListener::bind(addr).expect("port free after stop"));
    let mut cfg = fx.config(TlsMode::Implicit);
    cfg.listen = addr;
    let sim = Simulator::start(cfg).expect("restart on the same port");
    let mut c = Client::implicit(addr, &fx.pki.ca_cert, Some(&fx.client_identity())).expect("TLS");
    assert_eq!(
        c.send(SENDER, &[RCPT], &message("", "zwei\n")).first(),
        "250 2.0.0 Ok: queued as 0002"
    );
    assert_eq!(
        sim.accepted().len(),
        1,
        "a new simulator starts with an empty list"
    );
    assert!(fx.dir.path().join("store/0001.eml").exists());
    assert!(fx.dir.path().join("store/0002.json").exists());
}

#[test]
fn wait_for_returns_after_the_timeout_with_what_there_is() {
    let fx = Fixture::new();
    let sim = Simulator::start(fx.config(TlsMode::Implicit)).expect("start");
    let t = Instant::now();
    assert!(sim.wait_for(1, Duration::from_millis(200)).is_empty());
    assert!(t.elapsed() >= Duration::from_millis(200));

    // A message arriving while a waiter waits wakes it.
    let addr = sim.addr();
    let ca = fx.pki.ca_cert.clone();
    let id = fx.client_identity();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let mut c = Client::implicit(addr, &ca, Some(&id)).expect("TLS");
        c.send(SENDER, &[RCPT], &message("", "später\n")).code
    });
    let got = sim.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(sender.join().expect("sender"), 250);
}

#[test]
fn pipelined_transaction_gets_replies_in_order() {
    let fx = Fixture::new();
    let sim = Simulator::start(fx.config(TlsMode::Implicit)).expect("start");
    let mut c =
        Client::implicit(sim.addr(), &fx.pki.ca_cert, Some(&fx.client_identity())).expect("TLS");
    c.cmd("EHLO gw.magdeburg.example");
    // RFC 2920: MAIL, RCPTs and DATA in one write, as Postfix does.
    c.write_raw(
        format!(
            "MAIL FROM:<{SENDER}> SIZE=100\r\nRCPT TO:<{RCPT}>\r\nRCPT TO:<x@gmail.com>\r\n\
             RCPT TO:<y@b.de-mail.de>\r\nDATA\r\n"
        )
        .as_bytes(),
    );
    let codes: Vec<u16> = (0..5)
        .map(|_| c.read_reply().expect("reply").code)
        .collect();
    assert_eq!(codes, [250, 250, 550, 250, 354]);
    let mut msg = message("", "pipelined\n");
    msg.extend_from_slice(b".\r\nQUIT\r\n");
    c.write_raw(&msg);
    assert_eq!(c.read_reply().expect("eod").code, 250);
    assert_eq!(c.read_reply().expect("quit").code, 221);
    assert_eq!(sim.accepted()[0].rcpts, [RCPT, "y@b.de-mail.de"]);
}

#[test]
fn connection_limit() {
    let fx = Fixture::new();
    let opts = RunOptions {
        limits: Limits {
            max_connections: 1,
            ..Limits::default()
        },
        log_to_stderr: false,
        send: None,
    };
    let sim = Simulator::start_with(fx.config(TlsMode::Starttls), opts).expect("start");
    let _first = Client::plain(sim.addr(), &fx.pki.ca_cert);
    let mut second = std::net::TcpStream::connect(sim.addr()).expect("connect");
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut second, &mut reply).expect("read");
    assert_eq!(reply, "421 4.7.0 Too many connections, try again later\r\n");
    let rejected = sim.rejected();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].stage, Stage::Connect);
}

#[test]
fn bad_configuration_is_refused_with_a_clear_error() {
    let fx = Fixture::new();
    let mut cfg = fx.config(TlsMode::Implicit);
    cfg.server_key = fx.pki.client_key.clone();
    let err = Simulator::start(cfg)
        .err()
        .expect("mismatched key must fail");
    assert!(err.to_string().contains("server_key"), "{err}");

    let mut cfg = fx.config(TlsMode::Implicit);
    cfg.client_ca = fx.dir.path().join("missing.pem");
    let err = Simulator::start(cfg).err().expect("missing CA must fail");
    assert!(
        err.to_string().contains("client_ca") && err.to_string().contains("missing.pem"),
        "{err}"
    );

    let mut cfg = fx.config(TlsMode::Implicit);
    cfg.demail_domains.clear();
    let err = Simulator::start(cfg).err().expect("no domains must fail");
    assert!(err.to_string().contains("demail_domains"), "{err}");
}
