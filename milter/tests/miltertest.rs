//! An independent milter client: OpenDKIM's miltertest runs `tests/outbound.lua` against the
//! milter (one outbound De-Mail, header changes checked with `mt.eom_check`). The record the
//! script's transaction left in the evidence store is then checked from here.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miltertest_outbound_script() {
    let milter = Milter::start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outbound.lua");
    let port = milter.addr.port();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("miltertest")
            .arg("-s")
            .arg(&script)
            .arg("-D")
            .arg(format!("port={port}"))
            .output()
    })
    .await
    .expect("miltertest task")
    .expect("miltertest must be installed (Debian package miltertest)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("outbound.lua: all checks passed"),
        "miltertest failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    let all = submissions(&milter);
    assert_eq!(all.len(), 1, "{all:?}");
    let s = &all[0];
    assert!(stdout.contains(&s.private_id), "{stdout}");
    assert_eq!(s.queue_id, "MT1234567");
    assert_eq!(s.subject, "Ihr Antrag");
    assert_eq!(s.recipients, vec!["buerger@example.de-mail.de".to_string()]);
    assert_eq!(s.options, vec!["dispatch", "receipt", "private"]);
    let blob = String::from_utf8(milter.store().read_blob(&s.content).unwrap()).unwrap();
    assert!(
        blob.starts_with(
            "From: \"Landeshauptstadt Magdeburg\" <info@magdeburg.de-mail.de>\r\n\
             To: <buerger@example.de-mail.de>\r\nSubject: Ihr Antrag\r\n"
        ),
        "{blob}"
    );
    assert!(
        blob.contains("\r\nMessage-ID: <mt-1@client.magdeburg.example>\r\n"),
        "{blob}"
    );
    assert!(
        !blob.contains("Reply-To") && !blob.contains("forged"),
        "{blob}"
    );
    assert!(
        blob.ends_with(&format!(
            "\r\nX-de-mail-private-id: {}\r\n\r\nSehr geehrte Damen und Herren,\r\n\r\nanbei.\r\n",
            s.private_id
        )),
        "{blob}"
    );
    milter.stop().await;
}
