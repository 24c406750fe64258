//! The signal loop: SIGHUP as often as it comes, until SIGTERM or SIGINT.

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Takes over the three signals (inside the runtime, before the daemon serves, so that an
    /// early signal is not lost to the default action).
    pub fn new() -> io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Calls `reload` for every SIGHUP; completes at SIGTERM or SIGINT.
    pub async fn until_stopped(mut self, mut reload: impl FnMut()) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return info!("SIGTERM: shutting down"),
                _ = self.int.recv() => return info!("SIGINT: shutting down"),
                _ = self.hup.recv() => reload(),
            }
        }
    }
}
