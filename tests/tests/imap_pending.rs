//! `Ausstehend` through the proxy, from the real confirmation flow: a De-Mail with
//! `[Abholbestätigung]` waits there (a notice with the sent De-Mail attached) until the
//! Abholbestätigung arrives, then leaves (EXPUNGE at the next NOOP); UIDVALIDITY and UIDs stay
//! the same when the proxy restarts, and a UID that left is never given again.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use demail_e2e::ImapClient;
use demail_e2e::city::{CITIZEN, CLERK, POSTSTELLE};
use demail_e2e::proxy_city::{self, CLERK2, DISPATCH_FOLDER, PW};

const PENDING: &str = "De-Mail/Ausstehend";
const RETRIEVE: &str = "De-Mail/Abholbest&AOQ-tigungen";

fn login(port: u16, user: &str) -> ImapClient {
    let mut c = ImapClient::plain(port);
    let r = c.run(&format!("LOGIN {user} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{r:?}");
    c
}

/// `* n EXISTS` of a SELECT answer, and its UIDVALIDITY.
fn select(c: &mut ImapClient, folder: &str) -> (u32, u32, Vec<String>) {
    let r = c.run(&format!("SELECT \"{folder}\""));
    assert!(r.last().unwrap().contains(" OK ["), "{r:?}");
    let exists = r
        .iter()
        .find_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" EXISTS\r\n")?
                .parse()
                .ok()
        })
        .expect("EXISTS");
    let validity = r
        .iter()
        .find_map(|l| {
            l.split("[UIDVALIDITY ")
                .nth(1)?
                .split(']')
                .next()?
                .parse()
                .ok()
        })
        .expect("UIDVALIDITY");
    (exists, validity, r)
}

fn body_of(response: &[String]) -> String {
    response.concat()
}

#[test]
fn a_pending_de_mail_waits_in_ausstehend_until_retrieved_and_uids_survive_a_restart() {
    let mut city = proxy_city::start("");
    let id = proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid [Abholbestaetigung]");
    proxy_city::wait_confirmations(&city, &id, 2);
    let port = city.proxy().expect("proxy").ports.imap;

    // The clerk and the poststelle (visible_to) see it waiting; the other clerk does not.
    let mut clerk = login(port, CLERK);
    let (n, pending_validity, _) = select(&mut clerk, PENDING);
    assert_eq!(n, 1, "the clerk's De-Mail waits for its Abholbestätigung");
    let mut post = login(port, POSTSTELLE);
    assert_eq!(select(&mut post, PENDING).0, 1);
    let mut other = login(port, CLERK2);
    assert_eq!(select(&mut other, PENDING).0, 0);

    // The notice: a text a clerk reads (private-id, what is missing), then the sent De-Mail
    // exactly as recorded, as message/rfc822.
    let r = clerk.run("UID FETCH 1 (UID BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[2])");
    let text = body_of(&r);
    assert!(
        text.to_ascii_lowercase()
            .contains("(\"message\" \"rfc822\""),
        "{text}"
    );
    assert!(
        text.contains(&id),
        "the notice names the private-id: {text}"
    );
    let submission = city
        .submissions()
        .into_iter()
        .find(|s| s.private_id == id)
        .expect("recorded");
    let original = city
        .evidence()
        .expect("store")
        .read_blob(&submission.content)
        .expect("blob");
    let raw = clerk.run_raw(b"UID FETCH 1 (BODY.PEEK[2])");
    let fetched = &raw[0];
    let start = fetched
        .windows(3)
        .position(|w| w == b"}\r\n")
        .expect("a literal")
        + 3;
    assert_eq!(
        &fetched[start..start + original.len()],
        &original[..],
        "the attached De-Mail is the recorded one, byte for byte"
    );
    let (_, dispatch_validity, _) = select(&mut clerk, DISPATCH_FOLDER);
    let untagged =
        |r: Vec<String>| -> Vec<String> { r.into_iter().filter(|l| l.starts_with("* ")).collect() };
    let dispatch_uids = untagged(clerk.run("UID FETCH 1:* (UID)"));
    assert_eq!(dispatch_uids, ["* 1 FETCH (UID 1)\r\n"]);

    // The citizen retrieves: the Abholbestätigung arrives, the notice leaves.
    select(&mut clerk, PENDING);
    city.simulator()
        .expect("simulator")
        .retrieve(&id)
        .expect("the provider sends the Abholbestätigung");
    proxy_city::wait_confirmations(&city, &id, 3);
    let r = clerk.run("NOOP");
    assert!(
        r.iter().any(|l| l == "* 1 EXPUNGE\r\n"),
        "the retrieved De-Mail leaves Ausstehend: {r:?}"
    );
    assert_eq!(select(&mut clerk, RETRIEVE).0, 1);

    // A restart keeps UIDVALIDITY and UIDs; the UID that left is not reused.
    drop((clerk, post, other));
    city.restart_proxy();
    let mut clerk = login(port, CLERK);
    let (n, validity, r) = select(&mut clerk, PENDING);
    assert_eq!((n, validity), (0, pending_validity), "{r:?}");
    assert!(r.iter().any(|l| l.contains("[UIDNEXT 2]")), "{r:?}");
    let (_, validity, _) = select(&mut clerk, DISPATCH_FOLDER);
    assert_eq!(validity, dispatch_validity);
    assert_eq!(untagged(clerk.run("UID FETCH 1:* (UID)")), dispatch_uids);
}

#[test]
fn copy_and_move_out_of_a_confirmation_folder_leave_the_evidence_in_place() {
    let city = proxy_city::start("");
    let id = proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid zum Ablegen");
    proxy_city::wait_confirmations(&city, &id, 2);
    let blobs = proxy_city::confirmation_blobs(&city, std::slice::from_ref(&id));
    let mut c = login(city.proxy().expect("proxy").ports.imap, CLERK);
    assert_eq!(select(&mut c, DISPATCH_FOLDER).0, 1);

    let r = c.run("UID COPY 1 INBOX");
    assert!(r.last().unwrap().contains(" OK [COPYUID "), "{r:?}");
    let r = c.run("UID MOVE 1 INBOX");
    assert!(r.last().unwrap().contains(" OK "), "{r:?}");
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    // Into another virtual folder: refused.
    let r = c.run(&format!("UID COPY 1 \"{PENDING}\""));
    assert!(r.last().unwrap().contains(" NO [CANNOT]"), "{r:?}");
    // The evidence is still there, and INBOX holds two copies of exactly its bytes.
    assert_eq!(select(&mut c, DISPATCH_FOLDER).0, 1);
    assert_eq!(select(&mut c, "INBOX").0, 2);
    for uid in [1, 2] {
        let raw = c.run_raw(format!("UID FETCH {uid} (BODY.PEEK[])").as_bytes());
        let fetched = &raw[0];
        let start = fetched
            .windows(3)
            .position(|w| w == b"}\r\n")
            .expect("a literal")
            + 3;
        assert!(
            blobs
                .iter()
                .any(|b| fetched.get(start..start + b.len()) == Some(&b[..])),
            "copy {uid} is a stored confirmation, byte for byte"
        );
    }
}
