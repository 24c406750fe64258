//! What a reload (SIGHUP) may change. Sockets, the evidence store and the proxy's state file
//! are opened once at start; a new value for them would be a lie about what runs, so the
//! configuration that is applied keeps the running value and the daemon says so.

use crate::config::Config;

/// `new` as it can be applied to a running daemon that started with `running`: every setting
/// that cannot change at run time keeps its running value. Returns the names of the settings
/// whose new value was not taken (`[section] key`), for the log.
pub fn reloadable(running: &Config, mut new: Config) -> (Config, Vec<&'static str>) {
    let mut kept = Vec::new();
    let k = &mut kept;
    keep(
        k,
        "[milter] listen",
        &mut new.milter.listen,
        &running.milter.listen,
    );
    keep(
        k,
        "[milter.metrics] listen",
        &mut new.milter.metrics,
        &running.milter.metrics,
    );
    keep(
        k,
        "[evidence] database",
        &mut new.evidence.database,
        &running.evidence.database,
    );
    keep(
        k,
        "[evidence] blobs",
        &mut new.evidence.blobs,
        &running.evidence.blobs,
    );
    if let (Some(new), Some(old)) = (new.imap_proxy.as_mut(), running.imap_proxy.as_ref()) {
        keep(
            k,
            "[imap_proxy] listen_imaps",
            &mut new.listen_imaps,
            &old.listen_imaps,
        );
        keep(
            k,
            "[imap_proxy] listen_imap",
            &mut new.listen_imap,
            &old.listen_imap,
        );
        keep(k, "[imap_proxy] state", &mut new.state, &old.state);
        keep(
            k,
            "[imap_proxy.metrics] listen",
            &mut new.metrics,
            &old.metrics,
        );
    }
    (new, kept)
}

/// Puts the running value back into `new` and names `key` when it differed.
fn keep<T: PartialEq + Clone>(
    kept: &mut Vec<&'static str>,
    key: &'static str,
    new: &mut T,
    running: &T,
) {
    if new != running {
        *new = running.clone();
        kept.push(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SocketSpec;
    use crate::testutil::{BASE, Fixture};

    const PROXY: &str = "[imap_proxy]\nlisten_imaps = \"127.0.0.1:993\"\ncertificate = \"tls/imap.pem\"\nkey = \"tls/imap.key\"\nstate = \"proxy.sqlite\"\n";

    #[test]
    fn fixed_settings_keep_their_running_value_and_are_named() {
        let f = Fixture::new();
        let running = f
            .parse(&format!(
                "{BASE}\n[milter]\nlisten = \"inet:127.0.0.1:8891\"\n[evidence]\ndatabase = \"a.sqlite\"\nblobs = \"a-blobs\"\n{PROXY}"
            ))
            .unwrap();
        let new = f
            .parse(&format!(
                "{}\n[milter]\nlisten = \"inet:127.0.0.1:9999\"\n[milter.metrics]\nlisten = \"127.0.0.1:9151\"\n[evidence]\ndatabase = \"b.sqlite\"\nblobs = \"a-blobs\"\n{}[imap_proxy.metrics]\nlisten = \"127.0.0.1:9152\"\n",
                BASE.replace("port = 465", "port = 1465"),
                PROXY
                    .replace("127.0.0.1:993", "127.0.0.1:994")
                    .replace("proxy.sqlite", "other.sqlite")
                    + "listen_imap = \"127.0.0.1:143\"\n"
            ))
            .unwrap();
        let (applied, kept) = reloadable(&running, new);
        assert_eq!(
            kept,
            [
                "[milter] listen",
                "[milter.metrics] listen",
                "[evidence] database",
                "[imap_proxy] listen_imaps",
                "[imap_proxy] listen_imap",
                "[imap_proxy] state",
                "[imap_proxy.metrics] listen",
            ]
        );
        assert_eq!(
            applied.milter.listen,
            SocketSpec::Inet {
                host: "127.0.0.1".into(),
                port: 8891
            }
        );
        assert_eq!(applied.milter.metrics, None);
        assert_eq!(applied.evidence.database, running.evidence.database);
        let proxy = applied.imap_proxy.as_ref().unwrap();
        let old = running.imap_proxy.as_ref().unwrap();
        assert_eq!(proxy.listen_imaps, old.listen_imaps);
        assert_eq!(proxy.listen_imap, None);
        assert_eq!(proxy.state, old.state);
        assert_eq!(proxy.metrics, None);
        // What may change does.
        assert_eq!(applied.gateway.port, 1465);
    }

    #[test]
    fn an_unchanged_file_keeps_nothing() {
        let f = Fixture::new();
        let text = format!("{BASE}\n{PROXY}[imap_proxy.metrics]\nlisten = \"127.0.0.1:9152\"\n");
        let (applied, kept) = reloadable(&f.parse(&text).unwrap(), f.parse(&text).unwrap());
        assert!(kept.is_empty(), "{kept:?}");
        assert!(applied.imap_proxy.unwrap().metrics.is_some());
    }
}
