//! demailctl: the admin's command line for demail-gateway.

mod csv;
mod dovecot;
mod evidence;
mod export;
mod postfix;
mod qes;
mod report;
mod tl;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use demail_policy::{Config, DEFAULT_CONFIG_PATH};

#[derive(Parser)]
#[command(name = "demailctl", version, about = "Administer demail-gateway")]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration; prints every error as FILE:LINE: KEY: MESSAGE.
    CheckConfig {
        /// File to check (default: --config).
        file: Option<PathBuf>,
    },
    /// Print (or write) the Postfix settings that route De-Mail only to the provider.
    PostfixConfig {
        /// Directory the lookup tables live in (referenced from main.cf/master.cf).
        #[arg(long, default_value = "/etc/postfix/demail")]
        dir: PathBuf,
        /// Write main.cf and master.cf fragments and all tables into --dir instead of printing.
        #[arg(long)]
        write: bool,
        /// smtpd and cleanup run chrooted (a `y` in master.cf's chroot column; Debian's
        /// default) in this directory, default /var/spool/postfix: the milter's UNIX socket
        /// is then written relative to it (unix:/demail/milter.sock), and demail-in, which is
        /// not chrooted, gets the full path.
        #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = demail_policy::POSTFIX_CHROOT)]
        chroot: Option<PathBuf>,
    },
    /// Print the Dovecot settings the IMAP proxy needs.
    DovecotConfig,
    /// Outbound De-Mails and their per-recipient status.
    Status {
        /// Only this tenant (its name as configured).
        #[arg(long)]
        tenant: Option<String>,
        /// Only messages since this time: RFC 3339 (2026-11-01T00:00:00Z), a date (2026-11-01)
        /// or an age (90m, 12h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many messages (counted after --pending/--deemed-served).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only recipients for whom a confirmation asked for is still outstanding (not failed,
        /// not deemed served).
        #[arg(long, conflicts_with = "deemed_served")]
        pending: bool,
        /// Only recipients deemed served (Zustellfiktion, VwZG §5a (4)).
        #[arg(long)]
        deemed_served: bool,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// One CSV row per recipient (RFC 4180, UTF-8 with BOM) for a spreadsheet.
        #[arg(long)]
        csv: bool,
        /// Evaluate deemed-served at this RFC 3339 time instead of now (for tests and audits).
        #[arg(long, hide = true)]
        now: Option<String>,
    },
    /// One De-Mail with everything recorded about it, by private-id or Message-ID.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// The evidence store: verify the hash chain, prune beyond the retention period, back up
    /// and restore.
    Evidence {
        #[command(subcommand)]
        command: evidence::EvidenceCommand,
    },
    /// Write one archive with all evidence of a De-Mail (private-id or Message-ID).
    Export {
        id: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Qualified electronic signatures (QES).
    Qes {
        #[command(subcommand)]
        command: qes::QesCommand,
    },
    /// Trusted lists (ETSI TS 119 612): import, list.
    Tl {
        #[command(subcommand)]
        command: tl::TlCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demailctl: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn load(path: &std::path::Path) -> Result<Config, String> {
    Config::load(path).map_err(|e| {
        let n = e.errors.len();
        format!("{e}\n{n} error(s) in {}", path.display())
    })
}

/// The pinned provider certificates, read and checked (client certificates chain to
/// `provider_client_ca`).
pub(crate) fn provider_pins(config: &Config) -> Result<demail_trust::pins::ProviderPins, String> {
    let i = &config.inbound;
    demail_trust::pins::ProviderPins::load(
        i.provider_client_ca.as_deref(),
        &i.provider_client_certificates,
        &i.provider_signers,
    )
    .map_err(|e| format!("{}: [inbound]: {e}", config.source.display()))
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Qes { command } => return qes::run(command, &cli.config),
        Command::Tl { command } => return tl::run(command, &load(&cli.config)?),
        Command::CheckConfig { file } => {
            let path = file.unwrap_or(cli.config);
            let config = load(&path)?;
            config.pinning().map_err(|e| {
                let n = e.errors.len();
                format!(
                    "{e}\n{n} error(s) in {}: the provider is not pinned",
                    path.display()
                )
            })?;
            provider_pins(&config)?;
            let accounts: usize = config.tenants.iter().map(|t| t.accounts.len()).sum();
            println!(
                "{}: OK ({} tenant(s), {} De-Mail account(s))",
                path.display(),
                config.tenants.len(),
                accounts
            );
        }
        Command::PostfixConfig { dir, write, chroot } => {
            let config = load(&cli.config)?;
            let pf = postfix::render(&config, &dir, chroot.as_deref())?;
            if write {
                let files = pf
                    .write(&dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                for f in files {
                    println!("wrote {}", f.display());
                }
                println!(
                    "Add {0}/main.cf to main.cf and {0}/master.cf to master.cf, then `postfix check && postfix reload`.",
                    dir.display()
                );
            } else {
                print!("{}", pf.to_text(&dir, &cli.config));
            }
        }
        Command::DovecotConfig => {
            let config = load(&cli.config)?;
            print!("{}", dovecot::render(&config));
        }
        Command::Status {
            tenant,
            since,
            limit,
            pending,
            deemed_served,
            json,
            csv,
            now,
        } => {
            let config = load(&cli.config)?;
            let q = report::StatusQuery {
                tenant: tenant.as_deref(),
                since: since.as_deref().map(report::parse_since).transpose()?,
                limit,
                only: match (pending, deemed_served) {
                    (true, _) => report::Only::Pending,
                    (_, true) => report::Only::DeemedServed,
                    _ => report::Only::All,
                },
                format: match (json, csv) {
                    (true, _) => report::Format::Json,
                    (_, true) => report::Format::Csv,
                    _ => report::Format::Table,
                },
                now: evidence::parse_now(now.as_deref())?,
            };
            let store = report::open_store(&config)?;
            report::status(&store, &q)?;
        }
        Command::Evidence { command } => return evidence::run(command, &cli.config),
        Command::Export { id, out } => {
            let config = load(&cli.config)?;
            let store = report::open_store(&config)?;
            if !export::run(&store, &id, &out, time::OffsetDateTime::now_utc())? {
                eprintln!("demailctl: no De-Mail with private-id or Message-ID {id}");
                return Ok(ExitCode::from(2));
            }
        }
        Command::Show { id, json } => {
            let config = load(&cli.config)?;
            let store = report::open_store(&config)?;
            if !report::show(&store, &id, json)? {
                eprintln!("demailctl: no De-Mail with private-id or Message-ID {id}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
