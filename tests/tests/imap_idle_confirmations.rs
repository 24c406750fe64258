//! A clerk idling in his Versandbestätigungen folder sees a new confirmation arrive: he sends
//! a De-Mail, the provider's Versandbestätigung comes through the real flow, and the proxy
//! pushes `* n EXISTS` during IDLE; after DONE the new message is fetched with the evidence's
//! bytes.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::time::{Duration, Instant};

use demail_e2e::ImapClient;
use demail_e2e::city::{CITIZEN, CLERK};
use demail_e2e::proxy_city::{self, DISPATCH_FOLDER, PW};
use demail_evidence::ConfirmationKind;

#[test]
fn idle_in_a_confirmation_folder_announces_a_new_confirmation() {
    let city = proxy_city::start("");
    let mut c = ImapClient::plain(city.proxy().expect("proxy").ports.imap);
    c.set_read_timeout(Duration::from_secs(90));
    let r = c.run(&format!("LOGIN {CLERK} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    let r = c.run(&format!("SELECT \"{DISPATCH_FOLDER}\""));
    assert!(r.iter().any(|l| l.trim_end() == "* 0 EXISTS"), "{r:?}");
    let tag = c.next_tag();
    c.send_raw(format!("{tag} IDLE\r\n").as_bytes());
    let cont = String::from_utf8_lossy(&c.read_response()).into_owned();
    assert!(cont.starts_with('+'), "{cont}");

    let id = proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid waehrend IDLE");
    let started = Instant::now();
    let pushed = loop {
        let r = String::from_utf8_lossy(&c.read_response()).into_owned();
        if r.trim_end() == "* 1 EXISTS" {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no EXISTS during IDLE; last {r:?}"
        );
    };
    println!(
        "pushed {:?} {:.1} s after the submission",
        pushed.trim_end(),
        started.elapsed().as_secs_f64()
    );
    c.send_raw(b"DONE\r\n");
    let r = c.until_tagged(&tag);
    assert!(
        String::from_utf8_lossy(r.last().unwrap()).contains(" OK"),
        "{r:?}"
    );
    let r = c.run_raw(b"UID FETCH 1:* (UID BODY.PEEK[])");
    let fetched = &r[0];
    let store = city.evidence().expect("evidence");
    let conf = store
        .confirmations(&id)
        .expect("confirmations")
        .into_iter()
        .find(|c| c.data.kind == ConfirmationKind::Dispatch)
        .expect("the Versandbestätigung recorded");
    let blob = store.read_blob(&conf.data.raw).expect("blob");
    assert!(
        fetched.windows(blob.len()).any(|w| w == blob.as_slice()),
        "the fetched message is the evidence's bytes"
    );
}
