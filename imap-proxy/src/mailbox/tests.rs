//! The virtual folders against a real evidence store in a temp dir, written through the
//! evidence API the way the milter records submissions and confirmations.

use std::path::PathBuf;
use std::sync::Arc;

use demail_evidence::{ConfirmationKind, Digest, NewConfirmation, NewSubmission, Store};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;

const CONFIG: &str = r#"
[gateway]
host = "gateway.provider.example"
port = 465
tls = "implicit"
client_certificate = "tls/client.pem"
client_key = "tls/client.key"
provider_ca = "tls/ca.pem"
domains = ["*.de-mail.de", "demail.provider.example"]

[inbound]
poststelle = ["poststelle@magdeburg.example"]

[evidence]
database = "ev/evidence.sqlite"
blobs = "ev/blobs"

[[tenant]]
name = "Landeshauptstadt Magdeburg"
public_body = true
internal_domains = ["magdeburg.example"]

  [[tenant.account]]
  address = "info@magdeburg.de-mail.de"
  deliver_to = ["poststelle@magdeburg.example"]
  senders = ["*@magdeburg.example"]
  visible_to = ["poststelle@magdeburg.example"]
  default_options = ["dispatch", "receipt"]

  [[tenant.account]]
  address = "wohngeld@magdeburg.de-mail.de"
  deliver_to = ["wohngeld@magdeburg.example"]
  senders = ["sasl:wohngeld-*"]
  visible_to = ["chefin"]
  default_options = ["dispatch", "receipt", "retrieve"]

[[tenant]]
name = "Hausverwaltung GmbH"
internal_domains = ["hv.example"]

  [[tenant.account]]
  address = "info@demail.provider.example"
  deliver_to = ["info@hv.example"]
  senders = ["*@hv.example"]
"#;

const T0: OffsetDateTime = datetime!(2026-11-02 09:00 UTC);
const ANNA: &str = "anna@magdeburg.example";
const BERND: &str = "bernd@magdeburg.example";
const HV: &str = "verwalter@hv.example";
const POST: &str = "poststelle@magdeburg.example";
const INFO: &str = "info@magdeburg.de-mail.de";
const WOHNGELD: &str = "wohngeld@magdeburg.de-mail.de";
const HV_ACCOUNT: &str = "info@demail.provider.example";
const BUERGER: &str = "buerger@example.de-mail.de";

struct Fx {
    dir: tempfile::TempDir,
    config: Arc<demail_policy::Config>,
    store: Store,
    n: std::cell::Cell<u32>,
}

impl Fx {
    fn new() -> Fx {
        Fx::in_dir(tempfile::tempdir().unwrap())
    }

    fn in_dir(dir: tempfile::TempDir) -> Fx {
        std::fs::create_dir(dir.path().join("tls")).unwrap();
        for f in ["client.pem", "client.key", "ca.pem"] {
            std::fs::write(dir.path().join("tls").join(f), "test material\n").unwrap();
        }
        let file = dir.path().join("demail.toml");
        let config = match demail_policy::Config::parse(CONFIG, &file) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("{e}"),
        };
        let store = Store::open_at(&config.evidence.database, &config.evidence.blobs).unwrap();
        Fx {
            dir,
            config,
            store,
            n: std::cell::Cell::new(0),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("proxy-state.sqlite")
    }

    fn mailboxes(&self) -> Mailboxes {
        Mailboxes::open(Arc::clone(&self.config), &self.state()).unwrap()
    }

    /// Records an outbound De-Mail like the milter does: the bytes that left as a blob, then
    /// the submission naming it.
    fn submit(
        &self,
        account: &str,
        clerk: &str,
        sasl: Option<&str>,
        subject: &str,
        options: &[&str],
        time: OffsetDateTime,
    ) -> NewSubmission {
        let n = self.n.get() + 1;
        self.n.set(n);
        let message = format!(
            "From: {account}\r\nTo: {BUERGER}\r\nSubject: {subject}\r\n\
             Message-ID: <m{n}@magdeburg.example>\r\nX-de-mail-private-id: pid-{n}\r\n\r\n\
             Sehr geehrte Damen und Herren, {n}\r\n"
        );
        let content = self.store.put_blob(message.as_bytes()).unwrap();
        let s = NewSubmission {
            private_id: format!("pid-{n}"),
            origin_key: Digest::of(message.as_bytes()),
            tenant: "t".into(),
            account: account.into(),
            clerk: clerk.into(),
            sasl_login: sasl.map(str::to_string),
            recipients: vec![BUERGER.into()],
            subject: subject.into(),
            message_id: format!("<m{n}@magdeburg.example>"),
            queue_id: format!("Q{n}"),
            options: options.iter().map(|o| o.to_string()).collect(),
            content,
            size: message.len() as u64,
            time,
        };
        self.store.record_submission(&s).unwrap();
        s
    }

