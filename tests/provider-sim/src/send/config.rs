//! Configuration of the sending side: who the provider is, what it signs with, where the city's
//! `demail-in` listens, and which recipients exist.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The provider's back office: identity, signing certificate and the way to the city.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Domain of the provider's system addresses (`Versandbestaetigung@<domain>`) and ids.
    pub provider_domain: String,
    /// Name of the provider in confirmation texts (`X-de-mail-originator-provider` is the domain).
    pub provider_name: String,
    /// PEM qualified signing certificate and key (`TestPki::issue_qualified`): signs
    /// `X-de-mail-integrity` and the confirmation XML.
    pub signing_cert: PathBuf,
    pub signing_key: PathBuf,
    /// The city's `demail-in` smtpd (implicit TLS, client certificate required).
    pub deliver_to: SocketAddr,
    /// The provider's TLS client certificate and key presented to `demail-in`.
    pub tls_client_cert: PathBuf,
    pub tls_client_key: PathBuf,
    /// CA that issued `demail-in`'s server certificate; `None` skips the server check.
    pub server_ca: Option<PathBuf>,
    /// Name the server certificate must carry (with `server_ca`).
    pub server_name: String,
    /// Recipients that have a mailbox here: glob patterns (`*`, `?`), compared in lower
    /// case. Empty: every De-Mail address is known.
    pub known_recipients: Vec<String>,
    /// Known recipients whose account is closed (exact addresses, any case).
    pub closed_accounts: Vec<String>,
    /// Further delivery attempts after a failed one (connection error or 4xx reply).
    pub retries: u32,
    /// Pause before the first retry; doubled for each further one.
    pub retry_delay: Duration,
    /// Line-based control port of the binary (`RETRIEVE <id>`); `None`: no port.
    pub control: Option<SocketAddr>,
}

impl SendConfig {
    /// Defaults for everything but the files and the target.
    pub fn new(
        signing_cert: PathBuf,
        signing_key: PathBuf,
        deliver_to: SocketAddr,
        tls_client_cert: PathBuf,
        tls_client_key: PathBuf,
    ) -> SendConfig {
        SendConfig {
            provider_domain: "provider-sim.de-mail.test".into(),
            provider_name: "De-Mail Provider Simulator".into(),
            signing_cert,
            signing_key,
            deliver_to,
            tls_client_cert,
            tls_client_key,
            server_ca: None,
            server_name: "localhost".into(),
            known_recipients: Vec::new(),
            closed_accounts: Vec::new(),
            retries: 4,
            retry_delay: Duration::from_millis(250),
            control: None,
        }
    }

    /// Checks what a struct literal can get wrong; returns the offending key and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let d = &self.provider_domain;
        if d.is_empty() || d.contains(|c: char| c.is_whitespace() || matches!(c, '@' | '<' | '>')) {
            return Err(("provider_domain", format!("{d:?} is not a domain")));
        }
        if self.provider_name.contains(['\r', '\n']) {
            return Err(("provider_name", "must be one line".into()));
        }
        if let Some(bad) = self
            .closed_accounts
            .iter()
            .chain(&self.known_recipients)
            .find(|a| !a.contains('@'))
        {
            return Err((
                "known_recipients/closed_accounts",
                format!("{bad:?} is not an address or address pattern"),
            ));
        }
        Ok(())
    }
}

/// `[send]` in the simulator's TOML file: the keys of [`SendConfig`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSend {
    #[serde(default)]
    provider_domain: Option<String>,
    #[serde(default)]
    provider_name: Option<String>,
    signing_cert: PathBuf,
    signing_key: PathBuf,
    deliver_to: SocketAddr,
    tls_client_cert: PathBuf,
    tls_client_key: PathBuf,
    #[serde(default)]
    server_ca: Option<PathBuf>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    known_recipients: Vec<String>,
    #[serde(default)]
    closed_accounts: Vec<String>,
    #[serde(default)]
    retries: Option<u32>,
    /// Milliseconds.
    #[serde(default)]
    retry_delay_ms: Option<u64>,
    #[serde(default)]
    control: Option<SocketAddr>,
}

impl FileSend {
    /// Relative paths are taken relative to `base` (the file's directory).
    pub(crate) fn resolve(self, base: &Path) -> SendConfig {
        let mut c = SendConfig::new(
            base.join(self.signing_cert),
            base.join(self.signing_key),
            self.deliver_to,
            base.join(self.tls_client_cert),
            base.join(self.tls_client_key),
        );
        if let Some(d) = self.provider_domain {
            c.provider_domain = d;
        }
        if let Some(n) = self.provider_name {
            c.provider_name = n;
        }
        c.server_ca = self.server_ca.map(|p| base.join(p));
        if let Some(n) = self.server_name {
            c.server_name = n;
        }
        c.known_recipients = self.known_recipients;
        c.closed_accounts = self.closed_accounts;
        if let Some(r) = self.retries {
            c.retries = r;
        }
        if let Some(ms) = self.retry_delay_ms {
            c.retry_delay = Duration::from_millis(ms);
        }
        c.control = self.control;
        c
    }
}

/// `*` matches any run of characters, `?` one; everything else itself (ASCII case-insensitive).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matcher with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "*@example.de-mail.de",
            "Buerger@Example.de-mail.de"
        ));
        assert!(glob_match("b?erger@*", "buerger@x"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("*@example.de-mail.de", "a@other.de-mail.de"));
        assert!(!glob_match("a*b*c", "aXbY"));
        assert!(glob_match("a*b*c", "aXbYc"));
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = SendConfig::new(
            "c".into(),
            "k".into(),
            "127.0.0.1:1".parse().expect("addr"),
            "t".into(),
            "tk".into(),
        );
        assert!(c.validate().is_ok());
        c.provider_domain = "bad domain".into();
        assert_eq!(c.validate().map_err(|e| e.0), Err("provider_domain"));
        c.provider_domain = "p.example".into();
        c.closed_accounts = vec!["nobody".into()];
        assert!(c.validate().is_err());
    }
}
