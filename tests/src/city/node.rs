//! A second gateway node of a city: its own Postfix, milter and (when the city has one) IMAP
//! proxy, with the city's configuration except for the ports and sockets, so it shares the
//! city's PKI, provider, trusted lists, Dovecot and evidence store. Meant for a city whose
//! store is PostgreSQL ([`super::CityOptions::evidence_postgres`]): two SQLite files would be
//! two stores.

use std::path::{Path, PathBuf};

use super::City;
use crate::files::{instance_dir, set_mode, write};
use crate::imap_proxy::{ProxyPorts, ProxyProcess};
use crate::milter::{MilterAddr, MilterProcess};
use crate::net::free_port;
use crate::{Postfix, demailctl_postfix_options, process};

/// A running node; dropping it stops Postfix first, then the milter and the proxy.
pub struct Node {
    postfix: Postfix,
    milter: Option<MilterProcess>,
    proxy: Option<ProxyProcess>,
    milter_addr: MilterAddr,
    milter_log_level: String,
    inbound_port: u16,
    config: PathBuf,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl City {
    /// Starts another node of this city (see the module documentation).
    pub fn start_node(&self) -> Node {
        let tmp = instance_dir("e2e-node-");
        let dir = tmp.path().to_path_buf();
        set_mode(&dir, 0o755);
        let text = std::fs::read_to_string(&self.config)
            .unwrap_or_else(|e| panic!("Node: {}: {e}", self.config.display()));
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .unwrap_or_else(|e| panic!("Node: {}: {e}", self.config.display()));
        let inbound_port = free_port();
        let milter_addr = MilterAddr::Unix(dir.join("milter.sock"));
        doc["inbound"]["listen"] = toml_edit::value(format!("127.0.0.1:{inbound_port}"));
        doc["milter"]["listen"] = toml_edit::value(milter_addr.listen());
        let proxy_ports = self.proxy.as_ref().map(|p| {
            let ports = ProxyPorts::new(p.ports.backend);
            let section = &mut doc["imap_proxy"];
            section["listen_imaps"] = toml_edit::value(format!("127.0.0.1:{}", ports.imaps));
            section["listen_imap"] = toml_edit::value(format!("127.0.0.1:{}", ports.imap));
            section["state"] =
                toml_edit::value(dir.join("proxy-state.sqlite").display().to_string());
            ports
        });
        let config = dir.join("demail.toml");
        write(&config, doc.to_string());
        if let Err(e) = demail_policy::Config::load(&config) {
            panic!("Node: demail.toml rejected:\n{e}");
        }
        let milter = MilterProcess::start(
            &config,
            &milter_addr,
            &dir.join("milter.log"),
            &self.milter_log_level,
        );
        let mut pf = demailctl_postfix_options(&config, &dir.join("postfix-demail"));
        // The first node's settings (size limit, LMTP to the shared Dovecot, the files its
        // main.cf names) apply here too; its extra master.cf services would take its ports.
        pf.main_cf.extend(self.node_main_cf.iter().cloned());
        pf.extra_files = self.node_extra_files.clone();
        pf.lmtp_port = self.node_lmtp_port;
        let postfix = Postfix::start(pf);
        let proxy = proxy_ports
            .as_ref()
            .map(|ports| ProxyProcess::start(&config, ports, &dir.join("imap-proxy.log")));
        Node {
            postfix,
            milter: Some(milter),
            proxy,
            milter_addr,
            milter_log_level: self.milter_log_level.clone(),
            inbound_port,
            config,
            dir,
            _tmp: tmp,
        }
    }

    /// Restarts the provider simulator so that what the provider sends (confirmations,
    /// inbound De-Mail) goes to `inbound_port`, e.g. a second node's `demail-in`.
    pub fn send_provider_mail_to(&mut self, inbound_port: u16) {
        let send = self
            .send_config
            .as_mut()
            .expect("City: the provider sends nothing (provider_sends)");
        send.deliver_to = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, inbound_port));
        self.stop_simulator();
        self.start_simulator();
    }
}

impl Node {
    pub fn smtp_port(&self) -> u16 {
        self.postfix.smtp_port
    }

    pub fn inbound_port(&self) -> u16 {
        self.inbound_port
    }

    pub fn config(&self) -> &Path {
        &self.config
    }

    pub fn proxy(&self) -> Option<&ProxyProcess> {
        self.proxy.as_ref()
    }

    /// SIGKILL, as a crash; nothing happens if it is not running.
    pub fn kill_milter(&mut self) {
        if let Some(m) = self.milter.take() {
            m.kill();
        }
    }

    pub fn start_milter(&mut self) {
        assert!(self.milter.is_none(), "Node: the milter runs already");
        self.milter = Some(MilterProcess::start(
            &self.config,
            &self.milter_addr,
            &self.dir.join("milter.log"),
            &self.milter_log_level,
        ));
    }

    pub fn milter_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("milter.log")).unwrap_or_default()
    }

    /// `demailctl --config <this node's demail.toml> ARGS`.
    pub fn demailctl(&self, args: &[&str]) -> std::process::Output {
        let bin = crate::tools::cargo_bin("demailctl");
        let config = self.config.to_string_lossy();
        let mut all = vec!["--config", config.as_ref()];
        all.extend_from_slice(args);
        process::run(&bin.to_string_lossy(), &all)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- second node's demail-milter log ---\n{}--- end ---",
                self.milter_log()
            );
        }
    }
}