    /// Records a confirmation; returns its raw bytes.
    fn confirm(
        &self,
        pid: Option<&str>,
        kind: ConfirmationKind,
        at: OffsetDateTime,
        trusted: bool,
    ) -> Vec<u8> {
        let n = self.n.get() + 1;
        self.n.set(n);
        let raw = format!(
            "From: provider@de-mail.de\r\nSubject: {} {}\r\nX-de-mail-private-id: {}\r\n\r\n\
             confirmation {n} {trusted}\r\n",
            kind.label(),
            at,
            pid.unwrap_or("-")
        )
        .into_bytes();
        let c = NewConfirmation {
            kind,
            private_id: pid.map(str::to_string),
            recipient: BUERGER.into(),
            provider_message_id: Some(format!("<p{n}@provider.example>")),
            raw: self.store.put_blob(&raw).unwrap(),
            xml: Some(
                self.store
                    .put_blob(format!("<xml>{n}</xml>").as_bytes())
                    .unwrap(),
            ),
            pdf: None,
            report: serde_json::json!({"verification": {"indication": "TOTAL_PASSED"}}),
            indication: "TOTAL_PASSED".into(),
            stated_time: Some(at),
            trusted,
        };
        self.store.record_confirmation(&c).unwrap();
        raw
    }
}

fn uids(m: &Mailboxes, login: &str, role: Role) -> Vec<u32> {
    m.snapshot(login, role)
        .unwrap()
        .items
        .iter()
        .map(|i| i.uid)
        .collect()
}

fn contents(m: &Mailboxes, login: &str, role: Role, now: OffsetDateTime) -> Vec<Vec<u8>> {
    m.snapshot_at(login, role, now)
        .unwrap()
        .items
        .iter()
        .map(|i| m.content(login, role, i.uid).unwrap().unwrap().to_vec())
        .collect()
}

const CONF_ROLES: [Role; 4] = [Role::Dispatch, Role::Receipt, Role::Retrieve, Role::Failed];

#[test]
fn each_login_sees_only_what_policy_lets_it() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid A", &["dispatch", "receipt"], T0);
    let b = fx.submit(INFO, BERND, None, "Bescheid B", &["dispatch"], T0);
    let h = fx.submit(HV_ACCOUNT, HV, None, "Nebenkosten", &["dispatch"], T0);
    let w = fx.submit(
        WOHNGELD,
        "wohngeld@magdeburg.example",
        Some("Wohngeld-Anna"),
        "Wohngeld",
        &["dispatch"],
        T0,
    );
    let t = T0 + Duration::minutes(5);
    let a_dispatch = fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, t, true);
    let a_receipt = fx.confirm(Some(&a.private_id), ConfirmationKind::Receipt, t, true);
    let b_dispatch = fx.confirm(Some(&b.private_id), ConfirmationKind::Dispatch, t, true);
    let h_dispatch = fx.confirm(Some(&h.private_id), ConfirmationKind::Dispatch, t, true);
    let w_failed = fx.confirm(
        Some(&w.private_id),
        ConfirmationKind::Notification("unknown-recipient".into()),
        t,
        true,
    );
    let m = fx.mailboxes();
    let now = T0 + Duration::hours(1);
    let see = |login: &str, role: Role| contents(&m, login, role, now);
    // The clerk sees his own, as received.
    assert_eq!(see(ANNA, Role::Dispatch), std::slice::from_ref(&a_dispatch));
    assert_eq!(see(ANNA, Role::Receipt), std::slice::from_ref(&a_receipt));
    assert!(see(ANNA, Role::Retrieve).is_empty());
    // Whatever the case and white space of the login.
    assert_eq!(
        see(" Anna@Magdeburg.EXAMPLE ", Role::Dispatch),
        std::slice::from_ref(&a_dispatch)
    );
    // Another clerk of the same tenant, a login of another tenant, look-alikes: not Anna's.
    assert_eq!(
        see(BERND, Role::Dispatch),
        std::slice::from_ref(&b_dispatch)
    );
    assert!(see(BERND, Role::Receipt).is_empty());
    assert_eq!(see(HV, Role::Dispatch), std::slice::from_ref(&h_dispatch));
    for login in [
        "\u{430}nna@magdeburg.example",
        "anna",
        "",
        " ",
        "chefin",
        "verwalter@hv.example",
    ] {
        for role in CONF_ROLES {
            let got = see(login, role);
            assert!(
                !got.contains(&a_dispatch) && !got.contains(&a_receipt),
                "{login:?} {role:?}"
            );
        }
    }
    // visible_to: the poststelle sees all of info@'s, nothing of wohngeld@'s or the other
    // tenant's; chefin all of wohngeld@'s.
    assert_eq!(see(POST, Role::Dispatch), [a_dispatch, b_dispatch]);
    assert_eq!(see(POST, Role::Receipt), [a_receipt]);
    assert!(see(POST, Role::Failed).is_empty());
    assert_eq!(see("chefin", Role::Failed), std::slice::from_ref(&w_failed));
    assert!(see("chefin", Role::Dispatch).is_empty());
    // The SASL login recorded at submission sees its De-Mail.
    assert_eq!(see("wohngeld-anna", Role::Failed), [w_failed]);
    // A UID of another login's folder is nothing here.
    let anna_uid = m.snapshot(ANNA, Role::Receipt).unwrap().items[0].uid;
    assert!(m.content(BERND, Role::Receipt, anna_uid).unwrap().is_none());
    assert!(m.content(HV, Role::Receipt, anna_uid).unwrap().is_none());
    assert!(
        m.store_flags(
            BERND,
            Role::Receipt,
            anna_uid,
            FlagChange {
                seen: Some(true),
                flagged: None
            }
        )
        .unwrap()
        .is_none()
    );
}

