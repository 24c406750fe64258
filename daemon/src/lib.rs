//! What both daemons of demail-gateway share, so that each `main.rs` only names itself:
//! the command line (`--config`, `--log-format`, `--version`, `--help`), logging to stderr,
//! the signal loop (SIGHUP reloads, SIGTERM and SIGINT stop) with the reload rules, and the
//! Prometheus text endpoint.

mod args;
mod http;
mod logging;
pub mod metrics;
mod signals;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use demail_policy::Config;
use tracing::{error, info, warn};

pub use args::{Command, Options, parse_args};
pub use http::{bind_metrics, serve_metrics};
pub use logging::{LogFormat, init_logging};
pub use signals::Signals;

/// A daemon as its command line and help show it.
pub struct Program {
    pub name: &'static str,
    pub version: &'static str,
    /// One paragraph for `--help`.
    pub about: &'static str,
    /// What SIGHUP does, for `--help`.
    pub on_hangup: &'static str,
    /// The exit code when the configuration has errors.
    pub config_error_exit: u8,
    /// A runtime with one worker per core (else one thread).
    pub multi_thread: bool,
}

impl Program {
    pub fn usage(&self) -> String {
        let name = self.name;
        format!(
            "Usage: {name} [--config PATH] [--log-format text|json]\n       {name} --version\n\n\
             {about}\n\n\
             Options:\n  \
             -c, --config PATH       configuration file (default {default})\n      \
             --log-format FORMAT text (default) or json: one JSON object per line\n  \
             -V, --version           print the version and exit\n  \
             -h, --help              print this help and exit\n\n\
             Logging goes to stderr; RUST_LOG sets the level (default info).\n\
             SIGHUP {hup}; SIGTERM and SIGINT stop the daemon.",
            about = self.about,
            default = demail_policy::DEFAULT_CONFIG_PATH,
            hup = self.on_hangup,
        )
    }
}

/// The whole life of a daemon: arguments, logging, configuration, runtime, then `serve` with
/// the configuration file's path and its contents. Returns the process's exit code.
pub fn main<F, Fut>(program: &Program, serve: F) -> ExitCode
where
    F: FnOnce(PathBuf, Config) -> Fut,
    Fut: Future<Output = ExitCode>,
{
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(o)) => o,
        Ok(Command::Version) => {
            println!("{} {}", program.name, program.version);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Help) => {
            println!("{}", program.usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}: {e}\n\n{}", program.name, program.usage());
            return ExitCode::from(2);
        }
    };
    init_logging(options.log_format);
    let config = match Config::load(&options.config) {
        Ok(c) => c,
        Err(errors) => {
            // One line per problem: FILE:LINE: KEY: MESSAGE.
            eprintln!("{errors}");
            return ExitCode::from(program.config_error_exit);
        }
    };
    let runtime = if program.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::from(71);
        }
    };
    runtime.block_on(serve(options.config, config))
}

/// SIGHUP: reads `path` again and hands the result to `apply`. A file with errors is refused
/// (each error logged, FILE:LINE: KEY: MESSAGE) and the running configuration stays; a setting
/// that cannot change at run time keeps its running value, with a warning naming it
/// ([`demail_policy::reloadable`]). `apply` may refuse too (say, an unreadable certificate).
pub fn reload(
    path: &Path,
    running: &Config,
    apply: impl FnOnce(Config) -> Result<(), String>,
) -> bool {
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            for line in errors.to_string().lines() {
                error!("SIGHUP: {line}");
            }
            error!("SIGHUP: reload refused, configuration not reloaded: the running one stays");
            return false;
        }
    };
    let (new, kept) = demail_policy::reloadable(running, new);
    for key in kept {
        warn!("SIGHUP: {key} changed; the running value stays until a restart");
    }
    match apply(new) {
        Ok(()) => {
            info!("SIGHUP: configuration reloaded from {}", path.display());
            true
        }
        Err(e) => {
            error!(
                "SIGHUP: reload refused, configuration not reloaded: the running one stays: {e}"
            );
            false
        }
    }
}
