//! `demail_deemed_served_recipients{tenant}`: recipients deemed served now (VwZG §5a (4)).
//! Being deemed served is a projection of the evidence over time, not something the milter
//! sees happen, so it is computed from the store when scraped (read-only, off the runtime,
//! at most once a minute) with the same rule `demailctl status` applies.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use demail_daemon::metrics::{Exposition, Render, Type};
use demail_evidence::{Location, Store};
use demail_policy::Config;
use time::OffsetDateTime;
use tracing::debug;

use crate::Metrics;

/// A scrape within this long of the last computation shows the last result.
const FRESH: Duration = Duration::from_secs(60);

type Counts = BTreeMap<String, u64>;

/// What the milter's endpoint shows: its counters and the store's deemed-served count.
pub struct Scrape {
    metrics: Arc<Metrics>,
    database: Location,
    blobs: PathBuf,
    /// Tenants of the configuration at start, shown at zero until they have any.
    tenants: Vec<String>,
    last: Mutex<Option<(Instant, Counts)>>,
}

impl Scrape {
    pub fn new(metrics: Arc<Metrics>, config: &Config) -> Scrape {
        Scrape {
            metrics,
            database: config.evidence.database.clone(),
            blobs: config.evidence.blobs.clone(),
            tenants: config.tenants.iter().map(|t| t.name.clone()).collect(),
            last: Mutex::new(None),
        }
    }

    fn deemed_served(&self) -> Option<Counts> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, counts)) = last.as_ref()
            && at.elapsed() < FRESH
        {
            return Some(counts.clone());
        }
        match deemed_served_at(&self.database, &self.blobs, OffsetDateTime::now_utc()) {
            Ok(mut counts) => {
                for t in &self.tenants {
                    counts.entry(t.clone()).or_default();
                }
                *last = Some((Instant::now(), counts.clone()));
                Some(counts)
            }
            Err(e) => {
                // No store yet (nothing sent) or unreadable: no sample rather than a false 0,
                // and asked again at the next scrape.
                debug!("deemed-served count: {e}");
                None
            }
        }
    }
}

/// Recipients deemed served at `now`, per tenant.
pub fn deemed_served_at(
    database: &Location,
    blobs: &std::path::Path,
    now: OffsetDateTime,
) -> Result<Counts, demail_evidence::Error> {
    let store = Store::open_read_only_at(database, blobs)?;
    let mut counts = Counts::new();
    for s in store.list(None, None, usize::MAX)? {
        let served = store
            .recipient_status_at(&s.private_id, now)?
            .iter()
            .filter(|r| r.deemed_served)
            .count() as u64;
        *counts.entry(s.tenant).or_default() += served;
    }
    Ok(counts)
}

impl Render for Scrape {
    fn render(&self, out: &mut Exposition) {
        self.metrics.render(out);
        let name = "demail_deemed_served_recipients";
        out.family(
            name,
            Type::Gauge,
            "Recipients deemed served now (VwZG 5a (4)), from the evidence store at scrape time.",
        );
        for (tenant, n) in self.deemed_served().unwrap_or_default() {
            out.sample(name, &[("tenant", &tenant)], n);
        }
    }
}

#[cfg(test)]
mod tests {
    use demail_evidence::{ConfirmationKind, Digest, NewConfirmation, NewSubmission};
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_dispatched_de_mail_with_retrieval_requested_is_deemed_served_after_the_third_day() {
        let dir = tempfile::tempdir().unwrap();
        let (db, blobs) = (dir.path().join("e.sqlite"), dir.path().join("blobs"));
        let store = Store::open(&db, &blobs).unwrap();
        let sent = datetime!(2026-11-02 10:00 UTC);
        for (id, options) in [
            ("01A.t", vec!["dispatch", "retrieve"]),
            ("01B.t", vec!["dispatch"]),
        ] {
            let content = store.put_blob(id.as_bytes()).unwrap();
            store
                .record_submission(&NewSubmission {
                    private_id: id.into(),
                    origin_key: Digest([id.as_bytes()[2]; 32]),
                    tenant: "Stadt".into(),
                    account: "info@stadt.de-mail.de".into(),
                    clerk: "a@stadt.example".into(),
                    sasl_login: None,
                    recipients: vec!["b@x.de-mail.de".into(), "c@x.de-mail.de".into()],
                    subject: "Bescheid".into(),
                    message_id: format!("<{id}@stadt>"),
                    queue_id: "Q".into(),
                    options: options.into_iter().map(String::from).collect(),
                    content,
                    size: id.len() as u64,
                    time: sent,
                })
                .unwrap();
            for rcpt in ["b@x.de-mail.de", "c@x.de-mail.de"] {
                let raw = store.put_blob(format!("{id}{rcpt}").as_bytes()).unwrap();
                store
                    .record_confirmation(&NewConfirmation {
                        kind: ConfirmationKind::Dispatch,
                        private_id: Some(id.into()),
                        recipient: rcpt.into(),
                        provider_message_id: None,
                        raw,
                        xml: None,
                        pdf: None,
                        report: serde_json::json!({}),
                        indication: "TOTAL_PASSED".into(),
                        stated_time: Some(sent),
                        trusted: true,
                    })
                    .unwrap();
            }
        }
        drop(store);
        let at = |t| deemed_served_at(&Location::Sqlite(db.clone()), &blobs, t).unwrap();
        assert_eq!(at(datetime!(2026-11-03 10:00 UTC)).get("Stadt"), Some(&0));
        // Both recipients of the one that asked for an Abholbestätigung; never the other.
        assert_eq!(at(datetime!(2026-11-09 10:00 UTC)).get("Stadt"), Some(&2));
        assert!(
            deemed_served_at(
                &Location::Sqlite(dir.path().join("none.sqlite")),
                &blobs,
                sent
            )
            .is_err()
        );
    }
}
