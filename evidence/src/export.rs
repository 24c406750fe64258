//! Export of one De-Mail's evidence as a tar archive a clerk can hand to a court, checkable
//! with `sha256sum`/`openssl dgst` alone (see the README written into the archive).

use std::fmt::Write as _;
use std::io::Write;

use time::OffsetDateTime;

use crate::ustar::Ustar;
use crate::{ConfirmationKind, Digest, Error, Result, Store};

const DIR: &str = "demail-evidence";

/// What went into an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub private_id: String,
    /// Member names, without the top directory.
    pub files: Vec<String>,
    pub events: usize,
    /// Blobs that were no longer there (pruned); listed in `MISSING.txt`.
    pub missing: Vec<Digest>,
    pub head: Option<crate::ChainHead>,
}

struct Archive {
    files: Vec<(String, Vec<u8>)>,
    missing: Vec<Digest>,
}

impl Archive {
    fn add(&mut self, name: String, data: Vec<u8>) {
        self.files.push((name, data));
    }

    fn blob(&mut self, store: &Store, name: String, d: &Digest) -> Result<()> {
        match store.read_blob(d) {
            Ok(bytes) => self.add(name, bytes),
            Err(Error::BlobMissing { .. }) => self.missing.push(*d),
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// Writes the archive for `id` (private-id or Message-ID); `None` when nothing matches.
pub(crate) fn export<W: Write>(
    store: &Store,
    id: &str,
    out: W,
    now: OffsetDateTime,
) -> Result<Option<ExportSummary>> {
    let Some(sub) = store.find(id)? else {
        return Ok(None);
    };
    let pid = sub.private_id.clone();
    let mut a = Archive {
        files: Vec::new(),
        missing: Vec::new(),
    };
    a.blob(store, "message.eml".into(), &sub.content)?;
    let json = |v: &dyn erased::Json| v.to_json();
    a.add("submission.json".into(), json(&sub));
    let statuses = store.recipient_status_at(&pid, now)?;
    a.add("status.json".into(), json(&statuses));
    let mut manifest = Vec::new();
    for (i, c) in store.confirmations(&pid)?.iter().enumerate() {
        let dir = confirmation_dir(i + 1, &c.data.kind);
        manifest.push(manifest_entry(&dir, c));
        a.blob(store, format!("{dir}/raw.eml"), &c.data.raw)?;
        if let Some(x) = &c.data.xml {
            a.blob(store, format!("{dir}/acknowledge.xml"), x)?;
        }
        if let Some(p) = &c.data.pdf {
            a.blob(store, format!("{dir}/acknowledge.pdf"), p)?;
        }
        a.add(format!("{dir}/report.json"), json(&c.data.report));
        a.add(format!("{dir}/report.txt"), report_text(c));
        a.add(format!("{dir}/confirmation.json"), json(c));
    }
    a.add(
        "MANIFEST.json".into(),
        json(&serde_json::json!({
            "private_id": pid,
            "confirmations": manifest,
        })),
    );
    let ids = store.event_ids_of(&pid)?;
    let mut events_txt = String::new();
    for id in &ids {
        let ev = store
            .event(*id)?
            .ok_or_else(|| Error::Corrupt(format!("event {id} vanished during export")))?;
        let _ = writeln!(
            events_txt,
            "{} {} {} {}",
            ev.id, ev.kind, ev.prev_hash, ev.hash
        );
        a.add(format!("chain/event-{id}.bin"), ev.preimage.clone());
        a.add(format!("chain/event-{id}.json"), json(&ev));
    }
    a.add("chain/events.txt".into(), events_txt.into_bytes());
    let head = store.head()?;
    if let Some(first) = ids.first() {
        let mut links = String::new();
        for (id, prev, hash) in store.links_from(*first)? {
            let _ = writeln!(links, "{id} {prev} {hash}");
        }
        a.add("chain/links.txt".into(), links.into_bytes());
    }
    if let Some(h) = &head {
        a.add(
            "chain/head.txt".into(),
            format!("{} {}\n", h.event_id, h.hash).into_bytes(),
        );
    }
    if !a.missing.is_empty() {
        let list: String = a.missing.iter().map(|d| format!("{d}\n")).collect();
        a.add("MISSING.txt".into(), list.into_bytes());
    }
    a.add("README.txt".into(), readme(&pid, now).into_bytes());
    let sums: String = a
        .files
        .iter()
        .map(|(n, d)| format!("{}  {n}\n", Digest::of(d)))
        .collect();
    a.add("SHA256SUMS".into(), sums.into_bytes());

    let mtime = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let mut tar = Ustar::new(out, mtime);
    let io = |e| Error::Invalid {
        field: "export",
        reason: format!("writing the archive: {e}"),
    };
    for (name, data) in &a.files {
        tar.file(&format!("{DIR}/{name}"), data).map_err(io)?;
    }
    tar.finish().map_err(io)?;
    Ok(Some(ExportSummary {
        private_id: pid,
        files: a.files.into_iter().map(|(n, _)| n).collect(),
        events: ids.len(),
        missing: a.missing,
        head,
    }))
}

/// Member directory of the `n`-th confirmation: the sequence number and the kind's fixed
/// name only. Provider text (a notification's type) never becomes part of a path, where `/`,
/// `..`, non-ASCII or length would escape the archive or break it; it is in MANIFEST.json.
fn confirmation_dir(n: usize, kind: &ConfirmationKind) -> String {
    let kind = match kind {
        ConfirmationKind::Dispatch => "dispatch",
        ConfirmationKind::Receipt => "receipt",
        ConfirmationKind::Retrieve => "retrieve",
        ConfirmationKind::Notification(_) => "notification",
    };
    format!("confirmations/{n:02}-{kind}")
}

/// What a confirmation directory holds, with the provider's text as it arrived (JSON escapes
/// whatever it contains).
fn manifest_entry(dir: &str, c: &crate::Confirmation) -> serde_json::Value {
    let notification = match &c.data.kind {
        ConfirmationKind::Notification(t) => Some(t.as_str()),
        _ => None,
    };
    serde_json::json!({
        "directory": dir,
        "event_id": c.event_id,
        "kind": c.data.kind.label(),
        "notification_type": notification,
        "recipient": c.data.recipient,
        "provider_message_id": c.data.provider_message_id,
    })
}

mod erased {
    /// Pretty JSON of anything serialisable, via a trait object so one closure serves all.
    pub trait Json {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            let mut v =
                serde_json::to_vec_pretty(self).unwrap_or_else(|e| e.to_string().into_bytes());
            v.push(b'\n');
            v
        }
    }
}

/// The report as indented `key: value` lines.
fn report_text(c: &crate::Confirmation) -> Vec<u8> {
    let mut s = format!(
        "Confirmation: {}\nRecipient: {}\nProvider message-id: {}\nIndication: {}\nTrusted (verified, from the provider service): {}\nRecorded: {}\n\nVerification report:\n",
        c.data.kind.label(),
        c.data.recipient,
        c.data.provider_message_id.as_deref().unwrap_or("-"),
        c.data.indication,
        if c.data.trusted { "yes" } else { "NO" },
        c.recorded,
    );
    flatten(&mut s, &c.data.report, 1);
    s.into_bytes()
}

fn flatten(out: &mut String, v: &serde_json::Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if v.is_object() || v.is_array() {
                    let _ = writeln!(out, "{pad}{k}:");
                    flatten(out, v, depth + 1);
                } else {
                    let _ = writeln!(out, "{pad}{k}: {}", scalar(v));
                }
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let _ = writeln!(out, "{pad}[{}]", i + 1);
                flatten(out, v, depth + 1);
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn readme(private_id: &str, now: OffsetDateTime) -> String {
    let when = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(
        r#"Evidence of the De-Mail with private-id {private_id}
Exported {when} by demailctl (demail-gateway).

CONTENTS
  message.eml                 the exact bytes sent to the De-Mail provider
  submission.json             what was recorded when it was sent
  status.json                 per-recipient status at export time (derived)
  MANIFEST.json               maps each confirmations/NN-KIND directory to what the
                              provider wrote (notification type, recipient, message-id);
                              no provider text is ever part of a file name
  confirmations/NN-KIND/      each confirmation or notification of the provider, KIND one
                              of dispatch, receipt, retrieve, notification:
      raw.eml                 the exact bytes received
      acknowledge.xml/.pdf    its XML and PDF parts
      report.json/.txt        the signature verification report
      confirmation.json       what was recorded
  chain/event-N.bin           the exact bytes whose SHA-256 is event N's hash
  chain/event-N.json          event N's columns (hash, prev_hash, payload, blobs)
  chain/events.txt            "id kind prev_hash hash" of the events of this De-Mail
  chain/links.txt             "id prev_hash hash" of every event from the first one of
                              this De-Mail up to the head of the store at export time
  chain/head.txt              "id hash" of the newest event at export time
  SHA256SUMS                  SHA-256 of every other file
  MISSING.txt                 (only if present) blobs removed by retention pruning

HOW TO RE-VERIFY (needs only sha256sum or openssl)
1. File integrity: in the directory that holds this README run
       sha256sum -c SHA256SUMS
   or, per file,  openssl dgst -sha256 message.eml
2. The sent message and every confirmation part are stored under their SHA-256: the
   hash of message.eml is the "content" field of submission.json, and raw.eml,
   acknowledge.xml and acknowledge.pdf hash to the "raw", "xml" and "pdf" fields of
   confirmation.json. Each of these digests also appears in the "blobs" field of the
   event that recorded it (chain/event-N.json), which is covered by the event hash.
3. Event hashes: for each event N,
       openssl dgst -sha256 chain/event-N.bin    (or sha256sum chain/event-N.bin)
   must print the "hash" of chain/event-N.json. event-N.bin is, in this order:
     - the 24 bytes "demail-evidence/event/v1" followed by one zero byte,
     - the event id as 8-byte big-endian integer,
     - five text fields, each as its length (8-byte big-endian) followed by its UTF-8
       bytes: time, kind, private_id, payload, blobs (exactly as in event-N.json),
     - the length 32 (8-byte big-endian) and the 32 bytes of prev_hash.
   So the last 32 bytes of event-N.bin are prev_hash:
       tail -c 32 chain/event-N.bin | od -An -v -tx1 | tr -d ' \n'
   and the payload text inside it can be compared with event-N.json by eye.
4. The chain: in chain/links.txt the prev_hash of each line equals the hash of the line
   before, the hashes of this De-Mail's events appear there unchanged, and the last line
   is chain/head.txt. Compare that head with a head recorded independently (a printout of
   `demailctl evidence verify`, a log): an event cannot be changed without changing
   every hash after it, and so the head.
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Confirmation, NewConfirmation};

    /// Also for records an older version may have let through (NUL, control characters):
    /// the directory is fixed, the text survives only as escaped JSON content.
    #[test]
    fn confirmation_names_never_carry_the_text() {
        let long = "\u{fc}".repeat(150);
        for t in [
            "a\0b",
            "\0",
            "../../etc/passwd",
            "/",
            "..",
            "a\nb",
            long.as_str(),
        ] {
            let kind = ConfirmationKind::Notification(t.to_string());
            let dir = confirmation_dir(7, &kind);
            assert_eq!(dir, "confirmations/07-notification");
            crate::ustar::check_name(&format!("{DIR}/{dir}/confirmation.json")).unwrap();
            let c = Confirmation {
                event_id: 3,
                recorded: OffsetDateTime::UNIX_EPOCH,
                data: NewConfirmation {
                    kind,
                    private_id: Some("p".into()),
                    recipient: "../r\0@x".into(),
                    provider_message_id: None,
                    raw: Digest::of(b"raw"),
                    xml: None,
                    pdf: None,
                    report: serde_json::Value::Null,
                    indication: "TOTAL_PASSED".into(),
                    stated_time: None,
                    trusted: true,
                },
            };
            let entry = manifest_entry(&dir, &c);
            assert_eq!(entry["notification_type"], t);
            assert_eq!(entry["recipient"], "../r\0@x");
            let text = String::from_utf8(serde_json::to_vec(&entry).unwrap()).unwrap();
            assert!(!text.contains('\0') && !text.contains('\n'), "{text}");
        }
        for (kind, name) in [
            (ConfirmationKind::Dispatch, "confirmations/123-dispatch"),
            (ConfirmationKind::Receipt, "confirmations/123-receipt"),
            (ConfirmationKind::Retrieve, "confirmations/123-retrieve"),
        ] {
            assert_eq!(confirmation_dir(123, &kind), name);
        }
    }
}
