//! A whole test city: its demail.toml, the provider's test PKI, `demail-milter` as a process,
//! the provider simulator, Postfix configured by `demailctl postfix-config --write`, and
//! optionally Dovecot for the town's ordinary mailboxes. Shared by the end-to-end tests, the
//! benchmark and the demo.
//!
//! ```no_run
//! use demail_e2e::city::{City, CityOptions, CITIZEN, CLERK};
//!
//! let city = City::start(CityOptions::default());
//! let out = demail_e2e::swaks(&[
//!     "--server", &city.smtp_server(), "--from", CLERK, "--to", CITIZEN,
//! ]);
//! assert!(out.status.success());
//! let got = city.simulator().expect("running").wait_for(1, std::time::Duration::from_secs(30));
//! assert_eq!(got.len(), 1);
//! ```
//!
//! Like the rest of the harness, starting panics with a message saying what failed. Dropping a
//! `City` stops everything it started (Postfix first, so nothing is sent half-way) and removes
//! its directory unless [`CityOptions::dir`] named one; it never panics.

mod config;
mod node;

pub use node::Node;

/// The `[[tenant]]` sections of the standard test city ([`CityOptions::default`]), to extend.
pub fn default_tenants() -> String {
    config::default_tenants()
}

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;

use demail_evidence::{Store, Submission};
use demail_provider_sim::pki::{CertUsage, TestPki, TestTrustedList};
use demail_provider_sim::receive::RunOptions;
use demail_provider_sim::{SendConfig, SimConfig, Simulator, TlsMode};
use openssl::hash::MessageDigest;
use openssl::x509::X509;

use crate::files::{instance_dir, mkdir, set_mode, write};
use crate::imap_proxy::{ProxyPorts, ProxyProcess, proxy_section};
use crate::milter::{MilterAddr, MilterProcess};
use crate::net::free_port;
use crate::tools::cargo_bin;
use crate::{Dovecot, Postfix, PostfixOptions, demailctl_postfix_options, process};

/// The test city's tenant (a public body, so it may request an Abholbestätigung).
pub const TENANT: &str = "Stadt Testhausen";
/// Its De-Mail account; defaults `dispatch` and `receipt`.
pub const ACCOUNT: &str = "info@testhausen.de-mail.de";
/// The one clerk allowed to send as [`ACCOUNT`].
pub const CLERK: &str = "sachbearbeitung@example.test";
/// An internal address that may not send De-Mail.
pub const INTERN: &str = "praktikum@example.test";
/// Where inbound De-Mail to [`ACCOUNT`] is delivered; sees its evidence over IMAP.
pub const POSTSTELLE: &str = "poststelle@example.test";
/// A citizen's De-Mail address.
pub const CITIZEN: &str = "buerger@example.de-mail.de";

/// What a city is made of. `CityOptions::default()` is the standard test city: the tenant
/// [`TENANT`], milter and simulator running, no Dovecot.
#[derive(Clone, Debug)]
pub struct CityOptions {
    /// The `[[tenant]]` sections of demail.toml.
    pub tenants: String,
    /// More demail.toml sections (e.g. `[imap_proxy]`), appended as they are.
    pub extra_toml: String,
    /// `[gateway] domains`.
    pub demail_domains: Vec<String>,
    /// `[gateway] max_message_size` in bytes; Postfix's `message_size_limit` and the
    /// simulator's limit are set above it, so the milter is the one that decides.
    pub max_message_size: u64,
    /// Start Dovecot with these `(login, password)` users and deliver the internal domain
    /// (`example.test`) to it. None started when empty.
    pub dovecot_users: Vec<(String, String)>,
    /// Start the provider simulator (it can be started later with [`City::start_simulator`]).
    pub simulator: bool,
    /// The simulator's sending side too: confirmations, notifications and inbound De-Mail to
    /// `demail-in`, signed with a test qualified certificate whose CA a test trusted list
    /// names (imported with `demailctl tl import` before the milter starts). Writes the
    /// `[trust]` section, so `extra_toml` must not have one.
    pub provider_sends: bool,
    /// Recipients that have a mailbox at the provider (globs); empty: every De-Mail address.
    pub provider_known_recipients: Vec<String>,
    /// Start the milter (it can be started later with [`City::start_milter`]).
    pub milter: bool,
    /// Start `demail-imap-proxy` in front of Dovecot (needs `dovecot_users`); `proxy_toml`
    /// is added to its `[imap_proxy]` section.
    pub imap_proxy: bool,
    pub proxy_toml: String,
    /// Dovecot also listens for implicit TLS ([`City::dovecot_imaps_port`]) with the same
    /// certificate as the proxy, so a client can reach either the way clerks do.
    pub dovecot_tls: bool,
    /// Appended to dovecot.conf (e.g. process limits for many sessions).
    pub dovecot_conf: String,
    /// The milter listens on TCP 127.0.0.1 instead of its default unix socket (for a test that
    /// puts a TCP tap between Postfix and the milter).
    pub milter_tcp: bool,
    /// `RUST_LOG` of the milter process.
    pub milter_log_level: String,
    /// Added after what `demailctl postfix-config` wrote (a main.cf key given here overrides
    /// it). `lmtp_port` is used only when no Dovecot is started.
    pub postfix: PostfixOptions,
    /// Keep the city's files here (created if needed, left in place) instead of a temporary
    /// directory that is removed on drop.
    pub dir: Option<PathBuf>,
    /// `[evidence] database` and `password_file` of a PostgreSQL store (several cities given
    /// the same one are the nodes of one gateway); the city's own SQLite file when `None`.
    pub evidence_postgres: Option<(String, PathBuf)>,
}

