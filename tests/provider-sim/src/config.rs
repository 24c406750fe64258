//! Simulator configuration: the struct tests fill in, and its TOML file form for the binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;
use crate::send::SendConfig;
use crate::send::config::FileSend;

/// Everything the simulated provider gateway needs to run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port (see [`crate::Simulator::addr`]).
    pub listen: SocketAddr,
    pub tls: TlsMode,
    /// PEM server certificate, optionally followed by its chain.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// PEM CA certificate(s) that must have issued the gateway's client certificate.
    pub client_ca: PathBuf,
    /// If set, SMTP AUTH PLAIN/LOGIN with this user and password is required (after TLS).
    pub auth: Option<(String, String)>,
    /// De-Mail accounts allowed as envelope sender (compared in lower case).
    pub accounts: Vec<String>,
    /// De-Mail domains: `*.parent` (every subdomain of parent) or an exact domain.
    pub demail_domains: Vec<String>,
    /// Accepted messages are written here as `NNNN.eml` + `NNNN.json`.
    pub store_dir: PathBuf,
    /// Bytes of message data (after dot-unstuffing) accepted per message.
    pub max_message_size: u64,
}

/// How TLS starts: on connect (SMTPS, the TR-01201 way between providers) or by STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Implicit,
    Starttls,
}

impl SimConfig {
    /// Reads the TOML form; relative paths are taken relative to the file's directory.
    pub fn from_toml_file(path: &Path) -> Result<SimConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml_str(&text, path, base)
    }

    /// Parses the TOML form. `origin` names the source in errors; `base` anchors relative paths.
    pub fn from_toml_str(text: &str, origin: &Path, base: &Path) -> Result<SimConfig, ConfigError> {
        Self::with_send_from_toml_str(text, origin, base).map(|(cfg, _)| cfg)
    }

    /// The file form with its optional `[send]` table (the sending side, see
    /// [`crate::send::SendConfig`]).
    pub fn with_send_from_toml_file(
        path: &Path,
    ) -> Result<(SimConfig, Option<SendConfig>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::with_send_from_toml_str(&text, path, base)
    }

    /// [`SimConfig::from_toml_str`] with the optional `[send]` table.
    pub fn with_send_from_toml_str(
        text: &str,
        origin: &Path,
        base: &Path,
    ) -> Result<(SimConfig, Option<SendConfig>), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            source: Box::new(e),
        })?;
        let invalid = |key, message: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key,
            message,
        };
        let max_message_size = match file.max_message_size {
            Size::Bytes(n) => n,
            Size::Text(t) => parse_size(&t).ok_or_else(|| {
                invalid(
                    "max_message_size",
                    format!("{t:?} is not a size (e.g. 20971520, \"20MiB\", \"500KiB\")"),
                )
            })?,
        };
        let auth = file.auth.map(|a| match a {
            FileAuth::Table(t) => (t.user, t.password),
            FileAuth::Pair(user, password) => (user, password),
        });
        let cfg = SimConfig {
            listen: file.listen,
            tls: file.tls,
            server_cert: base.join(file.server_cert),
            server_key: base.join(file.server_key),
            client_ca: base.join(file.client_ca),
            auth,
            accounts: file.accounts,
            demail_domains: file.demail_domains,
            store_dir: base.join(file.store_dir),
            max_message_size,
        };
        cfg.validate()
            .map_err(|(key, message)| invalid(key, message))?;
        let send = file.send.map(|s| s.resolve(base));
        if let Some(s) = &send {
            s.validate()
                .map_err(|(key, message)| invalid("send", format!("{key}: {message}")))?;
        }
        Ok((cfg, send))
    }

    /// Checks values a struct literal can get wrong; returns the offending key and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_message_size == 0 {
            return Err(("max_message_size", "must be greater than 0".into()));
        }
        if let Some(bad) = self.accounts.iter().find(|a| !is_plausible_address(a)) {
            return Err((
                "accounts",
                format!("{bad:?} is not an address (local@domain)"),
            ));
        }
        if self.demail_domains.is_empty() {
            return Err((
                "demail_domains",
                "at least one De-Mail domain is needed".into(),
            ));
        }
        if let Some(bad) = self.demail_domains.iter().find(|d| !is_domain_pattern(d)) {
            return Err((
                "demail_domains",
                format!("{bad:?} is neither a domain nor `*.domain`"),
            ));
        }
        if let Some((user, _)) = &self.auth
            && (user.is_empty() || user.contains('\0'))
        {
            return Err(("auth", "user must be non-empty and without NUL".into()));
        }
        Ok(())
    }
}

/// The TOML shape: the same keys as [`SimConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: SocketAddr,
    tls: TlsMode,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_ca: PathBuf,
    #[serde(default)]
    auth: Option<FileAuth>,
    accounts: Vec<String>,
    demail_domains: Vec<String>,
    store_dir: PathBuf,
    max_message_size: Size,
    #[serde(default)]
    send: Option<FileSend>,
}

