//! `demailctl tl import|list` and `qes verify --tl/--tl-signer` as an admin runs them, with
//! the German trusted list of 2015 and the EU LOTL from the DSS test data (tests/vectors,
//! LGPL-2.1).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn vector(rel: &str) -> String {
    vectors().join(rel).display().to_string()
}

fn demailctl(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_demailctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The certificate in a list's own ds:Signature, written as PEM: the admin pins it after
/// checking its fingerprint against the publication of the list's operator.
fn signer_pem(list: &str, dir: &Path) -> String {
    let text = std::fs::read_to_string(vectors().join(list)).unwrap();
    let sig = &text[text.find("<ds:Signature").unwrap()..];
    let start = sig.find("X509Certificate>").unwrap() + "X509Certificate>".len();
    let end = start + sig[start..].find('<').unwrap();
    let b64: String = sig[start..end].split_whitespace().collect();
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    );
    let path = dir.join(format!("{list}.pem").replace('/', "_"));
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

/// The shipped sample configuration with the trusted-list directory in `dir`.
fn config(dir: &Path) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/demail.toml");
    let tls = sample.parent().unwrap().join("tls");
    let text = std::fs::read_to_string(&sample)
        .unwrap()
        .replace("\"tls/", &format!("\"{}/", tls.display()))
        .replace(
            "trusted_lists = \"/var/lib/demail/trust\"",
            &format!("trusted_lists = \"{}/trust\"", dir.display()),
        );
    assert!(text.contains(&format!("{}/trust", dir.display())));
    let path = dir.join("demail.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", out(o)))
}

const AT: &str = "2014-11-13T10:40:00Z";

#[test]
fn german_qes_with_the_german_list_for_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("no-config.toml");
    let signer = signer_pem("dss/tsl/de-tl.xml", dir.path());
    let tl = vector("dss/tsl/de-tl.xml");
    for file in ["Signature-C-DE_CRY-3.p7m", "Signature-C-DE_CRY-4.p7m"] {
        let p7m = vector(&format!("dss/cades/{file}"));
        let args = [
            "qes",
            "verify",
            &p7m,
            "--tl",
            &tl,
            "--tl-signer",
            &signer,
            "--at",
            AT,
        ];
        let chain = demailctl(&none, &[&args[..], &["--json"]].concat());
        assert!(chain.status.success(), "{}", out(&chain));
        let s = &json(&chain)[0];
        assert_eq!(s["indication"], "TOTAL_PASSED", "{file}: {s:#}");
        assert_eq!(s["qualification"], "QESig", "{file}: {s:#}");
        let shell = demailctl(&none, &[&args[..], &["--model", "shell"]].concat());
        let text = out(&shell);
        assert!(text.contains("OUT_OF_BOUNDS_NO_POE"), "{text}");
        assert!(
            text.contains("\"D-TRUST Qualified CA 1 2008:PN\" expired"),
            "{text}"
        );
        assert!(text.contains("Indeterminate QESig"), "{text}");
    }
}

#[test]
fn a_list_whose_signer_is_not_pinned_gives_no_trust() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("no-config.toml");
    let wrong = signer_pem("dss/tsl/eu-lotl.xml", dir.path());
    let p7m = vector("dss/cades/Signature-C-DE_CRY-3.p7m");
    let tl = vector("dss/tsl/de-tl.xml");
    let o = demailctl(
        &none,
        &[
            "qes",
            "verify",
            &p7m,
            "--tl",
            &tl,
            "--tl-signer",
            &wrong,
            "--at",
            AT,
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", out(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("does not verify with any pinned signer"),
        "{stderr}"
    );
    assert!(stderr.contains("gives no trust"), "{stderr}");
    let s = &json(&o)[0];
    assert_eq!(s["qualification"], "N/A", "{s:#}");
    assert_eq!(s["sub_indication"], "NO_CERTIFICATE_CHAIN_FOUND", "{s:#}");
}

#[test]
fn import_then_verify_uses_the_imported_lists() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let de_signer = signer_pem("dss/tsl/de-tl.xml", dir.path());
    let lotl_signer = signer_pem("dss/tsl/eu-lotl.xml", dir.path());
    let de = vector("dss/tsl/de-tl.xml");
    let lotl = vector("dss/tsl/eu-lotl.xml");

    // Nothing pinned: refused, nothing stored.
    let o = demailctl(&cfg, &["tl", "import", &de]);
    assert!(!o.status.success());
    assert!(out(&o).contains("no pinned signer"), "{}", out(&o));
    assert!(out(&demailctl(&cfg, &["tl", "list"])).contains("no trusted list imported"));

    // A damaged LOTL fails, the others are imported (the LOTL first, whatever the order).
    let broken = vector("dss/tsl/eu-lotl-broken-sig.xml");
    let o = demailctl(
        &cfg,
        &[
            "tl",
            "import",
            &de,
            &broken,
            &lotl,
            "--signer",
            &de_signer,
            "--signer",
            &lotl_signer,
        ],
    );
    let text = out(&o);
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains("eu-lotl-broken-sig.xml") && text.contains("does not verify"),
        "{text}"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lotl_at = stdout.find("imported EU list of lists").expect(&text);
    let de_at = stdout.find("imported DE trusted list").expect(&text);
    assert!(lotl_at < de_at, "{text}");
    assert!(text.contains("306 CA/QC services"), "{text}");
    assert!(dir.path().join("trust/tl-DE.json").is_file());
    assert!(dir.path().join("trust/tl-DE.xml").is_file());
    let listed = out(&demailctl(&cfg, &["tl", "list"]));
    assert!(listed.contains("DE trusted list (sequence 22"), "{listed}");

    // qes verify finds the imported lists through the configuration: no --anchor, no --tl.
    let p7m = vector("dss/cades/Signature-C-DE_CRY-3.p7m");
    // Revocation off: the 2014 D-TRUST responder is not reachable from the test.
    let o = demailctl(
        &cfg,
        &[
            "qes",
            "verify",
            &p7m,
            "--at",
            AT,
            "--json",
            "--revocation",
            "off",
        ],
    );
    let s = &json(&o)[0];
    assert_eq!(s["indication"], "TOTAL_PASSED", "{s:#}");
    assert_eq!(s["qualification"], "QESig", "{s:#}");
}
