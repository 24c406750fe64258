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

/// Commands the proxy answers itself for a virtual folder, by name (`UID` folded in); the
/// rest as `other`.
const VIRTUAL_COMMANDS: [&str; 16] = [
    "SELECT", "EXAMINE", "STATUS", "FETCH", "SEARCH", "STORE", "COPY", "MOVE", "NOOP", "CHECK",
    "IDLE", "CLOSE", "UNSELECT", "EXPUNGE", "APPEND", "other",
];

#[derive(Default)]
pub struct Metrics {
    sessions: Counter,
    active: Gauge,
    refused: Counter,
    logins: [Counter; LOGINS.len()],
    backend_errors: [Counter; BACKEND_ERRORS.len()],
    virtual_commands: [Counter; VIRTUAL_COMMANDS.len()],
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

    /// A command answered for a virtual folder (`name` as the client wrote it, upper case).
    pub fn virtual_command(&self, name: &str) {
        let name = name.strip_prefix("UID ").unwrap_or(name);
        let last = VIRTUAL_COMMANDS.len() - 1;
        let i = VIRTUAL_COMMANDS[..last]
            .iter()
            .position(|c| *c == name)
            .unwrap_or(last);
        self.virtual_commands[i].inc();
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
        let name = "demail_proxy_virtual_commands_total";
        out.family(
            name,
            Type::Counter,
            "Commands the proxy answered for the virtual De-Mail folders, by command.",
        );
        for (label, c) in VIRTUAL_COMMANDS.iter().zip(&self.virtual_commands) {
            out.sample(name, &[("command", label)], c.get());
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
        m.virtual_command("UID FETCH");
        m.virtual_command("FETCH");
        m.virtual_command("GETQUOTAROOT");
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
            "demail_proxy_virtual_commands_total{command=\"FETCH\"} 2",
            "demail_proxy_virtual_commands_total{command=\"other\"} 1",
            "demail_proxy_virtual_commands_total{command=\"SELECT\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        drop(b);
    }
}
