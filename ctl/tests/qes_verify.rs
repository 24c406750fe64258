//! `demailctl qes verify` as an admin runs it, against the third-party vectors in
//! `shared/vectors` (origins in its README.md; DSS data LGPL-2.1, Thunderbird data MPL-2.0).

use std::path::PathBuf;
use std::process::{Command, Output};

fn vectors() -> PathBuf {
    let dir = std::env::var_os("DEMAIL_VECTORS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors"),
        PathBuf::from,
    );
    assert!(
        dir.join("README.md").is_file(),
        "vectors not at {}",
        dir.display()
    );
    dir
}

fn demailctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_demailctl"))
        .args(["qes", "verify"])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The D-TRUST root, extracted from the German QES with the openssl CLI.
fn dtrust_root(dir: &std::path::Path) -> String {
    let p7m = vectors().join("dss/cades/Signature-C-DE_CRY-3.p7m");
    let out = Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-in"])
        .arg(&p7m)
        .output()
        .unwrap();
    let pem = String::from_utf8(out.stdout).unwrap();
    let root = pem
        .split("subject=")
        .find(|c| c.contains("Root CA 1 2008"))
        .and_then(|c| c.find("-----BEGIN").map(|i| c[i..].to_string()))
        .unwrap();
    let path = dir.join("root.pem");
    std::fs::write(&path, root).unwrap();
    path.display().to_string()
}

#[test]
fn german_qes_chain_model_passes_shell_model_reports_the_expired_ca() {
    let dir = tempfile::tempdir().unwrap();
    let root = dtrust_root(dir.path());
    let p7m = vectors().join("dss/cades/Signature-C-DE_CRY-3.p7m");
    let p7m = p7m.to_str().unwrap();
    let at = "2014-11-13T10:40:00Z";
    let chain = demailctl(&[p7m, "--anchor", &root, "--at", at, "--json"]);
    assert!(chain.status.success());
    let json: serde_json::Value = serde_json::from_slice(&chain.stdout).unwrap();
    let s = &json[0];
    assert_eq!(s["indication"], "TOTAL_PASSED", "{json:#}");
    assert_eq!(s["sub_indication"], serde_json::Value::Null);
    assert_eq!(s["qualification"], "N/A");
    assert_eq!(s["signer"]["common_name"], "Matthias Schlede");
    assert_eq!(s["signing_time"], "2014-11-13T10:34:20Z");
    let shell = demailctl(&[p7m, "--anchor", &root, "--at", at, "--model", "shell"]);
    assert!(shell.status.success());
    let text = stdout(&shell);
    assert!(text.contains("OUT_OF_BOUNDS_NO_POE"), "{text}");
    assert!(
        text.contains("\"D-TRUST Qualified CA 1 2008:PN\" expired"),
        "{text}"
    );
    assert!(
        text.contains(
            "X-QES-Validation: indication=INDETERMINATE; sub-indication=OUT_OF_BOUNDS_NO_POE;"
        ),
        "{text}"
    );
}

#[test]
fn thunderbird_mail_text_and_json() {
    let tb = vectors().join("thunderbird-smime");
    let ca = tb.join("TestCA.pem");
    let ca = ca.to_str().unwrap();
    let good = tb.join("alice.dsig.SHA256.multipart.eml");
    // Pinned: the NSS test certificates expire in 2031.
    let at = "2026-01-26T15:00:00Z";
    let o = demailctl(&[
        good.to_str().unwrap(),
        "--anchor",
        ca,
        "--at",
        at,
        "--revocation",
        "off",
    ]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("indication:     TOTAL_PASSED"),
        "{}",
        stdout(&o)
    );
    let sha1 = tb.join("alice.sig.SHA1.opaque.eml");
    let o = demailctl(&[sha1.to_str().unwrap(), "--anchor", ca, "--at", at, "--json"]);
    assert!(
        o.status.success(),
        "a report, whatever the verdict, exits 0"
    );
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json[0]["sub_indication"], "CRYPTO_CONSTRAINTS_FAILURE");
    let unsigned = tb.join("alice.env.eml");
    let o = demailctl(&[unsigned.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), "[]");
}