impl Default for CityOptions {
    fn default() -> Self {
        CityOptions {
            tenants: config::default_tenants(),
            extra_toml: String::new(),
            demail_domains: vec!["*.de-mail.de".into()],
            max_message_size: 20 << 20,
            dovecot_users: Vec::new(),
            imap_proxy: false,
            proxy_toml: String::new(),
            dovecot_tls: false,
            dovecot_conf: String::new(),
            simulator: true,
            provider_sends: false,
            provider_known_recipients: Vec::new(),
            milter: true,
            milter_tcp: false,
            milter_log_level: "info".into(),
            postfix: PostfixOptions::default(),
            dir: None,
            evidence_postgres: None,
        }
    }
}

/// A running test city; see the module documentation.
pub struct City {
    // Fields drop in this order: Postfix stops before the milter and the provider it uses.
    postfix: Postfix,
    milter: Option<MilterProcess>,
    proxy: Option<ProxyProcess>,
    simulator: Option<Simulator>,
    dovecot: Option<Dovecot>,
    sim_config: SimConfig,
    send_config: Option<SendConfig>,
    trusted_list: Option<TestTrustedList>,
    milter_addr: MilterAddr,
    inbound_port: u16,
    /// What a further node's Postfix gets beside `demailctl postfix-config` ([`City::start_node`]).
    node_main_cf: Vec<(String, String)>,
    node_extra_files: Vec<(String, Vec<u8>)>,
    node_lmtp_port: Option<u16>,
    milter_log_level: String,
    config: PathBuf,
    evidence_location: demail_evidence::Location,
    evidence_blobs: PathBuf,
    pki: TestPki,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl City {
    /// Writes demail.toml (checked by the policy crate), generates the PKI, starts Dovecot
    /// (if users are given), the milter, Postfix with the `demailctl postfix-config` output,
    /// and the simulator, each as the options say.
    pub fn start(opts: CityOptions) -> City {
        let (tmp, dir) = match &opts.dir {
            Some(d) => {
                mkdir(d);
                (None, d.clone())
            }
            None => {
                let tmp = instance_dir("e2e-city-");
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        // Postfix's unprivileged processes read the tables and certificates below it.
        set_mode(&dir, 0o755);
        let pki_dir = dir.join("pki");
        let pki = TestPki::generate(&pki_dir)
            .unwrap_or_else(|e| panic!("City: test PKI in {}: {e}", pki_dir.display()));
        set_mode(&pki_dir, 0o755);
        let inbound = pki
            .issue(
                "city-in",
                "localhost",
                &["localhost", "127.0.0.1"],
                CertUsage::Server,
            )
            .unwrap_or_else(|e| panic!("City: demail-in certificate: {e}"));
        mkdir(&dir.join("evidence"));
        let provider = ProviderCerts::issue(&pki, &dir);

        let sim_port = free_port();
        // As packaged: a unix socket Postfix reaches through its group.
        let milter_addr = if opts.milter_tcp {
            MilterAddr::Tcp(free_port())
        } else {
            MilterAddr::Unix(dir.join("milter.sock"))
        };
        let inbound_port = free_port();
        let layout = config::Layout {
            dir: &dir,
            pki: &pki,
            inbound_cert: &inbound.cert,
            inbound_key: &inbound.key,
            provider_client_ca: &provider.client_ca,
            provider_client_cert: &provider.client.cert,
            provider_seal: &provider.seal.cert,
            sim_port,
            milter: &milter_addr,
            inbound_port,
        };
        // The city's IMAP certificate: the proxy's, and Dovecot's when it speaks TLS itself.
        let imap_cert = (opts.imap_proxy || opts.dovecot_tls).then(|| {
            pki.issue(
                "imap",
                "localhost",
                &["localhost", "127.0.0.1"],
                CertUsage::Server,
            )
            .unwrap_or_else(|e| panic!("City: IMAP certificate: {e}"))
        });
        let dovecot = (!opts.dovecot_users.is_empty()).then(|| {
            let users: Vec<(&str, &str)> = opts
                .dovecot_users
                .iter()
                .map(|(u, p)| (u.as_str(), p.as_str()))
                .collect();
            let tls = match (&imap_cert, opts.dovecot_tls) {
                (Some(cert), true) => Some((cert.cert.as_path(), cert.key.as_path())),
                _ => None,
            };
            Dovecot::start_with(&users, tls, &opts.dovecot_conf)
        });
        let mut extra = opts.extra_toml.clone();
        let proxy_ports = match (&dovecot, &imap_cert, opts.imap_proxy) {
            (Some(dc), Some(cert), true) => {
                let ports = ProxyPorts::new(dc.imap_port);
                extra.push_str(&proxy_section(
                    &ports,
                    &cert.cert,
                    &cert.key,
                    &dir.join("proxy-state.sqlite"),
                    &opts.proxy_toml,
                ));
                Some(ports)
            }
            (None, _, true) => panic!("City: the IMAP proxy needs Dovecot (dovecot_users)"),
            _ => None,
        };
        if opts.provider_sends {
            extra.push_str(&config::trust_section(&dir));
        }
        let toml = config::demail_toml(
            &layout,
            &opts.demail_domains,
            opts.max_message_size,
            &opts.tenants,
            &extra,
            opts.evidence_postgres.as_ref(),
        );
        let config = dir.join("demail.toml");
        write(&config, &toml);
        let policy = demail_policy::Config::load(&config).unwrap_or_else(|e| {
            panic!("City: demail.toml rejected:\n{e}\n--- demail.toml ---\n{toml}")
        });

        let sim_config = SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, sim_port)),
            tls: TlsMode::Implicit,
            server_cert: pki.server_cert.clone(),
            server_key: pki.server_key.clone(),
            client_ca: pki.ca_cert.clone(),
            auth: None,
            accounts: policy
                .tenants
                .iter()
                .flat_map(|t| t.accounts.iter().map(|a| a.address.clone()))
                .collect(),
            demail_domains: policy
                .gateway
                .domains
                .iter()
                .map(|d| match d {
                    demail_policy::DomainPattern::Exact(d) => d.clone(),
                    demail_policy::DomainPattern::Subdomains(p) => format!("*.{p}"),
                })
                .collect(),
            store_dir: dir.join("provider-store"),
            // Room for what the milter adds; the milter enforces the configured limit.
            max_message_size: opts.max_message_size + (1 << 20),
        };

        // Before the milter starts: it loads the imported lists once per configuration.
        let (send_config, trusted_list) = if opts.provider_sends {
            let (send, tl) = provider_side(&config, &pki, &provider, &dir, inbound_port);
            let mut send = send;
            send.known_recipients = opts.provider_known_recipients.clone();
            (Some(send), Some(tl))
        } else {
            (None, None)
        };

        let milter_log = dir.join("milter.log");
        let milter = opts.milter.then(|| {
            MilterProcess::start(&config, &milter_addr, &milter_log, &opts.milter_log_level)
        });

        let tables = dir.join("postfix-demail");
        let mut pf = demailctl_postfix_options(&config, &tables);
        // Postfix's default (10240000) would refuse big De-Mails before the milter sees them.
        let size_limit = opts
            .max_message_size
            .saturating_add(1 << 20)
            .max(10_240_000);
        let mut node_main_cf = vec![("message_size_limit".to_string(), size_limit.to_string())];
        node_main_cf.extend(opts.postfix.main_cf.iter().cloned());
        pf.main_cf.extend(node_main_cf.iter().cloned());
        pf.master_cf.extend(opts.postfix.master_cf.iter().cloned());
        pf.extra_files = opts.postfix.extra_files.clone();
        pf.lmtp_port = dovecot
            .as_ref()
            .map(|d| d.lmtp_port)
            .or(opts.postfix.lmtp_port);
        let node_lmtp_port = pf.lmtp_port;
        let postfix = Postfix::start(pf);
        let proxy = proxy_ports
            .as_ref()
            .map(|ports| ProxyProcess::start(&config, ports, &dir.join("imap-proxy.log")));

        let mut city = City {
            postfix,
            milter,
            proxy,
            simulator: None,
            dovecot,
            sim_config,
            send_config,
            trusted_list,
            milter_addr,
            inbound_port,
            node_main_cf,
            node_extra_files: opts.postfix.extra_files.clone(),
            node_lmtp_port,
            milter_log_level: opts.milter_log_level,
            config,
            evidence_location: policy.evidence.database.clone(),
            evidence_blobs: policy.evidence.blobs.clone(),
            pki,
            dir,
            _tmp: tmp,
        };
        if opts.simulator {
            city.start_simulator();
        }
        city
    }

