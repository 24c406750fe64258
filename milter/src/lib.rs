//! demail-milter: the Postfix milter of demail-gateway (outbound De-Mail, inbound De-Mail and
//! confirmations, poststelle QES checks).
//!
//! Traffic on the provider service (`{daemon_name}` = `[inbound] provider_service`) is
//! inbound: its `X-de-mail-integrity` is verified (anchors and qualification from `[trust]`
//! and the imported trusted lists), `X-DeMail-Verified` is added, the authoritative subject
//! tag only for a verified qualified signature covering `X-de-mail-authoritative: yes`;
//! confirmations and notifications are matched to the sent De-Mail and recorded raw with
//! their XML, PDF and report (discarded after storing with `deliver_confirmations =
//! "evidence-only"`). Mail from anywhere else has its `X-de-mail-*`, `X-DeMail-*` and
//! `X-QES-*` fields renamed `X-Untrusted-...`; ordinary mail without any is accepted at end
//! of header, its body never streamed.
//!
//! At RCPT it refuses De-Mail recipients the sender may not write to and messages that would
//! mix De-Mail and ordinary recipients. Of mail to a poststelle address the signatures are
//! verified on the exact bytes received, one `X-QES-Validation` field per signature and one
//! subject tag are added, and the report is recorded with the message. At end of a De-Mail it maps the sender to the tenant's account, turns subject tags and
//! `X-DeMail-Options` into TR-01201 option fields, sets `X-de-mail-private-id`, records exactly
//! the bytes that will leave in the evidence store (fsynced) and only then accepts. Every
//! internal error answers tempfail, so Postfix keeps the mail.
//!
//! The library is published so that tests start the milter in-process: [`bind`] then [`run`].

mod callbacks;
mod daemon;
mod deemed;
mod error;
/// Entry points for the fuzz targets in `fuzz/` (not an API).
#[doc(hidden)]
pub mod fuzzing;
mod header;
mod inbound;
mod listener;
mod message;
mod metrics;
mod outbound;
mod poststelle;
mod raw;
mod record;
mod session;
mod text;
mod trust;
mod verdict;
mod vocabulary;

use std::future::Future;
use std::io;
use std::sync::Arc;

use demail_policy::Config;
use tokio::sync::watch;

use crate::record::Evidence;

pub use callbacks::{NOREPLY_OPTS, REQUIRED_ACTIONS, REQUIRED_OPTS, request};
pub use daemon::daemon;
pub use error::Error;
pub use listener::{Listener, UnixSocket, bind};
pub use metrics::Metrics;

/// What every connection shares.
pub(crate) struct Shared {
    /// The current configuration; a reload sends a new one.
    pub config: watch::Receiver<Arc<Config>>,
    pub evidence: Arc<Evidence>,
    /// The trust snapshot of the current configuration (poststelle verifier, the provider).
    pub trust: Arc<crate::trust::Snapshots>,
    /// Slots for verifying messages beyond [`SPOOL_IN_MEMORY`]: one per core, since the work
    /// is CPU-bound anyway and parsing costs about the message size on the heap.
    pub verify_slots: Arc<tokio::sync::Semaphore>,
    pub metrics: Arc<Metrics>,
}

/// Serves MTA connections on `listener` until `shutdown` completes; sessions in progress finish
/// the command they are processing. Errors only when the listener fails.
/// Concurrent MTA connections served; each is a small task (a few KiB when idle).
pub const MAX_CONNECTIONS: usize = 1000;

pub async fn run(
    listener: Listener,
    config: Arc<Config>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (_keep, config) = watch::channel(config);
    run_reloadable(listener, config, shutdown).await
}

/// [`run`], taking the configuration from a watch channel: a new value applies to every
/// message that starts after it (its MAIL command). The listening socket and the evidence
/// store paths stay those of the configuration current at start.
pub async fn run_reloadable(
    listener: Listener,
    config: watch::Receiver<Arc<Config>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve(listener, config, Arc::default(), shutdown).await
}

/// [`run_reloadable`], counting into `metrics`.
pub async fn serve(
    listener: Listener,
    config: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let evidence = Arc::new(record::Evidence::new(
        &config.borrow().evidence,
        Arc::clone(&metrics),
    ));
    let shared = Arc::new(Shared {
        config,
        evidence,
        metrics,
        trust: Arc::default(),
        verify_slots: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(1, usize::from),
        )),
    });
    let callbacks = callbacks::make(shared);
    let milter_config = indymilter::Config {
        actions: REQUIRED_ACTIONS,
        // One connection per smtpd process: Postfix allows 100 per service by default
        // (default_process_limit), and the milter serves several services. indymilter's own
        // default of 100 made the 101st smtpd tempfail its mail.
        max_connections: MAX_CONNECTIONS,
        ..Default::default()
    };
    indymilter::run(listener, callbacks, milter_config, shutdown).await
}