/// `auth = { user = "..", password = ".." }` or `auth = ["user", "password"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum FileAuth {
    Table(FileAuthTable),
    Pair(String, String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuthTable {
    user: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

/// `"20MiB"`, `"512 KiB"`, `"20MB"`, `"1000"`: binary (Ki/Mi/Gi) or decimal (k/M/G) units.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "k" | "kB" | "KB" => 1_000,
        "KiB" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn is_plausible_address(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((local, domain)) => !local.is_empty() && is_domain_pattern(domain),
        None => false,
    }
}

fn is_domain_pattern(d: &str) -> bool {
    let d = d.strip_prefix("*.").unwrap_or(d);
    !d.is_empty()
        && d.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
listen = "127.0.0.1:1465"
tls = "implicit"
server_cert = "pki/server.pem"
server_key = "pki/server.key"
client_ca = "/abs/ca.pem"
auth = { user = "gw", password = "secret" }
accounts = ["info@magdeburg.de-mail.de"]
demail_domains = ["*.de-mail.de", "provider.example"]
store_dir = "store"
max_message_size = "20MiB"
"#;

    #[test]
    fn parses_the_file_form_and_resolves_relative_paths() {
        let cfg = SimConfig::from_toml_str(SAMPLE, Path::new("sim.toml"), Path::new("/etc/sim"))
            .expect("sample parses");
        assert_eq!(cfg.listen, "127.0.0.1:1465".parse().expect("addr"));
        assert_eq!(cfg.tls, TlsMode::Implicit);
        assert_eq!(cfg.server_cert, PathBuf::from("/etc/sim/pki/server.pem"));
        assert_eq!(cfg.client_ca, PathBuf::from("/abs/ca.pem"));
        assert_eq!(cfg.store_dir, PathBuf::from("/etc/sim/store"));
        assert_eq!(cfg.auth, Some(("gw".into(), "secret".into())));
        assert_eq!(cfg.max_message_size, 20 * 1024 * 1024);
    }

    #[test]
    fn auth_as_a_pair() {
        let text = SAMPLE.replace(
            r#"auth = { user = "gw", password = "secret" }"#,
            r#"auth = ["gw", "pa:ss"]"#,
        );
        let cfg = SimConfig::from_toml_str(&text, Path::new("x"), Path::new(".")).expect("parses");
        assert_eq!(cfg.auth, Some(("gw".into(), "pa:ss".into())));
        let text = SAMPLE.replace(r#"auth = { user = "gw", password = "secret" }"#, "");
        let cfg = SimConfig::from_toml_str(&text, Path::new("x"), Path::new(".")).expect("parses");
        assert_eq!(cfg.auth, None);
    }

    #[test]
    fn integer_size_and_starttls() {
        let text = SAMPLE
            .replace("\"20MiB\"", "1000")
            .replace("\"implicit\"", "\"starttls\"");
        let cfg = SimConfig::from_toml_str(&text, Path::new("x"), Path::new(".")).expect("parses");
        assert_eq!(cfg.max_message_size, 1000);
        assert_eq!(cfg.tls, TlsMode::Starttls);
    }

    #[test]
    fn bad_values_name_the_key() {
        let text = SAMPLE.replace("\"20MiB\"", "\"20 parsecs\"");
        let err = SimConfig::from_toml_str(&text, Path::new("sim.toml"), Path::new("."))
            .expect_err("bad size");
        let msg = err.to_string();
        assert!(
            msg.contains("sim.toml") && msg.contains("max_message_size"),
            "{msg}"
        );

        let text = SAMPLE.replace("info@magdeburg.de-mail.de", "no-at-sign");
        let err = SimConfig::from_toml_str(&text, Path::new("sim.toml"), Path::new("."))
            .expect_err("bad account");
        assert!(err.to_string().contains("accounts"), "{err}");

        let text = SAMPLE.replace("tls = \"implicit\"", "tls = \"sometimes\"");
        let err = SimConfig::from_toml_str(&text, Path::new("sim.toml"), Path::new("."))
            .expect_err("bad tls");
        assert!(err.to_string().contains("tls"), "{err}");

        let text = format!("{SAMPLE}\nlisten_typo = 1\n");
        let err = SimConfig::from_toml_str(&text, Path::new("sim.toml"), Path::new("."))
            .expect_err("unknown key");
        assert!(err.to_string().contains("listen_typo"), "{err}");
    }

    #[test]
    fn send_table_is_optional_and_resolved() {
        let (_, send) = SimConfig::with_send_from_toml_str(SAMPLE, Path::new("x"), Path::new("/b"))
            .expect("ok");
        assert!(send.is_none());
        let text = format!(
            "{SAMPLE}\n[send]\nsigning_cert = \"pki/q.pem\"\nsigning_key = \"pki/q.key\"\n\
             deliver_to = \"127.0.0.1:2465\"\ntls_client_cert = \"pki/mx.pem\"\n\
             tls_client_key = \"pki/mx.key\"\nknown_recipients = [\"*@magdeburg.de-mail.de\"]\n\
             closed_accounts = [\"alt@magdeburg.de-mail.de\"]\nretries = 1\nretry_delay_ms = 10\n\
             control = \"127.0.0.1:0\"\n"
        );
        let (_, send) =
            SimConfig::with_send_from_toml_str(&text, Path::new("x"), Path::new("/b")).expect("ok");
        let send = send.expect("send table");
        assert_eq!(send.signing_cert, PathBuf::from("/b/pki/q.pem"));
        assert_eq!(send.deliver_to, "127.0.0.1:2465".parse().expect("addr"));
        assert_eq!(send.retries, 1);
        assert_eq!(send.retry_delay, std::time::Duration::from_millis(10));
        assert_eq!(send.provider_domain, "provider-sim.de-mail.test");
        assert!(send.control.is_some());

        let bad = text.replace("retries = 1", "retries = 1\nprovider_domain = \"a b\"");
        let err = SimConfig::with_send_from_toml_str(&bad, Path::new("sim.toml"), Path::new("."))
            .expect_err("bad domain");
        assert!(err.to_string().contains("provider_domain"), "{err}");
        let typo = text.replace("retries = 1", "retrys = 1");
        assert!(SimConfig::with_send_from_toml_str(&typo, Path::new("x"), Path::new(".")).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size(" 20 MB "), Some(20_000_000));
        assert_eq!(parse_size("7"), Some(7));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("5 XB"), None);
        assert_eq!(parse_size("99999999999999GiB"), None);
    }
}
