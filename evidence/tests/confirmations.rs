//! Confirmations, the status projection, deemed served, prune and export.

mod common;

use std::process::Command;

use common::{Fixture, T0, submission};
use demail_evidence::{ConfirmationKind, NewConfirmation, Status, Store};
use time::OffsetDateTime;
use time::macros::datetime;

fn confirmation(
    store: &Store,
    pid: &str,
    recipient: &str,
    kind: ConfirmationKind,
    at: OffsetDateTime,
    trusted: bool,
) -> NewConfirmation {
    let label = kind.label();
    let raw = format!("Subject: {label} {recipient} {at}\r\n\r\nraw {trusted}\r\n");
    NewConfirmation {
        kind,
        private_id: Some(pid.to_string()),
        recipient: recipient.to_string(),
        provider_message_id: Some(format!("<p-{label}@provider.example>")),
        raw: store.put_blob(raw.as_bytes()).unwrap(),
        xml: Some(
            store
                .put_blob(format!("<Acknowledge-Message>{label}</Acknowledge-Message>").as_bytes())
                .unwrap(),
        ),
        pdf: Some(
            store
                .put_blob(format!("%PDF-1.4 {label}").as_bytes())
                .unwrap(),
        ),
        report: serde_json::json!({"indication": if trusted {"TOTAL_PASSED"} else {"TOTAL_FAILED"}, "signer": {"cn": "Provider"}}),
        indication: if trusted {
            "TOTAL_PASSED"
        } else {
            "TOTAL_FAILED"
        }
        .into(),
        stated_time: Some(at),
        trusted,
    }
}

fn status_of(
    store: &Store,
    pid: &str,
    r: &str,
    now: OffsetDateTime,
) -> demail_evidence::RecipientStatus {
    store
        .recipient_status_at(pid, now)
        .unwrap()
        .into_iter()
        .find(|s| s.recipient == r)
        .unwrap()
}

#[test]
fn status_moves_forward_only_and_ignores_untrusted() {
    let f = Fixture::new();
    let store = f.open();
    let s = submission(&store, "a", 1, T0);
    store.record_submission(&s).unwrap();
    let r = s.recipients[0].clone();
    let now = T0 + time::Duration::hours(1);
    // Out of order: retrieval first, then the dispatch.
    let ret = confirmation(
        &store,
        &s.private_id,
        &r,
        ConfirmationKind::Retrieve,
        T0 + time::Duration::minutes(30),
        true,
    );
    assert!(store.record_confirmation(&ret).unwrap().is_inserted());
    let disp = confirmation(
        &store,
        &s.private_id,
        &r,
        ConfirmationKind::Dispatch,
        T0 + time::Duration::minutes(1),
        true,
    );
    store.record_confirmation(&disp).unwrap();
    let st = status_of(&store, &s.private_id, &r, now);
    assert_eq!(st.status, Status::Retrieved);
    assert_eq!(st.since, T0 + time::Duration::minutes(30));
    // Idempotent on the raw bytes.
    let again = store.record_confirmation(&ret).unwrap();
    assert!(!again.is_inserted());
    assert_eq!(store.confirmations(&s.private_id).unwrap().len(), 2);
    // An untrusted failure for the other recipient is kept but counts for nothing.
    let other = s.recipients[1].clone();
    let forged = confirmation(
        &store,
        &s.private_id,
        &other,
        ConfirmationKind::Notification("unknown-recipient".into()),
        T0,
        false,
    );
    store.record_confirmation(&forged).unwrap();
    assert_eq!(
        status_of(&store, &s.private_id, &other, now).status,
        Status::Submitted
    );
    let real = confirmation(
        &store,
        &s.private_id,
        &other,
        ConfirmationKind::Notification("unknown-recipient".into()),
        T0,
        true,
    );
    store.record_confirmation(&real).unwrap();
    assert_eq!(
        status_of(&store, &s.private_id, &other, now).status,
        Status::Failed
    );
    assert_eq!(store.confirmations(&s.private_id).unwrap().len(), 4);
    let report = store.verify_chain().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 5);
}

