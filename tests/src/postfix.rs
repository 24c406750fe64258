//! A real Postfix in a temporary directory: its own config, queue and data directories,
//! an smtpd on a free loopback port, internal domains delivered to Dovecot over LMTP.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::Dovecot;
use crate::files::{instance_dir, mkdir, write};
use crate::net::{free_port, wait_for_greeting};
use crate::process::{self, read_pid, run, run_in_pty, terminate};

mod config;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a test adds to or changes in the base configuration.
///
/// In every value, master.cf line and text file, `{dir}` is replaced by the config directory.
#[derive(Clone, Debug, Default)]
pub struct PostfixOptions {
    /// main.cf settings; a key of the base configuration is overridden in place.
    pub main_cf: Vec<(String, String)>,
    /// master.cf lines (entries with their indented `-o` continuation lines). An entry whose
    /// service name and type match a base entry replaces it.
    pub master_cf: Vec<String>,
    /// Files written into the config directory, by relative name. Names ending in `.map` are
    /// compiled with `postmap hash:` (refer to them as `hash:{dir}/NAME`).
    pub extra_files: Vec<(String, Vec<u8>)>,
    /// Dovecot LMTP port that `relay_domains` (base: `example.test`) are delivered to; without
    /// one, smtpd refuses mail to them (550 5.3.0, saying why).
    pub lmtp_port: Option<u16>,
}

impl PostfixOptions {
    /// Options that deliver `example.test` (and any added relay domain) to `dovecot`.
    pub fn for_dovecot(dovecot: &Dovecot) -> PostfixOptions {
        PostfixOptions {
            lmtp_port: Some(dovecot.lmtp_port),
            ..PostfixOptions::default()
        }
    }
}

/// A running Postfix; stopped (and its directory removed) on drop.
pub struct Postfix {
    /// The smtpd on 127.0.0.1.
    pub smtp_port: u16,
    /// main.cf, master.cf and the extra files.
    pub config_dir: PathBuf,
    root: PathBuf,
    pid: Option<i32>,
    _tmp: tempfile::TempDir,
}

impl Postfix {
    /// Writes the configuration, runs `postfix check` and `postfix start`, and waits for the
    /// smtpd's 220 greeting.
    pub fn start(opts: PostfixOptions) -> Postfix {
        let tmp = instance_dir("e2e-postfix-");
        let root = tmp.path().to_path_buf();
        let config_dir = root.join("conf");
        mkdir(&config_dir);
        // postfix-script creates the queue subdirectories, but only inside an existing one.
        mkdir(&root.join("queue"));
        let data = root.join("data");
        mkdir(&data);
        let out = run("chown", &["postfix", &data.to_string_lossy()]);
        if !out.status.success() {
            panic!(
                "Postfix: chown postfix {}: {}",
                data.display(),
                process::text(&out)
            );
        }

        let smtp_port = free_port();
        let dir = config_dir.to_string_lossy().into_owned();
        let subst = |s: &str| s.replace("{dir}", &dir);
        let main_cf = config::main_cf(&root, &opts, &subst);
        write(&config_dir.join("main.cf"), main_cf);
        let master_cf = config::master_cf(smtp_port, &opts.master_cf, &subst);
        write(&config_dir.join("master.cf"), master_cf);

        let mut pf = Postfix {
            smtp_port,
            config_dir,
            root,
            pid: None,
            _tmp: tmp,
        };
        for (name, content) in &opts.extra_files {
            pf.write_extra_file(name, content, &subst);
        }
        if let Err(e) = pf.check() {
            panic!("Postfix: `postfix check` failed:\n{e}");
        }
        let start_log = pf.root.join("start.out");
        let (ok, out) = process::run_starter_in_pty(&["postfix", "-c", &dir, "start"], &start_log);
        if !ok {
            panic!("Postfix: `postfix start` failed:\n{out}");
        }
        if let Err(e) = wait_for_greeting(smtp_port, "220 ", START_TIMEOUT) {
            panic!("Postfix smtpd: {e}");
        }
        pf.pid = read_pid(&pf.root.join("queue/pid/master.pid"));
        pf
    }

    /// `postfix check`: Ok with its output (warnings, if any), Err with output if it fails.
    pub fn check(&self) -> Result<String, String> {
        let out = run_in_pty(&["postfix", "-c", &self.dir(), "check"]);
        let text = process::text(&out);
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// The pid of Postfix's master process: every other Postfix process is its child.
    pub fn master_pid(&self) -> Option<i32> {
        self.pid
            .or_else(|| read_pid(&self.root.join("queue/pid/master.pid")))
    }

    /// Everything Postfix logged so far (its `maillog_file`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("maillog")).unwrap_or_default()
    }

