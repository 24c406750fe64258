//! The shipped sample `packaging/demail.toml` must load as it is.

use std::path::PathBuf;

use demail_policy::{Config, DomainPattern, SocketSpec};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging/demail.toml")
}

#[test]
fn sample_config_loads() {
    let config = match Config::load(&sample()) {
        Ok(c) => c,
        Err(e) => panic!("sample rejected:\n{e}"),
    };
    let tls = sample().parent().map(|d| d.join("tls")).unwrap_or_default();
    let tls = std::path::absolute(tls).unwrap_or_default();
    assert_eq!(
        config.gateway.client_certificate,
        tls.join("gateway-client.pem")
    );
    assert_eq!(config.gateway.client_key, tls.join("gateway-client.key"));
    assert_eq!(config.gateway.provider_ca, tls.join("provider-ca.pem"));
    assert_eq!(
        config.gateway.domains,
        [DomainPattern::Subdomains("de-mail.de".into())]
    );
    assert_eq!(
        config.milter.listen,
        SocketSpec::Unix(demail_policy::DEFAULT_MILTER_SOCKET.into())
    );
    assert!(
        config.imap_proxy.is_none(),
        "the proxy section is commented out"
    );
    assert_eq!(config.tenants.len(), 2);
    assert!(config.is_demail("info@magdeburg.de-mail.de"));
    assert!(config.is_poststelle("poststelle@magdeburg.example"));
}

/// Uncommenting the documented optional keys must give a file that differs only in the
/// files those keys name (which do not exist on a build machine).
#[test]
fn commented_keys_of_the_sample_are_valid_syntax_and_names() {
    let text = std::fs::read_to_string(sample()).unwrap_or_default();
    let mut inside_proxy = false;
    let uncommented: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("# [imap_proxy]") {
                inside_proxy = true;
            }
            if l.starts_with("# [[tenant]]") || l.starts_with("# One [[tenant]]") {
                inside_proxy = false;
            }
            let optional_key = ["# auth_credentials", "# certificate", "# key"]
                .iter()
                .any(|p| l.starts_with(p));
            if (inside_proxy && l.starts_with("# ") && !l.starts_with("# One")) || optional_key {
                l[2..].to_string()
            } else if inside_proxy && l == "#" {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect();
    let err = Config::parse(&uncommented.join("\n"), &sample()).expect_err("files are missing");
    let mut keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "gateway.auth_credentials",
            "imap_proxy.backend_ca",
            "imap_proxy.certificate",
            "imap_proxy.key",
            "inbound.certificate",
            "inbound.key",
        ],
        "{err}"
    );
    assert!(
        err.errors
            .iter()
            .all(|e| e.message.starts_with("file not found: /etc/demail/")),
        "{err}"
    );
}
