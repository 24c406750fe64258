//! Outbound De-Mail routing with the Postfix configuration `demailctl postfix-config` writes:
//! a clerk's mail to a De-Mail address goes through the milter to the provider simulator over
//! TLS with the city's client certificate, never by MX; with the provider down it waits in
//! the queue (never bounced) and leaves once the provider is back on the same port.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use demail_e2e::{Postfix, demailctl_postfix_options, free_port, swaks, wait_until};
use demail_provider_sim::pki::TestPki;
use demail_provider_sim::{Accepted, SimConfig, Simulator, TlsMode};
use openssl::hash::MessageDigest;
use openssl::x509::X509;

const ACCOUNT: &str = "info@testhausen.de-mail.de";
const CLERK: &str = "sachbearbeitung@example.test";
const CITIZEN: &str = "buerger@example.de-mail.de";
const WAIT: Duration = Duration::from_secs(30);

/// The city's side: demail.toml, the provider's test PKI, and the milter running in-process.
struct City {
    dir: tempfile::TempDir,
    pki: TestPki,
    config: PathBuf,
    sim_port: u16,
    /// Runs as long as the city exists.
    _milter: Milter,
}

impl City {
    fn new() -> City {
        let dir = tempfile::Builder::new()
            .prefix("e2e-city-")
            .tempdir()
            .expect("temp dir");
        // Postfix's unprivileged processes read the tables written below this directory.
        chmod(dir.path(), 0o755);
        let pki = TestPki::generate(&dir.path().join("pki")).expect("test PKI");
        chmod(&dir.path().join("pki"), 0o755);
        std::fs::create_dir(dir.path().join("evidence")).expect("evidence dir");
        let sim_port = free_port();
        let milter_port = free_port();
        let config = dir.path().join("demail.toml");
        std::fs::write(
            &config,
            demail_toml(dir.path(), &pki, sim_port, milter_port),
        )
        .expect("write demail.toml");
        let milter = Milter::start(&config);
        City {
            dir,
            pki,
            config,
            sim_port,
            _milter: milter,
        }
    }

