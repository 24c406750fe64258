//! `demail-milter [--config PATH] [--log-format text|json]`.

use std::process::ExitCode;

use demail_daemon::Program;

const PROGRAM: Program = Program {
    name: "demail-milter",
    version: env!("CARGO_PKG_VERSION"),
    about: "Postfix milter of demail-gateway (outbound De-Mail: sender authorisation, options, \
            evidence; inbound De-Mail and confirmations; poststelle QES checks).",
    on_hangup: "reloads the configuration for the next message, connections stay",
    config_error_exit: 1,
    multi_thread: true,
};

fn main() -> ExitCode {
    demail_daemon::main(&PROGRAM, demail_milter::daemon)
}