#[test]
fn deemed_served_after_the_third_day_only_with_retrieve_requested() {
    let f = Fixture::new();
    let store = f.open();
    let mut s = submission(&store, "b", 1, T0);
    s.options.push("retrieve".into());
    store.record_submission(&s).unwrap();
    let r = s.recipients[0].clone();
    // Dispatched Monday 2026-11-02 10:00 Berlin; day 3 ends Thursday 24:00 Berlin = 23:00 UTC.
    let d = datetime!(2026-11-02 09:00 UTC);
    store
        .record_confirmation(&confirmation(
            &store,
            &s.private_id,
            &r,
            ConfirmationKind::Dispatch,
            d,
            true,
        ))
        .unwrap();
    let before = status_of(
        &store,
        &s.private_id,
        &r,
        datetime!(2026-11-05 22:59:59 UTC),
    );
    assert_eq!(
        before.deemed_served_deadline,
        Some(datetime!(2026-11-05 23:59:59 +1))
    );
    assert!(!before.deemed_served);
    assert_eq!(before.status, Status::Dispatched);
    let after = status_of(&store, &s.private_id, &r, datetime!(2026-11-05 23:00 UTC));
    assert!(after.deemed_served);
    // Without the Abholbestätigung option there is no deadline.
    let plain = submission(&store, "b", 2, T0);
    store.record_submission(&plain).unwrap();
    let r2 = plain.recipients[0].clone();
    store
        .record_confirmation(&confirmation(
            &store,
            &plain.private_id,
            &r2,
            ConfirmationKind::Dispatch,
            d,
            true,
        ))
        .unwrap();
    let st = status_of(
        &store,
        &plain.private_id,
        &r2,
        datetime!(2027-01-01 00:00 UTC),
    );
    assert_eq!(st.deemed_served_deadline, None);
    assert!(!st.deemed_served);
    // A retrieval before the deadline: served by retrieval, not deemed.
    store
        .record_confirmation(&confirmation(
            &store,
            &s.private_id,
            &r,
            ConfirmationKind::Retrieve,
            d + time::Duration::days(1),
            true,
        ))
        .unwrap();
    let st = status_of(&store, &s.private_id, &r, datetime!(2026-12-01 00:00 UTC));
    assert_eq!(st.status, Status::Retrieved);
    assert!(!st.deemed_served);
}

#[test]
fn tampered_confirmation_blob_or_event_is_named() {
    let f = Fixture::new();
    let store = f.open();
    let s = submission(&store, "c", 1, T0);
    store.record_submission(&s).unwrap();
    let c = confirmation(
        &store,
        &s.private_id,
        &s.recipients[0],
        ConfirmationKind::Receipt,
        T0,
        true,
    );
    let id = store
        .record_confirmation(&c)
        .unwrap()
        .confirmation()
        .event_id;
    f.flip_blob_bit(&c.pdf.unwrap(), 0);
    let report = store.verify_chain().unwrap();
    assert_eq!(report.first_bad_event(), Some(id), "{report:?}");
    assert!(
        report.problems[0].to_string().contains("altered"),
        "{}",
        report.problems[0]
    );
}