    /// `postqueue -p`: the queue listing ("Mail queue is empty" when empty).
    pub fn queue(&self) -> String {
        let out = run("postqueue", &["-c", &self.dir(), "-p"]);
        if !out.status.success() {
            panic!("postqueue -p failed: {}", process::text(&out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `postqueue -f`: retry all deferred mail now (and forget dead destinations).
    pub fn flush(&self) {
        let out = run("postqueue", &["-c", &self.dir(), "-f"]);
        if !out.status.success() {
            panic!("postqueue -f failed: {}", process::text(&out));
        }
    }

    /// How many messages wait in the named queue (`incoming`, `active`, `deferred`, `hold`,
    /// `maildrop`), from `postqueue -j`.
    pub fn queued(&self, queue_name: &str) -> usize {
        let out = run("postqueue", &["-c", &self.dir(), "-j"]);
        if !out.status.success() {
            panic!("postqueue -j failed: {}", process::text(&out));
        }
        let wanted = format!("\"queue_name\": \"{queue_name}\"");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&wanted))
            .count()
    }

    /// `postsuper -d ALL QUEUE`: deletes every message in one queue (e.g. `hold`).
    pub fn delete_all(&self, queue_name: &str) {
        let out = run("postsuper", &["-c", &self.dir(), "-d", "ALL", queue_name]);
        if !out.status.success() {
            panic!(
                "postsuper -d ALL {queue_name} failed: {}",
                process::text(&out)
            );
        }
    }

    /// `postconf -h KEY`: the effective value of a main.cf parameter.
    pub fn postconf(&self, key: &str) -> String {
        let out = run("postconf", &["-c", &self.dir(), "-h", key]);
        if !out.status.success() {
            panic!("postconf -h {key} failed: {}", process::text(&out));
        }
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Changes the running configuration the way an admin does by hand: `postconf -e` for
    /// main.cf, `postconf -M` for whole master.cf entries (`("name/type", "entry line")`),
    /// `postconf -P` for their parameters (`"name/type/param=value"`), then `postfix reload`.
    /// `{dir}` is replaced by the config directory.
    pub fn edit(&self, main_cf: &[(&str, &str)], master_entries: &[(&str, &str)], params: &[&str]) {
        let dir = self.dir();
        let subst = |s: &str| s.replace("{dir}", &dir);
        let postconf = |args: Vec<String>| {
            let mut all = vec!["-c".to_string(), dir.clone()];
            all.extend(args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let out = run("postconf", &refs);
            if !out.status.success() {
                panic!("postconf {all:?} failed: {}", process::text(&out));
            }
        };
        for (k, v) in main_cf {
            postconf(vec!["-e".into(), format!("{k}={}", subst(v))]);
        }
        for (name, entry) in master_entries {
            postconf(vec!["-M".into(), format!("{name}={}", subst(entry))]);
        }
        for p in params {
            postconf(vec!["-P".into(), subst(p)]);
        }
        let out = run_in_pty(&["postfix", "-c", &dir, "reload"]);
        if !out.status.success() {
            panic!("postfix reload failed: {}", process::text(&out));
        }
        // Running smtpd processes finish their connection first; new ones read the new files.
        std::thread::sleep(Duration::from_secs(2));
    }

    fn dir(&self) -> String {
        self.config_dir.to_string_lossy().into_owned()
    }

    fn write_extra_file(&self, name: &str, content: &[u8], subst: &dyn Fn(&str) -> String) {
        let rel = Path::new(name);
        if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            panic!("Postfix: extra file name {name:?} must be a relative path without `..`");
        }
        let path = self.config_dir.join(rel);
        if let Some(parent) = path.parent() {
            mkdir(parent);
        }
        match std::str::from_utf8(content) {
            Ok(text) => write(&path, subst(text)),
            Err(_) => write(&path, content),
        }
        if name.ends_with(".map") {
            let map = format!("hash:{}", path.display());
            let out = run("postmap", &["-c", &self.dir(), &map]);
            if !out.status.success() {
                panic!("Postfix: postmap {map} failed: {}", process::text(&out));
            }
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- Postfix maillog ({}) ---\n{}--- queue ---\n{}--- end of Postfix maillog ---",
                self.root.display(),
                self.log(),
                String::from_utf8_lossy(&run("postqueue", &["-c", &self.dir(), "-p"]).stdout)
            );
        }
        if let Some(pid) = self.master_pid() {
            terminate(pid, Duration::from_secs(10));
        }
    }
}
