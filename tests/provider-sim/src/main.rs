//! `demail-provider-sim --config sim.toml`: runs the simulated provider gateway until SIGTERM
//! or Ctrl-C. `demail-provider-sim --gen-pki DIR` writes a test PKI for the demo.
//! `demail-provider-sim retrieve ID --control ADDR` tells a running simulator that the
//! recipient of message ID logged in (Abholbestätigung).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use demail_provider_sim::pki::TestPki;
use demail_provider_sim::receive::RunOptions;
use demail_provider_sim::send::control_command;
use demail_provider_sim::{SimConfig, Simulator};

#[derive(Parser)]
#[command(
    version,
    about = "A De-Mail provider gateway simulator (BSI TR-01201) for tests and demos"
)]
struct Args {
    /// TOML configuration (keys as in SimConfig, optional [send] table as in SendConfig;
    /// relative paths are relative to the file).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write a test PKI (ca, server for localhost, client) into DIR and exit.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    gen_pki: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The recipient of ID (X-de-mail-message-id or X-de-mail-private-id) logged in: a running
    /// simulator sends the Abholbestätigung. Exit 0 only if it was delivered.
    Retrieve {
        id: String,
        /// The simulator's control port ([send] control).
        #[arg(long, value_name = "ADDR")]
        control: SocketAddr,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match (args.command, args.gen_pki, args.config) {
        (Some(Command::Retrieve { id, control }), _, _) => retrieve(&id, control),
        (None, Some(dir), _) => gen_pki(dir),
        (None, None, Some(config)) => serve(config),
        (None, None, None) => Err("--config is required (or --gen-pki DIR, or retrieve)".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demail-provider-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn gen_pki(dir: PathBuf) -> Result<(), String> {
    let pki = TestPki::generate(&dir).map_err(|e| e.to_string())?;
    for (what, path) in [
        ("ca_cert", &pki.ca_cert),
        ("ca_key", &pki.ca_key),
        ("server_cert", &pki.server_cert),
        ("server_key", &pki.server_key),
        ("client_cert", &pki.client_cert),
        ("client_key", &pki.client_key),
    ] {
        println!("{what} = {:?}", path.display().to_string());
    }
    Ok(())
}

fn retrieve(id: &str, control: SocketAddr) -> Result<(), String> {
    let reply = control_command(control, &format!("RETRIEVE {id}"))
        .map_err(|e| format!("control port {control}: {e}"))?;
    println!("{reply}");
    if reply.starts_with("250 ") {
        Ok(())
    } else {
        Err(format!("retrieve {id}: {reply}"))
    }
}

fn serve(config: PathBuf) -> Result<(), String> {
    let (cfg, send) = SimConfig::with_send_from_toml_file(&config).map_err(|e| e.to_string())?;
    // Block the signals before any thread exists, so every thread inherits the mask and
    // only sigwait below receives them.
    let signals = signal::block_termination().map_err(|e| format!("signal setup: {e}"))?;
    let opts = RunOptions {
        log_to_stderr: true,
        send,
        ..RunOptions::default()
    };
    let sim = Simulator::start_with(cfg, opts).map_err(|e| e.to_string())?;
    if let Some(addr) = sim.control_addr() {
        eprintln!("demail-provider-sim: control port {addr}");
    }
    let sig = signal::wait(&signals).map_err(|e| format!("sigwait: {e}"))?;
    eprintln!("demail-provider-sim: signal {sig}, stopping");
    sim.stop();
    Ok(())
}

mod signal {
    use std::io;
    use std::mem::MaybeUninit;

    pub struct Set(libc::sigset_t);

    /// Blocks SIGINT and SIGTERM in the calling thread (and threads it starts later).
    pub fn block_termination() -> io::Result<Set> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set; sigaddset/pthread_sigmask get valid pointers.
        unsafe {
            if libc::sigemptyset(set.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut set = set.assume_init();
            for sig in [libc::SIGINT, libc::SIGTERM] {
                if libc::sigaddset(&mut set, sig) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(Set(set))
        }
    }

    /// Waits for one of the blocked signals; returns its number.
    pub fn wait(set: &Set) -> io::Result<i32> {
        let mut sig: libc::c_int = 0;
        // SAFETY: both pointers are valid for the duration of the call.
        let rc = unsafe { libc::sigwait(&set.0, &mut sig) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(sig)
    }
}
