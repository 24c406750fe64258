//! The listening socket: `inet:host:port` or `unix:/path`, as in `[milter] listen`.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use demail_policy::SocketSpec;
use indymilter::EitherStream;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A bound milter socket, ready for [`crate::run`].
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixSocket),
}

/// A UNIX socket that removes its file when dropped (on shutdown).
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Listener {
    /// The TCP address actually bound (tests bind port 0); `None` for a UNIX socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Listener {
        Listener::Tcp(l)
    }
}

impl indymilter::Listener for Listener {
    type Io = EitherStream<TcpStream, UnixStream>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Io>> {
        match self {
            Listener::Tcp(l) => {
                TcpListener::poll_accept(l, cx).map_ok(|(s, _)| EitherStream::Tcp(s))
            }
            Listener::Unix(u) => {
                UnixListener::poll_accept(&u.listener, cx).map_ok(|(s, _)| EitherStream::Unix(s))
            }
        }
    }
}

/// Binds the socket. A stale UNIX socket file (left by a crash) is removed first; a live one
/// (another instance answers) or a file that is not a socket is an error.
pub async fn bind(spec: &SocketSpec) -> io::Result<Listener> {
    match spec {
        SocketSpec::Inet { host, port } => {
            let l = TcpListener::bind((host.as_str(), *port))
                .await
                .map_err(|e| annotate(e, &format!("inet:{host}:{port}")))?;
            Ok(Listener::Tcp(l))
        }
        SocketSpec::Unix(path) => bind_unix(path).await,
    }
}

async fn bind_unix(path: &Path) -> io::Result<Listener> {
    let name = format!("unix:{}", path.display());
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{name}: another process is listening on this socket"),
                ));
            }
            std::fs::remove_file(path).map_err(|e| annotate(e, &name))?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name}: exists and is not a socket; not removing it"),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(annotate(e, &name)),
    }
    let listener = UnixListener::bind(path).map_err(|e| annotate(e, &name))?;
    // Whoever can connect can create evidence records: owner and group (postfix is made a
    // member of the daemon's group) only.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| annotate(e, &name))?;
    Ok(Listener::Unix(UnixSocket {
        listener,
        path: path.to_path_buf(),
    }))
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unix_socket_stale_live_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("milter.sock");
        let spec = SocketSpec::Unix(path.clone());

        let first = bind(&spec).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        // A live socket is not stolen.
        let err = bind(&spec).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);

        // A stale socket file (the listener is gone, the file stays) is replaced.
        let std_listener = std::os::unix::net::UnixListener::bind(dir.path().join("s2")).unwrap();
        drop(std_listener);
        let stale = SocketSpec::Unix(dir.path().join("s2"));
        assert!(bind(&stale).await.is_ok());

        drop(first);
        assert!(!path.exists(), "socket file removed on drop");

        std::fs::write(&path, b"not a socket").unwrap();
        let err = bind(&spec).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(path.exists());
    }

    #[tokio::test]
    async fn inet_reports_bound_port() {
        let spec = SocketSpec::Inet {
            host: "127.0.0.1".into(),
            port: 0,
        };
        let l = bind(&spec).await.unwrap();
        assert_ne!(l.local_addr().unwrap().port(), 0);
    }
}
