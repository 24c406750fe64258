//! The `demail-imap-proxy` binary as a child process in front of a test Dovecot, and the
//! `[imap_proxy]` section that puts it there.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::{free_port, wait_for_port};
use crate::tools::cargo_bin;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a test proxy listens and what it fronts.
#[derive(Clone, Debug)]
pub struct ProxyPorts {
    /// IMAPS (implicit TLS).
    pub imaps: u16,
    /// IMAP with STARTTLS; on loopback plaintext login is allowed there.
    pub imap: u16,
    pub backend: u16,
}

impl ProxyPorts {
    pub fn new(backend: u16) -> ProxyPorts {
        ProxyPorts {
            imaps: free_port(),
            imap: free_port(),
            backend,
        }
    }
}

/// The `[imap_proxy]` section for `ports`, with the TLS certificate and the state file.
pub fn proxy_section(
    ports: &ProxyPorts,
    cert: &Path,
    key: &Path,
    state: &Path,
    extra: &str,
) -> String {
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    format!(
        r#"
[imap_proxy]
listen_imaps = "127.0.0.1:{imaps}"
listen_imap = "127.0.0.1:{imap}"
certificate = {cert}
key = {key}
backend = "127.0.0.1:{backend}"
backend_tls = "none"
state = {state}
{extra}
"#,
        imaps = ports.imaps,
        imap = ports.imap,
        backend = ports.backend,
        cert = q(cert),
        key = q(key),
        state = q(state),
    )
}

/// A running `demail-imap-proxy --config PATH`, its output appended to a log file.
pub struct ProxyProcess {
    child: Child,
    log: PathBuf,
    pub ports: ProxyPorts,
}

impl ProxyProcess {
    /// Spawns the proxy and waits until both ports accept; panics with its log otherwise.
    pub fn start(config: &Path, ports: &ProxyPorts, log: &Path) -> ProxyProcess {
        let bin = cargo_bin("demail-imap-proxy");
        let file = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("proxy log {}: {e}", log.display()))
        };
        let child = Command::new(&bin)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file())
            .stderr(file())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut p = ProxyProcess {
            child,
            log: log.to_path_buf(),
            ports: ports.clone(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!(
                    "demail-imap-proxy exited at start ({status}):\n{}",
                    p.log_text()
                );
            }
            let up = wait_for_port(ports.imap, Duration::from_millis(200)).is_ok()
                && wait_for_port(ports.imaps, Duration::from_millis(200)).is_ok();
            if up {
                return p;
            }
            if Instant::now() >= deadline {
                panic!("demail-imap-proxy does not listen:\n{}", p.log_text());
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Current resident set size (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Sends SIGHUP (reload).
    pub fn reload(&self) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(self.pid() as i32, libc::SIGHUP);
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- demail-imap-proxy log ---\n{}--- end ---",
                self.log_text()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