    // --- where things are ---

    /// Postfix's public smtpd (where clerks submit) as `127.0.0.1:PORT`, for swaks.
    pub fn smtp_server(&self) -> String {
        format!("127.0.0.1:{}", self.postfix.smtp_port)
    }

    pub fn smtp_port(&self) -> u16 {
        self.postfix.smtp_port
    }

    /// Where demail.toml's `[milter] listen` points.
    pub fn milter_addr(&self) -> &MilterAddr {
        &self.milter_addr
    }

    /// The milter's TCP port ([`CityOptions::milter_tcp`]). Panics for a unix socket.
    pub fn milter_port(&self) -> u16 {
        match &self.milter_addr {
            MilterAddr::Tcp(port) => *port,
            MilterAddr::Unix(path) => panic!("City: the milter listens on {}", path.display()),
        }
    }

    /// The provider gateway's port (the simulator's, when it runs).
    pub fn simulator_port(&self) -> u16 {
        self.sim_config.listen.port()
    }

    /// The `demail-in` smtpd (implicit TLS, provider client certificate required).
    pub fn inbound_port(&self) -> u16 {
        self.inbound_port
    }

    /// Dovecot's IMAP port, when the city has Dovecot.
    pub fn imap_port(&self) -> Option<u16> {
        self.dovecot.as_ref().map(|d| d.imap_port)
    }