#[test]
fn prune_removes_only_expired_blobs_and_the_chain_still_verifies() {
    let f = Fixture::new();
    let store = f.open();
    // Event times are the recording time (now), so "now" for the prune lies in the future.
    let old = submission(&store, "d", 1, T0);
    store.record_submission(&old).unwrap();
    let c = confirmation(
        &store,
        &old.private_id,
        &old.recipients[0],
        ConfirmationKind::Dispatch,
        T0,
        true,
    );
    store.record_confirmation(&c).unwrap();
    let recorded = OffsetDateTime::now_utc();
    // Nothing is due within the retention period.
    let none = store
        .prune(10, recorded + time::Duration::days(365), false)
        .unwrap();
    assert!(
        none.removed.is_empty() && none.event_id.is_none(),
        "{none:?}"
    );
    let later = recorded + time::Duration::days(11 * 366);
    let dry = store.prune(10, later, true).unwrap();
    assert_eq!(dry.removed.len(), 4); // message, raw, xml, pdf
    assert!(store.read_blob(&old.content).is_ok());
    // A newer submission sharing nothing stays intact.
    let done = store.prune(10, later, false).unwrap();
    assert_eq!(done.removed.len(), 4);
    assert!(done.event_id.is_some());
    assert!(matches!(
        store.read_blob(&old.content),
        Err(demail_evidence::Error::BlobMissing { .. })
    ));
    let report = store.verify_chain().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.pruned_blobs, 4);
    // Pruning again finds nothing new.
    assert!(store.prune(10, later, false).unwrap().event_id.is_none());
    // Retention 0 is refused.
    assert!(store.prune(0, later, true).is_err());
}

#[test]
fn export_archive_reverifies_with_sha256sum_and_openssl() {
    let f = Fixture::new();
    let store = f.open();
    let s = submission(&store, "e", 1, T0);
    store.record_submission(&s).unwrap();
    for kind in [
        ConfirmationKind::Dispatch,
        ConfirmationKind::Receipt,
        ConfirmationKind::Retrieve,
    ] {
        let c = confirmation(&store, &s.private_id, &s.recipients[0], kind, T0, true);
        store.record_confirmation(&c).unwrap();
    }
    let out = f.dir.path().join("export.tar");
    let file = std::fs::File::create(&out).unwrap();
    let summary = store.export(&s.private_id, file, T0).unwrap().unwrap();
    assert_eq!(summary.events, 4);
    let x = f.dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(&out)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(tar.success());
    let root = x.join("demail-evidence");
    let sums = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    assert_eq!(
        std::fs::read(root.join("message.eml")).unwrap(),
        store.read_blob(&s.content).unwrap()
    );
    assert!(
        root.join("confirmations/03-retrieve/acknowledge.pdf")
            .is_file()
    );
    assert!(
        std::fs::read_to_string(root.join("confirmations/01-dispatch/report.txt"))
            .unwrap()
            .contains("TOTAL_PASSED")
    );
    // README step 3: openssl dgst of each event preimage is the event's hash, and its last
    // 32 bytes are the previous event's hash.
    let events = std::fs::read_to_string(root.join("chain/events.txt")).unwrap();
    let links = std::fs::read_to_string(root.join("chain/links.txt")).unwrap();
    for line in events.lines() {
        let cols: Vec<&str> = line.split(' ').collect();
        let bin = root.join(format!("chain/event-{}.bin", cols[0]));
        let o = Command::new("openssl")
            .args(["dgst", "-sha256", "-r"])
            .arg(&bin)
            .output()
            .unwrap();
        let printed = String::from_utf8(o.stdout).unwrap();
        assert!(printed.starts_with(cols[3]), "{printed} vs {line}");
        let pre = std::fs::read(&bin).unwrap();
        assert_eq!(hex::encode(&pre[pre.len() - 32..]), cols[2]);
        assert!(links.contains(&format!("{} {} {}", cols[0], cols[2], cols[3])));
    }
    // README step 2: the message's digest is in the submission event's hashed blobs field.
    let first = events.lines().next().unwrap().split(' ').next().unwrap();
    let pre = std::fs::read(root.join(format!("chain/event-{first}.bin"))).unwrap();
    let needle = s.content.hex();
    assert!(pre.windows(needle.len()).any(|w| w == needle.as_bytes()));
    let head = std::fs::read_to_string(root.join("chain/head.txt")).unwrap();
    assert!(
        links
            .trim_end()
            .ends_with(head.trim_end().split(' ').nth(1).unwrap())
    );
    // A flipped byte in an extracted file is caught by sha256sum.
    let msg = root.join("message.eml");
    let mut b = std::fs::read(&msg).unwrap();
    b[0] ^= 1;
    let mut perm = std::fs::metadata(&msg).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&msg, perm).unwrap();
    std::fs::write(&msg, b).unwrap();
    let sums = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(!sums.status.success());
    // Unknown id: nothing written, None.
    assert!(store.export("nope", Vec::new(), T0).unwrap().is_none());
}

