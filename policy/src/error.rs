//! Configuration errors: every problem found, each with file, line and key.

use std::fmt;
use std::path::PathBuf;

/// One problem in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line of the offending key or value (0 when the file could not be read at all).
    pub line: usize,
    /// Dotted key path, e.g. `tenant[0].account[1].senders`.
    pub key: String,
    /// What is wrong, and a suggestion where there is one ("did you mean `provider_ca`?").
    pub message: String,
}

/// All problems found in one file (never just the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    /// One line per error: `FILE:LINE: KEY: MESSAGE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                e.line,
                e.key,
                e.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
