//! The README's main command plays its story and checks it (`demail-demo --once`).

use demail_e2e::cargo_bin;

#[test]
fn demo_plays_the_whole_story() {
    let out = std::process::Command::new(cargo_bin("demail-demo"))
        .arg("--once")
        .output()
        .expect("run demail-demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("NOT OK"), "{stdout}");
    for line in [
        "ok: SHA-256 in the store = SHA-256 the provider computed",
        "ok: both confirmations verified (qualified signature) and matched: status received",
        "ok: status retrieved",
        "ok: it arrives in Dovecot with the provider's fields renamed X-Untrusted-...",
        "ok: nothing counted: still retrieved, still three confirmations",
        "ok: the poststelle sees it tagged [De-Mail absenderbestätigt] (provider seal verified)",
        "ok: tagged [QES gültig]: the signature verified against the trusted list (TOTAL_PASSED, QESig)",
        "ok: status shows the De-Mail to the citizen as retrieved",
        "ok: demailctl evidence verify: the hash chain is intact",
    ] {
        assert!(stdout.contains(line), "missing {line:?}:\n{stdout}");
    }
    assert!(stdout.contains(" export '"), "the export command: {stdout}");
}
