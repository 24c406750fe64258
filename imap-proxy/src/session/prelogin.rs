//! The STARTTLS port before TLS: the proxy answers CAPABILITY, NOOP, ID, STARTTLS and LOGOUT
//! itself, refuses LOGIN/AUTHENTICATE unless the listener allows plaintext (loopback), and
//! hands the connection on: upgraded to TLS, or (loopback) as it is with the first real command
//! still in the framer.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::auth;
use crate::capability::{self, ClientSide};
use crate::framing::{CHUNK, FrameError, Framer, Piece};
use crate::token;

#[derive(Default)]
pub struct PreLogin {
    /// The client's ID fields, merged into the proxy's one ID towards Dovecot later.
    pub client_id: Option<super::auth::IdFields>,
    /// Bytes read from the client here (before TLS, or a plaintext login's first command).
    pub bytes_in: u64,
}

pub enum Next {
    /// STARTTLS done: do the handshake.
    Tls,
    /// Plaintext allowed and a command for Dovecot arrived; it is still in the framer.
    Plain,
    /// LOGOUT or the client went away.
    Done,
}

pub async fn run(
    client: &mut TcpStream,
    cf: &mut Framer,
    caps: &str,
    side: ClientSide,
    pre: &mut PreLogin,
) -> Result<Next, String> {
    let mut buf = vec![0u8; CHUNK];
    let deadline = tokio::time::Instant::now() + super::LOGIN_TIMEOUT;
    loop {
        // Peek: one complete command (with small literals) before acting.
        let piece = match cf.next() {
            Ok(p) => p,
            Err(FrameError::LineTooLong(max)) => {
                let _ = client
                    .write_all(
                        format!("* BYE Line too long (more than {max} bytes)\r\n").as_bytes(),
                    )
                    .await;
                return Ok(Next::Done);
            }
        };
        let Some(piece) = piece else {
            let n = tokio::time::timeout_at(deadline, client.read(&mut buf))
                .await
                .map_err(|_| "no login in time".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(Next::Done);
            }
            pre.bytes_in += n as u64;
            cf.push(&buf[..n]);
            continue;
        };
        let Piece::Line {
            bytes,
            first: true,
            literal,
        } = piece
        else {
            // Parts of a message refused before: skipped.
            continue;
        };
        let (tag, name) = match token::head(&bytes) {
            Some(h) => h,
            None => {
                client
                    .write_all(b"* BAD Invalid command line.\r\n")
                    .await
                    .map_err(|e| e.to_string())?;
                if literal.is_some_and(|(_, sync)| sync) {
                    cf.refuse_literal();
                }
                continue;
            }
        };
        let tag_s = String::from_utf8_lossy(&tag).into_owned();
        let w = |s: String| s.into_bytes();
        let answer: Vec<u8> = match name.as_str() {
            "CAPABILITY" => w(format!(
                "* CAPABILITY {}\r\n{tag_s} OK Capability completed.\r\n",
                capability::filter(caps, side)
            )),
            "NOOP" => w(format!("{tag_s} OK NOOP completed.\r\n")),
            "LOGOUT" => {
                let _ = client
                    .write_all(
                        format!("* BYE Logging out\r\n{tag_s} OK Logout completed.\r\n").as_bytes(),
                    )
                    .await;
                return Ok(Next::Done);
            }
            "STARTTLS" => {
                if cf.buffered() > 0 {
                    // Commands sent behind STARTTLS before the handshake could be injected by
                    // anyone on the path; they are refused, not run under TLS.
                    cf.discard_buffered();
                    w(format!(
                        "{tag_s} BAD Nothing may follow STARTTLS before the TLS handshake.\r\n"
                    ))
                } else {
                    client
                        .write_all(format!("{tag_s} OK Begin TLS negotiation now.\r\n").as_bytes())
                        .await
                        .map_err(|e| e.to_string())?;
                    client.flush().await.map_err(|e| e.to_string())?;
                    return Ok(Next::Tls);
                }
            }
            "ID" if literal.is_none() => {
                match token::tokens(&bytes)
                    .ok()
                    .and_then(|t| auth::id_fields(t.get(2..).unwrap_or_default()))
                {
                    Some(fields) => {
                        pre.client_id = Some(fields);
                        w(format!(
                            "* ID (\"name\" \"demail-imap-proxy\")\r\n{tag_s} OK ID completed.\r\n"
                        ))
                    }
                    None => w(format!("{tag_s} BAD Invalid ID arguments.\r\n")),
                }
            }
            _ if side.plaintext_login => {
                // Loopback: Dovecot takes it from here; the line goes back to the framer.
                cf.unread(bytes);
                return Ok(Next::Plain);
            }
            "LOGIN" | "AUTHENTICATE" => {
                if literal.is_some_and(|(_, sync)| sync) {
                    cf.refuse_literal();
                } else if literal.is_some() {
                    let _ = client
                        .write_all(b"* BYE [PRIVACYREQUIRED] Use STARTTLS before logging in.\r\n")
                        .await;
                    return Ok(Next::Done);
                }
                w(format!(
                    "{tag_s} NO [PRIVACYREQUIRED] Plaintext authentication is not allowed here; use STARTTLS first.\r\n"
                ))
            }
            _ => {
                if literal.is_some_and(|(_, sync)| sync) {
                    cf.refuse_literal();
                } else if literal.is_some() {
                    let _ = client
                        .write_all(b"* BYE [PRIVACYREQUIRED] Use STARTTLS first.\r\n")
                        .await;
                    return Ok(Next::Done);
                }
                w(format!(
                    "{tag_s} BAD [PRIVACYREQUIRED] Only CAPABILITY, NOOP, ID, STARTTLS and LOGOUT before STARTTLS.\r\n"
                ))
            }
        };
        client.write_all(&answer).await.map_err(|e| e.to_string())?;
    }
}
