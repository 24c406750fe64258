//! The listening socket: `inet:host:port` or `unix:/path`, as in `[milter] listen`.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use demail_policy::{MILTER_SOCKET_GROUP, SocketSpec};
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
/// (another instance answers) or a file that is not a socket is an error. The UNIX socket gets
/// mode 0660 and group [`MILTER_SOCKET_GROUP`] when that group exists.
pub async fn bind(spec: &SocketSpec) -> io::Result<Listener> {
    match spec {
        SocketSpec::Inet { host, port } => {
            let l = TcpListener::bind((host.as_str(), *port))
                .await
                .map_err(|e| annotate(e, &format!("inet:{host}:{port}")))?;
            Ok(Listener::Tcp(l))
        }
        SocketSpec::Unix(path) => bind_unix(path, MILTER_SOCKET_GROUP).await,
    }
}

async fn bind_unix(path: &Path, group: &str) -> io::Result<Listener> {
    let name = format!("unix:{}", path.display());
    let (dir, file) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(file)) => (dir, file),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: not a socket file path"),
            ));
        }
    };
    check_directory(dir, &name)?;
    remove_stale(path, &name).await?;
    // Bound under a temporary name and renamed into place only with its final mode and group,
    // so the socket is never reachable under its path with the umask's permissions.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    remove_stale(&tmp, &name).await?;
    let listener = UnixListener::bind(&tmp).map_err(|e| directory_error(e, dir, &name))?;
    let placed = restrict(&tmp, group, &name)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| directory_error(e, dir, &name)));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(Listener::Unix(UnixSocket {
        listener,
        path: path.to_path_buf(),
    }))
}

/// Whoever can connect can create evidence records and claim to be the provider's service:
/// owner and Postfix's group only.
fn restrict(socket: &Path, group: &str, name: &str) -> io::Result<()> {
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| annotate(e, name))?;
    if let Some(gid) = group_id(group).map_err(|e| annotate(e, name))? {
        std::os::unix::fs::chown(socket, None, Some(gid)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{name}: cannot give the socket to group {group} (gid {gid}): {e}; run \
                     demail-milter with {group} as a supplementary group (systemd: \
                     SupplementaryGroups={group})"
                ),
            )
        })?;
    }
    Ok(())
}

/// The socket's directory must exist: the milter does not create directories inside Postfix's
/// spool on its own.
fn check_directory(dir: &Path, name: &str) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{name}: {} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{name}: directory {0} does not exist; create it for the milter's user, \
                 e.g. `install -d -o demail -g {MILTER_SOCKET_GROUP} -m 0750 {0}`",
                dir.display()
            ),
        )),
        Err(e) => Err(annotate(e, &format!("{name}: {}", dir.display()))),
    }
}

fn directory_error(e: io::Error, dir: &Path, name: &str) -> io::Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        io::Error::new(
            e.kind(),
            format!(
                "{name}: directory {} is not writable for this user: {e}",
                dir.display()
            ),
        )
    } else {
        annotate(e, name)
    }
}

/// Removes a socket file nobody listens on. A live socket, a symbolic link or any other file
/// is left alone: it is an error.
async fn remove_stale(path: &Path, name: &str) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{name}: another process is listening on this socket"),
                ));
            }
            std::fs::remove_file(path).map_err(|e| annotate(e, name))
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{name}: {} exists and is not a socket; not removing it",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(annotate(e, name)),
    }
}

/// The gid of a group by name (through NSS); `None` when there is no such group.
fn group_id(name: &str) -> io::Result<Option<u32>> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "group name contains NUL"))?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `group` and `buf` outlive the call; getgrnam_r writes only into them and
        // sets `found` to null or to `&group`.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut group,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some(group.gr_gid)),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            libc::ENOENT | libc::ESRCH => return Ok(None),
            rc => {
                let e = io::Error::from_raw_os_error(rc);
                return Err(io::Error::new(
                    e.kind(),
                    format!("looking up group {name}: {e}"),
                ));
            }
        }
    }
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[tokio::test]
    async fn unix_socket_stale_live_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("milter.sock");
        let spec = SocketSpec::Unix(path.clone());

        let first = bind(&spec).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        // Reachable, and the temporary name is gone.
        UnixStream::connect(&path).await.unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
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

        // Neither a regular file nor a symbolic link (to a file or to a stale socket) is
        // removed.
        std::fs::write(&path, b"not a socket").unwrap();
        let err = bind(&spec).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
        let stale_target = dir.path().join("s3");
        drop(std::os::unix::net::UnixListener::bind(&stale_target).unwrap());
        for target in [&path, &stale_target] {
            let link = dir.path().join("link.sock");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, &link).unwrap();
            let err = bind(&SocketSpec::Unix(link.clone())).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
            assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
            assert!(target.exists());
        }
    }

    #[tokio::test]
    async fn unix_socket_mode_0660_and_postfix_group_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        // The configured group (postfix) when the system has it.
        let path = dir.path().join("default.sock");
        let l = bind(&SocketSpec::Unix(path.clone())).await.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o660);
        match group_id(MILTER_SOCKET_GROUP).unwrap() {
            Some(gid) => assert_eq!(meta.gid(), gid),
            None => assert_eq!(meta.gid(), unsafe { libc::getegid() }),
        }
        drop(l);

        // A group that is not the process's own: the socket gets it.
        let other = ["daemon", "bin", "sys", "adm", "nogroup"]
            .into_iter()
            .find_map(|g| group_id(g).unwrap().map(|gid| (g, gid)))
            .filter(|(_, gid)| *gid != unsafe { libc::getegid() });
        if let Some((group, gid)) = other {
            let path = dir.path().join("other.sock");
            // Only root or a member may hand a file to a group; both are fine here.
            match bind_unix(&path, group).await {
                Ok(_l) => assert_eq!(std::fs::metadata(&path).unwrap().gid(), gid),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
                    assert!(e.to_string().contains("SupplementaryGroups="), "{e}");
                    assert!(!path.exists(), "no half-made socket is left");
                }
            }
        }

        // No such group: the process's group, still 0660.
        let path = dir.path().join("nogroup.sock");
        let _l = bind_unix(&path, "demail-no-such-group").await.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), unsafe { libc::getegid() });
        assert_eq!(group_id("demail-no-such-group").unwrap(), None);
        assert_eq!(group_id("root").unwrap(), Some(0));
    }

    #[tokio::test]
    async fn missing_or_unusable_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("demail");
        let err = bind(&SocketSpec::Unix(missing.join("milter.sock")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(
            text.contains(&format!("directory {} does not exist", missing.display())),
            "{text}"
        );
        assert!(text.contains("install -d"), "{text}");
        assert!(!missing.exists(), "the milter does not create it");

        let file = dir.path().join("plain");
        std::fs::write(&file, b"").unwrap();
        let err = bind(&SocketSpec::Unix(file.join("milter.sock")))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("{} is not a directory", file.display())),
            "{err}"
        );

        // Root may write anywhere, so the refusal itself is tried only without privileges;
        // the message is the same either way.
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let spec = SocketSpec::Unix(ro.join("milter.sock"));
        if unsafe { libc::geteuid() } != 0 {
            let err = bind(&spec).await.unwrap_err();
            assert!(err.to_string().contains("is not writable"), "{err}");
        }
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let err = directory_error(denied, &ro, "unix:/x");
        assert!(
            err.to_string().starts_with(&format!(
                "unix:/x: directory {} is not writable",
                ro.display()
            )),
            "{err}"
        );
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
