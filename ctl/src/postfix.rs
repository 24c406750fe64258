//! `demailctl postfix-config`: the Postfix settings that make De-Mail fail closed.
//!
//! Everything the city's Postfix needs is derived from the one configuration file, so the
//! routing (only ever to the provider gateway) cannot drift from what the milter enforces.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use demail_policy::{
    Config, DEMAIL_TRANSPORT, DomainPattern, GatewayTls, POSTFIX_CHROOT, ROUTE_FIELD,
    SEND_TRANSPORT, SocketSpec,
};

/// Lookup tables written next to each other in one directory (`--dir`).
pub struct PostfixConfig {
    /// `key = value` settings for main.cf, in order, each with a comment saying why.
    pub main_cf: Vec<(String, String, String)>,
    /// master.cf entries (first line + `-o` continuation lines).
    pub master_cf: String,
    /// Table files: (file name, content, secret?).
    pub tables: Vec<(String, String, bool)>,
}

/// Name of the cleanup service that maps De-Mail accounts to mailboxes (inbound only).
pub const CLEANUP: &str = "demail-cleanup";

/// `chroot`: the directory smtpd and cleanup are chrooted into (Debian: `/var/spool/postfix`),
/// if they are; a UNIX milter socket is then written relative to it.
pub fn render(config: &Config, dir: &Path, chroot: Option<&Path>) -> Result<PostfixConfig, String> {
    // demail-in must never open without the provider pinned.
    config
        .pinning()
        .map_err(|e| format!("{e}\nthe provider is not pinned"))?;
    let pins = crate::provider_pins(config)?;
    let table = |name: &str| format!("texthash:{}", dir.join(name).display());
    let gw = &config.gateway;
    // Where handled De-Mail goes: the gateway, bracketed so that no MX is looked up.
    let send_to = format!("{SEND_TRANSPORT}:[{}]:{}", gw.host, gw.port);
    // Every De-Mail domain resolves to a transport that refuses: only a message the milter
    // handled (authorised, options set, recorded) is routed on to the gateway, by the field the
    // milter adds. A rewrite after the milter (virtual alias, canonical map, .forward) that
    // turns an address into a De-Mail one therefore bounces instead of leaving unchecked.
    let nexthop =
        format!("{DEMAIL_TRANSPORT}:5.7.1 De-Mail leaves only through the checks of demail-milter");
    let mut transport = String::from(
        "# De-Mail domains: refused unless demail-milter handled the message (then sent to the\n\
         # provider gateway only, see milter_header_checks)\n",
    );
    for d in &gw.domains {
        let key = match d {
            DomainPattern::Exact(domain) => domain.clone(),
            // A leading dot matches every subdomain in transport_maps, not the parent itself.
            DomainPattern::Subdomains(parent) => format!(".{parent}"),
        };
        let _ = writeln!(transport, "{key}\t{nexthop}");
    }

    // Our accounts: the public smtpd refuses them, demail-in accepts only them.
    let accounts: Vec<&str> = config
        .tenants
        .iter()
        .flat_map(|t| t.accounts.iter().map(|a| a.address.as_str()))
        .collect();
    let mut public_access = String::from(
        "# Mail to our De-Mail accounts comes only from the provider (demail-in), never from here\n",
    );
    let mut demail_in_access = String::from("# Accounts the provider may deliver to\n");
    let mut virtual_alias = String::from("# Inbound De-Mail: account -> internal mailbox(es)\n");
    for t in &config.tenants {
        for a in &t.accounts {
            let _ = writeln!(
                public_access,
                "{}\tREJECT 5.7.1 De-Mail an dieses Konto kommt nur ueber den De-Mail-Anbieter / \
                 De-Mail to this account is accepted only from the De-Mail provider",
                a.address
            );
            let _ = writeln!(demail_in_access, "{}\tOK", a.address);
            let _ = writeln!(virtual_alias, "{}\t{}", a.address, a.deliver_to.join(", "));
        }
    }
    if accounts.is_empty() {
        return Err("no De-Mail accounts configured".into());
    }

    // smtpd_milters is read by smtpd and by cleanup (non_smtpd_milters); a chrooted one sees
    // the socket relative to its chroot.
    let listen = &config.milter.listen;
    let milter = listen.postfix_milter(chroot)?;
    let milter_why = match (listen, chroot) {
        (SocketSpec::Unix(_), None) => format!(
            "demail-milter authorises senders, sets the De-Mail options and records evidence.\n\
             # smtpd chrooted (a `y` in master.cf's chroot column, Debian's default for smtp and\n\
             # cleanup)? It sees this path relative to its chroot: run `demailctl postfix-config\n\
             # --chroot` (value then {})",
            listen
                .postfix_milter(Some(Path::new(POSTFIX_CHROOT)))
                .unwrap_or_else(|_| format!(
                    "none: a chrooted smtpd cannot reach a socket outside {POSTFIX_CHROOT}"
                ))
        ),
        (SocketSpec::Unix(path), Some(root)) => format!(
            "demail-milter authorises senders, sets the De-Mail options and records evidence.\n\
             # For smtpd and cleanup chrooted in {} (Debian's master.cf): the socket {} as they\n\
             # see it. demail-in (not chrooted) gets the full path in master.cf",
            root.display(),
            path.display()
        ),
        (SocketSpec::Inet { .. }, _) => {
            "demail-milter authorises senders, sets the De-Mail options and records evidence.\n\
             # A TCP socket lets every local process speak milter; prefer the default UNIX socket"
                .to_string()
        }
    };

    let main_cf = vec![
        (
            "transport_maps".into(),
            table("transport"),
            "De-Mail domains are routed to the provider gateway only"
                .into(),
        ),
        ("smtpd_milters".into(), milter.clone(), milter_why),
        (
            "non_smtpd_milters".into(),
            "$smtpd_milters".into(),
            "mail submitted with sendmail(1) is checked too"
                .into(),
        ),
        (
            "milter_default_action".into(),
            "tempfail".into(),
            "milter down: mail waits, it is never passed unchecked"
                .into(),
        ),
        (
            "milter_header_checks".into(),
            format!("regexp:{}", dir.join("milter_header_checks").display()),
            "only De-Mail the milter handled is routed to the provider gateway"
                .into(),
        ),
        (
            "allow_percent_hack".into(),
            "no".into(),
            "user%domain@here must not become user@domain behind the milter's back"
                .into(),
        ),
        (
            "swap_bangpath".into(),
            "no".into(),
            "domain!user must not become user@domain behind the milter's back"
                .into(),
        ),
        (
            "milter_protocol".into(),
            "6".into(),
            "indymilter speaks milter protocol 6"
                .into(),
        ),
        (
            "smtpd_recipient_restrictions".into(),
            format!(
                "permit_sasl_authenticated, check_recipient_access {}, permit_mynetworks, reject_unauth_destination",
                table("public_access")
            ),
            "merge with your own list: the access check must precede every permit but permit_sasl_authenticated"
                .into(),
        ),
    ];

    let mut master = String::new();
    let _ = writeln!(
        master,
        "# what Postfix would route to a De-Mail domain by itself: refused (see transport);\n\
         # error(8) runs only under the names error and retry, hence -n"
    );
    let _ = writeln!(
        master,
        "{DEMAIL_TRANSPORT}     unix  -       -       n       -       -       error -n error"
    );
    let _ = writeln!(
        master,
        "# outbound De-Mail the milter handled: TLS with the city's client certificate, no MX, \
         no fallback"
    );
    let _ = writeln!(
        master,
        "{SEND_TRANSPORT} unix  -       -       n       -       -       smtp"
    );
    let mut o = |k: &str, v: &str| master_option(&mut master, k, v);
    o("smtp_tls_security_level", "secure");
    o("smtp_tls_mandatory_protocols", ">=TLSv1.2");
    o("smtp_tls_CAfile", &path(&gw.provider_ca));
    o("smtp_tls_cert_file", &path(&gw.client_certificate));
    o("smtp_tls_key_file", &path(&gw.client_key));
    o("smtp_tls_verify_cert_match", "hostname");
    o(
        "smtp_tls_wrappermode",
        if gw.tls == GatewayTls::Implicit {
            "yes"
        } else {
            "no"
        },
    );
    o("smtp_host_lookup", "native");
    o("smtp_fallback_relay", "");
    o("smtp_tls_loglevel", "1");
    // The bytes recorded as evidence are the bytes that leave: Received fields (which the
    // milter never sees, and which reveal internal hosts) and the milter's route field are
    // dropped on this transport.
    o(
        "smtp_header_checks",
        &format!("regexp:{}", dir.join("header_checks").display()),
    );
    // Likewise no 8BITMIME downgrade: the recorded bytes must be the bytes that arrive.
    o("disable_mime_output_conversion", "yes");
    let mut tables = vec![
        ("transport".to_string(), transport, false),
        (
            "header_checks".into(),
            format!("/^Received:/ IGNORE\n/^{ROUTE_FIELD}:/ IGNORE\n"),
            false,
        ),
        (
            "milter_header_checks".into(),
            // Applied by cleanup only to fields a milter added: a sender cannot write it.
            format!(
                "# the field demail-milter adds to a De-Mail it handled\n\
                 /^{ROUTE_FIELD}: {SEND_TRANSPORT} / FILTER {send_to}\n"
            ),
            false,
        ),
        ("public_access".into(), public_access, false),
        ("demail_in_access".into(), demail_in_access, false),
        ("virtual_alias".into(), virtual_alias, false),
    ];
    if let Some(secret) = &gw.auth_credentials {
        o("smtp_sasl_auth_enable", "yes");
        o("smtp_sasl_password_maps", &table("sasl_passwd"));
        o("smtp_sasl_security_options", "noanonymous");
        o("smtp_sasl_tls_security_options", "noanonymous");
        let creds =
            std::fs::read_to_string(secret).map_err(|e| format!("{}: {e}", secret.display()))?;
        let creds = creds.trim();
        if !creds.contains(':') {
            return Err(format!("{}: expected user:password", secret.display()));
        }
        tables.push((
            "sasl_passwd".into(),
            format!("[{}]:{}\t{}\n", gw.host, gw.port, creds),
            true,
        ));
    }

    let inbound = &config.inbound;
    let _ = writeln!(
        master,
        "# inbound De-Mail and confirmations: only the provider, TLS with its client certificate"
    );
    let _ = writeln!(
        master,
        "{}  inet  n       -       n       -       -       smtpd",
        inbound.listen
    );
    let mut o = |k: &str, v: &str| master_option(&mut master, k, v);
    o(
        "syslog_name",
        &format!("postfix/{}", inbound.provider_service),
    );
    o("milter_macro_daemon_name", &inbound.provider_service);
    o("smtpd_tls_wrappermode", "yes");
    o("smtpd_tls_security_level", "encrypt");
    o("smtpd_tls_req_ccert", "yes");
    // Only the provider's own client CA, and not the system's CA directory besides it.
    if let Some(ca) = &inbound.provider_client_ca {
        o("smtpd_tls_CAfile", &path(ca));
    }
    o("smtpd_tls_CApath", "");
    o("smtpd_tls_cert_file", &path(&inbound.certificate));
    o("smtpd_tls_key_file", &path(&inbound.key));
    o("smtpd_sasl_auth_enable", "no");
    if chroot.is_some() {
        // This smtpd is not chrooted: it needs the socket's full path.
        o("smtpd_milters", &listen.postfix_milter(None)?);
    }
    o("smtpd_tls_fingerprint_digest", "sha256");
    o(
        "smtpd_client_restrictions",
        &format!("check_ccert_access {}, reject", table("provider_ccerts")),
    );
    let mut ccerts = String::from("# pinned TLS client certificates of the provider\n");
    let pinned = pins
        .clients
        .iter()
        .map(|p| p.sha256)
        .chain(inbound.provider_client_fingerprints.iter().copied());
    for fp in pinned {
        let hex: Vec<String> = fp.iter().map(|b| format!("{b:02X}")).collect();
        let _ = writeln!(ccerts, "{}\tOK", hex.join(":"));
    }
    tables.push(("provider_ccerts".into(), ccerts, false));
    o(
        "smtpd_relay_restrictions",
        &format!(
            "check_recipient_access {}, reject",
            table("demail_in_access")
        ),
    );
    o("smtpd_recipient_restrictions", "");
    o("cleanup_service_name", CLEANUP);
    let _ = writeln!(
        master,
        "# account -> mailbox mapping, applied only to what demail-in received"
    );
    let _ = writeln!(
        master,
        "{CLEANUP} unix n       -       n       -       0       cleanup"
    );
    // Only the account map: `$virtual_alias_maps` here would refer to this very override
    // (Postfix expands lazily) and loop; deliver_to therefore names final mailboxes.
    let _ = writeln!(master, "  -o virtual_alias_maps={}", table("virtual_alias"));
    let _ = writeln!(
        master,
        "# TLS in the smtp client needs the tlsmgr service (present in Debian's stock master.cf)"
    );

    Ok(PostfixConfig {
        main_cf,
        master_cf: master,
        tables,
    })
}

