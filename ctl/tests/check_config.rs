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
