//! Typed, validated settings read from `demail.toml`.
//!
//! Key names follow the configuration contract (`shared/demail.example.toml`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigErrors;
use crate::options::Options;

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub source: PathBuf,
    pub gateway: Gateway,
    pub inbound: Inbound,
    pub evidence: EvidenceSettings,
    pub trust: TrustSettings,
    pub tags: Tags,
    pub milter: MilterSettings,
    /// Absent until the site runs the IMAP proxy.
    pub imap_proxy: Option<ImapProxySettings>,
    pub tenants: Vec<Tenant>,
}

impl Config {
    /// Read and validate a configuration file. Errors list every problem with file:line:key.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        crate::config_parse::load(path)
    }

    /// Validate configuration text; `source` names the file in messages.
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigErrors> {
        crate::config_parse::parse(text, source)
    }

    /// Whether the provider is pinned: a client CA of its own, its client certificates (or
    /// fingerprints) and its seal certificates. Every gap, with file, line and key.
    pub fn pinning(&self) -> Result<(), ConfigErrors> {
        if self.inbound.unpinned.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors {
                file: self.source.clone(),
                errors: self.inbound.unpinned.clone(),
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayTls {
    /// TLS from the first byte (SMTPS, port 465/1465).
    Implicit,
    Starttls,
}

/// `[gateway]`: the provider's gateway that takes the city's outbound De-Mail.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub host: String,
    pub port: u16,
    pub tls: GatewayTls,
    pub client_certificate: PathBuf,
    pub client_key: PathBuf,
    pub provider_ca: PathBuf,
    /// `user:password` file for SMTP AUTH; never logged.
    pub auth_credentials: Option<PathBuf>,
    pub domains: Vec<DomainPattern>,
    /// Bytes.
    pub max_message_size: u64,
}

/// A De-Mail domain: `*.de-mail.de` (any subdomain) or an exact provider domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPattern {
    /// Lower-case domain; matches only itself.
    Exact(String),
    /// Lower-case parent domain from `*.parent`; matches every subdomain of it, not the parent.
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverConfirmations {
    /// Deliver to the mailbox and keep the evidence.
    Mailbox,
    /// Keep only as evidence (the milter discards after storing).
    EvidenceOnly,
}

/// `[inbound]`
#[derive(Debug, Clone)]
pub struct Inbound {
    /// master.cf service name seen as `{daemon_name}` for the provider's traffic.
    pub provider_service: String,
    /// The CA file that issues the provider's TLS client certificates (`demail-in`'s
    /// `smtpd_tls_CAfile`); not the gateway's server CA.
    pub provider_client_ca: Option<PathBuf>,
    /// The provider's TLS client certificates (PEM): Postfix pins their fingerprints, the
    /// milter their subject and issuer names.
    pub provider_client_certificates: Vec<PathBuf>,
    /// SHA-256 fingerprints (32 bytes) of further provider TLS client certificates.
    pub provider_client_fingerprints: Vec<[u8; 32]>,
    /// The provider's seal certificates (PEM) that sign `X-de-mail-integrity`.
    pub provider_signers: Vec<PathBuf>,
    /// What leaves the provider unpinned (see [`Config::pinning`]); empty when pinned.
    pub unpinned: Vec<crate::ConfigError>,
    /// Lower-case addresses whose mail gets QES checks.
    pub poststelle: Vec<String>,
    pub deliver_confirmations: DeliverConfirmations,
    /// Key `listen`: address:port of the `demail-in` smtpd (implicit TLS, provider client
    /// certificate required). Default `0.0.0.0:1465` (the TR's inter-provider SMTPS port).
    pub listen: String,
    /// Keys `certificate` / `key`: the server certificate `demail-in` presents to the provider.
    /// Default: the gateway client certificate and key (the city has one identity towards the
    /// provider). Must exist when given.
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// `[evidence]`
#[derive(Debug, Clone)]
pub struct EvidenceSettings {
    /// An SQLite file (one node) or a PostgreSQL server shared by several nodes.
    pub database: demail_sql::Location,
    pub blobs: PathBuf,
    pub retention_years: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationModel {
    Chain,
    Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Ocsp,
    Crl,
    Off,
}

/// `[trust]`
#[derive(Debug, Clone)]
pub struct TrustSettings {
    pub trusted_lists: PathBuf,
    pub anchors: Vec<PathBuf>,
    pub list_signers: Vec<PathBuf>,
    pub validation_model: ValidationModel,
    pub revocation: Revocation,
    pub ocsp_timeout: Duration,
}

/// `[tags]`: subject tags clerks see on inbound mail; an empty string disables a tag.
#[derive(Debug, Clone)]
pub struct Tags {
    pub authoritative: String,
    pub qes_valid: String,
    pub signed_not_qualified: String,
    pub signature_invalid: String,
    pub signature_indeterminate: String,
    /// The QES tag for a qualified signature that sits on an attachment, not on the message:
    /// names the signer (`{signer}`). Default: `qes_valid` with `: {signer}` inside its
    /// brackets.
    pub qes_valid_attachment: String,
}

impl Default for Tags {
    /// The tags of `[tags]` when nothing is configured.
    fn default() -> Tags {
        let qes_valid = "[QES gültig]".to_string();
        Tags {
            authoritative: "[De-Mail absenderbestätigt]".into(),
            qes_valid_attachment: crate::tags::attachment_template(&qes_valid),
            qes_valid,
            signed_not_qualified: "[signiert, keine QES]".into(),
            signature_invalid: "[Signatur ungültig]".into(),
            signature_indeterminate: "[Signatur unbestimmt]".into(),
        }
    }
}

/// `inet:host:port` or `unix:/path`, as Postfix and OpenDKIM write milter sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketSpec {
    Inet { host: String, port: u16 },
    Unix(PathBuf),
}

/// Default `[milter] listen`: a UNIX socket, so that only Postfix (group `postfix`) can speak
/// milter and claim `{daemon_name}=demail-in`; a TCP port on 127.0.0.1 is open to every local
/// process. It lies inside Debian's smtpd chroot, where smtpd reaches it.
pub const DEFAULT_MILTER_SOCKET: &str = "/var/spool/postfix/demail/milter.sock";

/// Group given the milter's UNIX socket (mode 0660) when it exists: Postfix's.
pub const MILTER_SOCKET_GROUP: &str = "postfix";

/// The directory Debian's master.cf chroots smtpd into (`queue_directory`).
pub const POSTFIX_CHROOT: &str = "/var/spool/postfix";

impl SocketSpec {
    /// The value for `smtpd_milters`. A chrooted smtpd resolves a UNIX socket path relative
    /// to its chroot, so with `chroot` the path is written relative to it; a socket outside the
    /// chroot cannot be reached from inside and is an error.
    pub fn postfix_milter(&self, chroot: Option<&Path>) -> Result<String, String> {
        match (self, chroot) {
            (SocketSpec::Inet { host, port }, _) if host.contains(':') => {
                Ok(format!("inet:[{host}]:{port}"))
            }
            (SocketSpec::Inet { host, port }, _) => Ok(format!("inet:{host}:{port}")),
            (SocketSpec::Unix(path), None) => Ok(format!("unix:{}", path.display())),
            (SocketSpec::Unix(path), Some(root)) => match path.strip_prefix(root) {
                Ok(inside) if !inside.as_os_str().is_empty() => {
                    Ok(format!("unix:/{}", inside.display()))
                }
                _ => Err(format!(
                    "[milter] listen = \"unix:{}\" lies outside the smtpd chroot {}: a chrooted \
                     smtpd cannot reach it; put the socket under {} (default \"unix:{}\") or run \
                     smtpd without chroot",
                    path.display(),
                    root.display(),
                    root.display(),
                    DEFAULT_MILTER_SOCKET
                )),
            },
        }
    }
}

/// `[milter]`
#[derive(Debug, Clone)]
pub struct MilterSettings {
    pub listen: SocketSpec,
    /// `[milter.metrics]`: absent, no metrics endpoint.
    pub metrics: Option<MetricsSettings>,
}

/// `[milter.metrics]`, `[imap_proxy.metrics]`: where the Prometheus text endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `host:port` (IPv6 in brackets), plain HTTP.
    pub listen: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendTls {
    None,
    Starttls,
    Implicit,
}

/// `[imap_proxy.folders]`: names of the virtual folders (UTF-8 here, modified UTF-7 on the wire).
#[derive(Debug, Clone)]
pub struct FolderNames {
    pub root: String,
    pub dispatch: String,
    pub receipt: String,
    pub retrieve: String,
    pub failed: String,
    pub pending: String,
    pub deemed_served: String,
}

/// `[imap_proxy]`
#[derive(Debug, Clone)]
pub struct ImapProxySettings {
    pub listen_imaps: Option<String>,
    pub listen_imap: Option<String>,
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub backend: String,
    pub backend_tls: BackendTls,
    pub state: PathBuf,
    pub folders: FolderNames,
    /// CA file for Dovecot's certificate when `backend_tls` is not `none` (default: the system
    /// store).
    pub backend_ca: Option<PathBuf>,
    pub limits: ProxyLimits,
    /// `[imap_proxy.metrics]`: absent, no metrics endpoint.
    pub metrics: Option<MetricsSettings>,
}

/// What one client may cost the proxy.
#[derive(Debug, Clone)]
pub struct ProxyLimits {
    /// Longest command line (literals not counted), bytes.
    pub max_line_length: u64,
    /// Largest literal a client may send (APPEND), bytes.
    pub max_literal_size: u64,
    pub max_connections_per_ip: u64,
    /// Logged-in sessions per login.
    pub max_connections_per_login: u64,
    /// Without a command from the client (also while idling) the session ends after this.
    pub idle_timeout: std::time::Duration,
}

/// `[[tenant]]`: one town (a municipal association serves many).
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    /// Only public bodies may request an Abholbestätigung.
    pub public_body: bool,
    /// Lower-case mail domains of the town's ordinary mail.
    pub internal_domains: Vec<String>,
    pub accounts: Vec<Account>,
}

/// `[[tenant.account]]`: one De-Mail account of a tenant.
#[derive(Debug, Clone)]
pub struct Account {
    /// Lower-case De-Mail address.
    pub address: String,
    /// Internal mailboxes that inbound De-Mail to this account is delivered to.
    pub deliver_to: Vec<String>,
    /// Who may send as this account.
    pub senders: Vec<SenderPattern>,
    /// IMAP logins that see all evidence of this account.
    pub visible_to: Vec<String>,
    pub default_options: Options,
    /// Keep the clerk as `Reply-To` when the sender is rewritten to the account (then the
    /// provider sends confirmations to the clerk). Key `reply_to_clerk`, default false.
    pub reply_to_clerk: bool,
}

/// An entry of `senders`: an address glob (`*@magdeburg.example`) or `sasl:` login glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderPattern {
    /// Lower-case glob over the envelope sender; `*` matches any run of characters.
    Address(String),
    /// Glob over the SASL login (`{auth_authen}`), compared case-insensitively.
    Sasl(String),
}
