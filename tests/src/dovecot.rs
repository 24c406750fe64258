//! A real Dovecot (IMAP + LMTP) in a temporary directory, run as root with mail owned by
//! `nobody`, configured from scratch (no /etc/dovecot includes).

use std::fmt::Write as _;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::files::{instance_dir, mkdir, write};
use crate::net::{free_port, wait_for_greeting};
use crate::process::{self, read_pid, terminate};

/// uid/gid the mail files belong to; Dovecot refuses root and uids below first_valid_uid.
const MAIL_ID: u32 = 65534;
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Dovecot; stopped (and its directory removed) on drop.
pub struct Dovecot {
    pub imap_port: u16,
    pub lmtp_port: u16,
    /// Implicit TLS (IMAPS) listener, when started with [`Dovecot::start_with_tls`].
    pub imaps_port: Option<u16>,
    /// Root of this instance: dovecot.conf, users, dovecot.log, mail/, run/, state/.
    pub dir: PathBuf,
    pid: Option<i32>,
    _tmp: tempfile::TempDir,
}

impl Dovecot {
    /// Starts Dovecot with these `(login, password)` users and waits until IMAP and LMTP
    /// answer.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        Self::start_with(users, None, "")
    }

    /// As [`Dovecot::start`], plus an implicit TLS listener ([`Dovecot::imaps_port`]) with this
    /// PEM certificate and key, as a city's clients reach Dovecot when there is no proxy.
    pub fn start_with_tls(users: &[(&str, &str)], cert: &Path, key: &Path) -> Dovecot {
        Self::start_with(users, Some((cert, key)), "")
    }

    /// Either of the above (`tls`: certificate and key), with `extra_conf` appended to
    /// dovecot.conf (e.g. higher process limits).
    pub fn start_with(
        users: &[(&str, &str)],
        tls: Option<(&Path, &Path)>,
        extra_conf: &str,
    ) -> Dovecot {
        // The login, auth and mail processes run as other users and must reach their files.
        let tmp = instance_dir("e2e-dovecot-");
        let dir = tmp.path().to_path_buf();
        let mail = dir.join("mail");
        mkdir(&mail);
        chown(&mail, Some(MAIL_ID), Some(MAIL_ID))
            .unwrap_or_else(|e| panic!("Dovecot: chown {}: {e}", mail.display()));

        let mut passwd = String::new();
        for (login, password) in users {
            check_field("login", login);
            check_field("password", password);
            let _ = writeln!(passwd, "{login}:{{PLAIN}}{password}::::::");
        }
        write(&dir.join("users"), &passwd);

        let imap_port = free_port();
        let lmtp_port = free_port();
        let imaps_port = tls.map(|_| free_port());
        let conf = dir.join("dovecot.conf");
        write(
            &conf,
            config(&dir, imap_port, lmtp_port, imaps_port, tls) + extra_conf,
        );

        let mut dc = Dovecot {
            imap_port,
            lmtp_port,
            imaps_port,
            dir,
            pid: None,
            _tmp: tmp,
        };
        let conf_s = conf.to_string_lossy().into_owned();
        let check = process::run("dovecot", &["-c", &conf_s, "-n"]);
        if !check.status.success() {
            panic!("Dovecot: config rejected:\n{}", process::text(&check));
        }
        dc.run();
        dc
    }

    /// Starts the master process of this instance and waits until its listeners answer.
    fn run(&mut self) {
        let conf = self.dir.join("dovecot.conf");
        let conf_s = conf.to_string_lossy().into_owned();
        let (ok, out) =
            process::run_starter("dovecot", &["-c", &conf_s], &self.dir.join("start.out"));
        if !ok {
            panic!("Dovecot: start failed:\n{out}");
        }
        self.pid = read_pid(&self.dir.join("run/master.pid"));
        for (port, what, prefix) in [
            (self.imap_port, "IMAP", "* OK"),
            (self.lmtp_port, "LMTP", "220 "),
        ] {
            if let Err(e) = wait_for_greeting(port, prefix, START_TIMEOUT) {
                panic!("Dovecot {what}: {e}");
            }
        }
        if let Some(port) = self.imaps_port {
            // A TLS listener greets only after the handshake; that it accepts is enough here.
            if let Err(e) = crate::net::wait_for_port(port, START_TIMEOUT) {
                panic!("Dovecot IMAPS: {e}");
            }
        }
        // The pid file may appear only after the listeners are set up.
        if self.pid.is_none() {
            self.pid = read_pid(&self.dir.join("run/master.pid"));
        }
    }

    /// Stops Dovecot (SIGTERM to the master: every session ends) and waits until it is gone.
    pub fn stop(&mut self) {
        let pid = self
            .pid
            .take()
            .or_else(|| read_pid(&self.dir.join("run/master.pid")));
        if let Some(pid) = pid {
            terminate(pid, Duration::from_secs(10));
        }
    }

    /// Starts it again after [`Dovecot::stop`], on the same ports with the same mail.
    pub fn start_again(&mut self) {
        self.run();
    }

    /// The raw message files of `user`'s INBOX (Maildir `new` and `cur`), oldest first.
    pub fn messages(&self, user: &str) -> Vec<Vec<u8>> {
        let maildir = self.dir.join("mail").join(user).join("Maildir");
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
            .flatten()
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        // Maildir names start with the delivery time, so the name orders by arrival.
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        files
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .collect()
    }

    /// Everything Dovecot logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- dovecot.log ({}) ---\n{}--- end of dovecot.log ---",
                self.dir.display(),
                self.log()
            );
        }
        let pid = self
            .pid
            .or_else(|| read_pid(&self.dir.join("run/master.pid")));
        if let Some(pid) = pid {
            terminate(pid, Duration::from_secs(10));
        }
    }
}

fn config(
    dir: &Path,
    imap_port: u16,
    lmtp_port: u16,
    imaps_port: Option<u16>,
    tls: Option<(&Path, &Path)>,
) -> String {
    let d = dir.display();
    let ssl = match tls {
        None => "ssl = no".to_string(),
        Some((cert, key)) => format!(
            "ssl = yes\nssl_cert = <{}\nssl_key = <{}",
            cert.display(),
            key.display()
        ),
    };
    // Port 0 turns the listener off.
    let imaps = match imaps_port {
        None => "port = 0".to_string(),
        Some(port) => format!("address = 127.0.0.1\n    port = {port}\n    ssl = yes"),
    };
    // instance_name differs per instance so that `ps` and doveadm can tell them apart.
    format!(
        r#"# e2e test instance (generated)
base_dir = {d}/run
state_dir = {d}/state
instance_name = e2e-dovecot-{imap_port}
protocols = imap lmtp
listen = 127.0.0.1
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
{ssl}
disable_plaintext_auth = no
# The IMAP proxy on loopback forwards the client's address in its ID (x-originating-ip).
login_trusted_networks = 127.0.0.0/8
# Logs every ID a client (here: the proxy) sends, so tests can see what reached Dovecot.
imap_id_log = *
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u/Maildir
mail_uid = {MAIL_ID}
mail_gid = {MAIL_ID}
first_valid_uid = 1000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
  default_fields = uid={MAIL_ID} gid={MAIL_ID} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    {imaps}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = subscribe
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@example.test
}}
"#
    )
}

/// A passwd-file field must not contain the separator or a line break.
fn check_field(what: &str, value: &str) {
    if value.is_empty() || value.contains([':', '\n', '\r']) {
        panic!("Dovecot: {what} {value:?} must be non-empty without ':' or line breaks");
    }
}
