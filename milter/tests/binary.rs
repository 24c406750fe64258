//! The `demail-milter` binary: configuration errors, a UNIX socket, SIGHUP reload and a
//! graceful SIGTERM, run as a real process.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::CONFIG;
use indymilter_test::{MacroStage, Status, TestConnection};

const BIN: &str = env!("CARGO_BIN_EXE_demail-milter");

fn write_config(dir: &Path, extra_sender: &str) {
    let text = CONFIG
        .replace("MAXSIZE", "20MiB")
        .replace("EVIDENCE", &dir.join("evidence").display().to_string())
        .replace("BLOBS", &dir.join("blobs").display().to_string())
        .replace(
            "listen = \"inet:127.0.0.1:0\"",
            &format!("listen = \"unix:{}\"", dir.join("milter.sock").display()),
        )
        .replace(
            "senders = [\"*@hv.example\"]",
            &format!("senders = [\"*@hv.example\"{extra_sender}]"),
        );
    std::fs::write(dir.join("demail.toml"), text).unwrap();
}

/// The gid of a group as the system resolves it (`getent group`), `None` if there is none.
fn group_id(name: &str) -> Option<u32> {
    let out = Command::new("getent").args(["group", name]).output().ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    line.split(':').nth(2)?.trim().parse().ok()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// RCPT status for a sender at example.org writing to a De-Mail address.
async fn rcpt_status(socket: &Path) -> Status {
    let mut conn = TestConnection::configure()
        .read_timeout(Duration::from_secs(10))
        .open_unix(socket)
        .await
        .expect("connect to the milter socket");
    conn.macros(MacroStage::Connect, [("{daemon_name}", "submission")])
        .await
        .unwrap();
    // Connect and HELO go unanswered where the MTA offers it (no-reply stages).
    let connect = conn.connect("client", [192, 0, 2, 1]).await.unwrap();
    assert!(
        matches!(connect, Status::Continue | Status::Noreply),
        "{connect:?}"
    );
    let helo = conn.helo("client").await.unwrap();
    assert!(
        matches!(helo, Status::Continue | Status::Noreply),
        "{helo:?}"
    );
    assert_eq!(
        conn.mail(["<robot@example.org>"]).await.unwrap(),
        Status::Continue
    );
    let status = conn.rcpt(["<buerger@example.de-mail.de>"]).await.unwrap();
    conn.close().await.unwrap();
    status
}

/// The milter as a process on a UNIX socket in `dir` (config and stand-in TLS files written
/// there), once the socket is there; stderr piped.
async fn start(dir: &Path, args: &[&str]) -> std::process::Child {
    std::fs::create_dir(dir.join("tls")).unwrap();
    for f in ["client.pem", "client.key", "ca.pem"] {
        std::fs::write(dir.join("tls").join(f), "test material\n").unwrap();
    }
    write_config(dir, "");
    let socket = dir.join("milter.sock");
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(dir.join("demail.toml"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "socket never appeared"
        );
        assert!(child.try_wait().unwrap().is_none(), "milter exited early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_reloads_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("milter.sock");
    let child = start(dir.path(), &[]).await;

    // Only the owner and Postfix's group may speak milter on it.
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660);
    if let Some(gid) = group_id("postfix") {
        assert_eq!(meta.gid(), gid, "socket group is postfix");
    }
    assert!(matches!(rcpt_status(&socket).await, Status::Reject { .. }));

    // Allow example.org for the company account and reload.
    write_config(dir.path(), ", \"*@example.org\"");
    signal(child.id(), "-HUP");
    let start = Instant::now();
    loop {
        let status = rcpt_status(&socket).await;
        if status == Status::Continue {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "reload not applied: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken file keeps the running configuration.
    std::fs::write(dir.path().join("demail.toml"), "[gateway\n").unwrap();
    signal(child.id(), "-HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rcpt_status(&socket).await, Status::Continue);

    signal(child.id(), "-TERM");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {}: {stderr}", output.status);
    assert!(stderr.contains("configuration reloaded"), "{stderr}");
    assert!(stderr.contains("not reloaded"), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(!socket.exists(), "socket removed on shutdown");
}

#[test]
fn configuration_errors_exit_1_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demail.toml");
    std::fs::write(&file, "[gateway]\nhost = \"gw\"\nport = \"not a number\"\n").unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{}:", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains(":3: gateway.port:"), "{stderr}");
}

#[test]
fn version_and_usage() {
    let output = Command::new(BIN).arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("demail-milter {}", env!("CARGO_PKG_VERSION"))
    );
    let output = Command::new(BIN).arg("--nonsense").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Usage: demail-milter"));
}

/// `--log-format json`: one JSON object per line; the message's summary line carries queue
/// id, kind and outcome. A SIGHUP that changes the socket keeps the running one and names the
/// key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_and_a_reload_that_keeps_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("milter.sock");
    let child = start(dir.path(), &["--log-format", "json"]).await;

    let mut conn = TestConnection::configure()
        .read_timeout(Duration::from_secs(10))
        .open_unix(&socket)
        .await
        .unwrap();
    conn.macros(MacroStage::Connect, [("{daemon_name}", "submission")])
        .await
        .unwrap();
    conn.connect("client", [192, 0, 2, 1]).await.unwrap();
    conn.macros(MacroStage::Mail, [("i", "4QX7Z1")])
        .await
        .unwrap();
    conn.mail(["<robot@example.org>"]).await.unwrap();
    let status = conn.rcpt(["<buerger@example.de-mail.de>"]).await.unwrap();
    assert!(matches!(status, Status::Reject { .. }), "{status:?}");
    conn.abort().await.unwrap();
    conn.close().await.unwrap();

    // The socket moves in the file, and example.org may now write: the new policy applies,
    // the running socket stays.
    write_config(dir.path(), ", \"*@example.org\"");
    let text = std::fs::read_to_string(dir.path().join("demail.toml")).unwrap();
    let moved = dir.path().join("elsewhere.sock");
    std::fs::write(
        dir.path().join("demail.toml"),
        text.replace(&socket.display().to_string(), &moved.display().to_string()),
    )
    .unwrap();
    signal(child.id(), "-HUP");
    let start = Instant::now();
    while rcpt_status(&socket).await != Status::Continue {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "reload not applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!moved.exists(), "no second socket");

    signal(child.id(), "-TERM");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {}: {stderr}", output.status);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summary: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["queue_id"] == "4QX7Z1").collect();
    assert_eq!(summary.len(), 1, "{stderr}");
    assert_eq!(summary[0]["level"], "INFO");
    assert_eq!(summary[0]["kind"], "demail_outbound");
    assert_eq!(summary[0]["outcome"], "rejected");
    assert_eq!(summary[0]["message"], "message rejected");
    assert!(summary[0]["timestamp"].is_string(), "{}", summary[0]);
    let warned = lines.iter().any(|v| {
        v["level"] == "WARN"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("[milter] listen changed"))
    });
    assert!(warned, "{stderr}");
    assert!(
        lines.iter().any(|v| v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("SIGHUP: configuration reloaded"))),
        "{stderr}"
    );
}