#[test]
fn untrusted_and_unmatched_confirmations_appear_nowhere() {
    let fx = Fx::new();
    let a = fx.submit(
        INFO,
        ANNA,
        None,
        "Bescheid",
        &["dispatch", "receipt", "retrieve"],
        T0,
    );
    let t = T0 + Duration::minutes(5);
    let untrusted = [
        fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, t, false),
        fx.confirm(Some(&a.private_id), ConfirmationKind::Receipt, t, false),
        fx.confirm(Some(&a.private_id), ConfirmationKind::Retrieve, t, false),
        fx.confirm(
            Some(&a.private_id),
            ConfirmationKind::Notification("unknown-recipient".into()),
            t,
            false,
        ),
    ];
    let unmatched = [
        fx.confirm(None, ConfirmationKind::Dispatch, t, true),
        fx.confirm(
            None,
            ConfirmationKind::Notification("other".into()),
            t,
            true,
        ),
        fx.confirm(Some("pid-of-nothing"), ConfirmationKind::Receipt, t, true),
    ];
    let m = fx.mailboxes();
    for login in [ANNA, POST, BERND, HV, "chefin"] {
        for role in Role::ALL {
            for bytes in contents(&m, login, role, t + Duration::hours(1)) {
                for bad in untrusted.iter().chain(&unmatched) {
                    assert!(
                        !bytes.windows(bad.len()).any(|w| w == &bad[..]),
                        "{login} {role:?}"
                    );
                }
            }
            if role != Role::Pending {
                assert!(uids(&m, login, role).is_empty(), "{login} {role:?}");
            }
        }
    }
    // The De-Mail is still pending: the untrusted confirmations moved nothing.
    assert_eq!(uids(&m, ANNA, Role::Pending).len(), 1);
}

#[test]
fn uids_and_uidvalidity_survive_reopening_and_new_evidence_gets_higher_uids() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch"], T0);
    for i in 0..3 {
        fx.confirm(
            Some(&a.private_id),
            ConfirmationKind::Dispatch,
            T0 + Duration::minutes(i),
            true,
        );
    }
    let first = {
        let m = fx.mailboxes();
        let s = m.snapshot(ANNA, Role::Dispatch).unwrap();
        assert_eq!(s.items.iter().map(|i| i.uid).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(s.uid_validity > 0);
        assert_eq!(s.uid_next, 4);
        // Another login's folder has a UID space of its own.
        let p = m.snapshot(POST, Role::Dispatch).unwrap();
        assert_eq!(p.items.iter().map(|i| i.uid).collect::<Vec<_>>(), [1, 2, 3]);
        s
    };
    let later = fx.confirm(
        Some(&a.private_id),
        ConfirmationKind::Dispatch,
        T0 + Duration::hours(1),
        true,
    );
    let m = fx.mailboxes();
    let s = m.snapshot(ANNA, Role::Dispatch).unwrap();
    assert_eq!(s.uid_validity, first.uid_validity);
    assert_eq!(
        s.items.iter().map(|i| i.uid).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(s.uid_next, 5);
    assert!(s.highest_modseq > first.highest_modseq);
    assert_eq!(*m.content(ANNA, Role::Dispatch, 4).unwrap().unwrap(), later);
    assert!(m.content(ANNA, Role::Dispatch, 5).unwrap().is_none());
    assert!(m.content(ANNA, Role::Dispatch, 0).unwrap().is_none());
    // Snapshots without news change nothing.
    let again = m.snapshot(ANNA, Role::Dispatch).unwrap();
    assert_eq!(again.highest_modseq, s.highest_modseq);
    assert_eq!(again.uid_next, s.uid_next);
    // Each role keeps its own UIDVALIDITY row; sizes are the bytes' lengths.
    for it in &s.items {
        let bytes = m.content(ANNA, Role::Dispatch, it.uid).unwrap().unwrap();
        assert_eq!(it.size, bytes.len() as u64);
    }
}

#[test]
fn content_is_the_stored_blob_exactly() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch"], T0);
    let c = fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, T0, true);
    let m = fx.mailboxes();
    let s = m.snapshot(ANNA, Role::Dispatch).unwrap();
    let got = m
        .content(ANNA, Role::Dispatch, s.items[0].uid)
        .unwrap()
        .unwrap();
    assert_eq!(*got, c);
    assert_eq!(Digest::of(&got), Digest::of(&c));
    // Served twice (the cache) the same.
    assert_eq!(
        m.content(ANNA, Role::Dispatch, s.items[0].uid)
            .unwrap()
            .unwrap(),
        got
    );
}