/// One `-o` line; values with white space need Postfix's `{ name = value }` form, since
/// master.cf splits arguments at white space.
fn master_option(master: &mut String, key: &str, value: &str) {
    if value.contains(char::is_whitespace) {
        let _ = writeln!(master, "  -o {{ {key} = {value} }}");
    } else {
        let _ = writeln!(master, "  -o {key}={value}");
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

impl PostfixConfig {
    /// Human-readable form: main.cf block, master.cf block, then every table.
    pub fn to_text(&self, dir: &Path, source: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Generated by demailctl postfix-config from {}",
            source.display()
        );
        let _ = writeln!(
            s,
            "# Tables live in {} (texthash: no postmap needed; postfix reload after a change)\n",
            dir.display()
        );
        let _ = writeln!(s, "### main.cf ###");
        s.push_str(&self.main_cf_text());
        let _ = writeln!(s, "\n### master.cf ###");
        s.push_str(&self.master_cf);
        for (name, content, secret) in &self.tables {
            let _ = writeln!(s, "\n### {} ###", dir.join(name).display());
            if *secret {
                let _ = writeln!(
                    s,
                    "# (secret: written with --write, mode 0600, never printed)"
                );
            } else {
                s.push_str(content);
            }
        }
        s
    }

    pub fn main_cf_text(&self) -> String {
        let mut s = String::new();
        for (k, v, why) in &self.main_cf {
            let _ = writeln!(s, "# {why}\n{k} = {v}");
        }
        s
    }

    /// Write `main.cf`, `master.cf` fragments and every table into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let mut put = |name: &str, content: &str, mode: u32| -> std::io::Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, content)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
            written.push(p);
            Ok(())
        };
        put("main.cf", &self.main_cf_text(), 0o644)?;
        put("master.cf", &self.master_cf, 0o644)?;
        for (name, content, secret) in &self.tables {
            put(name, content, if *secret { 0o600 } else { 0o644 })?;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_with(extra_gateway: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
        let text = std::fs::read_to_string(pkg.join("demail.toml"))
            .unwrap()
            .replace("\"tls/", &format!("\"{}/tls/", pkg.display()))
            .replace(
                "domains = [\"*.de-mail.de\"]",
                &format!(
                    "domains = [\"*.de-mail.de\", \"provider-eigen.example\"]\n{extra_gateway}"
                ),
            );
        let file = dir.path().join("demail.toml");
        std::fs::write(&file, &text).unwrap();
        let config = Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
        (dir, config)
    }

    #[test]
    fn every_demail_domain_goes_to_the_bracketed_gateway_only() {
        let (_d, config) = sample_with("");
        let pf = render(&config, Path::new("/etc/postfix/demail"), None).unwrap();
        let table = |n: &str| pf.tables.iter().find(|t| t.0 == n).unwrap().1.clone();
        // By itself, Postfix refuses every De-Mail domain...
        let transport = table("transport");
        for key in [".de-mail.de", "provider-eigen.example"] {
            assert!(
                transport.contains(&format!("\n{key}\tdemail:5.7.1 ")),
                "{transport}"
            );
        }
        assert!(pf.master_cf.contains(
            "\ndemail     unix  -       -       n       -       -       error -n error\n"
        ));
        // ...and only the field the milter adds routes a message to the bracketed gateway.
        assert!(table("milter_header_checks").contains(
            "/^X-DeMail-Route: demail-send / FILTER demail-send:[gateway.provider.example]:465\n"
        ));
        assert!(table("header_checks").contains("/^X-DeMail-Route:/ IGNORE\n"));
        assert!(
            pf.master_cf
                .contains("\ndemail-send unix  -       -       n       -       -       smtp\n")
        );
        assert!(pf.master_cf.contains("-o smtp_tls_security_level=secure"));
        assert!(pf.master_cf.contains("-o smtp_fallback_relay=\n"));
        assert!(pf.master_cf.contains("-o smtp_tls_wrappermode=yes"));
        let main = pf.main_cf_text();
        assert!(main.contains("milter_default_action = tempfail"));
        assert!(main.contains("allow_percent_hack = no"));
        assert!(main.contains("swap_bangpath = no"));
        assert!(
            main.contains("milter_header_checks = regexp:/etc/postfix/demail/milter_header_checks")
        );
        assert!(main.contains("transport_maps = texthash:/etc/postfix/demail/transport"));
    }

    fn main_value<'a>(pf: &'a PostfixConfig, key: &str) -> &'a str {
        &pf.main_cf.iter().find(|(k, _, _)| k == key).unwrap().1
    }

    /// The lines of the master.cf entry that starts with `first`.
    fn master_entry<'a>(pf: &'a PostfixConfig, first: &str) -> Vec<&'a str> {
        let mut lines = pf.master_cf.lines().skip_while(|l| !l.starts_with(first));
        let head = lines.next().unwrap();
        std::iter::once(head)
            .chain(lines.take_while(|l| l.starts_with("  -o")))
            .collect()
    }

    #[test]
    fn milter_socket_default_unix_and_chrooted_smtpd() {
        let (_d, config) = sample_with("");
        assert_eq!(
            config.milter.listen,
            SocketSpec::Unix("/var/spool/postfix/demail/milter.sock".into())
        );
        // Not chrooted: the full path everywhere; the comment says what to do if it is.
        let pf = render(&config, Path::new("/x"), None).unwrap();
        assert_eq!(
            main_value(&pf, "smtpd_milters"),
            "unix:/var/spool/postfix/demail/milter.sock"
        );
        assert_eq!(main_value(&pf, "non_smtpd_milters"), "$smtpd_milters");
        let main = pf.main_cf_text();
        assert!(main.contains("--chroot"), "{main}");
        assert!(main.contains("unix:/demail/milter.sock"), "{main}");
        assert!(
            main.lines()
                .all(|l| l.is_empty() || l.starts_with('#') || l.contains(" = ")),
            "every comment line is a comment:\n{main}"
        );
        let demail_in = master_entry(&pf, "0.0.0.0:1465");
        assert!(!demail_in.iter().any(|l| l.contains("smtpd_milters")));

        // Chrooted (Debian): relative to the chroot for smtpd and cleanup; demail-in is not
        // chrooted and gets the full path.
        for chroot in ["/var/spool/postfix", "/var/spool/postfix/"] {
            let pf = render(&config, Path::new("/x"), Some(Path::new(chroot))).unwrap();
            assert_eq!(main_value(&pf, "smtpd_milters"), "unix:/demail/milter.sock");
            let demail_in = master_entry(&pf, "0.0.0.0:1465");
            assert!(
                demail_in[0].contains(" n       -       n "),
                "{demail_in:?}"
            );
            assert!(
                demail_in
                    .contains(&"  -o smtpd_milters=unix:/var/spool/postfix/demail/milter.sock"),
                "{demail_in:?}"
            );
        }

        // A socket the chroot cannot reach is refused, not written as a dead path.
        let (_d, outside) = sample_with("");
        let mut outside = outside;
        outside.milter.listen = SocketSpec::Unix("/run/demail/milter.sock".into());
        let e = render(&outside, Path::new("/x"), Some(Path::new(POSTFIX_CHROOT)))
            .err()
            .unwrap();
        assert!(
            e.contains("/run/demail/milter.sock") && e.contains("outside"),
            "{e}"
        );
        // TCP stays as written, with a warning, chroot or not.
        outside.milter.listen = SocketSpec::Inet {
            host: "127.0.0.1".into(),
            port: 8891,
        };
        for chroot in [None, Some(Path::new(POSTFIX_CHROOT))] {
            let pf = render(&outside, Path::new("/x"), chroot).unwrap();
            assert_eq!(main_value(&pf, "smtpd_milters"), "inet:127.0.0.1:8891");
            assert!(pf.main_cf_text().contains("every local process"));
        }
    }

    #[test]
    fn only_demail_in_takes_the_accounts() {
        let (_d, config) = sample_with("");
        let pf = render(&config, Path::new("/x"), None).unwrap();
        let table = |n: &str| &pf.tables.iter().find(|t| t.0 == n).unwrap().1;
        for t in &config.tenants {
            for a in &t.accounts {
                assert!(table("public_access").contains(&format!("{}\tREJECT 5.7.1", a.address)));
                assert!(table("demail_in_access").contains(&format!("{}\tOK", a.address)));
                assert!(table("virtual_alias").contains(&format!(
                    "{}\t{}",
                    a.address,
                    a.deliver_to.join(", ")
                )));
            }
        }
        assert!(
            pf.master_cf
                .contains("-o milter_macro_daemon_name=demail-in")
        );
        assert!(pf.master_cf.contains("-o smtpd_tls_req_ccert=yes"));
        // Only the provider's client CA, no CA directory, and the pinned certificate.
        let ca = config.inbound.provider_client_ca.as_ref().unwrap();
        assert!(
            pf.master_cf
                .contains(&format!("-o smtpd_tls_CAfile={}\n", ca.display()))
        );
        assert!(pf.master_cf.contains("-o smtpd_tls_CApath=\n"));
        assert!(!pf.master_cf.contains(&format!(
            "smtpd_tls_CAfile={}",
            config.gateway.provider_ca.display()
        )));
        // The fingerprint as the openssl tool prints it (what an admin compares by hand).
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&config.inbound.provider_client_certificates[0])
            .output()
            .expect("openssl CLI");
        let printed = String::from_utf8_lossy(&out.stdout);
        let fp = printed.trim().rsplit('=').next().unwrap();
        assert_eq!(fp.len(), 95, "{printed}");
        assert!(
            table("provider_ccerts").contains(&format!("{fp}\tOK\n")),
            "{printed}"
        );
        assert!(pf.master_cf.contains("check_ccert_access"));
        // The account mapping lives in demail-in's own cleanup, so a clerk's mail to another
        // tenant's De-Mail account still goes through the provider.
        assert!(!pf.main_cf.iter().any(|(k, _, _)| k == "virtual_alias_maps"));
        assert!(
            pf.master_cf
                .contains("-o cleanup_service_name=demail-cleanup")
        );
    }

    #[test]
    fn values_with_spaces_use_the_braced_form() {
        let (_d, config) = sample_with("");
        let pf = render(&config, Path::new("/x"), None).unwrap();
        for line in pf
            .master_cf
            .lines()
            .filter(|l| l.trim_start().starts_with("-o "))
        {
            let arg = line.trim_start().trim_start_matches("-o ");
            assert!(arg.starts_with('{') || !arg.contains(' '), "{line}");
        }
    }

    #[test]
    fn sasl_secret_is_written_0600_and_never_printed() {
        use std::os::unix::fs::PermissionsExt;
        let secret_dir = tempfile::tempdir().unwrap();
        let secret = secret_dir.path().join("gateway.secret");
        std::fs::write(&secret, "stadt-md:s3cret-Passw0rt\n").unwrap();
        let (_d, config) = sample_with(&format!("auth_credentials = \"{}\"", secret.display()));
        let out = tempfile::tempdir().unwrap();
        let pf = render(&config, out.path(), None).unwrap();
        assert!(!pf.to_text(out.path(), &config.source).contains("s3cret"));
        pf.write(out.path()).unwrap();
        let file = out.path().join("sasl_passwd");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "[gateway.provider.example]:465\tstadt-md:s3cret-Passw0rt\n"
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(pf.master_cf.contains("smtp_sasl_password_maps=texthash:"));
    }
}
