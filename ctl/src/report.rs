//! `demailctl status` and `show`: read-only views of the evidence store.

use demail_evidence::{RecipientStatus, Store, Submission, outstanding};

use crate::csv;
use demail_policy::Config;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

pub fn open_store(config: &Config) -> Result<Store, String> {
    let ev = &config.evidence;
    if ev.database.is_missing() {
        return Err(format!(
            "evidence database {} does not exist yet (nothing recorded, or wrong --config)",
            ev.database
        ));
    }
    Store::open_at(&ev.database, &ev.blobs).map_err(|e| format!("{}: {e}", ev.database))
}

/// RFC 3339, a plain date (midnight UTC) or an age such as `90m`, `12h`, `7d`.
pub fn parse_since(s: &str) -> Result<OffsetDateTime, String> {
    parse_since_at(s, OffsetDateTime::now_utc())
}

fn parse_since_at(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(d) = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc());
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("--since {s:?}: expected RFC 3339, YYYY-MM-DD or an age like 7d"))?;
    let age = match unit {
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(format!("--since {s:?}: unit must be m, h or d")),
    };
    Ok(now - age)
}

/// Whole seconds in UTC: tables stay aligned (JSON keeps the full precision).
fn ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Which recipients `status` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    All,
    /// A confirmation asked for is still outstanding (the rule is the evidence crate's).
    Pending,
    /// Zustellfiktion reached (VwZG §5a (4), as the status projection evaluates it).
    DeemedServed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

pub struct StatusQuery<'a> {
    pub tenant: Option<&'a str>,
    pub since: Option<OffsetDateTime>,
    /// Messages shown (after `only`).
    pub limit: usize,
    pub only: Only,
    pub format: Format,
    pub now: OffsetDateTime,
}

fn selected(only: Only, s: &Submission, r: &RecipientStatus) -> bool {
    match only {
        Only::All => true,
        Only::Pending => !outstanding(&s.options, r).is_empty(),
        Only::DeemedServed => r.deemed_served,
    }
}

/// Submissions, newest first, with the recipients `q.only` selects; messages without one are
/// left out (so `limit` counts messages shown, not messages looked at).
fn rows(
    store: &Store,
    q: &StatusQuery<'_>,
) -> Result<Vec<(Submission, Vec<RecipientStatus>)>, String> {
    let look_at = if q.only == Only::All {
        q.limit
    } else {
        usize::MAX
    };
    let subs = store
        .list(q.tenant, q.since, look_at)
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for s in subs {
        if rows.len() == q.limit {
            break;
        }
        let mut statuses = store
            .recipient_status_at(&s.private_id, q.now)
            .map_err(|e| e.to_string())?;
        statuses.retain(|r| selected(q.only, &s, r));
        if !statuses.is_empty() || q.only == Only::All {
            rows.push((s, statuses));
        }
    }
    Ok(rows)
}

pub fn status(store: &Store, q: &StatusQuery<'_>) -> Result<(), String> {
    let rows = rows(store, q)?;
    match q.format {
        Format::Json => {
            let v: Vec<_> = rows
                .iter()
                .map(|(s, st)| serde_json::json!({ "submission": s, "recipients": st }))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
            );
            return Ok(());
        }
        Format::Csv => {
            let mut out = std::io::stdout().lock();
            return csv::write_status(&mut out, &rows).map_err(|e| format!("stdout: {e}"));
        }
        Format::Table => {}
    }
    if rows.is_empty() {
        let what = match q.only {
            Only::All => "no De-Mail recorded",
            Only::Pending => "no De-Mail pending",
            Only::DeemedServed => "no De-Mail deemed served",
        };
        println!(
            "{what}{}",
            q.tenant.map(|t| format!(" for {t}")).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "{:<20}  {:<44}  {:<28}  {:<13}  {:<20}  {:<25}  SUBJECT",
        "SUBMITTED", "PRIVATE-ID", "RECIPIENT", "STATUS", "SINCE", "DEEMED-SERVED-AT-END-OF"
    );
    for (s, statuses) in &rows {
        for r in statuses {
            println!(
                "{:<20}  {:<44}  {:<28}  {:<13}  {:<20}  {:<25}  {}",
                ts(s.time),
                s.private_id,
                r.recipient,
                status_label(r),
                ts(r.since),
                deadline(r),
                s.subject
            );
        }
    }
    Ok(())
}

/// `deemed-served` replaces `dispatched` once the VwZG §5a (4) deadline has passed.
pub(crate) fn status_label(r: &RecipientStatus) -> String {
    if r.deemed_served {
        "deemed-served".into()
    } else {
        r.status.to_string()
    }
}

/// The deadline in German local time (the calendar the law counts in), or `-`.
fn deadline(r: &RecipientStatus) -> String {
    r.deemed_served_deadline
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

/// Prints one submission; false when nothing matches `id`.
pub fn show(store: &Store, id: &str, json: bool) -> Result<bool, String> {
    let Some(s) = store.find(id).map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    let statuses = store
        .recipient_status(&s.private_id)
        .map_err(|e| e.to_string())?;
    let confirmations = store
        .confirmations(&s.private_id)
        .map_err(|e| e.to_string())?;
    if json {
        let v = serde_json::json!({
            "submission": s,
            "recipients": statuses,
            "confirmations": confirmations,
            "content_location": store.blob_location(&s.content).map_err(|e| e.to_string())?,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
        return Ok(true);
    }
    print_submission(store, &s);
    println!("recipients:");
    for r in statuses {
        println!(
            "  {:<32} {:<10} since {}",
            r.recipient,
            r.status.to_string(),
            ts(r.since)
        );
    }
    println!("confirmations:");
    for c in &confirmations {
        let d = &c.data;
        println!(
            "  event {:<6} {:<28} {:<28} {:<14} {} {}",
            c.event_id,
            d.kind.label(),
            d.recipient,
            d.indication,
            if d.trusted { "trusted" } else { "UNTRUSTED" },
            d.raw
        );
    }
    Ok(true)
}

fn print_submission(store: &Store, s: &Submission) {
    let field = |k: &str, v: &str| println!("{k:<12} {v}");
    field("private-id", &s.private_id);
    field("message-id", &s.message_id);
    field("submitted", &ts(s.time));
    field("tenant", &s.tenant);
    field("account", &s.account);
    field("clerk", &s.clerk);
    if let Some(login) = &s.sasl_login {
        field("login", login);
    }
    field("subject", &s.subject);
    field("options", &s.options.join(", "));
    field("queue-id", &s.queue_id);
    field("sha256", &s.content.hex());
    field("size", &format!("{} bytes", s.size));
    let location = store
        .blob_location(&s.content)
        .unwrap_or_else(|e| format!("unreadable: {e}"));
    field("content", &location);
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn since_accepts_rfc3339_dates_and_ages() {
        let now = datetime!(2026-11-23 12:00 UTC);
        assert_eq!(
            parse_since_at("2026-11-01T08:00:00Z", now).unwrap(),
            datetime!(2026-11-01 8:00 UTC)
        );
        assert_eq!(
            parse_since_at("2026-11-01", now).unwrap(),
            datetime!(2026-11-01 0:00 UTC)
        );
        assert_eq!(
            parse_since_at("7d", now).unwrap(),
            datetime!(2026-11-16 12:00 UTC)
        );
        assert_eq!(
            parse_since_at("90m", now).unwrap(),
            datetime!(2026-11-23 10:30 UTC)
        );
        assert!(parse_since_at("7w", now).unwrap_err().contains("unit"));
        assert!(parse_since_at("yesterday", now).is_err());
    }
}