#[test]
fn a_tampered_blob_is_an_error_not_served() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch"], T0);
    let c = fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, T0, true);
    let m = fx.mailboxes();
    let uid = m.snapshot(ANNA, Role::Dispatch).unwrap().items[0].uid;
    demail_e2e::tamper::flip_blob_bit(
        fx.store.database_path(),
        fx.store.blob_dir(),
        &Digest::of(&c),
    );
    let err = m.content(ANNA, Role::Dispatch, uid).unwrap_err();
    assert!(err.to_string().contains("hashes to"), "{err}");
}

#[test]
fn pending_leaves_when_the_confirmation_arrives() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch", "receipt"], T0);
    let m = fx.mailboxes();
    let now = T0 + Duration::hours(1);
    let p0 = m.snapshot_at(ANNA, Role::Pending, now).unwrap();
    assert_eq!(p0.items.len(), 1);
    assert_eq!(
        m.snapshot_at(POST, Role::Pending, now).unwrap().items.len(),
        1
    );
    assert!(
        m.snapshot_at(BERND, Role::Pending, now)
            .unwrap()
            .items
            .is_empty()
    );
    // The dispatch confirmation arrives: still pending (receipt missing), but as a new message.
    fx.confirm(
        Some(&a.private_id),
        ConfirmationKind::Dispatch,
        T0 + Duration::minutes(5),
        true,
    );
    let p1 = m.snapshot_at(ANNA, Role::Pending, now).unwrap();
    assert_eq!(p1.items.len(), 1);
    assert!(p1.items[0].uid > p0.items[0].uid);
    assert!(p1.highest_modseq > p0.highest_modseq);
    assert!(
        m.content(ANNA, Role::Pending, p1.items[0].uid)
            .unwrap()
            .is_some()
    );
    // The receipt arrives: nothing is missing any more.
    fx.confirm(
        Some(&a.private_id),
        ConfirmationKind::Receipt,
        T0 + Duration::minutes(9),
        true,
    );
    let p2 = m.snapshot_at(ANNA, Role::Pending, now).unwrap();
    assert!(p2.items.is_empty());
    assert!(p2.uid_next > p1.items[0].uid);
    assert!(p2.highest_modseq > p1.highest_modseq);
    assert!(
        m.snapshot_at(ANNA, Role::DeemedServed, now)
            .unwrap()
            .items
            .is_empty()
    );
    // A failed recipient is not pending either (his notification is in Failed).
    let b = fx.submit(INFO, ANNA, None, "Zweiter", &["dispatch", "receipt"], T0);
    assert_eq!(
        m.snapshot_at(ANNA, Role::Pending, now).unwrap().items.len(),
        1
    );
    fx.confirm(
        Some(&b.private_id),
        ConfirmationKind::Notification("unknown-recipient".into()),
        T0,
        true,
    );
    assert!(
        m.snapshot_at(ANNA, Role::Pending, now)
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        m.snapshot_at(ANNA, Role::Failed, now).unwrap().items.len(),
        1
    );
    // Options without any confirmation requested: never pending.
    fx.submit(INFO, ANNA, None, "Ohne", &[], T0);
    assert!(
        m.snapshot_at(ANNA, Role::Pending, now)
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn deemed_served_appears_when_the_deadline_passes() {
    let fx = Fx::new();
    let login = "wohngeld-anna";
    // Dispatched Monday 2 November 2026, 10:05 CET: deemed served from Friday 00:00 CET.
    let w = fx.submit(
        WOHNGELD,
        "wohngeld@magdeburg.example",
        Some(login),
        "Bescheid über Wohngeld",
        &["dispatch", "retrieve"],
        T0,
    );
    fx.confirm(
        Some(&w.private_id),
        ConfirmationKind::Dispatch,
        T0 + Duration::minutes(5),
        true,
    );
    let m = fx.mailboxes();
    let before = datetime!(2026-11-05 22:59:59 UTC);
    let after = datetime!(2026-11-05 23:00:00 UTC);
    let p = m.snapshot_at(login, Role::Pending, before).unwrap();
    assert_eq!(p.items.len(), 1);
    assert!(
        m.snapshot_at(login, Role::DeemedServed, before)
            .unwrap()
            .items
            .is_empty()
    );
    let d = m.snapshot_at(login, Role::DeemedServed, after).unwrap();
    assert_eq!(d.items.len(), 1);
    assert!(
        m.snapshot_at(login, Role::Pending, after)
            .unwrap()
            .items
            .is_empty()
    );
    // Chefin (visible_to) sees it too, the poststelle of the other account not.
    assert_eq!(
        m.snapshot_at("chefin", Role::DeemedServed, after)
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(
        m.snapshot_at(POST, Role::DeemedServed, after)
            .unwrap()
            .items
            .is_empty()
    );
    let bytes = m
        .content(login, Role::DeemedServed, d.items[0].uid)
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("Subject: =?UTF-8?Q?Zustellfiktion=3A_Bescheid"),
        "{text}"
    );
    let msg = mail_parser::MessageParser::default()
        .parse(&bytes[..])
        .unwrap();
    let body = msg.body_text(0).unwrap();
    assert!(
        body.contains("05.11.2026 23:59:59 MEZ (eingetreten)"),
        "{body}"
    );
    assert!(
        body.contains("gilt als zugestellt mit Ablauf des 05.11.2026 23:59:59 MEZ"),
        "{body}"
    );
    assert!(
        body.contains("deemed served at the end of 05.11.2026 23:59:59 CET"),
        "{body}"
    );
    // The Date: the deadline or the latest event recorded (the test records today), stable
    // whenever asked later.
    let later = m
        .snapshot_at(login, Role::DeemedServed, after + Duration::days(30))
        .unwrap();
    assert_eq!(later.items[0].uid, d.items[0].uid);
    assert_eq!(later.items[0].internal_date, d.items[0].internal_date);
    assert!(d.items[0].internal_date >= datetime!(2026-11-05 23:59:59 +1));
    let date = msg.date().unwrap().to_timestamp();
    assert_eq!(date, d.items[0].internal_date.unix_timestamp());
    assert_eq!(
        *m.content(login, Role::DeemedServed, d.items[0].uid)
            .unwrap()
            .unwrap(),
        *bytes
    );
}

#[test]
fn flags_are_per_login_persisted_and_modseq_only_grows() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch"], T0);
    fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, T0, true);
    fx.confirm(
        Some(&a.private_id),
        ConfirmationKind::Dispatch,
        T0 + Duration::minutes(1),
        true,
    );
    let mut last = 0;
    {
        let m = fx.mailboxes();
        let s = m.snapshot(ANNA, Role::Dispatch).unwrap();
        last = last.max(s.highest_modseq);
        let seen = FlagChange {
            seen: Some(true),
            flagged: None,
        };
        let (flags, modseq) = m
            .store_flags(ANNA, Role::Dispatch, 1, seen)
            .unwrap()
            .unwrap();
        assert!(flags.seen && !flags.flagged);
        assert!(modseq > last);
        last = modseq;
        // The same change again: no new MODSEQ.
        let (_, same) = m
            .store_flags(ANNA, Role::Dispatch, 1, seen)
            .unwrap()
            .unwrap();
        assert_eq!(same, modseq);
        let flag = FlagChange {
            seen: None,
            flagged: Some(true),
        };
        let (flags, modseq) = m
            .store_flags(ANNA, Role::Dispatch, 2, flag)
            .unwrap()
            .unwrap();
        assert!(!flags.seen && flags.flagged);
        assert!(modseq > last);
        last = modseq;
        // The poststelle's copy of the same confirmations is untouched.
        let p = m.snapshot(POST, Role::Dispatch).unwrap();
        assert!(p.items.iter().all(|i| i.flags == Flags::default()));
        // No such UID.
        assert!(
            m.store_flags(ANNA, Role::Dispatch, 99, seen)
                .unwrap()
                .is_none()
        );
        assert!(
            m.store_flags(ANNA, Role::Receipt, 1, seen)
                .unwrap()
                .is_none()
        );
    }
    let m = fx.mailboxes();
    let s = m.snapshot(ANNA, Role::Dispatch).unwrap();
    assert_eq!(s.highest_modseq, last);
    assert_eq!(
        s.items[0].flags,
        Flags {
            seen: true,
            flagged: false
        }
    );
    assert_eq!(
        s.items[1].flags,
        Flags {
            seen: false,
            flagged: true
        }
    );
    assert_eq!(s.items[1].modseq, last);
    assert!(s.items.iter().all(|i| i.modseq <= s.highest_modseq));
    let unseen = FlagChange {
        seen: Some(false),
        flagged: None,
    };
    let (flags, modseq) = m
        .store_flags(ANNA, Role::Dispatch, 1, unseen)
        .unwrap()
        .unwrap();
    assert!(!flags.seen);
    assert!(modseq > last);
    assert!(
        m.snapshot(POST, Role::Dispatch)
            .unwrap()
            .items
            .iter()
            .all(|i| !i.flags.seen && !i.flags.flagged)
    );
    // Arrivals raise it too.
    fx.confirm(
        Some(&a.private_id),
        ConfirmationKind::Dispatch,
        T0 + Duration::minutes(2),
        true,
    );
    assert!(m.snapshot(ANNA, Role::Dispatch).unwrap().highest_modseq > modseq);
}

