//! `demailctl evidence verify|cat|prune|backup|restore|migrate|copy`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use demail_evidence::{Location, Store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Walk the hash chain and every blob; names the first record that does not match.
    Verify,
    /// Write a stored blob (a message as sent or received, a confirmation's XML or PDF) to
    /// standard output, after checking that it hashes to its name.
    Cat {
        /// The blob's SHA-256 in hex, as `demailctl show` and `evidence verify` print it.
        sha256: String,
    },
    /// Remove blobs beyond [evidence] retention_years, recorded as a prune event.
    Prune {
        /// Only show what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Evaluate at this RFC 3339 time instead of now (for tests and audits).
        #[arg(long, hide = true)]
        now: Option<String>,
    },
    /// Write a consistent backup of the whole store (database and blobs) into one file, while
    /// the milter keeps recording.
    Backup {
        /// The backup file (a tar archive; written beside it first, then renamed).
        #[arg(long)]
        out: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Create or bring up to date the store's schema. On PostgreSQL run it with the owning
    /// role (`--database`, `--password-file`) and `--grant` the gateway's role, which may then
    /// only read and append; the milter and the proxy never change the schema themselves.
    Migrate {
        /// The database (default: [evidence] database), as the configuration writes it.
        #[arg(long)]
        database: Option<String>,
        /// The password of `--database`'s role (first line).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// A role that gets SELECT and INSERT on the evidence (PostgreSQL; repeatable).
        #[arg(long)]
        grant: Vec<String>,
    },
    /// Copy the whole store into an empty one on the same or the other engine (SQLite to
    /// PostgreSQL and back): the same events and head hash, every blob; the copy is verified.
    Copy {
        /// The source (default: [evidence] database and blobs of the configuration).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        from_password_file: Option<PathBuf>,
        /// The source's blob directory (SQLite; default: [evidence] blobs).
        #[arg(long)]
        from_blobs: Option<PathBuf>,
        /// The target: an SQLite file to create or a migrated, empty PostgreSQL database.
        #[arg(long)]
        to: String,
        #[arg(long)]
        to_password_file: Option<PathBuf>,
        /// The target's blob directory (required for an SQLite target).
        #[arg(long)]
        to_blobs: Option<PathBuf>,
    },
    /// Restore a backup into an empty place (the configured [evidence] paths unless given);
    /// every member and the whole chain are checked before anything is put in place.
    Restore {
        file: PathBuf,
        /// Database to create (default: [evidence] database).
        #[arg(long)]
        database: Option<PathBuf>,
        /// Blob directory to create (default: [evidence] blobs).
        #[arg(long)]
        blobs: Option<PathBuf>,
    },
}

pub fn parse_now(now: Option<&str>) -> Result<OffsetDateTime, String> {
    match now {
        None => Ok(OffsetDateTime::now_utc()),
        Some(s) => OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| format!("--now {s:?}: not RFC 3339 ({e})")),
    }
}

fn head_text(head: Option<demail_evidence::ChainHead>) -> String {
    head.map(|h| format!("head event {} hash {}", h.event_id, h.hash))
        .unwrap_or_else(|| "empty store".into())
}

