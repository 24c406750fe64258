//! The proxy as a daemon: listeners, metrics endpoint, signals (SIGHUP reloads for new
//! sessions and the folders' visibility at once; sessions stay).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use demail_policy::Config;
use tokio::sync::watch;
use tracing::error;

use crate::{Shared, bind, run};

pub async fn daemon(path: PathBuf, config: Config) -> ExitCode {
    let config = Arc::new(config);
    let signals = match demail_daemon::Signals::new() {
        Ok(s) => s,
        Err(e) => {
            error!("cannot take over the signals: {e}");
            return ExitCode::from(71);
        }
    };
    let shared = match Shared::new(config.clone()) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(78);
        }
    };
    let settings = config.imap_proxy.as_ref().expect("Shared::new checked it");
    let listeners = match bind(settings).await {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(71);
        }
    };
    if let Some(m) = &settings.metrics {
        match demail_daemon::bind_metrics(&m.listen, "[imap_proxy.metrics] listen").await {
            Ok(l) => {
                tokio::spawn(demail_daemon::serve_metrics(l, shared.metrics()));
            }
            Err(e) => {
                error!("{e}");
                return ExitCode::from(71);
            }
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let reload_shared = shared.clone();
    tokio::spawn(async move {
        signals
            .until_stopped(|| {
                let running = reload_shared.config();
                demail_daemon::reload(&path, &running, |new| {
                    reload_shared
                        .reload(Arc::new(new))
                        .map_err(|e| e.to_string())
                });
            })
            .await;
        let _ = stop_tx.send(true);
    });
    match run(shared, listeners, stop_rx).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(70)
        }
    }
}
