//! `check-postfix-milter --config DEMAIL_TOML`: a real Postfix, configured from `demailctl
//! postfix-config` for that file (so `smtpd_milters` is its `[milter] listen`), in front of a
//! milter that already runs (dev/test-package starts the installed one from its unit). Sends
//! one De-Mail an allowed sender may send and one from a sender nobody allowed, and checks
//! Postfix's own log: the first is queued with the milter's route to the provider, the second
//! refused with 5.7.1. Exit 0 when both hold, 1 with the reason otherwise.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use demail_policy::{DomainPattern, SenderPattern};

use demail_e2e::{Postfix, demailctl_postfix_options, swaks};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(flag), Some(config), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: check-postfix-milter --config DEMAIL_TOML");
        std::process::exit(2);
    };
    if flag != "--config" {
        eprintln!("usage: check-postfix-milter --config DEMAIL_TOML");
        std::process::exit(2);
    }
    match check(&PathBuf::from(config)) {
        Ok(report) => println!("check-postfix-milter: {report}"),
        Err(e) => {
            eprintln!("check-postfix-milter: {e}");
            std::process::exit(1);
        }
    }
}

fn check(config: &std::path::Path) -> Result<String, String> {
    let config = std::fs::canonicalize(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let policy = demail_policy::Config::load(&config).map_err(|e| e.to_string())?;
    let (sender, recipient) = allowed_pair(&policy)?;
    let tables = tempfile::Builder::new()
        .prefix("check-postfix-milter-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    // Postfix's unprivileged processes read the tables.
    std::fs::set_permissions(tables.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let pf = Postfix::start(demailctl_postfix_options(&config, tables.path()));
    let server = format!("127.0.0.1:{}", pf.smtp_port);

    let ok = swaks(&[
        "--server",
        &server,
        "--from",
        &sender,
        "--to",
        &recipient,
        "--header",
        "Subject: Prüfung des Pakets",
    ]);
    let transcript = String::from_utf8_lossy(&ok.stdout).into_owned();
    if !ok.status.success() {
        return Err(format!(
            "Postfix did not accept the De-Mail from {sender}:\n{transcript}\n{}",
            pf.log()
        ));
    }
    let refused = swaks(&[
        "--server",
        &server,
        "--from",
        "unbekannt@nirgendwo.example",
        "--to",
        &recipient,
    ]);
    let refusal = String::from_utf8_lossy(&refused.stdout).into_owned();
    if refused.status.success() || !refusal.contains(" 5.7.1 ") {
        return Err(format!(
            "a sender nobody allowed was not refused with 5.7.1:\n{refusal}"
        ));
    }
    let log = pf.log();
    let routed = log
        .lines()
        .find(|l| l.contains("milter-header-filter: header X-DeMail-Route:"))
        .ok_or_else(|| format!("Postfix logged no route from the milter:\n{log}"))?;
    Ok(format!(
        "Postfix queued {sender} -> {recipient} with the milter's route ({}) and refused an unknown sender with 5.7.1",
        routed
            .split("X-DeMail-Route: ")
            .nth(1)
            .and_then(|r| r.split(" from ").next())
            .unwrap_or("?")
    ))
}

/// The first account's De-Mail address as recipient would be odd; a citizen in the first
/// De-Mail domain, and a sender the first account's first address pattern allows.
fn allowed_pair(policy: &demail_policy::Config) -> Result<(String, String), String> {
    let account = policy
        .tenants
        .iter()
        .flat_map(|t| t.accounts.iter())
        .next()
        .ok_or("the configuration has no account")?;
    let sender = account
        .senders
        .iter()
        .find_map(|s| match s {
            SenderPattern::Address(glob) => Some(glob.replace('*', "pruefung")),
            SenderPattern::Sasl(_) => None,
        })
        .ok_or("the first account allows no sender address")?;
    let recipient = match policy
        .gateway
        .domains
        .first()
        .ok_or("no [gateway] domains")?
    {
        DomainPattern::Exact(d) => format!("buerger@{d}"),
        DomainPattern::Subdomains(d) => format!("buerger@pruefung.{d}"),
    };
    Ok((sender, recipient))
}
