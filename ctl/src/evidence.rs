//! `demailctl evidence verify|prune`.

use std::process::ExitCode;

use clap::Subcommand;
use demail_evidence::Store;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Walk the hash chain and every blob; names the first record that does not match.
    Verify,
    /// Remove blobs beyond [evidence] retention_years, recorded as a prune event.
    Prune {
        /// Only show what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Evaluate at this RFC 3339 time instead of now (for tests and audits).
        #[arg(long, hide = true)]
        now: Option<String>,
    },
}

pub fn parse_now(now: Option<&str>) -> Result<OffsetDateTime, String> {
    match now {
        None => Ok(OffsetDateTime::now_utc()),
        Some(s) => OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| format!("--now {s:?}: not RFC 3339 ({e})")),
    }
}

pub fn run(store: &Store, cmd: EvidenceCommand, retention_years: u32) -> Result<ExitCode, String> {
    match cmd {
        EvidenceCommand::Verify => verify(store),
        EvidenceCommand::Prune { dry_run, now } => {
            let now = parse_now(now.as_deref())?;
            let o = store
                .prune(retention_years, now, dry_run)
                .map_err(|e| e.to_string())?;
            let cutoff = o.cutoff.format(&Rfc3339).unwrap_or_default();
            for b in &o.removed {
                let pid = if b.private_id.is_empty() {
                    "(unmatched)"
                } else {
                    &b.private_id
                };
                println!(
                    "{} {} event {} {pid}",
                    if dry_run { "would remove" } else { "removed" },
                    b.digest,
                    b.event_id
                );
            }
            match o.event_id {
                Some(id) => println!(
                    "pruned {} blob(s), {} bytes, of {} case(s) older than {cutoff} (retention {retention_years} years); recorded as event {id}",
                    o.removed.len(),
                    o.bytes,
                    o.cases
                ),
                None if dry_run => println!(
                    "dry run: {} blob(s), {} bytes, of {} case(s) older than {cutoff} would be removed",
                    o.removed.len(),
                    o.bytes,
                    o.cases
                ),
                None => println!(
                    "nothing older than {cutoff} to prune (retention {retention_years} years)"
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn verify(store: &Store) -> Result<ExitCode, String> {
    let r = store.verify_chain().map_err(|e| e.to_string())?;
    let head = r
        .head
        .map(|h| format!("head event {} hash {}", h.event_id, h.hash))
        .unwrap_or_else(|| "empty store".into());
    if r.is_intact() {
        println!(
            "OK: {} events, {} blobs verified, {} pruned blobs accepted; {head}",
            r.events, r.blobs, r.pruned_blobs
        );
        return Ok(ExitCode::SUCCESS);
    }
    let first = &r.problems[0];
    let who = match first.event_id().map(|id| store.event(id)) {
        Some(Ok(Some(ev))) => format!(
            " (event {}, kind {}, private-id {})",
            ev.id,
            ev.kind,
            if ev.private_id.is_empty() {
                "-"
            } else {
                &ev.private_id
            }
        ),
        _ => String::new(),
    };
    println!("FAILED: first mismatch: {first}{who}");
    for p in r.problems.iter().skip(1) {
        println!("  also: {p}");
    }
    if r.problems_omitted > 0 {
        println!("  and {} more", r.problems_omitted);
    }
    println!("{} events walked; {head}", r.events);
    Ok(ExitCode::FAILURE)
}
