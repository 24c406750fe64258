//! Export of one De-Mail's evidence as a tar archive a clerk can hand to a court, checkable
//! with `sha256sum`/`openssl dgst` alone (see the README written into the archive).

use std::fmt::Write as _;
use std::io::Write;

use time::OffsetDateTime;

use crate::ustar::Ustar;
use crate::{Digest, Error, Result, Store};

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
    for (i, c) in store.confirmations(&pid)?.iter().enumerate() {
        let dir = format!(
            "confirmations/{:02}-{}",
            i + 1,
            c.data.kind.label().replace(':', "-")
        );
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
  confirmations/NN-KIND/      each confirmation or notification of the provider:
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