    /// Dovecot's own implicit TLS port (with `dovecot_tls`).
    pub fn dovecot_imaps_port(&self) -> Option<u16> {
        self.dovecot.as_ref().and_then(|d| d.imaps_port)
    }

    /// The city's demail.toml.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The directory holding demail.toml, pki/, evidence/, postfix-demail/, provider-store/
    /// and milter.log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `demailctl postfix-config --write` put the main.cf/master.cf fragments and tables.
    pub fn tables_dir(&self) -> PathBuf {
        self.dir.join("postfix-demail")
    }

    pub fn evidence_database(&self) -> &Path {
        self.evidence_location
            .sqlite_path()
            .expect("City: the evidence store is on PostgreSQL, not an SQLite file")
    }

    pub fn evidence_location(&self) -> &demail_evidence::Location {
        &self.evidence_location
    }

    pub fn evidence_blobs(&self) -> &Path {
        &self.evidence_blobs
    }

    /// The provider's CA, its server certificate and the city's client certificate.
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// The simulator's configuration (also when it is stopped).
    pub fn simulator_config(&self) -> &SimConfig {
        &self.sim_config
    }

    /// The simulator's sending side, when [`CityOptions::provider_sends`] asked for it.
    pub fn send_config(&self) -> Option<&SendConfig> {
        self.send_config.as_ref()
    }

    /// The test trusted list imported into `[trust] trusted_lists` (with `provider_sends`).
    pub fn trusted_list(&self) -> Option<&TestTrustedList> {
        self.trusted_list.as_ref()
    }

    // --- the parts ---

