//! `demail-milter [--config PATH]`: arguments, configuration, logging, signals, exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use demail_policy::{Config, DEFAULT_CONFIG_PATH};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

const PROGRAM: &str = "demail-milter";

const USAGE: &str = "\
Usage: demail-milter [--config PATH]
       demail-milter --version

Postfix milter of demail-gateway (outbound De-Mail: sender authorisation, options, evidence).

Options:
  -c, --config PATH   configuration file (default /etc/demail/demail.toml)
  -V, --version       print the version and exit
  -h, --help          print this help and exit

Logging goes to stderr; RUST_LOG sets the level (default info).
SIGHUP reloads the configuration; SIGTERM and SIGINT stop the milter.";

enum Command {
    Run(PathBuf),
    Version,
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut config = PathBuf::from(DEFAULT_CONFIG_PATH);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" | "--config" => match args.next() {
                Some(p) => config = PathBuf::from(p),
                None => return Err(format!("{arg} needs a path")),
            },
            s if s.starts_with("--config=") => config = PathBuf::from(&s["--config=".len()..]),
            "-V" | "--version" => return Ok(Command::Version),
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Command::Run(config))
}

fn main() -> ExitCode {
    let path = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(path)) => path,
        Ok(Command::Version) => {
            println!("{PROGRAM} {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{PROGRAM}: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // journald (the usual reader) shows escape codes as garbage.
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let config = match Config::load(&path) {
        Ok(c) => Arc::new(c),
        Err(errors) => {
            // One line per problem: FILE:LINE: KEY: MESSAGE.
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{PROGRAM}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(path, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("{PROGRAM}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: PathBuf, config: Arc<Config>) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let hup = signal(SignalKind::hangup())?;
    let listener = demail_milter::bind(&config.milter.listen).await?;
    info!(
        listen = ?config.milter.listen,
        config = %config.source.display(),
        "{PROGRAM} {} ready",
        env!("CARGO_PKG_VERSION")
    );
    let (tx, rx) = watch::channel(config);
    tokio::spawn(reload_on_hangup(hup, path, tx));
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("SIGINT: shutting down"),
        }
    };
    demail_milter::run_reloadable(listener, rx, shutdown).await?;
    info!("stopped");
    Ok(())
}

/// SIGHUP: read the configuration again. A broken file keeps the running configuration; the
/// socket and the evidence paths need a restart.
async fn reload_on_hangup(mut hup: Signal, path: PathBuf, tx: watch::Sender<Arc<Config>>) {
    while hup.recv().await.is_some() {
        let new = match Config::load(&path) {
            Ok(c) => c,
            Err(errors) => {
                error!("SIGHUP: configuration not reloaded, the running one stays:\n{errors}");
                continue;
            }
        };
        let old = Arc::clone(&tx.borrow());
        if new.milter.listen != old.milter.listen {
            warn!("SIGHUP: [milter] listen changed; it takes effect only after a restart");
        }
        if new.evidence.database != old.evidence.database
            || new.evidence.blobs != old.evidence.blobs
        {
            warn!("SIGHUP: [evidence] paths changed; they take effect only after a restart");
        }
        tx.send_replace(Arc::new(new));
        info!("SIGHUP: configuration reloaded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Command, String> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    fn config_of(a: &[&str]) -> Option<PathBuf> {
        match args(a) {
            Ok(Command::Run(p)) => Some(p),
            _ => None,
        }
    }

    #[test]
    fn arguments() {
        assert_eq!(config_of(&[]), Some(PathBuf::from(DEFAULT_CONFIG_PATH)));
        assert_eq!(
            config_of(&["-c", "/x.toml"]),
            Some(PathBuf::from("/x.toml"))
        );
        assert_eq!(
            config_of(&["--config=/y.toml"]),
            Some(PathBuf::from("/y.toml"))
        );
        assert!(matches!(args(&["--version"]), Ok(Command::Version)));
        assert!(matches!(args(&["-h"]), Ok(Command::Help)));
        assert!(args(&["--config"]).is_err());
        assert!(args(&["--bogus"]).is_err());
    }
}
