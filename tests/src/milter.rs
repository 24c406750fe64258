//! The `demail-milter` binary as a child process: started, stopped, killed and measured the way
//! an admin's service manager would handle it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::net::wait_for_port;
use crate::procfs;
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

/// A running milter process (`demail-milter --config PATH`, or a peer for the benchmark); its
/// stdout and stderr are appended to a log file.
pub struct MilterProcess {
    child: Child,
    log: PathBuf,
}

impl MilterProcess {
    /// Spawns the milter (binary of this build profile) with `RUST_LOG=log_level` and waits
    /// until it accepts connections on `addr` (which its configuration names). Panics with its
    /// log if it exits or does not listen in time.
    pub fn start(config: &Path, addr: &MilterAddr, log: &Path, log_level: &str) -> MilterProcess {
        let mut command = Command::new(cargo_bin("demail-milter"));
        command
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", log_level);
        MilterProcess::spawn("demail-milter", command, addr, log)
    }

    /// Spawns any milter (`name` for messages) with its output appended to `log`, and waits
    /// until it accepts connections on `addr`, as [`MilterProcess::start`] does.
    pub fn spawn(name: &str, mut command: Command, addr: &MilterAddr, log: &Path) -> MilterProcess {
        let file = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("{name} log {}: {e}", log.display()))
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(file())
            .stderr(file())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut milter = MilterProcess {
            child,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = milter.child.try_wait() {
                panic!("{name} exited at start ({status}):\n{}", milter.log_text());
            }
            if addr.accepts() {
                return milter;
            }
            if Instant::now() >= deadline {
                let log = milter.log_text();
                milter.kill();
                panic!(
                    "{name} does not listen on {} after {START_TIMEOUT:?}:\n{log}",
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
        procfs::status_kib(self.pid(), "VmHWM:")
    }

    /// Current resident set size (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        procfs::status_kib(self.pid(), "VmRSS:")
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Option<Duration> {
        procfs::cpu_time(self.pid())
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
