//! `demailctl qes verify`: validate the signatures in a mail or in a CMS file (`.p7s`, `.p7m`)
//! and print one report per signature. The checks live in `demail-trust`; this is only the
//! command line around them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use demail_policy::Revocation as ConfiguredRevocation;
use demail_trust::revocation::{CrlChecker, OcspChecker};
use demail_trust::{MailReport, SignatureReport, ValidationModel, VerifyOptions};
use demail_trust::{NoRevocationCheck, RevocationChecker};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand)]
pub enum QesCommand {
    /// Validate every signature in a mail, or a detached (.p7s) or enveloping (.p7m) CMS file.
    /// Exits 0 whenever it printed a report, whatever the verdict.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// A mail (RFC 5322) or a CMS signature (DER or PEM).
    file: PathBuf,
    /// Validate at this time (RFC 3339, e.g. 2014-11-13T10:40:00Z) instead of the claimed
    /// signing time; you vouch that the signature existed then.
    #[arg(long)]
    at: Option<String>,
    /// One JSON object per signature (an array), instead of text.
    #[arg(long)]
    json: bool,
    /// The signed document, for a detached signature file.
    #[arg(long)]
    content: Option<PathBuf>,
    /// A trusted certificate (PEM, may hold several; or DER). Repeatable.
    #[arg(long)]
    anchor: Vec<PathBuf>,
    /// chain: each certificate valid when it issued the next (German QES practice);
    /// shell: every certificate valid at the validation time (PKIX, OpenSSL).
    #[arg(long, value_enum, default_value_t = Model::Chain)]
    model: Model,
    /// Revocation checking: ocsp (the responder each certificate names, then any --crl
    /// files), crl (only the --crl files) or off. Default: `[trust] revocation` of --config
    /// when that file exists, else off.
    #[arg(long, value_enum)]
    revocation: Option<Revocation>,
    /// A CRL file (DER or PEM) for --revocation crl, or a fallback for ocsp. Repeatable.
    #[arg(long)]
    crl: Vec<PathBuf>,
    /// Seconds to wait for an OCSP responder. Default: `[trust] ocsp_timeout` of --config
    /// when that file exists, else 5.
    #[arg(long)]
    ocsp_timeout: Option<f64>,
    /// A trusted list (ETSI TS 119 612 XML) for this run only, besides the imported ones;
    /// its XML signature must verify with a `--tl-signer`. Repeatable.
    #[arg(long)]
    tl: Vec<PathBuf>,
    /// A pinned signer certificate (PEM or DER) for the `--tl` lists. Repeatable.
    #[arg(long)]
    tl_signer: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Model {
    Chain,
    Shell,
}

#[derive(Clone, Copy, ValueEnum)]
enum Revocation {
    Off,
    Ocsp,
    Crl,
}

pub fn run(command: QesCommand, config: &Path) -> Result<ExitCode, String> {
    match command {
        QesCommand::Verify(args) => verify(args, config),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn verify(args: VerifyArgs, config: &Path) -> Result<ExitCode, String> {
    let revocation = revocation_checker(&args, config)?;
    let at = args
        .at
        .as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|e| format!("--at {s:?}: not an RFC 3339 time ({e})"))
        })
        .transpose()?;
    // Trusted lists: their CA/QC service certificates are anchors, and they decide the
    // qualification.
    let lists = crate::tl::lists_for_run(config, &args.tl, &args.tl_signer)?;
    let setup = demail_trust::setup::TrustSetup::new(&args.anchor, lists)?;
    let options = VerifyOptions {
        model: match args.model {
            Model::Chain => ValidationModel::Chain,
            Model::Shell => ValidationModel::Shell,
        },
        at,
        ..VerifyOptions::default()
    };
    let verifier = setup.verifier(options, revocation)?;
    let data = read(&args.file)?;
    let content = args.content.as_deref().map(read).transpose()?;
    let content_name = args.content.as_deref().map(file_name).unwrap_or_default();
    let report = verifier
        .verify_file(
            &data,
            &file_name(&args.file),
            content.as_deref().map(|c| (c, content_name.as_str())),
        )
        .map_err(|e| format!("{}: {e}", args.file.display()))?;
    if args.json {
        let json = serde_json::to_string_pretty(&report.signatures).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        print!("{}", text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--revocation`, else `[trust] revocation` when the configuration file exists, else off
/// (a mail checked on an admin's laptop should not contact responders unasked).
fn revocation_checker(
    args: &VerifyArgs,
    config: &Path,
) -> Result<Box<dyn RevocationChecker>, String> {
    let needs_config = args.revocation.is_none() || args.ocsp_timeout.is_none();
    let trust = if needs_config && config.exists() {
        Some(crate::load(config)?.trust)
    } else {
        None
    };
    let mode = match (args.revocation, &trust) {
        (Some(r), _) => r,
        (None, Some(t)) => match t.revocation {
            ConfiguredRevocation::Ocsp => Revocation::Ocsp,
            ConfiguredRevocation::Crl => Revocation::Crl,
            ConfiguredRevocation::Off => Revocation::Off,
        },
        (None, None) => Revocation::Off,
    };
    let timeout = match (args.ocsp_timeout, &trust) {
        (Some(s), _) if s.is_finite() && s > 0.0 && s <= 600.0 => Duration::from_secs_f64(s),
        (Some(s), _) => return Err(format!("--ocsp-timeout {s}: expected 0 < seconds <= 600")),
        (None, Some(t)) => t.ocsp_timeout,
        (None, None) => Duration::from_secs(5),
    };
    let crls = || CrlChecker::from_files(&args.crl).map_err(|e| e.to_string());
    Ok(match mode {
        Revocation::Off if !args.crl.is_empty() => {
            return Err("--crl needs --revocation crl or ocsp (revocation is off)".to_string());
        }
        Revocation::Off => Box::new(NoRevocationCheck),
        Revocation::Crl if args.crl.is_empty() => {
            return Err("--revocation crl needs at least one --crl FILE".to_string());
        }
        Revocation::Crl => Box::new(crls()?),
        Revocation::Ocsp if args.crl.is_empty() => Box::new(OcspChecker::new(timeout)),
        Revocation::Ocsp => Box::new(OcspChecker::new(timeout).with_crl_fallback(crls()?)),
    })
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn text(report: &MailReport) -> String {
    let mut out = String::new();
    let n = report.signatures.len();
    if n == 0 {
        out.push_str("no signature found (NO_SIGNATURE_FOUND)\n");
    }
    for (i, s) in report.signatures.iter().enumerate() {
        out.push_str(&signature_text(i + 1, n, s));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

fn signature_text(i: usize, n: usize, s: &SignatureReport) -> String {
    let mut out = format!("signature {i} of {n}: ");
    let what = match (&s.signed.filename, s.signed.section.as_str()) {
        (Some(f), "") => f.clone(),
        (Some(f), sec) => format!("part {sec} ({f})"),
        (None, sec) => format!("part {sec}"),
    };
    out.push_str(&format!("{what}, {:?}\n", s.signed.kind));
    let line = |k: &str, v: &str| format!("  {k:<16}{v}\n");
    out.push_str(&line("indication:", &s.indication.to_string()));
    out.push_str(&line(
        "sub-indication:",
        &s.sub_indication.map_or("-".to_string(), |x| x.to_string()),
    ));
    out.push_str(&line("qualification:", s.qualification.as_str()));
    if let Some(note) = &s.qualification_note {
        out.push_str(&line("", note));
    }
    let signer = s
        .signer
        .as_ref()
        .map_or("unknown".to_string(), |x| x.display());
    out.push_str(&line("signer:", &signer));
    out.push_str(&line(
        "signing time:",
        &s.signing_time.map_or("none".to_string(), ts),
    ));
    out.push_str(&line(
        "validated at:",
        &format!(
            "{} ({}; {} model; revocation {})",
            ts(s.validation_time),
            s.validation_time_source,
            s.model,
            s.revocation
        ),
    ));
    if !s.chain.is_empty() {
        let path: Vec<&str> = s.chain.iter().map(|c| c.subject.as_str()).collect();
        out.push_str(&line("chain:", &path.join(&format!("\n{:18}<- ", ""))));
    }
    for e in &s.errors {
        out.push_str(&line("error:", e));
    }
    for w in &s.warnings {
        out.push_str(&line("warning:", w));
    }
    out.push_str(&line(
        "header:",
        &format!("X-QES-Validation: {}", s.header_value()),
    ));
    out
}
