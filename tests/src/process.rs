//! Running commands and stopping the daemons we started.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Runs `program args..`, output captured; panics if it cannot be started at all.
pub(crate) fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (is it installed?)"))
}

/// Runs a command that starts a daemon. Its output goes to the file `log`, not to pipes:
/// daemons keep the stderr they inherited open, and reading a pipe to its end would then
/// wait for the daemon to exit. Returns whether it succeeded and what it printed.
pub(crate) fn run_starter(program: &str, args: &[&str], log: &Path) -> (bool, String) {
    let file = |what: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open {} for {what}: {e}", log.display()))
    };
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (is it installed?)"));
    let text = std::fs::read_to_string(log)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    (status.success(), text)
}

/// Like [`run_in_pty`], for a command that starts a daemon (see [`run_starter`]).
pub(crate) fn run_starter_in_pty(args: &[&str], log: &Path) -> (bool, String) {
    let line = args
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    run_starter("script", &["-qec", &line, "/dev/null"], log)
}

/// Runs a command line inside a pseudo-terminal (`script`): `postfix check/start` print
/// their diagnostics only to a terminal (or syslog) and exit 1 silently otherwise.
pub(crate) fn run_in_pty(args: &[&str]) -> Output {
    let line = args
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    run("script", &["-qec", &line, "/dev/null"])
}

/// stdout and stderr of a finished command as one text, for error messages and checks.
pub(crate) fn text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The pid in a daemon's pid file (Postfix pads it with spaces).
pub(crate) fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// True while `pid` runs. A zombie counts as gone: daemons are not our children, and in a
/// container the reaper may be slow.
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3, after the parenthesised command name, is the state.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends SIGTERM to `pid` and waits for it to end; SIGKILL after `grace`.
pub(crate) fn terminate(pid: i32, grace: Duration) {
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while alive(pid) {
        if Instant::now() >= deadline {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            sleep(Duration::from_millis(100));
            return;
        }
        sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pty_runs_the_command_and_returns_its_status_and_output() {
        // The argument with a quote and a space must reach the command as one word.
        let out = run_in_pty(&["sh", "-c", "echo \"[$1]\"; exit 3", "sh", "it's here"]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(text(&out).contains("[it's here]"), "{}", text(&out));
    }

    #[test]
    fn terminate_stops_a_process_and_alive_notices() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = i32::try_from(child.id()).expect("pid fits");
        assert!(alive(pid));
        // Reap in the background so the child does not linger as our zombie.
        let reaper = std::thread::spawn(move || child.wait());
        terminate(pid, Duration::from_secs(5));
        assert!(!alive(pid));
        reaper.join().expect("reaper").expect("wait");
    }
}
