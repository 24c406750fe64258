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
    assert!(
        stdout.contains("SHA-256 in the store = SHA-256 the provider computed"),
        "{stdout}"
    );
}
