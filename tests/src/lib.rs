//! End-to-end test harness: real Postfix and real Dovecot, each in its own temporary
//! directory on free loopback ports, started without systemd and stopped on `Drop`.
//!
//! Every instance has its own configuration, queue, data and mail directories, so tests can
//! run in parallel (cargo's test threads). When a test panics, `Drop` prints the daemon's log
//! to stderr, which is usually all one needs to see why.
//!
//! The helpers panic with a message saying what failed: they are for tests only.
//!
//! ```no_run
//! use std::time::Duration;
//! use demail_e2e::{Dovecot, Postfix, PostfixOptions, swaks, wait_until};
//!
//! let dc = Dovecot::start(&[("alice@example.test", "alicepw")]);
//! let pf = Postfix::start(PostfixOptions {
//!     main_cf: vec![("smtpd_milters".into(), "inet:127.0.0.1:8891".into())],
//!     ..PostfixOptions::for_dovecot(&dc)
//! });
//! let server = format!("127.0.0.1:{}", pf.smtp_port);
//! let out = swaks(&["--server", &server, "--to", "alice@example.test"]);
//! assert!(out.status.success());
//! let msgs = wait_until(Duration::from_secs(30), "delivery to alice", || {
//!     let m = dc.messages("alice@example.test");
//!     (!m.is_empty()).then_some(m)
//! });
//! ```
//!
//! Tests that start Postfix must run as root (CI does). Apply the output of
//! `demailctl postfix-config` with [`demailctl_postfix_options`]; or start a whole gateway
//! (demail.toml, test PKI, milter process, provider simulator, Postfix, Dovecot) with
//! [`City`]. The binaries (`demail-milter`, `demailctl`) must be built first:
//! `cargo build --workspace --bins`.

pub mod city;
mod clients;
mod demailctl;
mod dovecot;
mod files;
pub mod imap_client;
pub mod imap_proxy;
pub mod imap_replay;
pub mod load;
pub mod machine;
pub mod message;
mod milter;
mod milter_tap;
mod net;
mod postfix;
pub mod postgres;
mod process;
pub mod procfs;
pub mod proxy_city;
pub mod result_lines;
mod smtp;
pub mod tamper;
mod tools;

pub use city::{City, CityOptions};
pub use clients::{imaplib_fetch_all, mbsync_fetch_all};
pub use demailctl::{demailctl_postfix_options, parse_main_cf};
pub use dovecot::Dovecot;
pub use imap_client::ImapClient;
pub use imap_proxy::{ProxyPorts, ProxyProcess, proxy_section};
pub use milter::{MilterAddr, MilterProcess};
pub use milter_tap::MilterTap;
pub use net::{free_port, wait_for_port, wait_until};
pub use postfix::{Postfix, PostfixOptions};
pub use postgres::PgServer;
pub use smtp::{SmtpClient, SmtpReply, dot_stuff};
pub use tools::{cargo_bin, swaks};