/// Notification types are provider text: `/`, `..`, a path out of the archive, non-ASCII, a
/// bidi override, 300 bytes. None of it may reach a member name; the manifest keeps it.
#[test]
fn export_member_names_are_fixed_whatever_the_provider_wrote() {
    let f = Fixture::new();
    let store = f.open();
    let s = submission(&store, "h", 1, T0);
    store.record_submission(&s).unwrap();
    let long = "x".repeat(300);
    let hostile = [
        "/",
        "..",
        "../../etc/passwd",
        "/etc/passwd",
        "a/b/../../../c",
        "Zustellung-\u{fc}ber-\u{1F4E8}",
        "\u{202e}fdp.exe",
        long.as_str(),
    ];
    for t in hostile {
        let kind = ConfirmationKind::Notification(t.to_string());
        let c = confirmation(&store, &s.private_id, &s.recipients[0], kind, T0, true);
        store.record_confirmation(&c).unwrap();
    }
    // NUL (and other controls) never get recorded in the first place.
    for t in ["a\0b", "\0", "a\nb"] {
        let kind = ConfirmationKind::Notification(t.to_string());
        let c = confirmation(&store, &s.private_id, &s.recipients[0], kind, T0, true);
        assert!(store.record_confirmation(&c).is_err(), "{t:?} recorded");
    }
    let x = f.dir.path().join("x");
    let root = x.join("demail-evidence");
    std::fs::create_dir(&x).unwrap();
    let out = x.join("export.tar");
    let summary = store
        .export(&s.private_id, std::fs::File::create(&out).unwrap(), T0)
        .unwrap()
        .unwrap();
    assert_eq!(summary.events, 1 + hostile.len());

    // What GNU tar itself reads: every member a regular file inside the top directory.
    let listing = Command::new("tar").arg("-tvf").arg(&out).output().unwrap();
    assert!(listing.status.success(), "{listing:?}");
    let listing = String::from_utf8(listing.stdout).unwrap();
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(names.len(), summary.files.len(), "{listing}");
    for (line, name) in listing.lines().zip(&names) {
        assert!(line.starts_with("-r--r--r--"), "{line}");
        assert!(name.starts_with("demail-evidence/"), "{line}");
        assert!(name.len() < 100 && name.is_ascii(), "{line}");
        assert!(
            name.split('/')
                .all(|c| !c.is_empty() && c != ".." && c != "."),
            "{line}"
        );
    }
    for n in 1..=hostile.len() {
        let dir = format!("demail-evidence/confirmations/{n:02}-notification/raw.eml");
        assert!(names.contains(&dir.as_str()), "{dir} in {listing}");
    }
    assert!(!listing.contains("passwd") && !listing.contains("xxxxxxxx"));

    // Unpacked, nothing lands next to the top directory, and the checksums hold.
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(&out)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(tar.success());
    let mut beside: Vec<String> = std::fs::read_dir(&x)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["demail-evidence", "export.tar"]);
    assert!(!f.dir.path().join("etc").exists() && !x.join("etc").exists());
    let sums = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{sums:?}");

    // The manifest maps each fixed directory to the text exactly as the provider wrote it.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["private_id"], s.private_id.as_str());
    let entries = manifest["confirmations"].as_array().unwrap();
    assert_eq!(entries.len(), hostile.len());
    for (n, (entry, t)) in entries.iter().zip(hostile).enumerate() {
        let dir = format!("confirmations/{:02}-notification", n + 1);
        assert_eq!(entry["directory"], dir.as_str());
        assert_eq!(entry["notification_type"], t);
        assert_eq!(entry["recipient"], s.recipients[0].as_str());
        assert!(root.join(&dir).join("confirmation.json").is_file());
    }
}