/// Restore needs no store (and no configuration when both paths are given).
pub fn run(cmd: EvidenceCommand, config: &Path) -> Result<ExitCode, String> {
    if let EvidenceCommand::Restore {
        file,
        database,
        blobs,
    } = cmd
    {
        let (database, blobs) = match (database, blobs) {
            (Some(d), Some(b)) => (d, b),
            (d, b) => {
                let ev = crate::load(config)?.evidence;
                let configured = match ev.database {
                    Location::Sqlite(path) => path,
                    Location::Postgres(pg) => {
                        return Err(format!(
                            "{pg}: a backup restores into SQLite; restore it to a file (--database), then `demailctl evidence copy` it into PostgreSQL"
                        ));
                    }
                };
                (d.unwrap_or(configured), b.unwrap_or(ev.blobs))
            }
        };
        let r = Store::restore_from(&file, &database, &blobs).map_err(|e| e.to_string())?;
        println!(
            "restored {} into {} and {}: {} events, {} blobs, {} bytes; {}",
            file.display(),
            database.display(),
            blobs.display(),
            r.events,
            r.blobs,
            r.bytes,
            head_text(r.head)
        );
        println!(
            "The files belong to the user who ran this; give them to the milter's user (chown -R) before it starts."
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let EvidenceCommand::Migrate {
        database,
        password_file,
        grant,
    } = cmd
    {
        let (location, blobs, _spool) = endpoint(config, database, password_file, None)?;
        let (before, after) =
            Store::migrate(&location, &blobs, &grant).map_err(|e| format!("{location}: {e}"))?;
        if before == after {
            println!("{location}: schema version {after} is current");
        } else {
            println!("{location}: schema migrated from version {before} to {after}");
        }
        for role in &grant {
            println!("{location}: role {role} may read and append evidence, nothing else");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let EvidenceCommand::Copy {
        from,
        from_password_file,
        from_blobs,
        to,
        to_password_file,
        to_blobs,
    } = cmd
    {
        return copy(
            endpoint(config, from, from_password_file, from_blobs)?,
            endpoint(config, Some(to), to_password_file, to_blobs)?,
        );
    }
    let config = crate::load(config)?;
    let store = crate::report::open_store(&config)?;
    run_on(&store, cmd, config.evidence.retention_years)
}

/// A store named on the command line, or the configured one when `database` is `None`.
/// A PostgreSQL store keeps its blobs in the database; its blob directory only spools, and
/// without `--*-blobs` it is a fresh private directory (the returned guard removes it).
type Endpoint = (Location, PathBuf, Option<tempfile::TempDir>);

fn endpoint(
    config: &Path,
    database: Option<String>,
    password_file: Option<PathBuf>,
    blobs: Option<PathBuf>,
) -> Result<Endpoint, String> {
    let Some(database) = database else {
        if password_file.is_some() {
            return Err("a password file goes with a database given on the command line".into());
        }
        let ev = crate::load(config)?.evidence;
        return Ok((ev.database, blobs.unwrap_or(ev.blobs), None));
    };
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let location = Location::parse(&database, &cwd, password_file)
        .map_err(|e| format!("{database:?}: {e}"))?;
    match (&location, blobs) {
        (_, Some(b)) => Ok((location, b, None)),
        (Location::Postgres(_), None) => {
            let spool = tempfile::Builder::new()
                .prefix("demailctl-spool-")
                .tempdir()
                .map_err(|e| format!("a spool directory for {location}: {e}"))?;
            Ok((location, spool.path().to_path_buf(), Some(spool)))
        }
        (Location::Sqlite(_), None) => Err(format!(
            "{location}: an SQLite store needs its blob directory (--from-blobs / --to-blobs)"
        )),
    }
}

fn copy(
    (from, from_blobs, _from_spool): Endpoint,
    (to, to_blobs, _to_spool): Endpoint,
) -> Result<ExitCode, String> {
    if from == to {
        return Err(format!("{from}: source and target are the same store"));
    }
    if from.is_missing() {
        return Err(format!("{from}: no such evidence database"));
    }
    if let Location::Sqlite(path) = &to
        && path.exists()
    {
        return Err(format!(
            "{}: exists already; copy into a new file",
            path.display()
        ));
    }
    let started = std::time::Instant::now();
    let source =
        Store::open_read_only_at(&from, &from_blobs).map_err(|e| format!("{from}: {e}"))?;
    let target = Store::open_at(&to, &to_blobs).map_err(|e| format!("{to}: {e}"))?;
    let c = match source.copy_to(&target) {
        Ok(c) => c,
        Err(e) => {
            drop(target);
            // A new SQLite file that holds nothing of value goes again; its blob files are
            // content-addressed and harmless.
            if let Location::Sqlite(path) = &to {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            return Err(format!("copy to {to}: {e}"));
        }
    };
    println!(
        "copied {from} to {to}: {} events, {} blobs ({} bytes), {} pruned blobs not present in either, in {:.1} s",
        c.events,
        c.blobs,
        c.blob_bytes,
        c.pruned_blobs,
        started.elapsed().as_secs_f64()
    );
    println!("both verify with the same {}", head_text(c.head));
    Ok(ExitCode::SUCCESS)
}

fn run_on(store: &Store, cmd: EvidenceCommand, retention_years: u32) -> Result<ExitCode, String> {
    match cmd {
        EvidenceCommand::Verify => verify(store),
        EvidenceCommand::Cat { sha256 } => {
            let digest: demail_evidence::Digest = sha256
                .trim()
                .parse()
                .map_err(|e| format!("{sha256:?}: not a SHA-256 in hex ({e})"))?;
            let bytes = store.read_blob(&digest).map_err(|e| e.to_string())?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)
                .map_err(|e| format!("standard output: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Restore { .. }
        | EvidenceCommand::Migrate { .. }
        | EvidenceCommand::Copy { .. } => Err("this command opens its stores itself".into()),
        EvidenceCommand::Backup { out, force } => {
            let started = std::time::Instant::now();
            let b = store.backup_to(&out, force).map_err(|e| e.to_string())?;
            println!(
                "wrote {}: {} events, {} blobs ({} pruned, not included), {} bytes in {:.1} s; {}",
                b.path.display(),
                b.events,
                b.blobs,
                b.pruned_blobs,
                b.bytes,
                started.elapsed().as_secs_f64(),
                head_text(b.head)
            );
            Ok(ExitCode::SUCCESS)
        }
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
    let head = head_text(r.head);
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
