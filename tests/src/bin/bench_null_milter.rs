//! `bench-null-milter SOCKET`: the milter protocol's floor for bench-milter. It negotiates
//! what demail-milter negotiates (the same actions, protocol options and macros, through
//! demail-milter's own `request`, and every callback registered, as demail-milter registers
//! them), then lets every message through without looking at it: continue at each stage,
//! accept at end of message. Serves a unix socket (mode 0666, so Postfix's smtpd can reach
//! it) until SIGTERM or SIGINT.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use demail_milter::{REQUIRED_ACTIONS, REQUIRED_OPTS};
use indymilter::{Callbacks, ProtoOpts, Status};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), None) = (args.next(), args.next()) else {
        eprintln!("usage: bench-null-milter SOCKET");
        return ExitCode::from(2);
    };
    let path = PathBuf::from(path);
    // The same runtime flavour as demail-milter (one worker per core).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-null-milter: cannot start the async runtime: {e}");
            return ExitCode::from(71);
        }
    };
    match runtime.block_on(serve(&path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-null-milter: {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

async fn serve(path: &PathBuf) -> std::io::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let config = indymilter::Config {
        actions: REQUIRED_ACTIONS,
        ..Default::default()
    };
    let result = indymilter::run(listener, callbacks(), config, shutdown).await;
    let _ = std::fs::remove_file(path);
    result
}

/// The stage's answer: none where the no-reply option for it was negotiated (as demail-milter).
fn quiet(cx_opts: Option<&ProtoOpts>, opt: ProtoOpts) -> Status {
    if cx_opts.is_some_and(|o| o.contains(opt)) {
        Status::Noreply
    } else {
        Status::Continue
    }
}

/// Per connection: the no-reply options negotiated.
fn callbacks() -> Callbacks<ProtoOpts> {
    Callbacks::new()
        .on_negotiate(|cx, actions, opts| {
            Box::pin(async move {
                // What demail-milter requires; it refuses an MTA that offers less.
                if !actions.contains(REQUIRED_ACTIONS) || !opts.contains(REQUIRED_OPTS) {
                    return Status::Reject;
                }
                demail_milter::request(cx, actions, opts);
                cx.data = Some(cx.requested_opts & demail_milter::NOREPLY_OPTS);
                Status::Continue
            })
        })
        .on_connect(|cx, _, _| {
            Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_CONNECT) })
        })
        .on_helo(|cx, _| Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_HELO) }))
        .on_mail(|_, _| Box::pin(async { Status::Continue }))
        .on_rcpt(|_, _| Box::pin(async { Status::Continue }))
        .on_data(|_| Box::pin(async { Status::Continue }))
        .on_header(|cx, _, _| {
            Box::pin(async move { quiet(cx.data.as_ref(), ProtoOpts::NOREPLY_HEADER) })
        })
        .on_eoh(|_| Box::pin(async { Status::Continue }))
        .on_body(|_, _| Box::pin(async { Status::Continue }))
        .on_eom(|_| Box::pin(async { Status::Accept }))
        .on_abort(|_| Box::pin(async { Status::Continue }))
        .on_close(|_| Box::pin(async { Status::Continue }))
}
