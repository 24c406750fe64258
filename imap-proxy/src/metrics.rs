//! The proxy's counters (relaxed atomics), rendered in the Prometheus text format.

use demail_daemon::metrics::{Counter, Exposition, Gauge, Render, Type};

/// How a LOGIN or AUTHENTICATE ended.
#[derive(Debug, Clone, Copy)]
pub enum Login {
    /// Dovecot said OK.
    Ok,
    /// Dovecot said NO or BAD (a wrong password, mostly).
    Failed,
    /// Dovecot said OK, the proxy refused: too many sessions for the login.
    Refused,
}

const LOGINS: [&str; 3] = ["ok", "failed", "refused"];

/// What went wrong with Dovecot.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// It could not be reached (connect, TLS, greeting).
    Connect,
    /// Reading from it failed.
    Read,
    /// It closed the connection before saying BYE.
    Closed,
}

const BACKEND_ERRORS: [&str; 3] = ["connect", "read", "closed"];

#[derive(Default)]
pub struct Metrics {
    sessions: Counter,
    active: Gauge,
    refused: Counter,
    logins: [Counter; LOGINS.len()],
    backend_errors: [Counter; BACKEND_ERRORS.len()],
}

impl Metrics {
    /// A session starts; the guard ends it.
    pub fn session(self: &std::sync::Arc<Self>) -> Active {
        self.sessions.inc();
        self.active.inc();
        Active(self.clone())
    }

    /// A connection refused at once (too many from its address).
    pub fn refused(&self) {
        self.refused.inc();
    }

    pub fn login(&self, outcome: Login) {
        self.logins[outcome as usize].inc();
    }

    pub fn backend_error(&self, kind: Backend) {
        self.backend_errors[kind as usize].inc();
    }
}

/// An active session, counted until dropped (a panic included).
pub struct Active(std::sync::Arc<Metrics>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.dec();
    }
}

impl Render for Metrics {
    fn render(&self, out: &mut Exposition) {
        let name = "demail_proxy_sessions_total";
        out.family(name, Type::Counter, "Client sessions started.");
        out.sample(name, &[], self.sessions.get());
        let name = "demail_proxy_sessions_active";
        out.family(name, Type::Gauge, "Client sessions open now.");
        out.sample(name, &[], self.active.get());
        let name = "demail_proxy_connections_refused_total";
        out.family(
            name,
            Type::Counter,
            "Connections refused at once: too many from one address.",
        );
        out.sample(name, &[], self.refused.get());
        let name = "demail_proxy_logins_total";
        out.family(name, Type::Counter, "LOGIN and AUTHENTICATE by outcome.");
        for (label, c) in LOGINS.iter().zip(&self.logins) {
            out.sample(name, &[("outcome", label)], c.get());
        }
        let name = "demail_proxy_backend_errors_total";
        out.family(name, Type::Counter, "Failures talking to Dovecot, by kind.");
        for (label, c) in BACKEND_ERRORS.iter().zip(&self.backend_errors) {
            out.sample(name, &[("kind", label)], c.get());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn sessions_logins_and_errors_are_counted() {
        let m = Arc::new(Metrics::default());
        let a = m.session();
        let b = m.session();
        drop(a);
        m.login(Login::Ok);
        m.login(Login::Failed);
        m.login(Login::Failed);
        m.backend_error(Backend::Closed);
        let mut out = Exposition::default();
        m.render(&mut out);
        let text = out.into_text();
        for line in [
            "demail_proxy_sessions_total 2",
            "demail_proxy_sessions_active 1",
            "demail_proxy_logins_total{outcome=\"ok\"} 1",
            "demail_proxy_logins_total{outcome=\"failed\"} 2",
            "demail_proxy_logins_total{outcome=\"refused\"} 0",
            "demail_proxy_backend_errors_total{kind=\"closed\"} 1",
            "demail_proxy_backend_errors_total{kind=\"connect\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        drop(b);
    }
}
