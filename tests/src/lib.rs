//! End-to-end test harness: real Postfix and real Dovecot, each in its own temporary
//! directory on free loopback ports, started without systemd and stopped on `Drop`.
//!
//! Every instance has its own configuration, queue, data and mail directories, so tests can
//! run in parallel (cargo's test threads). When a test panics, `Drop` prints the daemon's log
//! to stderr, which is usually all one needs to see why.
//!
//! The helpers panic with a message saying what failed: they are for tests only.

mod clients;
mod demailctl;
mod dovecot;
mod files;
mod net;
mod postfix;
mod process;
mod tools;

pub use clients::{imaplib_fetch_all, mbsync_fetch_all};
pub use demailctl::{demailctl_postfix_options, parse_main_cf};
pub use dovecot::Dovecot;
pub use net::{free_port, wait_for_port, wait_until};
pub use postfix::{Postfix, PostfixOptions};
pub use tools::{cargo_bin, swaks};
