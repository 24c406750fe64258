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
