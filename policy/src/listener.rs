//! Rules about the proxy's listeners.

use std::net::{IpAddr, SocketAddr};

/// Whether a client may log in without TLS on the plain IMAP listener bound to `listen`: only
/// when that listener is reachable from this machine alone (a loopback address), so passwords
/// never cross a network in clear. A wildcard address (`0.0.0.0`, `::`) is not loopback.
pub fn plaintext_login_allowed(listen: &SocketAddr) -> bool {
    match listen.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_listeners_allow_plaintext() {
        for (addr, allowed) in [
            ("127.0.0.1:143", true),
            ("127.3.4.5:143", true),
            ("[::1]:143", true),
            ("[::ffff:127.0.0.1]:143", true),
            ("0.0.0.0:143", false),
            ("[::]:143", false),
            ("192.168.1.10:143", false),
            ("[::ffff:10.0.0.1]:143", false),
        ] {
            let a: SocketAddr = addr.parse().unwrap();
            assert_eq!(plaintext_login_allowed(&a), allowed, "{addr}");
        }
    }
}
