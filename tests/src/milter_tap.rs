//! A milter-protocol proxy between Postfix and the milter, for one fault that cannot be timed
//! from outside: the milter has decided (and recorded) a message, but Postfix never hears the
//! answer, because the milter dies first.
//!
//! Normally every frame passes through. Once [`MilterTap::hold_answers`] is armed, the answer
//! frames the milter sends after end-of-message are held back (not forwarded) and counted;
//! when the milter's connection then ends (the test kills the milter), the tap closes Postfix's
//! side too, which is exactly what Postfix sees when a milter crashes before replying.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::net::{free_port, wait_until};

/// Milter commands and replies (first byte of a frame) the tap looks at.
const SMFIC_BODYEOB: u8 = b'E';
const SMFIR_PROGRESS: u8 = b'p';
/// Frames larger than this are not milter traffic Postfix would send (its bodies are 64 KiB).
const MAX_FRAME: usize = 16 << 20;

#[derive(Default)]
struct State {
    /// Where the milter listens; 0 until [`MilterTap::forward_to`].
    upstream: AtomicU16,
    hold: AtomicBool,
    held: AtomicUsize,
    stopping: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// See the module documentation. Dropping it stops the listener and every relay.
pub struct MilterTap {
    port: u16,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl MilterTap {
    /// Listens on a free loopback port. Connections are refused (closed) until
    /// [`MilterTap::forward_to`] names the milter, so Postfix can be configured first.
    pub fn new() -> MilterTap {
        let port = free_port();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("MilterTap: bind 127.0.0.1:{port}: {e}"));
        let state = Arc::new(State::default());
        let st = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mta) = conn else { continue };
                let st2 = Arc::clone(&st);
                let t = std::thread::spawn(move || relay(mta, &st2));
                lock(&st.threads).push(t);
            }
        });
        MilterTap {
            port,
            state,
            accept: Some(accept),
        }
    }

    /// Relays every later connection to the milter on 127.0.0.1:`milter_port`.
    pub fn forward_to(&self, milter_port: u16) {
        self.state.upstream.store(milter_port, Ordering::SeqCst);
    }

    /// The port to give Postfix (`smtpd_milters = inet:127.0.0.1:PORT`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on, hold back the milter's answers to end-of-message.
    pub fn hold_answers(&self, on: bool) {
        self.state.hold.store(on, Ordering::SeqCst);
    }

    /// Answer frames held back so far.
    pub fn held(&self) -> usize {
        self.state.held.load(Ordering::SeqCst)
    }

    /// Waits until at least one end-of-message answer is held back; panics after `timeout`.
    pub fn wait_for_held_answer(&self, timeout: Duration) {
        wait_until(timeout, "a held-back end-of-message answer", || {
            (self.held() > 0).then_some(())
        });
    }
}

impl Default for MilterTap {
    fn default() -> Self {
        MilterTap::new()
    }
}

impl Drop for MilterTap {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wake accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, self.port).into(),
            Duration::from_secs(1),
        );
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        // Relays end when either peer closes; Postfix and the milter are stopped by their
        // owners, so the threads are detached rather than joined here.
        lock(&self.state.threads).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One MTA connection: frames both ways until either side ends, then both sides are closed.
fn relay(mta: TcpStream, state: &Arc<State>) {
    let milter_port = state.upstream.load(Ordering::SeqCst);
    let connected = match milter_port {
        0 => None,
        port => TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok(),
    };
    let Some(milter) = connected else {
        // Milter down: Postfix sees the connection fail, as without the tap.
        let _ = mta.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(mta_r), Ok(milter_w), Ok(milter_r), Ok(mta_w)) = (
        mta.try_clone(),
        milter.try_clone(),
        milter.try_clone(),
        mta.try_clone(),
    ) else {
        let _ = mta.shutdown(Shutdown::Both);
        let _ = milter.shutdown(Shutdown::Both);
        return;
    };
    // Set by the MTA-to-milter direction when it forwards end-of-message.
    let eob_sent = Arc::new(AtomicBool::new(false));
    let eob = Arc::clone(&eob_sent);
    let upstream = std::thread::spawn(move || {
        let _ = pump(mta_r, milter_w, |cmd| {
            if cmd == SMFIC_BODYEOB {
                eob.store(true, Ordering::SeqCst);
            }
            true
        });
    });
    let st = Arc::clone(state);
    let _ = pump(milter_r, mta_w, |reply| {
        let answer = eob_sent.load(Ordering::SeqCst) && reply != SMFIR_PROGRESS;
        if answer && st.hold.load(Ordering::SeqCst) {
            st.held.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        true
    });
    // The milter went away (or Postfix did): end both sides, as a crashed milter would.
    let _ = mta.shutdown(Shutdown::Both);
    let _ = milter.shutdown(Shutdown::Both);
    let _ = upstream.join();
}

/// Copies frames from `from` to `to`; `pass(command)` decides whether a frame is forwarded
/// (it is dropped otherwise). Returns when either side fails or closes.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    mut pass: impl FnMut(u8) -> bool,
) -> io::Result<()> {
    loop {
        let mut len = [0u8; 4];
        from.read_exact(&mut len)?;
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 || n > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("milter frame of {n} bytes"),
            ));
        }
        let mut frame = vec![0u8; n];
        from.read_exact(&mut frame)?;
        if pass(frame[0]) {
            to.write_all(&len)?;
            to.write_all(&frame)?;
        }
    }
}
