//! Loopback ports and polling.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Ports this process has handed out already: the kernel may offer a port again once its
/// probe socket is closed, and two daemons of parallel tests must never get the same one.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

const POLL: Duration = Duration::from_millis(50);

/// A TCP port on 127.0.0.1 that nothing listens on now and that no other caller in this
/// process has been given.
pub fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("free_port: cannot bind 127.0.0.1:0: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("free_port: local_addr: {e}"))
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("free_port: the kernel kept offering ports already handed out");
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, POLL.max(Duration::from_millis(200))) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "nothing listens on 127.0.0.1:{port} after {timeout:?}: {e}"
                ));
            }
            Err(_) => sleep(POLL),
        }
    }
}

/// Calls `f` until it returns `Some`, at most for `timeout`; panics naming `what` otherwise.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        sleep(POLL);
    }
}

/// Reads the first line a server sends on 127.0.0.1:`port` (an SMTP/LMTP/IMAP greeting).
pub(crate) fn greeting(port: u16) -> Result<String, String> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("read greeting from 127.0.0.1:{port}: {e}"))?;
    Ok(line.trim_end().to_string())
}

/// Waits until the server on `port` greets with a line starting with `prefix`.
pub(crate) fn wait_for_greeting(
    port: u16,
    prefix: &str,
    timeout: Duration,
) -> Result<String, String> {
    wait_for_port(port, timeout)?;
    let deadline = Instant::now() + timeout;
    loop {
        let last = match greeting(port) {
            Ok(line) if line.starts_with(prefix) => return Ok(line),
            Ok(line) => format!("greeting {line:?}"),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "127.0.0.1:{port} did not greet with {prefix:?} within {timeout:?} (last: {last})"
            ));
        }
        sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let set: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(
            set.len(),
            ports.len(),
            "free_port repeated a port: {ports:?}"
        );
        for p in ports {
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).expect("free port is bindable");
        }
    }

    #[test]
    fn wait_for_port_sees_a_listener_and_times_out_without_one() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        wait_for_port(port, Duration::from_secs(2)).expect("listener is seen");
        drop(listener);
        let err = wait_for_port(port, Duration::from_millis(300)).expect_err("nobody listens");
        assert!(err.contains(&port.to_string()), "{err}");
    }

    #[test]
    fn wait_until_returns_the_value_or_panics_with_what() {
        let mut n = 0;
        let v = wait_until(Duration::from_secs(2), "counter", || {
            n += 1;
            (n == 3).then_some(n * 10)
        });
        assert_eq!(v, 30);
        let panic = std::panic::catch_unwind(|| {
            wait_until(Duration::from_millis(100), "the impossible", || None::<()>)
        })
        .expect_err("must time out");
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("the impossible"), "{msg}");
    }
}