fn notice_of(fx: &Fx, m: &Mailboxes, login: &str, now: OffsetDateTime) -> Vec<u8> {
    let s = m.snapshot_at(login, Role::Pending, now).unwrap();
    assert_eq!(s.items.len(), 1, "{login}");
    let bytes = m
        .content(login, Role::Pending, s.items[0].uid)
        .unwrap()
        .unwrap();
    assert_eq!(s.items[0].size, bytes.len() as u64);
    let _ = fx;
    bytes.to_vec()
}

#[test]
fn the_notice_is_deterministic_and_carries_the_original() {
    let hostile = "Bescheid über Grundsteuer\r\nBcc: evil@example.org\r\n\r\nInjected \u{202e}";
    let run = || {
        let fx = Fx::new();
        let a = fx.submit(INFO, ANNA, None, hostile, &["dispatch", "receipt"], T0);
        fx.confirm(
            Some(&a.private_id),
            ConfirmationKind::Dispatch,
            T0 + Duration::minutes(5),
            true,
        );
        let m = fx.mailboxes();
        let bytes = notice_of(&fx, &m, ANNA, T0 + Duration::hours(2));
        // Asked again later, by another login, after reopening: the same bytes.
        assert_eq!(notice_of(&fx, &m, POST, T0 + Duration::days(2)), bytes);
        drop(m);
        assert_eq!(
            notice_of(&fx, &fx.mailboxes(), ANNA, T0 + Duration::hours(3)),
            bytes
        );
        let original = fx.store.read_blob(&a.content).unwrap();
        (bytes, original)
    };
    // Within one store the notice is a function of the events (checked inside `run`); two
    // stores differ in the times the events were recorded, which the notice shows.
    let (bytes, original) = run();
    // CRLF only.
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            assert_eq!(bytes[i - 1], b'\r', "bare LF at {i}");
        }
    }
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(bytes[..end + 2].to_vec()).unwrap();
    assert!(head.is_ascii());
    for line in head.split("\r\n") {
        assert!(!line.starts_with("Bcc:"), "{head}");
        assert!(line.len() <= 998);
    }
    for field in [
        "From:",
        "To:",
        "Subject:",
        "Date:",
        "Message-ID:",
        "MIME-Version: 1.0",
    ] {
        assert!(
            head.lines().any(|l| l.starts_with(field)),
            "{field} in {head}"
        );
    }
    let msg = mail_parser::MessageParser::default()
        .parse(&bytes[..])
        .unwrap();
    let subject = msg.subject().unwrap();
    assert!(
        subject.starts_with("Ausstehend: Bescheid über Grundsteuer"),
        "{subject:?}"
    );
    assert!(!subject.contains(['\r', '\n', '\u{202e}']), "{subject:?}");
    assert_eq!(msg.to().unwrap().first().unwrap().address(), Some(ANNA));
    assert_eq!(msg.from().unwrap().first().unwrap().address(), Some(INFO));
    let mid = msg.message_id().unwrap();
    assert!(
        mid.starts_with("pending.") && mid.ends_with(".pid-1@magdeburg.de-mail.de"),
        "{mid}"
    );
    // The text part, German first, then English.
    let text = msg.body_text(0).unwrap();
    let de = text.find("Ausstehend: Für diese De-Mail").unwrap();
    let en = text.find("Pending: at least one").unwrap();
    assert!(de < en);
    for want in [
        "Private-ID:  pid-1",
        "Bescheid über Grundsteuer",
        "Es fehlt:       Eingangsbestätigung",
        "Versandt:       02.11.2026 10:05:00 MEZ",
        "Missing:       receipt confirmation",
        BUERGER,
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    // The attachment: message/rfc822 with the original's exact bytes.
    assert_eq!(msg.attachment_count(), 1);
    let part = msg.attachment(0).unwrap();
    assert!(part.is_message());
    let inner = &msg.raw_message()[part.offset_body as usize..part.offset_end as usize];
    assert_eq!(inner, &original[..]);
    assert_eq!(part.message().unwrap().raw_message(), &original[..]);
}

