//! Sockets: TLS towards clients (the city's certificate) and the connection to Dovecot
//! (`backend_tls` none / starttls / implicit, certificate verified).

use std::path::Path;
use std::pin::Pin;

use demail_policy::{BackendTls, ImapProxySettings};
use openssl::ssl::{Ssl, SslAcceptor, SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type BoxIo = Box<dyn Io>;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("TLS setup: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
    #[error("TLS handshake: {0}")]
    Handshake(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("backend: {0}")]
    Backend(String),
}

/// The client-facing TLS context from `certificate` (chain, PEM) and `key`.
pub fn acceptor(certificate: &Path, key: &Path) -> Result<SslAcceptor, NetError> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate_chain_file(certificate)?;
    b.set_private_key_file(key, SslFiletype::PEM)?;
    b.check_private_key()?;
    Ok(b.build())
}

pub async fn accept_tls(acceptor: &SslAcceptor, tcp: TcpStream) -> Result<BoxIo, NetError> {
    let ssl = Ssl::new(acceptor.context())?;
    let mut s = SslStream::new(ssl, tcp)?;
    Pin::new(&mut s)
        .accept()
        .await
        .map_err(|e| NetError::Handshake(e.to_string()))?;
    Ok(Box::new(s))
}

/// The backend connection, with Dovecot's greeting line already read.
pub struct Backend {
    pub io: BufReader<BoxIo>,
    /// Capabilities Dovecot offers (from the greeting or a CAPABILITY after STARTTLS).
    pub capabilities: String,
    /// The greeting's text after the response code (e.g. `Dovecot ready.`).
    pub greeting_text: String,
}

pub async fn connect_backend(settings: &ImapProxySettings) -> Result<Backend, NetError> {
    let tcp = TcpStream::connect(&settings.backend).await?;
    tcp.set_nodelay(true)?;
    let host = settings
        .backend
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .unwrap_or_default();
    let (mut io, caps, text): (BufReader<BoxIo>, Option<String>, String) =
        match settings.backend_tls {
            BackendTls::Implicit => {
                let tls: BoxIo = Box::new(tls_connect(settings, &host, tcp).await?);
                let mut io = BufReader::new(tls);
                let (caps, text) = greeting(&mut io).await?;
                (io, caps, text)
            }
            BackendTls::None => {
                let mut io = BufReader::new(Box::new(tcp) as BoxIo);
                let (caps, text) = greeting(&mut io).await?;
                (io, caps, text)
            }
            BackendTls::Starttls => {
                let mut plain = BufReader::new(tcp);
                let (_, text) = greeting(&mut plain).await?;
                plain.get_mut().write_all(b"P0 STARTTLS\r\n").await?;
                loop {
                    let l = read_line(&mut plain).await?;
                    if l.starts_with("P0 OK") {
                        break;
                    }
                    if l.starts_with("P0 ") {
                        return Err(NetError::Backend(format!(
                            "STARTTLS refused: {}",
                            l.trim_end()
                        )));
                    }
                }
                // Bytes before the handshake are not protected: there must be none.
                if !plain.buffer().is_empty() {
                    return Err(NetError::Backend("data after the STARTTLS answer".into()));
                }
                let tls: BoxIo = Box::new(tls_connect(settings, &host, plain.into_inner()).await?);
                // Capabilities seen before TLS do not count.
                (BufReader::new(tls), None, text)
            }
        };
    let capabilities = match caps {
        Some(c) => c,
        None => {
            io.get_mut().write_all(b"P1 CAPABILITY\r\n").await?;
            let mut found = String::new();
            loop {
                let l = read_line(&mut io).await?;
                if let Some(c) = l.strip_prefix("* CAPABILITY ") {
                    found = c.trim_end().to_string();
                } else if l.starts_with("P1 ") {
                    break;
                }
            }
            found
        }
    };
    Ok(Backend {
        io,
        capabilities,
        greeting_text: text,
    })
}

async fn greeting<R: AsyncBufReadExt + Unpin>(
    io: &mut R,
) -> Result<(Option<String>, String), NetError> {
    let greeting = read_line(io).await?;
    if !greeting.starts_with("* OK") {
        return Err(NetError::Backend(format!(
            "unexpected greeting {:?}",
            greeting.trim_end()
        )));
    }
    Ok(greeting_parts(&greeting))
}

fn greeting_parts(greeting: &str) -> (Option<String>, String) {
    let rest = greeting.trim_end().trim_start_matches("* OK").trim_start();
    if let Some(code) = rest.strip_prefix("[CAPABILITY ")
        && let Some((caps, text)) = code.split_once(']')
    {
        return (Some(caps.to_string()), text.trim().to_string());
    }
    (None, rest.to_string())
}

async fn read_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<String, NetError> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(64 * 1024)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Err(NetError::Backend("closed the connection".into()));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

use tokio::io::AsyncReadExt;

async fn tls_connect(
    settings: &ImapProxySettings,
    host: &str,
    tcp: TcpStream,
) -> Result<SslStream<TcpStream>, NetError> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    if let Some(ca) = &settings.backend_ca {
        b.set_ca_file(ca)?;
    }
    b.set_verify(SslVerifyMode::PEER);
    let connector = b.build();
    let mut cfg = connector.configure()?;
    if host.parse::<std::net::IpAddr>().is_ok() {
        // An IP address is checked against the certificate's IP SANs, not as a host name.
        cfg.set_use_server_name_indication(false);
        cfg.set_verify_hostname(false);
        let ip = host.to_string();
        cfg.param_mut()
            .set_ip(ip.parse().map_err(|_| NetError::Backend(ip.clone()))?)?;
    }
    let ssl = cfg.into_ssl(host)?;
    let mut s = SslStream::new(ssl, tcp)?;
    Pin::new(&mut s)
        .connect()
        .await
        .map_err(|e| NetError::Handshake(format!("to Dovecot {host}: {e}")))?;
    Ok(s)
}
