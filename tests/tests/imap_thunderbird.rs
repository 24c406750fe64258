//! Real Thunderbird (headless, in a private network namespace) through the proxy: it logs in,
//! finds the confirmation folders next to Dovecot's, opens them, and gets no NO or BAD.
//!
//! Opt-in (about 40 s, needs root, the `thunderbird` package and the runner of
//! `../shared/tools/thunderbird/`, path in `THUNDERBIRD_RUNNER`):
//! `cargo test -p demail-e2e --test imap_thunderbird -- --ignored --nocapture`.

use std::path::PathBuf;
use std::process::Command;

use demail_e2e::city::{CITIZEN, CLERK};
use demail_e2e::proxy_city::{self, PW};

const DEFAULT_RUNNER: &str = "/work/shared/tools/thunderbird/run-thunderbird.sh";

#[test]
#[ignore = "real Thunderbird: ~40 s, root, thunderbird installed, THUNDERBIRD_RUNNER"]
fn thunderbird_sees_the_confirmation_folders_and_gets_no_no_or_bad() {
    let runner = PathBuf::from(
        std::env::var_os("THUNDERBIRD_RUNNER").unwrap_or_else(|| DEFAULT_RUNNER.into()),
    );
    assert!(
        runner.is_file(),
        "no Thunderbird runner at {}",
        runner.display()
    );
    let city = proxy_city::start("");
    let id = proxy_city::send_demail(&city, CLERK, CITIZEN, "Bescheid fuer Thunderbird");
    proxy_city::wait_confirmations(&city, &id, 2);
    let out_dir = tempfile::tempdir().expect("tmp");
    let port = city.proxy().expect("proxy").ports.imap;
    let out = Command::new(&runner)
        .args(["127.0.0.1", &port.to_string(), CLERK, PW])
        .arg(out_dir.path())
        .output()
        .expect("run Thunderbird");
    let read = |f: &str| std::fs::read_to_string(out_dir.path().join(f)).unwrap_or_default();
    let summary = read("summary.txt");
    let folders = read("folders-detail.txt");
    println!("{summary}\n--- folders ---\n{folders}");
    assert!(
        out.status.success(),
        "Thunderbird did not log in:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary.contains("NO replies: 0   BAD replies: 0   untagged NO/BAD/BYE: 0"),
        "{summary}"
    );
    // Thunderbird's own folder tree: each confirmation folder holds the one confirmation.
    for f in [
        "De-Mail/Versandbest&AOQ-tigungen",
        "De-Mail/Eingangsbest&AOQ-tigungen",
    ] {
        let total = folders
            .lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|c| c.first() == Some(&f))
            .and_then(|c| c.get(3).map(|t| t.to_string()))
            .unwrap_or_else(|| panic!("Thunderbird lists no {f}:\n{folders}"));
        assert_eq!(total, "1", "{f} in Thunderbird:\n{folders}");
    }
}