#[test]
fn a_status_change_gives_a_new_message_id() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch", "receipt"], T0);
    let m = fx.mailboxes();
    let now = T0 + Duration::hours(1);
    let mid = |b: &[u8]| {
        mail_parser::MessageParser::default()
            .parse(b)
            .unwrap()
            .message_id()
            .unwrap()
            .to_string()
    };
    let first = mid(&notice_of(&fx, &m, ANNA, now));
    fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, T0, true);
    let second = mid(&notice_of(&fx, &m, ANNA, now));
    assert_ne!(first, second);
    // An untrusted confirmation changes nothing, not even the Date.
    let before = notice_of(&fx, &m, ANNA, now);
    fx.confirm(
        Some(&a.private_id),
        ConfirmationKind::Receipt,
        T0 + Duration::hours(5),
        false,
    );
    assert_eq!(notice_of(&fx, &m, ANNA, now), before);
}

#[test]
fn pruned_evidence_leaves_the_folders_without_failing() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Alt", &["dispatch", "receipt"], T0);
    fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, T0, true);
    let m = fx.mailboxes();
    let now = T0 + Duration::hours(1);
    let d = m.snapshot_at(ANNA, Role::Dispatch, now).unwrap();
    assert_eq!(d.items.len(), 1);
    let p = m.snapshot_at(ANNA, Role::Pending, now).unwrap();
    assert_eq!(p.items.len(), 1);
    // Retention over (events are recorded now, so prune as of 2 years from now).
    let out = fx
        .store
        .prune(1, OffsetDateTime::now_utc() + Duration::days(800), false)
        .unwrap();
    assert!(!out.removed.is_empty());
    // Fetching what the last snapshot listed: nothing, no error.
    assert!(
        m.content(ANNA, Role::Dispatch, d.items[0].uid)
            .unwrap()
            .is_none()
    );
    assert!(
        m.content(ANNA, Role::Pending, p.items[0].uid)
            .unwrap()
            .is_none()
    );
    let d2 = m.snapshot_at(ANNA, Role::Dispatch, now).unwrap();
    assert!(d2.items.is_empty());
    assert!(d2.highest_modseq > d.highest_modseq);
    assert!(
        m.snapshot_at(ANNA, Role::Pending, now)
            .unwrap()
            .items
            .is_empty()
    );
    // A fresh process too.
    let m = fx.mailboxes();
    assert!(
        m.snapshot_at(ANNA, Role::Dispatch, now)
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        m.snapshot_at(POST, Role::Pending, now)
            .unwrap()
            .items
            .is_empty()
    );
}

