//! `demail-imap-proxy [--config PATH]`: arguments, configuration, logging, signals, exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use demail_imap_proxy::{Shared, bind, run};
use demail_policy::{Config, DEFAULT_CONFIG_PATH};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

const PROGRAM: &str = "demail-imap-proxy";

const USAGE: &str = "\
Usage: demail-imap-proxy [--config PATH]
       demail-imap-proxy --version

IMAP proxy of demail-gateway: Dovecot passed through unchanged, the De-Mail evidence as
read-only folders.

Options:
  -c, --config PATH   configuration file (default /etc/demail/demail.toml)
  -V, --version       print the version and exit
  -h, --help          print this help and exit

Logging goes to stderr; RUST_LOG sets the level (default info).
SIGHUP reloads the configuration for new sessions; SIGTERM and SIGINT stop the proxy.";

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
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let config = match Config::load(&path) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            error!("{e}");
            return ExitCode::from(78);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::from(71);
        }
    };
    rt.block_on(async move {
        let shared = match Shared::new(config.clone()) {
            Ok(s) => s,
            Err(e) => {
                error!("{e}");
                return ExitCode::from(78);
            }
        };
        let settings = config.imap_proxy.as_ref().expect("Shared::new checked it");
        let listeners = match bind(settings).await {
            Ok(l) => l,
            Err(e) => {
                error!("{e}");
                return ExitCode::from(71);
            }
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let reload_shared = shared.clone();
        let reload_path = path.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                match Config::load(&reload_path) {
                    Ok(c) => match reload_shared.reload(Arc::new(c)) {
                        Ok(()) => info!("configuration reloaded from {}", reload_path.display()),
                        Err(e) => warn!("reload refused, the old configuration stays: {e}"),
                    },
                    Err(e) => warn!("reload refused, the old configuration stays: {e}"),
                }
            }
        });
        tokio::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            info!("stopping");
            let _ = stop_tx.send(true);
        });
        match run(shared, listeners, stop_rx).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("{e}");
                ExitCode::from(70)
            }
        }
    })
}