    pub fn postfix(&self) -> &Postfix {
        &self.postfix
    }

    /// The IMAP proxy, when [`CityOptions::imap_proxy`] started one.
    pub fn proxy(&self) -> Option<&ProxyProcess> {
        self.proxy.as_ref()
    }

    /// Stops the IMAP proxy (SIGKILL) and starts it again on the same ports and state file.
    pub fn restart_proxy(&mut self) -> &ProxyProcess {
        let old = self.proxy.take().expect("City: no IMAP proxy to restart");
        let ports = old.ports.clone();
        drop(old);
        let p = ProxyProcess::start(&self.config, &ports, &self.dir.join("imap-proxy.log"));
        self.proxy.insert(p)
    }

    pub fn dovecot_mut(&mut self) -> Option<&mut Dovecot> {
        self.dovecot.as_mut()
    }

    pub fn dovecot(&self) -> Option<&Dovecot> {
        self.dovecot.as_ref()
    }

    /// The provider simulator, while it runs.
    pub fn simulator(&self) -> Option<&Simulator> {
        self.simulator.as_ref()
    }

    /// Starts the simulator on the gateway port (again, after [`City::stop_simulator`]; what
    /// it stored before stays in its store directory). Panics if it runs already.
    pub fn start_simulator(&mut self) -> &Simulator {
        if self.simulator.is_some() {
            panic!("City: the provider simulator runs already");
        }
        let opts = RunOptions {
            send: self.send_config.clone(),
            ..RunOptions::default()
        };
        let sim = Simulator::start_with(self.sim_config.clone(), opts).unwrap_or_else(|e| {
            panic!(
                "City: provider simulator on {}: {e}",
                self.sim_config.listen
            )
        });
        self.simulator.insert(sim)
    }

    /// Stops the simulator (the gateway port is closed); nothing happens if it is stopped.
    pub fn stop_simulator(&mut self) {
        if let Some(sim) = self.simulator.take() {
            sim.stop();
        }
    }

    /// The milter process, while it runs.
    pub fn milter(&self) -> Option<&MilterProcess> {
        self.milter.as_ref()
    }

    /// Starts the milter process and waits until it listens. Panics if it runs already.
    pub fn start_milter(&mut self) -> &MilterProcess {
        if self.milter.is_some() {
            panic!("City: the milter runs already");
        }
        let milter = MilterProcess::start(
            &self.config,
            &self.milter_addr,
            &self.milter_log_path(),
            &self.milter_log_level,
        );
        self.milter.insert(milter)
    }

    /// SIGTERM (SIGKILL after a grace period); returns whether it stopped by itself. True if
    /// it was not running.
    pub fn stop_milter(&mut self) -> bool {
        self.milter.take().is_none_or(MilterProcess::stop)
    }

    /// SIGKILL, as a crash; waits until it is gone. Nothing happens if it is not running.
    pub fn kill_milter(&mut self) {
        if let Some(m) = self.milter.take() {
            m.kill();
        }
    }

    /// Everything the milter logged, over all its runs.
    pub fn milter_log(&self) -> String {
        std::fs::read_to_string(self.milter_log_path()).unwrap_or_default()
    }

    fn milter_log_path(&self) -> PathBuf {
        self.dir.join("milter.log")
    }

    // --- looking at the results ---

    /// Runs `demailctl --config <demail.toml> ARGS..` (output captured).
    pub fn demailctl(&self, args: &[&str]) -> Output {
        let bin = cargo_bin("demailctl");
        let config = self.config.to_string_lossy();
        let mut all = vec!["--config", config.as_ref()];
        all.extend_from_slice(args);
        process::run(&bin.to_string_lossy(), &all)
    }

    /// The evidence store opened read-only; None until the milter created it.
    pub fn evidence(&self) -> Option<Store> {
        if self.evidence_location.is_missing() {
            return None;
        }
        match Store::open_read_only_at(&self.evidence_location, &self.evidence_blobs) {
            Ok(store) => Some(store),
            // The milter has created the file but not yet its schema: not there yet.
            Err(demail_evidence::Error::SchemaVersion { found: 0, .. }) => None,
            Err(e) => panic!("City: evidence store {}: {e}", self.evidence_location),
        }
    }

