//! A line-based control port for the binary (loopback only in practice): `RETRIEVE <id>`
//! plays the recipient's login, `QUIT` ends the connection. Replies are one line with an
//! SMTP-like code: `250` done, `451` made but not delivered, `550` refused, `500` syntax.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{Outgoing, SendError};

/// What `RETRIEVE <id>` does (the simulator's [`crate::Simulator::retrieve`]).
pub type RetrieveFn = dyn Fn(&str) -> Result<Vec<Outgoing>, SendError> + Send + Sync;

const READ_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_LINE: u64 = 4096;

/// The running control port; stops when dropped.
pub struct ControlServer {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    pub fn start(listen: SocketAddr, retrieve: Arc<RetrieveFn>) -> io::Result<ControlServer> {
        let listener = TcpListener::bind(listen)
            .map_err(|e| io::Error::new(e.kind(), format!("control port {listen}: {e}")))?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let thread = thread::Builder::new()
            .name("sim-control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = conn {
                        // One client at a time: a test tool, not a service.
                        let _ = serve(stream, retrieve.as_ref());
                    }
                }
            })?;
        Ok(ControlServer {
            addr,
            stopping,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            // accept() has no timeout: wake it with a connection of our own.
            let wake = SocketAddr::from(([127, 0, 0, 1], self.addr.port()));
            if let Ok(s) = TcpStream::connect_timeout(&wake, Duration::from_secs(2)) {
                let _ = s.shutdown(Shutdown::Both);
                let _ = t.join();
            }
        }
    }
}

fn serve(stream: TcpStream, retrieve: &RetrieveFn) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if (&mut reader).take(MAX_LINE).read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim();
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "RETRIEVE" if !arg.trim().is_empty() => answer(retrieve(arg.trim())),
            "RETRIEVE" => "500 usage: RETRIEVE <X-de-mail-message-id or private-id>".into(),
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => "500 unknown command (RETRIEVE <id>, QUIT)".into(),
        };
        out.write_all(format!("{reply}\r\n").as_bytes())?;
    }
}

fn answer(result: Result<Vec<Outgoing>, SendError>) -> String {
    match result {
        Err(e) => format!("550 {}", e.to_string().replace(['\r', '\n'], " ")),
        Ok(sent) => {
            let each: Vec<String> = sent
                .iter()
                .map(|o| match &o.delivery.result {
                    Ok(_) => format!("{} <{}> delivered", o.message_id, o.about_recipient),
                    Err(e) => format!(
                        "{} <{}> NOT delivered: {e}",
                        o.message_id, o.about_recipient
                    ),
                })
                .collect();
            let code = if sent.iter().all(Outgoing::delivered) {
                250
            } else {
                451
            };
            format!(
                "{code} {} Abholbestätigung(en): {}",
                sent.len(),
                each.join("; ")
            )
        }
    }
}

/// Sends one command line to a control port and returns the reply line (without CRLF).
pub fn control_command(addr: SocketAddr, line: &str) -> io::Result<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut out = stream.try_clone()?;
    out.write_all(format!("{}\r\n", line.trim()).as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    let _ = out.write_all(b"QUIT\r\n");
    if reply.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the control port closed without a reply",
        ));
    }
    Ok(reply.trim_end().to_string())
}