#[test]
fn detached_signature_with_content() {
    let dss = vectors().join("dss/cades");
    let sig = dss.join("screenshot.png.signed_qes_detached.p7s");
    let png = dss.join("screenshot.png");
    let o = demailctl(&[
        sig.to_str().unwrap(),
        "--content",
        png.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success());
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json[0]["signed"]["filename"], "screenshot.png");
    let errors = json[0]["errors"].to_string();
    assert!(!errors.contains("digest differs"), "{errors}");
    let o = demailctl(&[sig.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json[0]["sub_indication"], "SIGNED_DATA_NOT_FOUND");
}

#[test]
fn usage_and_io_errors_exit_non_zero() {
    let tb = vectors().join("thunderbird-smime/alice.dsig.SHA256.multipart.eml");
    let tb = tb.to_str().unwrap();
    for args in [
        vec!["/nonexistent/mail.eml"],
        vec![tb, "--at", "yesterday"],
        vec![tb, "--anchor", "/nonexistent/ca.pem"],
        vec![tb, "--revocation", "crl"],
        vec![tb, "--revocation", "crl", "--crl", "/nonexistent/ca.crl"],
        vec![tb, "--revocation", "off", "--crl", tb],
        vec![tb, "--revocation", "ocsp", "--ocsp-timeout", "0"],
        vec![tb, "--model", "pkix"],
        vec![tb, "--content", tb],
    ] {
        let o = demailctl(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!o.stderr.is_empty(), "{args:?} said nothing");
    }
}

/// RFC 4134's CarlRSA CRLs: one revokes Alice (TOTAL_FAILED/REVOKED, beating the weak-algorithm
/// finding), the empty one does not.
#[test]
fn revocation_by_crl_file() {
    let v = vectors().join("rfc4134");
    let p = |n: &str| v.join(n).to_str().unwrap().to_string();
    let run = |crl: &str| {
        let o = demailctl(&[
            &p("4.2.bin"),
            "--anchor",
            &p("CarlRSASelf.cer"),
            "--revocation",
            "crl",
            "--crl",
            &p(crl),
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let revoked = run("CarlRSACRLForAll.crl");
    assert_eq!(revoked[0]["revocation"], "crl");
    assert_eq!(revoked[0]["sub_indication"], "REVOKED", "{revoked}");
    let empty = run("CarlRSACRLEmpty.crl");
    assert_eq!(
        empty[0]["sub_indication"], "CRYPTO_CONSTRAINTS_FAILURE",
        "{empty}"
    );
    assert!(
        !empty[0]["errors"].to_string().contains("revoked"),
        "{empty}"
    );
}

/// Without --revocation the configuration decides, when there is one.
#[test]
fn revocation_default_from_the_configuration() {
    let tb = vectors().join("thunderbird-smime");
    let mail = tb.join("alice.dsig.SHA256.multipart.eml");
    let ca = tb.join("TestCA.pem");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging/demail.toml");
    let text = std::fs::read_to_string(sample).unwrap();
    assert!(text.contains("revocation = \"ocsp\""));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("demail.toml");
    // The sample names its TLS files relative to itself.
    std::os::unix::fs::symlink(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging/tls"),
        dir.path().join("tls"),
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--config",
            config.to_str().unwrap(),
            mail.to_str().unwrap(),
            "--anchor",
            ca.to_str().unwrap(),
            "--at",
            "2026-01-26T15:00:00Z",
            "--json",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        demailctl(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    std::fs::write(&config, &text).unwrap();
    let o = run(&["--ocsp-timeout", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json[0]["revocation"], "ocsp");
    assert_ne!(json[0]["indication"], "TOTAL_PASSED", "{json}");
    let o = run(&["--revocation", "off"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json[0]["revocation"], "off");
    assert_eq!(json[0]["indication"], "TOTAL_PASSED", "{json}");
    std::fs::write(
        &config,
        text.replace("revocation = \"ocsp\"", "revocation = \"crl\""),
    )
    .unwrap();
    let o = run(&[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--crl"));
}
