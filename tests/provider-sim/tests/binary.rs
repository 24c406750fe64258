//! The `demail-provider-sim` binary: config file, logging, SIGTERM, and `--gen-pki`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Client, Identity, RCPT, SENDER, message};

const BIN: &str = env!("CARGO_BIN_EXE_demail-provider-sim");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn runs_from_a_config_file_until_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .arg("--gen-pki")
        .arg(dir.path().join("pki"))
        .output()
        .expect("run --gen-pki");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("client_cert = "));

    let port = free_port();
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
tls = "implicit"
server_cert = "pki/server.pem"
server_key = "pki/server.key"
client_ca = "pki/ca.pem"
accounts = ["{SENDER}"]
demail_domains = ["*.de-mail.de"]
store_dir = "store"
max_message_size = "1MiB"
"#
    );
    let config_path = dir.path().join("sim.toml");
    std::fs::write(&config_path, config).expect("config");

    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config_path)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("startup line");
    assert!(
        first.contains(&format!("listening on 127.0.0.1:{port}")),
        "{first}"
    );

    let id = Identity {
        cert: dir.path().join("pki/client.pem"),
        key: dir.path().join("pki/client.key"),
    };
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut c = Client::implicit(addr, &dir.path().join("pki/ca.pem"), Some(&id)).expect("TLS");
    assert_eq!(
        c.send(SENDER, &[RCPT], &message("", "vom Binary\n"))
            .first(),
        "250 2.0.0 Ok: queued as 0001"
    );
    assert_eq!(c.cmd("MAIL FROM:<nobody@x.de-mail.de>").code, 550);
    assert_eq!(c.cmd("QUIT").code, 221);
    assert!(dir.path().join("store/0001.eml").exists());

    // SIGTERM to the child we started, by its pid.
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a pid we own and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    let log: Vec<String> = rx.try_iter().collect();
    let log = log.join("\n");
    assert!(
        log.contains("0001: accepted from=<info@magdeburg.de-mail.de>"),
        "{log}"
    );
    assert!(log.contains("rejected at Mail: 550 5.7.1"), "{log}");
    assert!(log.contains("stopping"), "{log}");
}

#[test]
fn a_bad_config_fails_with_the_key_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\ntls = \"maybe\"\n").expect("write");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("tls"), "{err}");

    let out = Command::new(BIN).output().expect("run");
    assert!(!out.status.success());
}
