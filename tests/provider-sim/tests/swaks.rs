//! A real third-party client: swaks, over SMTPS and over STARTTLS with AUTH.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Fixture, RCPT, SENDER, message};
use demail_provider_sim::{Simulator, Stage, TlsMode};

fn swaks(args: &[&str]) -> Output {
    Command::new("swaks")
        .args(args)
        .output()
        .expect("swaks must be installed (apt-get install swaks)")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn swaks_tls_on_connect_with_client_certificate() {
    let fx = Fixture::new();
    let sim = Simulator::start(fx.config(TlsMode::Implicit)).expect("start");
    let eml = fx.dir.path().join("m.eml");
    let msg = message(
        "X-de-mail-confirmation-of-receipt: yes",
        "Gesendet mit swaks.\n",
    );
    // swaks sends the file and then CRLF.CRLF itself, so the file ends without a line end.
    std::fs::write(&eml, msg.strip_suffix(b"\r\n").expect("CRLF at the end")).expect("write");
    let port = sim.addr().port().to_string();
    let data = format!("@{}", path(&eml));
    let base = [
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--tls-on-connect",
        "--tls-verify",
        "--tls-ca-path",
        path(&fx.pki.ca_cert),
        "--helo",
        "gw.magdeburg.example",
        "--from",
        SENDER,
        "--to",
        RCPT,
        "--data",
        &data,
    ];

    let mut with_cert = base.to_vec();
    with_cert.extend([
        "--tls-cert",
        path(&fx.pki.client_cert),
        "--tls-key",
        path(&fx.pki.client_key),
    ]);
    let out = swaks(&with_cert);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250 2.0.0 Ok: queued as 0001"),
        "{}",
        show(&out)
    );
    let got = sim.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, msg);
    assert!(got[0].options.receipt);

    let out = swaks(&base);
    assert!(
        !out.status.success(),
        "without a client certificate: {}",
        show(&out)
    );
    assert_eq!(sim.accepted().len(), 1);
    assert!(
        common::eventually(|| sim.rejected().iter().any(|r| r.stage == Stage::Tls)),
        "{:?}",
        sim.rejected()
    );
}

#[test]
fn swaks_starttls_with_auth() {
    let fx = Fixture::new();
    let mut cfg = fx.config(TlsMode::Starttls);
    cfg.auth = Some(("gw".into(), "pa55word".into()));
    let sim = Simulator::start(cfg).expect("start");
    let port = sim.addr().port().to_string();
    let header = "X-de-mail-private-id: swaks-1";
    let run = |password: &str| {
        swaks(&[
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "-tls",
            "--tls-cert",
            path(&fx.pki.client_cert),
            "--tls-key",
            path(&fx.pki.client_key),
            "--auth",
            "PLAIN",
            "--auth-user",
            "gw",
            "--auth-password",
            password,
            "--from",
            SENDER,
            "--to",
            RCPT,
            "--header",
            header,
            "--h-From",
            &format!("<{SENDER}>"),
        ])
    };
    let out = run("wrong");
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("535 5.7.8"),
        "{}",
        show(&out)
    );

    let out = run("pa55word");
    assert!(out.status.success(), "{}", show(&out));
    let got = sim.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth_user.as_deref(), Some("gw"));
    assert_eq!(got[0].private_id.as_deref(), Some("swaks-1"));
}
