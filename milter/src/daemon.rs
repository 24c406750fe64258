//! The milter as a daemon: socket, metrics endpoint, signals (SIGHUP reloads the policy for
//! the next message; connections stay).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use demail_policy::Config;
use tokio::sync::watch;
use tracing::{error, info};

use crate::Metrics;

pub async fn daemon(path: PathBuf, config: Config) -> ExitCode {
    match serve(path, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("demail-milter: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: PathBuf, config: Config) -> std::io::Result<()> {
    let signals = demail_daemon::Signals::new()?;
    let listener = crate::bind(&config.milter.listen).await?;
    let metrics = Arc::new(Metrics::default());
    if let Some(m) = &config.milter.metrics {
        let l = demail_daemon::bind_metrics(&m.listen, "[milter.metrics] listen").await?;
        let scrape = crate::deemed::Scrape::new(metrics.clone(), &config);
        tokio::spawn(demail_daemon::serve_metrics(l, Arc::new(scrape)));
    }
    info!(
        listen = ?config.milter.listen,
        config = %config.source.display(),
        "demail-milter {} ready",
        env!("CARGO_PKG_VERSION")
    );
    let (tx, rx) = watch::channel(Arc::new(config));
    let shutdown = signals.until_stopped(move || {
        let running = Arc::clone(&tx.borrow());
        demail_daemon::reload(&path, &running, |new| {
            tx.send_replace(Arc::new(new));
            Ok(())
        });
    });
    crate::serve(listener, rx, metrics, shutdown).await?;
    info!("stopped");
    Ok(())
}
