//! The two milters demail-milter is compared with: the null milter (bench-null-milter, the
//! protocol's floor) and OpenDKIM verifying (the peer). Each serves a unix socket, as
//! demail-milter does in the test city.

use std::path::{Path, PathBuf};
use std::process::Command;

use demail_e2e::{MilterAddr, MilterProcess, cargo_bin};

pub struct Peers {
    pub null: MilterProcess,
    pub null_addr: MilterAddr,
    pub opendkim: MilterProcess,
    pub opendkim_addr: MilterAddr,
    /// Sockets, configuration and logs; removed on drop (after the processes above).
    _dir: tempfile::TempDir,
}

impl Peers {
    pub fn start() -> Peers {
        let dir = tempfile::Builder::new()
            .prefix("bench-milter-peers-")
            .tempdir()
            .unwrap_or_else(|e| panic!("peers: temporary directory: {e}"));
        let path = dir.path();
        // Postfix's smtpd (user postfix) connects to the sockets inside.
        set_mode(path, 0o755);

        let null_addr = MilterAddr::Unix(path.join("null.sock"));
        let mut null = Command::new(cargo_bin("bench-null-milter"));
        null.arg(path.join("null.sock"));
        let null = MilterProcess::spawn(
            "bench-null-milter",
            null,
            &null_addr,
            &path.join("null.log"),
        );

        let opendkim_addr = MilterAddr::Unix(path.join("opendkim.sock"));
        let conf = opendkim_conf(path, &path.join("opendkim.sock"));
        let mut opendkim = Command::new("opendkim");
        opendkim.arg("-x").arg(&conf);
        let opendkim = MilterProcess::spawn(
            "opendkim",
            opendkim,
            &opendkim_addr,
            &path.join("opendkim.log"),
        );
        Peers {
            null,
            null_addr,
            opendkim,
            opendkim_addr,
            _dir: dir,
        }
    }
}

/// Verify mode only, in the foreground, logging to its log file rather than syslog; the
/// socket world-writable (umask 0) for Postfix. OpenDKIM signs rather than verifies mail from
/// `InternalHosts` (default 127.0.0.1, where smtp-source connects from), so that list names
/// only a documentation address.
fn opendkim_conf(dir: &Path, socket: &Path) -> PathBuf {
    let internal = dir.join("opendkim-internal-hosts");
    write(&internal, "192.0.2.1\n");
    let conf = dir.join("opendkim.conf");
    write(
        &conf,
        &format!(
            "Mode v\nSocket local:{}\nBackground no\nUMask 000\nSyslog no\nInternalHosts {}\n",
            socket.display(),
            internal.display()
        ),
    );
    conf
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("peers: {}: {e}", path.display()));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("peers: chmod {}: {e}", path.display()));
}
