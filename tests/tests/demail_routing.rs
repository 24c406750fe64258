//! Outbound De-Mail routing with the Postfix configuration `demailctl postfix-config` writes:
//! a clerk's mail to a De-Mail address goes through the milter to the provider simulator over
//! TLS with the city's client certificate, never by MX; with the provider down it waits in
//! the queue (never bounced) and leaves once the provider is back on the same port.

use std::time::Duration;

use demail_e2e::city::{ACCOUNT, CITIZEN, CLERK};
use demail_e2e::{City, CityOptions, Postfix, swaks, wait_until};
use demail_provider_sim::{Accepted, Simulator};

const WAIT: Duration = Duration::from_secs(30);

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
    let mut city = City::start(CityOptions::default());
    let tables = city.tables_dir();
    let pf = city.postfix();

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
    // Postfix reaches the milter on its unix socket, which only root and group postfix may use.
    let demail_e2e::MilterAddr::Unix(socket) = city.milter_addr().clone() else {
        panic!("the test city's milter listens on a unix socket");
    };
    assert_eq!(
        pf.postconf("smtpd_milters"),
        format!("unix:{}", socket.display())
    );
    {
        use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&socket).expect("the milter socket");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        let group = std::process::Command::new("getent")
            .args(["group", "postfix"])
            .output()
            .expect("getent");
        let gid: u32 = String::from_utf8_lossy(&group.stdout)
            .split(':')
            .nth(2)
            .and_then(|g| g.parse().ok())
            .expect("group postfix");
        assert_eq!(meta.gid(), gid, "group postfix");
    }
    let gateway = format!("localhost[127.0.0.1]:{}", city.simulator_port());

    // 1. Provider up: the mail arrives over TLS, presented with the city's client certificate.
    let sim = city.simulator().expect("the simulator runs");
    let qid = send(
        pf,
        "Bescheid 2026/17",
        "Sehr geehrte Frau Muster,\nanbei Ihr Bescheid.",
    );
    let got = accepted_with_subject(sim, "Bescheid 2026/17");
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
    city.stop_simulator();
    let pf = city.postfix();
    let qid2 = send(pf, "Bescheid 2026/18", "Zweiter Bescheid.");
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
    city.start_simulator();
    let pf = city.postfix();
    let sim = city.simulator().expect("the simulator runs");
    pf.flush();
    let got = accepted_with_subject(sim, "Bescheid 2026/18");
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
