//! `GET /metrics` over plain HTTP/1.1: one request per connection, the request head bounded,
//! every connection under a deadline, a bounded number at once. Nothing else is served.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::metrics::{Exposition, Render};

/// The longest request head read; a scraper's is a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;
/// A connection's whole life: a slow client is cut off, never waited for.
const DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; beyond that a new one is closed at once, so slow clients
/// cannot pile up memory.
const MAX_CONNECTIONS: usize = 32;

/// Binds the metrics endpoint `listen` (`host:port`), named `key` in messages. An address
/// that is not loopback is served but warned about: the metrics show who mails how much.
pub async fn bind_metrics(listen: &str, key: &str) -> io::Result<TcpListener> {
    let l = TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("{key} = {listen:?}: {e}")))?;
    let local = l.local_addr()?;
    if !local.ip().is_loopback() {
        warn!(
            "{key} = {listen:?} is not a loopback address: the metrics (tenant names, mail volumes, \
             logins) are readable by anyone who reaches {local}; bind to 127.0.0.1 or filter it"
        );
    }
    info!("metrics on http://{local}/metrics");
    Ok(l)
}

/// Serves `metrics` on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<dyn Render>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!("metrics endpoint: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!(%peer, "metrics endpoint busy: connection closed");
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(DEADLINE, exchange(stream, metrics)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(%peer, "metrics request: {e}"),
                Err(_) => debug!(%peer, "metrics request: too slow, closed"),
            }
        });
    }
}

async fn exchange(mut stream: TcpStream, metrics: Arc<dyn Render>) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_REQUEST {
            break false;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let (status, body) = if complete {
        // Rendering may read files (a projection of the evidence): off the runtime.
        let head = head.clone();
        tokio::task::spawn_blocking(move || answer(&head, &*metrics))
            .await
            .map_err(io::Error::other)?
    } else {
        ("431 Request Header Fields Too Large", String::new())
    };
    let head_only = head.starts_with(b"HEAD ");
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await?;
    if !complete {
        // Read (and drop) what the client still sends, within the deadline, so that closing
        // does not reset the connection before it has read the answer.
        while stream.read(&mut buf).await? > 0 {}
    }
    Ok(())
}

fn answer(head: &[u8], metrics: &dyn Render) -> (&'static str, String) {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let mut out = Exposition::default();
            metrics.render(&mut out);
            ("200 OK", out.into_text())
        }
        ("GET" | "HEAD", _) => ("404 Not Found", "only /metrics here\n".into()),
        _ => ("405 Method Not Allowed", "GET /metrics\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::metrics::{Counter, Type};

    struct One(Counter);

    impl Render for One {
        fn render(&self, out: &mut Exposition) {
            out.family("demail_test_total", Type::Counter, "Test.");
            out.sample("demail_test_total", &[], self.0.get());
        }
    }

    async fn start() -> (SocketAddr, Arc<One>) {
        let l = bind_metrics("127.0.0.1:0", "[test.metrics] listen")
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let m = Arc::new(One(Counter::new()));
        m.0.inc();
        tokio::spawn(serve_metrics(l, m.clone()));
        (addr, m)
    }

    async fn request(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn metrics_404_405_and_an_oversized_head() {
        let (addr, m) = start().await;
        let r = request(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
        assert!(r.ends_with("\r\n\r\n# HELP demail_test_total Test.\n# TYPE demail_test_total counter\ndemail_test_total 1\n"), "{r}");
        m.0.inc();
        let r = request(addr, b"GET /metrics?x=1 HTTP/1.0\n\n").await;
        assert!(r.ends_with("demail_test_total 2\n"), "{r}");
        let r = request(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        let r = request(addr, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
        let r = request(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
        let mut big = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 64 * 1024));
        let r = request(addr, &big).await;
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
    }

    #[tokio::test]
    async fn a_silent_client_does_not_block_the_next_one() {
        let (addr, _m) = start().await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /met").await.unwrap();
        let r = request(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.ends_with("demail_test_total 1\n"), "{r}");
        // The silent one is closed at the deadline, without an answer.
        let mut rest = Vec::new();
        slow.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
