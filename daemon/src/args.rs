//! The command line both daemons accept.

use std::path::PathBuf;

use demail_policy::DEFAULT_CONFIG_PATH;

use crate::LogFormat;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Version,
    Help,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub config: PathBuf,
    pub log_format: LogFormat,
}

pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        config: PathBuf::from(DEFAULT_CONFIG_PATH),
        log_format: LogFormat::Text,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name {
            "-c" | "--config" => options.config = PathBuf::from(value("a path")?),
            "--log-format" => {
                let v = value("text or json")?;
                options.log_format = match v.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => return Err(format!("--log-format {other:?}: use text or json")),
                }
            }
            "-V" | "--version" if inline.is_none() => return Ok(Command::Version),
            "-h" | "--help" if inline.is_none() => return Ok(Command::Help),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Command::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Command, String> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    fn run(config: &str, log_format: LogFormat) -> Result<Command, String> {
        Ok(Command::Run(Options {
            config: PathBuf::from(config),
            log_format,
        }))
    }

    #[test]
    fn arguments() {
        assert_eq!(args(&[]), run(DEFAULT_CONFIG_PATH, LogFormat::Text));
        assert_eq!(args(&["-c", "/x.toml"]), run("/x.toml", LogFormat::Text));
        assert_eq!(args(&["--config=/y.toml"]), run("/y.toml", LogFormat::Text));
        assert_eq!(
            args(&["--log-format", "json", "--config", "/z"]),
            run("/z", LogFormat::Json)
        );
        assert_eq!(
            args(&["--log-format=text"]),
            run(DEFAULT_CONFIG_PATH, LogFormat::Text)
        );
        assert_eq!(args(&["--version"]), Ok(Command::Version));
        assert_eq!(args(&["-V"]), Ok(Command::Version));
        assert_eq!(args(&["-h"]), Ok(Command::Help));
        assert_eq!(args(&["--help"]), Ok(Command::Help));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(args(&["--config"]), Err("--config needs a path".into()));
        assert!(
            args(&["--log-format", "xml"])
                .unwrap_err()
                .contains("\"xml\"")
        );
        assert!(args(&["--log-format"]).is_err());
        assert_eq!(
            args(&["--bogus"]),
            Err("unknown argument \"--bogus\"".into())
        );
        assert!(args(&["--version=1"]).is_err());
        assert!(args(&["-cfoo"]).is_err());
    }
}
