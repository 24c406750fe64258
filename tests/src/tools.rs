//! The clients and binaries tests run.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Runs `swaks ARGS..` with output captured (`--server 127.0.0.1:PORT` etc. are up to the
/// caller); panics only if swaks cannot be started.
pub fn swaks(args: &[&str]) -> Output {
    Command::new("swaks")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run swaks: {e} (apt-get install swaks)"))
}

/// `target/PROFILE/NAME` of this workspace, for the profile the caller was built with (a test
/// binary or a `--release` program such as the benchmark; honours `CARGO_TARGET_DIR`). Panics
/// with the command to build it when it is missing.
pub fn cargo_bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    if !path.is_file() {
        panic!(
            "binary {name} not found at {}: build it first with `cargo build -p <its package>` \
             (or `cargo build --workspace --bins`)",
            path.display()
        );
    }
    path
}

/// The directory cargo puts this profile's binaries in.
fn target_dir() -> PathBuf {
    // A test binary lives in <target>/<profile>/deps: its grandparent is where cargo puts
    // the workspace's binaries, whatever CARGO_TARGET_DIR or the profile was. A binary target
    // lives in <target>/<profile> itself, recognisable by cargo's `.fingerprint` beside it.
    if let Ok(exe) = std::env::current_exe()
        && let Some(parent) = exe.parent()
    {
        if parent.file_name().is_some_and(|n| n == "deps")
            && let Some(profile_dir) = parent.parent()
        {
            return profile_dir.to_path_buf();
        }
        if parent.join(".fingerprint").is_dir() {
            return parent.to_path_buf();
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_is_where_this_test_binary_was_built() {
        let exe = std::env::current_exe().expect("current_exe");
        assert!(
            exe.starts_with(target_dir()),
            "{} vs {}",
            exe.display(),
            target_dir().display()
        );
    }

    #[test]
    #[should_panic(expected = "build it first")]
    fn cargo_bin_of_a_missing_binary_says_how_to_build_it() {
        cargo_bin("no-such-binary-e2e");
    }

    #[test]
    fn swaks_runs() {
        let out = swaks(&["--version"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("swaks"));
    }
}