    fn simulator(&self) -> Simulator {
        Simulator::start(SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, self.sim_port)),
            tls: TlsMode::Implicit,
            server_cert: self.pki.server_cert.clone(),
            server_key: self.pki.server_key.clone(),
            client_ca: self.pki.ca_cert.clone(),
            auth: None,
            accounts: vec![ACCOUNT.into()],
            demail_domains: vec!["*.de-mail.de".into()],
            store_dir: self.dir.path().join("provider-store"),
            max_message_size: 20 << 20,
        })
        .unwrap_or_else(|e| panic!("provider simulator on port {}: {e}", self.sim_port))
    }

    /// Lower-case hex SHA-256 of the client certificate's DER, as the simulator reports it.
    fn client_cert_sha256(&self) -> String {
        let pem = std::fs::read(&self.pki.client_cert).expect("read client cert");
        let cert = X509::from_pem(&pem).expect("parse client cert");
        let digest = cert.digest(MessageDigest::sha256()).expect("digest");
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn demail_toml(dir: &Path, pki: &TestPki, sim_port: u16, milter_port: u16) -> String {
    let d = dir.display();
    let p = |p: &Path| p.display().to_string();
    format!(
        r#"[gateway]
host = "localhost"
port = {sim_port}
tls = "implicit"
client_certificate = "{client}"
client_key = "{client_key}"
provider_ca = "{ca}"
domains = ["*.de-mail.de"]
max_message_size = "20MiB"

[inbound]
provider_service = "demail-in"
listen = "127.0.0.1:{in_port}"

[evidence]
database = "{d}/evidence/evidence.sqlite"
blobs = "{d}/evidence/blobs"

[milter]
listen = "inet:127.0.0.1:{milter_port}"

[[tenant]]
name = "Stadt Testhausen"
public_body = true
internal_domains = ["example.test"]

  [[tenant.account]]
  address = "{ACCOUNT}"
  deliver_to = ["poststelle@example.test"]
  senders = ["*@example.test"]
  default_options = ["dispatch", "receipt"]
"#,
        client = p(&pki.client_cert),
        client_key = p(&pki.client_key),
        ca = p(&pki.ca_cert),
        in_port = free_port(),
    )
}

/// demail-milter served in-process on the port demail.toml names, on its own runtime.
struct Milter {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Milter {
    fn start(config: &Path) -> Milter {
        let config = demail_policy::Config::load(config)
            .unwrap_or_else(|e| panic!("demail.toml rejected:\n{e}"));
        let config = Arc::new(config);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let listener = demail_milter::bind(&config.milter.listen).await;
                let listener = match listener {
                    Ok(l) => {
                        let _ = ready_tx.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Ok(());
                    }
                };
                demail_milter::run(listener, config, async {
                    let _ = stop.await;
                })
                .await
            })
        });
        match ready_rx.recv_timeout(WAIT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("milter cannot listen: {e}"),
            Err(e) => panic!("milter did not start: {e}"),
        }
        Milter {
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

impl Drop for Milter {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A clerk's mail to the citizen through Postfix; returns Postfix's queue id.
fn send(pf: &Postfix, subject: &str, body: &str) -> String {
    let server = format!("127.0.0.1:{}", pf.smtp_port);
    let out = swaks(&[
        "--server",
        &server,
        "--from",
        CLERK,
        "--to",
        CITIZEN,
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        body,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| {
            l.split_once("250 2.0.0 Ok: queued as ")
                .map(|(_, id)| id.trim().to_string())
        })
        .unwrap_or_else(|| panic!("not queued:\n{text}"))
}

/// The maillog lines about queue id `qid`.
fn lines_for<'a>(log: &'a str, qid: &str) -> Vec<&'a str> {
    let tag = format!(" {qid}: ");
    log.lines().filter(|l| l.contains(&tag)).collect()
}

/// Every delivery attempt of `qid` went to the gateway and nowhere else: `relay=` names the
/// gateway, or is `none` with a deferral that names the gateway. Returns the attempts.
fn assert_only_the_gateway(log: &str, qid: &str, gateway: &str) -> Vec<String> {
    let attempts: Vec<String> = lines_for(log, qid)
        .into_iter()
        .filter(|l| l.contains(" relay="))
        .map(str::to_string)
        .collect();
    for line in &attempts {
        assert!(
            line.contains(&format!("to=<{CITIZEN}>")),
            "attempt for another recipient: {line}"
        );
        let relay = line
            .split(" relay=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or("");
        let ok = relay == gateway
            || (relay == "none" && line.contains(&format!("connect to {gateway}:")));
        assert!(ok, "delivery attempt not to the gateway {gateway}: {line}");
        assert!(!line.contains("status=bounced"), "bounced: {line}");
    }
    attempts
}

fn accepted_with_subject(sim: &Simulator, subject: &str) -> Accepted {
    let got = sim.wait_for(1, WAIT);
    got.into_iter()
        .find(|a| a.subject.as_deref() == Some(subject))
        .unwrap_or_else(|| {
            panic!(
                "the provider got no message with subject {subject:?}: {:?}",
                sim.rejected()
            )
        })
}

#[test]
fn de_mail_goes_only_to_the_provider_gateway_and_waits_while_it_is_down() {
    let city = City::new();
    let tables = city.dir.path().join("postfix-demail");
    let pf = Postfix::start(demailctl_postfix_options(&city.config, &tables));

    // Postfix accepts the generated configuration as it is.
    let check = pf
        .check()
        .unwrap_or_else(|e| panic!("postfix check rejects it:\n{e}"));
    assert!(
        !check.contains("warning") && !check.contains("fatal"),
        "postfix check:\n{check}"
    );
    assert_eq!(
        pf.postconf("transport_maps"),
        format!("texthash:{}", tables.join("transport").display())
    );
    let gateway = format!("localhost[127.0.0.1]:{}", city.sim_port);

    // 1. Provider up: the mail arrives over TLS, presented with the city's client certificate.
    let sim = city.simulator();
    let qid = send(
        &pf,
        "Bescheid 2026/17",
        "Sehr geehrte Frau Muster,\nanbei Ihr Bescheid.",
    );
    let got = accepted_with_subject(&sim, "Bescheid 2026/17");
    assert_eq!(got.rcpts, vec![CITIZEN.to_string()]);
    assert_eq!(
        got.mail_from, ACCOUNT,
        "the milter maps the clerk to the De-Mail account"
    );
    assert_eq!(got.client_cert_sha256, city.client_cert_sha256());
    assert!(
        got.client_cert_subject
            .contains("CN=gateway.demail-sim.test"),
        "{}",
        got.client_cert_subject
    );
    assert!(
        got.data.windows(19).any(|w| w == b"anbei Ihr Bescheid."),
        "body missing"
    );
    let record = demail_provider_sim::StoredRecord::load(&got.json_path).expect("stored record");
    assert!(record.tls_version.starts_with("TLSv1."), "{record:?}");

    wait_until(WAIT, "the sent mail to leave the queue", || {
        pf.queue().contains("Mail queue is empty").then_some(())
    });
    let log = pf.log();
    let attempts = assert_only_the_gateway(&log, &qid, &gateway);
    assert!(
        attempts.len() == 1 && attempts[0].contains("status=sent"),
        "one delivery, to the gateway: {attempts:#?}"
    );
    assert!(
        log.contains(&format!("Verified TLS connection established to {gateway}")),
        "no verified TLS to the gateway in the maillog:\n{log}"
    );

    // 2. Provider down: the next mail is deferred again and again, never bounced.
    sim.stop();
    let qid2 = send(&pf, "Bescheid 2026/18", "Zweiter Bescheid.");
    wait_until(WAIT, "two deferred attempts of the second mail", || {
        let log = pf.log();
        let deferred = lines_for(&log, &qid2)
            .iter()
            .filter(|l| l.contains("status=deferred"))
            .count();
        (deferred >= 2).then_some(())
    });
    let queue = pf.queue();
    assert!(
        queue.contains(&qid2) && queue.contains(CITIZEN),
        "not waiting in the queue:\n{queue}"
    );
    assert_only_the_gateway(&pf.log(), &qid2, &gateway);

    // 3. Provider back on the same port: the waiting mail leaves.
    let sim = city.simulator();
    pf.flush();
    let got = accepted_with_subject(&sim, "Bescheid 2026/18");
    assert_eq!(got.rcpts, vec![CITIZEN.to_string()]);
    assert_eq!(got.client_cert_sha256, city.client_cert_sha256());
    wait_until(WAIT, "an empty queue", || {
        pf.queue().contains("Mail queue is empty").then_some(())
    });
    let log = pf.log();
    let attempts = assert_only_the_gateway(&log, &qid2, &gateway);
    assert!(
        attempts.last().is_some_and(|l| l.contains("status=sent")),
        "{attempts:#?}"
    );
    assert!(!log.contains("status=bounced"), "something bounced:\n{log}");
    // No lookup of the De-Mail domain was ever tried (an MX or A lookup of it would fail here
    // and be logged as such); the only TLS peer was the gateway.
    for bad in [
        "Host or domain name not found",
        "Name service error",
        "example.de-mail.de[",
    ] {
        assert!(!log.contains(bad), "{bad:?} in the maillog:\n{log}");
    }
}
