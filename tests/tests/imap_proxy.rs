//! The IMAP proxy end to end: real Dovecot behind `demail-imap-proxy` (as a process), the
//! test city's evidence, real clients.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use demail_e2e::city::{CLERK, POSTSTELLE};
use demail_e2e::{City, CityOptions, ImapClient};

const PW: &str = "secret-pw";

fn city() -> City {
    City::start(CityOptions {
        dovecot_users: vec![(POSTSTELLE.into(), PW.into()), (CLERK.into(), PW.into())],
        imap_proxy: true,
        ..CityOptions::default()
    })
}

#[test]
fn passes_dovecot_through_and_adds_the_folders() {
    let city = city();
    let proxy = city.proxy().expect("proxy");
    let mut c = ImapClient::plain(proxy.ports.imap);
    assert!(
        c.greeting.starts_with("* OK [CAPABILITY "),
        "{}",
        c.greeting
    );
    assert!(!c.greeting.contains("COMPRESS"), "{}", c.greeting);
    let r = c.run(&format!("LOGIN {POSTSTELLE} {PW}"));
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    let r = c.run("LIST \"\" \"*\"");
    println!("{r:#?}");
    assert!(r.iter().any(|l| l.contains("INBOX")), "{r:?}");
    assert!(
        r.iter()
            .any(|l| l.contains("De-Mail/Versandbest&AOQ-tigungen")),
        "{r:?}"
    );
    let r = c.run("SELECT INBOX");
    assert!(r.last().unwrap().contains("OK [READ-WRITE]"), "{r:?}");
    let r = c.run("SELECT \"De-Mail/Ausstehend\"");
    println!("{r:#?}");
    assert!(r.last().unwrap().contains("OK [READ-WRITE]"), "{r:?}");
    let r = c.run("UID FETCH 1:* (UID FLAGS)");
    assert!(r.last().unwrap().contains("OK"), "{r:?}");
    let r = c.run("LOGOUT");
    assert!(r.iter().any(|l| l.starts_with("* BYE")), "{r:?}");
}

/// SIGHUP: a changed listener address keeps the running listener (the log names the key), a
/// file with errors is refused with its line, and the proxy serves on throughout.
#[test]
fn sighup_keeps_the_listeners_and_refuses_a_broken_file() {
    use std::time::Duration;

    use demail_e2e::wait_until;

    let city = city();
    let proxy = city.proxy().expect("proxy");
    let port = proxy.ports.imap;
    let login = || {
        let mut c = ImapClient::plain(port);
        let r = c.run(&format!("LOGIN {CLERK} {PW}"));
        assert!(r.last().unwrap().contains("OK"), "{r:?}");
        c.run("LOGOUT");
    };
    let hup = || {
        // SAFETY: kill(2) on the proxy child the city started; no memory is involved.
        let rc = unsafe { libc::kill(proxy.pid() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0, "SIGHUP to the proxy");
    };
    let wait_log = |what: &str| {
        wait_until(Duration::from_secs(30), what, || {
            proxy.log_text().contains(what).then_some(())
        })
    };
    let path = city.config_path();
    let good = std::fs::read_to_string(path).unwrap();
    let elsewhere = demail_e2e::free_port();
    let moved = good.replace(
        &format!("listen_imap = \"127.0.0.1:{port}\""),
        &format!("listen_imap = \"127.0.0.1:{elsewhere}\""),
    );
    assert_ne!(moved, good, "the test city's [imap_proxy] listen_imap");
    std::fs::write(path, moved).unwrap();
    hup();
    wait_log("SIGHUP: configuration reloaded");
    wait_log("[imap_proxy] listen_imap changed; the running value stays until a restart");
    login();
    assert!(std::net::TcpStream::connect(("127.0.0.1", elsewhere)).is_err());

    std::fs::write(
        path,
        format!("{good}\n[imap_proxy.metrics]\nlisten = \"no port\"\n"),
    )
    .unwrap();
    hup();
    wait_log("SIGHUP: reload refused, configuration not reloaded: the running one stays");
    let log = proxy.log_text();
    assert!(log.contains(": imap_proxy.metrics.listen: "), "{log}");
    login();
}
