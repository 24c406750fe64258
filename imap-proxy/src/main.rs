//! `demail-imap-proxy [--config PATH] [--log-format text|json]`.

use std::process::ExitCode;

use demail_daemon::Program;

const PROGRAM: Program = Program {
    name: "demail-imap-proxy",
    version: env!("CARGO_PKG_VERSION"),
    about: "IMAP proxy of demail-gateway: Dovecot passed through unchanged, the De-Mail \
            evidence as read-only folders.",
    on_hangup: "reloads the configuration for new sessions (the folders' visibility and the \
                certificate at once), sessions stay",
    config_error_exit: 78,
    multi_thread: false,
};

fn main() -> ExitCode {
    demail_daemon::main(&PROGRAM, demail_imap_proxy::daemon)
}