#[test]
fn state_file_must_be_ours_and_its_directory_must_exist() {
    let fx = Fx::new();
    fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch"], T0);
    // The evidence database given as the state file: refused, and left alone.
    let err = Mailboxes::open(
        Arc::clone(&fx.config),
        fx.config.evidence.database.sqlite_path().unwrap(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("not a proxy state file"), "{err}");
    assert_eq!(fx.store.events_after(0, 10).unwrap().len(), 1);
    let missing = fx.dir.path().join("no/such/dir/state.sqlite");
    let err = Mailboxes::open(Arc::clone(&fx.config), &missing)
        .err()
        .unwrap();
    assert!(err.to_string().contains("does not exist"), "{err}");
    // Created when missing, WAL.
    let m = fx.mailboxes();
    m.snapshot(ANNA, Role::Dispatch).unwrap();
    let conn = rusqlite::Connection::open(fx.state()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn the_proxy_never_writes_the_evidence_store() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch", "receipt"], T0);
    fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, T0, true);
    let head = fx.store.head().unwrap();
    let m = fx.mailboxes();
    for role in Role::ALL {
        let s = m.snapshot(POST, role).unwrap();
        for it in s.items {
            m.content(POST, role, it.uid).unwrap();
            m.store_flags(
                POST,
                role,
                it.uid,
                FlagChange {
                    seen: Some(true),
                    flagged: Some(true),
                },
            )
            .unwrap();
        }
    }
    assert_eq!(fx.store.head().unwrap(), head);
    assert!(fx.store.verify_chain().unwrap().problems.is_empty());
}

/// `cargo test -p demail-imap-proxy --release -- --ignored --nocapture hundred_thousand`
#[test]
#[ignore = "benchmark: records 100,000 confirmations (uses /dev/shm when present)"]
fn hundred_thousand_confirmations_snapshot_fast() {
    let dir = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    };
    let fx = Fx::in_dir(dir);
    let a = fx.submit(INFO, ANNA, None, "Massenbescheid", &["dispatch"], T0);
    let n = 100_000;
    let t = std::time::Instant::now();
    for i in 0..n {
        let raw = format!(
            "From: provider@de-mail.de\r\nSubject: dispatch {i}\r\n\r\nVersandbestaetigung {i}\r\n"
        );
        let c = NewConfirmation {
            kind: ConfirmationKind::Dispatch,
            private_id: Some(a.private_id.clone()),
            recipient: BUERGER.into(),
            provider_message_id: None,
            raw: fx.store.put_blob(raw.as_bytes()).unwrap(),
            xml: None,
            pdf: None,
            report: serde_json::json!({"verification": {"indication": "TOTAL_PASSED", "signer": "CN=Provider"}}),
            indication: "TOTAL_PASSED".into(),
            stated_time: Some(T0),
            trusted: true,
        };
        fx.store.record_confirmation(&c).unwrap();
    }
    eprintln!("recorded {n} confirmations in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let m = fx.mailboxes();
    eprintln!("open (catalog of {n}): {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let s = m.snapshot(ANNA, Role::Dispatch).unwrap();
    eprintln!("first snapshot (assigns {n} UIDs): {:?}", t.elapsed());
    assert_eq!(s.items.len(), n);
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let s = m.snapshot(ANNA, Role::Dispatch).unwrap();
        times.push(t.elapsed());
        assert_eq!(s.items.len(), n);
    }
    times.sort();
    eprintln!("later snapshots: median {:?}, max {:?}", times[5], times[9]);
    drop(m);
    let t = std::time::Instant::now();
    let m = fx.mailboxes();
    let s = m.snapshot(ANNA, Role::Dispatch).unwrap();
    eprintln!(
        "reopen + first snapshot (UID map from the state file): {:?}",
        t.elapsed()
    );
    assert_eq!(s.items.last().unwrap().uid, n as u32);
    let t = std::time::Instant::now();
    let s2 = m.snapshot(ANNA, Role::Dispatch).unwrap();
    eprintln!("snapshot after reopen: {:?}", t.elapsed());
    assert_eq!(s2.items.len(), n);
    fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, T0, true);
    let t = std::time::Instant::now();
    let s3 = m.snapshot(ANNA, Role::Dispatch).unwrap();
    eprintln!(
        "snapshot after one new confirmation (rebuilt): {:?}",
        t.elapsed()
    );
    assert_eq!(s3.items.len(), n + 1);
    let t = std::time::Instant::now();
    let (_, modseq) = m
        .store_flags(
            ANNA,
            Role::Dispatch,
            7,
            FlagChange {
                seen: Some(true),
                flagged: None,
            },
        )
        .unwrap()
        .unwrap();
    let s4 = m.snapshot(ANNA, Role::Dispatch).unwrap();
    eprintln!("STORE + snapshot: {:?}", t.elapsed());
    assert_eq!(s4.highest_modseq, modseq);
    assert!(s4.items[6].flags.seen);
    let t = std::time::Instant::now();
    let p = m.snapshot(ANNA, Role::Pending).unwrap();
    eprintln!(
        "pending snapshot (status over {n} confirmations): {:?}",
        t.elapsed()
    );
    assert!(p.items.is_empty());
    let t = std::time::Instant::now();
    for uid in 1..=1000 {
        m.content(ANNA, Role::Dispatch, uid).unwrap().unwrap();
    }
    eprintln!("1000 content reads: {:?}", t.elapsed());
    assert!(times[5] < std::time::Duration::from_millis(100));
}

