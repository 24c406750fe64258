//! The `demail-milter` binary as a child process: started, stopped, killed and measured the way
//! an admin's service manager would handle it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::net::wait_for_port;
use crate::tools::cargo_bin;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where a milter listens, as its demail.toml says.
#[derive(Clone, Debug)]
pub enum MilterAddr {
    /// `inet:127.0.0.1:PORT`
    Tcp(u16),
    /// `unix:PATH` (the milter makes it mode 0660, group postfix)
    Unix(PathBuf),
}

impl MilterAddr {
    /// The `[milter] listen` value (also Postfix's `smtpd_milters` form).
    pub fn listen(&self) -> String {
        match self {
            MilterAddr::Tcp(port) => format!("inet:127.0.0.1:{port}"),
            MilterAddr::Unix(path) => format!("unix:{}", path.display()),
        }
    }

    fn accepts(&self) -> bool {
        match self {
            MilterAddr::Tcp(port) => wait_for_port(*port, Duration::from_millis(200)).is_ok(),
            MilterAddr::Unix(path) => {
                let ok = std::os::unix::net::UnixStream::connect(path).is_ok();
                if !ok {
                    sleep(Duration::from_millis(50));
                }
                ok
            }
        }
    }
}

/// A running `demail-milter --config PATH`; its stdout and stderr are appended to a log file.
pub struct MilterProcess {
    child: Child,
    log: PathBuf,
}

impl MilterProcess {
    /// Spawns the milter (binary of this build profile) with `RUST_LOG=log_level` and waits
    /// until it accepts connections on `addr` (which its configuration names). Panics with its
    /// log if it exits or does not listen in time.
    pub fn start(config: &Path, addr: &MilterAddr, log: &Path, log_level: &str) -> MilterProcess {
        let bin = cargo_bin("demail-milter");
        let file = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("milter log {}: {e}", log.display()))
        };
        let child = Command::new(&bin)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(file())
            .stderr(file())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut milter = MilterProcess {
            child,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = milter.child.try_wait() {
                panic!(
                    "demail-milter exited at start ({status}):\n{}",
                    milter.log_text()
                );
            }
            if addr.accepts() {
                return milter;
            }
            if Instant::now() >= deadline {
                let log = milter.log_text();
                milter.kill();
                panic!(
                    "demail-milter does not listen on {} after {START_TIMEOUT:?}:\n{log}",
                    addr.listen()
                );
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the milter logged so far (all its runs, since the file is appended to).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident set size so far (`VmHWM` in /proc/PID/status), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// Current resident set size (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // SAFETY: sysconf has no memory-safety preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        cpu_from_stat(&stat, u64::try_from(ticks).ok()?)
    }

    /// SIGKILL, as a crash would end it: nothing is cleaned up. Waits until it is gone.
    pub fn kill(mut self) {
        // An error means it has exited already, which is what we want.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL after a grace period; returns whether it stopped by itself.
    pub fn stop(mut self) -> bool {
        self.terminate()
    }

    fn terminate(&mut self) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            return true;
        }
        let Ok(pid) = i32::try_from(self.child.id()) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return false;
        };
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child, not
        // yet reaped, so it cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for MilterProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A `Name:  1234 kB` line of /proc/PID/status, in KiB.
fn proc_status_kib(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, name)
}

fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let mut words = line[name.len()..].split_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

/// utime + stime (fields 14 and 15 of /proc/PID/stat, after the parenthesised name).
fn cpu_from_stat(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    if ticks_per_second == 0 {
        return None;
    }
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(
        Duration::from_secs(ticks / ticks_per_second)
            + Duration::from_secs_f64((ticks % ticks_per_second) as f64 / ticks_per_second as f64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_utime_plus_stime() {
        // pid (comm with ) space) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime ...
        let stat = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0";
        assert_eq!(cpu_from_stat(stat, 100), Some(Duration::from_secs(3)));
        assert_eq!(cpu_from_stat(stat, 0), None);
        assert_eq!(cpu_from_stat("garbage", 100), None);
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\tx\nVmHWM:\t   51234 kB\nVmRSS:\t  100 kB\nThreads: 3\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(51234));
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(100));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
        assert_eq!(parse_status_kib(status, "Threads:"), None, "no unit");
    }

    #[test]
    fn our_own_peak_rss_is_readable() {
        // Both are positive; their order is not asserted, since the kernel updates the RSS
        // counters in batches and the high-water mark can lag behind the current value.
        let me = std::process::id();
        let hwm = proc_status_kib(me, "VmHWM:").expect("VmHWM of this process");
        let rss = proc_status_kib(me, "VmRSS:").expect("VmRSS of this process");
        assert!(hwm > 0 && rss > 0, "hwm {hwm} rss {rss}");
    }
}