    /// Every recorded submission, newest first (none if the store does not exist yet).
    pub fn submissions(&self) -> Vec<Submission> {
        let Some(store) = self.evidence() else {
            return Vec::new();
        };
        store
            .list(None, None, usize::MAX)
            .unwrap_or_else(|e| panic!("City: listing the evidence store: {e}"))
    }

    /// Lower-case hex SHA-256 of the city's client certificate (DER), as the simulator
    /// reports the certificate a client presented.
    pub fn client_cert_sha256(&self) -> String {
        let path = &self.pki.client_cert;
        let pem = std::fs::read(path).unwrap_or_else(|e| panic!("City: {}: {e}", path.display()));
        let cert = X509::from_pem(&pem)
            .unwrap_or_else(|e| panic!("City: {}: not a PEM certificate: {e}", path.display()));
        let digest = cert
            .digest(MessageDigest::sha256())
            .unwrap_or_else(|e| panic!("City: digest of {}: {e}", path.display()));
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The provider's sending side: its qualified signing certificate, its TLS client certificate
/// for `demail-in` (issued by the CA `demail-in` requires, `[gateway] provider_ca`), and the
/// test trusted list naming that CA, imported with the real `demailctl tl import`.
/// The provider's identities towards the city: a TLS client certificate under a client CA of
/// its own (not the CA of the gateway's server certificate) and a qualified seal certificate
/// under the CA the test trusted list names. Pinned in every city's demail.toml.
struct ProviderCerts {
    client_ca: PathBuf,
    client: demail_provider_sim::pki::IssuedCert,
    seal: demail_provider_sim::pki::IssuedCert,
}

impl ProviderCerts {
    fn issue(pki: &TestPki, dir: &Path) -> ProviderCerts {
        let client_dir = dir.join("provider-client-pki");
        let client_pki = TestPki::generate_named(&client_dir, "provider-sim client CA")
            .unwrap_or_else(|e| {
                panic!("City: provider client CA in {}: {e}", client_dir.display())
            });
        set_mode(&client_dir, 0o755);
        let client = client_pki
            .issue(
                "provider-mx",
                "mx.provider-sim.de-mail.test",
                &["mx.provider-sim.de-mail.test"],
                CertUsage::Client,
            )
            .unwrap_or_else(|e| panic!("City: provider TLS client certificate: {e}"));
        let seal = pki
            .issue_qualified("provider-sign", "De-Mail Provider Simulator Signatur")
            .unwrap_or_else(|e| panic!("City: provider signing certificate: {e}"));
        ProviderCerts {
            client_ca: client_pki.ca_cert.clone(),
            client,
            seal,
        }
    }
}

fn provider_side(
    config: &Path,
    pki: &TestPki,
    provider: &ProviderCerts,
    dir: &Path,
    inbound_port: u16,
) -> (SendConfig, TestTrustedList) {
    let tl_dir = dir.join("trusted-list");
    let tl = pki
        .trusted_list(&tl_dir)
        .unwrap_or_else(|e| panic!("City: test trusted list in {}: {e}", tl_dir.display()));
    let bin = cargo_bin("demailctl");
    let cfg = config.to_string_lossy();
    let xml = tl.xml.to_string_lossy();
    let signer = tl.signer_cert.to_string_lossy();
    let args = [
        "--config",
        cfg.as_ref(),
        "tl",
        "import",
        xml.as_ref(),
        "--signer",
        signer.as_ref(),
    ];
    let out = process::run(&bin.to_string_lossy(), &args);
    if !out.status.success() {
        panic!("City: demailctl tl import failed:\n{}", process::text(&out));
    }
    let mut send = SendConfig::new(
        provider.seal.cert.clone(),
        provider.seal.key.clone(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, inbound_port)),
        provider.client.cert.clone(),
        provider.client.key.clone(),
    );
    send.server_ca = Some(pki.ca_cert.clone());
    send.server_name = "localhost".into();
    (send, tl)
}

impl Drop for City {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- demail-milter log ({}) ---\n{}--- end of demail-milter log ---",
                self.milter_log_path().display(),
                self.milter_log()
            );
            if let Some(sim) = &self.simulator {
                eprintln!("--- provider simulator rejections ---");
                for r in sim.rejected() {
                    eprintln!("{:?} {}: {}", r.stage, r.peer, r.reply);
                }
                eprintln!("--- end of provider simulator rejections ---");
            }
        }
    }
}