#[test]
fn a_cached_snapshot_never_hides_news() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "A", &["dispatch"], T0);
    let b = fx.submit(INFO, BERND, None, "B", &["dispatch"], T0);
    fx.confirm(Some(&a.private_id), ConfirmationKind::Dispatch, T0, true);
    let m = fx.mailboxes();
    let first = m.snapshot(ANNA, Role::Dispatch).unwrap();
    // Another clerk's evidence: Anna's folder is unchanged, the poststelle's grows.
    let post = m.snapshot(POST, Role::Dispatch).unwrap();
    fx.confirm(Some(&b.private_id), ConfirmationKind::Dispatch, T0, true);
    let second = m.snapshot(ANNA, Role::Dispatch).unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.highest_modseq, first.highest_modseq);
    assert_eq!(
        m.snapshot(POST, Role::Dispatch).unwrap().items.len(),
        post.items.len() + 1
    );
    // Her own: shown at once, with the flag change made meanwhile kept.
    let seen = FlagChange {
        seen: Some(true),
        flagged: None,
    };
    m.store_flags(ANNA, Role::Dispatch, first.items[0].uid, seen)
        .unwrap();
    assert!(
        m.snapshot(ANNA, Role::Dispatch).unwrap().items[0]
            .flags
            .seen
    );
    fx.confirm(
        Some(&a.private_id),
        ConfirmationKind::Dispatch,
        T0 + Duration::minutes(1),
        true,
    );
    let third = m.snapshot(ANNA, Role::Dispatch).unwrap();
    assert_eq!(third.items.len(), 2);
    assert!(third.items[0].flags.seen && !third.items[1].flags.seen);
    assert!(third.highest_modseq > second.highest_modseq);
    // The pending folder follows her confirmations too (dispatch requested and now there).
    assert!(m.snapshot(ANNA, Role::Pending).unwrap().items.is_empty());
}

#[test]
fn a_reloaded_configuration_changes_who_sees_what_and_keeps_the_uids() {
    let fx = Fx::new();
    let a = fx.submit(INFO, ANNA, None, "Bescheid", &["dispatch"], T0);
    fx.confirm(
        Some(&a.private_id),
        ConfirmationKind::Dispatch,
        T0 + Duration::minutes(5),
        true,
    );
    let m = fx.mailboxes();
    let anna = uids(&m, ANNA, Role::Dispatch);
    assert_eq!(anna.len(), 1);
    assert_eq!(uids(&m, POST, Role::Dispatch).len(), 1);
    assert!(uids(&m, "chefin", Role::Dispatch).is_empty());

    // The admin moves the info@ account's evidence from the poststelle to the Chefin.
    let changed = CONFIG.replacen(
        "visible_to = [\"poststelle@magdeburg.example\"]",
        "visible_to = [\"chefin\"]",
        1,
    );
    let file = fx.dir.path().join("demail.toml");
    let config = Arc::new(demail_policy::Config::parse(&changed, &file).expect("valid"));
    m.reconfigure(config);
    assert!(
        uids(&m, POST, Role::Dispatch).is_empty(),
        "no longer visible_to"
    );
    assert_eq!(uids(&m, "chefin", Role::Dispatch).len(), 1);
    assert_eq!(
        uids(&m, ANNA, Role::Dispatch),
        anna,
        "the clerk's UIDs stay"
    );
}
