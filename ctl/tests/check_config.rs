//! `demailctl check-config` as an admin runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn demailctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_demailctl"))
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/demail.toml")
}

#[test]
fn shipped_sample_is_valid() {
    let out = demailctl()
        .arg("check-config")
        .arg(sample())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK"), "{stdout}");
}

#[test]
fn typo_bad_address_and_missing_file_are_all_reported_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Start from the sample so only the three planted errors differ.
    let text = std::fs::read_to_string(sample()).unwrap();
    let tls = sample().parent().unwrap().join("tls");
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.replace("\"tls/", &format!("\"{}/", tls.display())))
        .collect();
    let find = |lines: &[String], prefix: &str| {
        lines
            .iter()
            .position(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("sample has no line starting with {prefix}"))
    };
    let typo = find(&lines, "provider_ca");
    lines[typo] = lines[typo].replacen("provider_ca", "provider_cq", 1);
    let cert = find(&lines, "client_certificate");
    lines[cert] = "client_certificate = \"/nonexistent/gateway-client.pem\"".into();
    let addr = find(&lines, "address");
    lines[addr] = "address = \"info at magdeburg.de-mail.de\"".into();
    let file = dir.path().join("demail.toml");
    std::fs::write(&file, lines.join("\n")).unwrap();

    let out = demailctl()
        .arg("--config")
        .arg(&file)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let at = |line: usize| format!("{}:{}:", file.display(), line + 1);
    assert!(
        err.contains(&at(typo)) && err.contains("provider_cq"),
        "{err}"
    );
    assert!(err.contains("did you mean `provider_ca`"), "{err}");
    assert!(
        err.contains(&at(cert)) && err.contains("/nonexistent/gateway-client.pem"),
        "{err}"
    );
    assert!(
        err.contains(&at(addr)) && err.contains("info at magdeburg.de-mail.de"),
        "{err}"
    );
}

#[test]
fn unreadable_file_says_so() {
    let out = demailctl()
        .arg("check-config")
        .arg("/nonexistent/demail.toml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/demail.toml"));
}

/// The sample with absolute TLS paths and `edit` applied to its lines.
fn sample_edited(dir: &Path, edit: impl Fn(&str) -> Option<String>) -> PathBuf {
    let tls = sample().parent().unwrap().join("tls");
    let text: Vec<String> = std::fs::read_to_string(sample())
        .unwrap()
        .lines()
        .filter_map(|l| {
            edit(l.trim_start())
                .or(Some(l.to_string()))
                .filter(|l| l != "DROP")
        })
        .map(|l| l.replace("\"tls/", &format!("\"{}/", tls.display())))
        .collect();
    let file = dir.join("demail.toml");
    std::fs::write(&file, text.join("\n")).unwrap();
    file
}

fn check(file: &Path) -> (bool, String) {
    let out = demailctl().arg("check-config").arg(file).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn an_unpinned_provider_is_refused_and_every_gap_named() {
    let dir = tempfile::tempdir().unwrap();
    let pins = [
        "provider_client_ca",
        "provider_client_certificates",
        "provider_signers",
    ];
    // All three gone (the old sample shape): three errors, each naming its key.
    let file = sample_edited(dir.path(), |l| {
        pins.iter()
            .any(|k| l.starts_with(&format!("{k} =")))
            .then(|| "DROP".to_string())
    });
    let (ok, text) = check(&file);
    assert!(!ok, "{text}");
    for key in pins {
        assert!(text.contains(&format!("inbound.{key}")), "{key}: {text}");
    }
    assert!(text.contains("the provider is not pinned"), "{text}");
    // Each one alone is enough to refuse.
    for key in pins {
        let file = sample_edited(dir.path(), |l| {
            l.starts_with(&format!("{key} ="))
                .then(|| "DROP".to_string())
        });
        let (ok, text) = check(&file);
        assert!(!ok, "{key}: {text}");
        assert!(text.contains(&format!("inbound.{key}")), "{key}: {text}");
    }
    // The gateway's server CA as the client CA, by path or as a copy.
    let copy = dir.path().join("copy-of-provider-ca.pem");
    std::fs::copy(
        sample().parent().unwrap().join("tls/provider-ca.pem"),
        &copy,
    )
    .unwrap();
    for ca in ["\"tls/provider-ca.pem\"".to_string(), format!("{:?}", copy)] {
        let file = sample_edited(dir.path(), |l| {
            l.starts_with("provider_client_ca =")
                .then(|| format!("provider_client_ca = {ca}"))
        });
        let (ok, text) = check(&file);
        assert!(!ok, "{text}");
        assert!(text.contains("is the gateway's server CA"), "{text}");
    }
    // A pinned client certificate that does not chain to the client CA.
    let file = sample_edited(dir.path(), |l| {
        l.starts_with("provider_client_certificates =")
            .then(|| "provider_client_certificates = [\"tls/gateway-client.pem\"]".into())
    });
    let (ok, text) = check(&file);
    assert!(!ok, "{text}");
    assert!(
        text.contains("does not chain to provider_client_ca"),
        "{text}"
    );
}
