//! Where a store lives, as the configuration names it: an SQLite file path, or a PostgreSQL
//! connection in libpq's URL (`postgresql://…`) or key/value (`host=… dbname=…`) form.
//!
//! The TLS keys (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) are read here, because the
//! driver knows neither `verify-full` nor certificate files. Over TCP the default is
//! `verify-full`; modes that encrypt without checking the server (`allow`, `prefer`,
//! `require`) are refused, and `disable` is allowed only towards a unix socket.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A store's location.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgLocation),
}

/// A checked PostgreSQL connection description. Its `Debug`/`Display` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgLocation {
    /// The connection string as written, minus the TLS keys (those are below).
    pub(crate) rest: String,
    pub(crate) tls: Tls,
    pub(crate) password_file: Option<PathBuf>,
    described: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tls {
    /// Only towards a unix socket.
    Disable,
    Verify {
        /// `verify-full`: the certificate must also name the host.
        hostname: bool,
        root_cert: Option<PathBuf>,
        client: Option<(PathBuf, PathBuf)>,
    },
}

impl Location {
    /// Whether `value` names a PostgreSQL server rather than an SQLite file.
    pub fn is_postgres(value: &str) -> bool {
        let v = value.trim_start();
        v.starts_with("postgresql://")
            || v.starts_with("postgres://")
            || v.split_whitespace().any(|t| {
                t.split_once('=').is_some_and(|(k, _)| {
                    matches!(k, "host" | "hostaddr" | "dbname" | "user" | "port")
                })
            })
    }

    /// Parses a configured value. Relative SQLite paths and certificate files resolve against
    /// `base` (the configuration file's directory). `password_file` holds the password (first
    /// line) for a connection string that carries none.
    pub fn parse(
        value: &str,
        base: &Path,
        password_file: Option<PathBuf>,
    ) -> Result<Location, String> {
        if !Location::is_postgres(value) {
            if value.trim().is_empty() {
                return Err("empty database location".into());
            }
            if password_file.is_some() {
                return Err("a password file is only for a PostgreSQL database".into());
            }
            return Ok(Location::Sqlite(base.join(value)));
        }
        PgLocation::parse(value, base, password_file).map(Location::Postgres)
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// Whether the store may not have been created yet: an SQLite file that does not exist.
    /// A PostgreSQL store always exists once configured (`demailctl evidence migrate` makes
    /// its schema; opening it says so when that is missing).
    pub fn is_missing(&self) -> bool {
        self.sqlite_path().is_some_and(|p| !p.exists())
    }

    /// For messages and reports: the path, or the server without any secret.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(pg) => pg.described.clone(),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.described)
    }
}

impl fmt::Display for PgLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.described)
    }
}

type Pair = (String, String);
/// Writes the connection string again from the pairs that are not ours.
type Rebuild = Box<dyn Fn(&[Pair]) -> String>;

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

impl PgLocation {
    fn parse(value: &str, base: &Path, password_file: Option<PathBuf>) -> Result<Self, String> {
        let value = value.trim();
        let (pairs, rebuild): (Vec<Pair>, Rebuild) = if value.starts_with("postgresql://")
            || value.starts_with("postgres://")
        {
            let (head, query) = value.split_once('?').unwrap_or((value, ""));
            let pairs = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    Ok((percent_decode(k)?, percent_decode(v)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let head = head.to_string();
            (
                pairs,
                Box::new(move |rest: &[(String, String)]| {
                    if rest.is_empty() {
                        head.clone()
                    } else {
                        let q: Vec<String> = rest
                            .iter()
                            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                            .collect();
                        format!("{head}?{}", q.join("&"))
                    }
                }),
            )
        } else {
            (
                key_values(value)?,
                Box::new(|rest: &[(String, String)]| {
                    rest.iter()
                        .map(|(k, v)| {
                            format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                }),
            )
        };
        let get = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let rest_pairs: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| !TLS_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        let rest = rebuild(&rest_pairs);
        let config = postgres::Config::from_str(&rest).map_err(|e| format!("{e}"))?;
        if config.get_hosts().is_empty() {
            return Err("names no host (add host=… or postgresql://HOST/…)".into());
        }
        if config.get_dbname().is_none() {
            return Err("names no database (add dbname=… or postgresql://…/DBNAME)".into());
        }
        if config.get_user().is_none() {
            return Err("names no user (add user=… or postgresql://USER@…)".into());
        }
        if config.get_password().is_some() && password_file.is_some() {
            return Err("carries a password and a password file is set too: keep one".into());
        }
        let unix_only = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, postgres::config::Host::Unix(_)));
        let file = |key: &str| get(key).map(|v| base.join(v));
        let tls = match get("sslmode").as_deref() {
            Some("disable") if unix_only => Tls::Disable,
            Some("disable") => {
                return Err(
                    "sslmode=disable is allowed only towards a unix socket: use verify-full".into(),
                );
            }
            Some(m @ ("allow" | "prefer" | "require")) => {
                return Err(format!(
                    "sslmode={m} does not check the server's certificate: use verify-full (or verify-ca)"
                ));
            }
            None if unix_only => Tls::Disable,
            None | Some("verify-full") | Some("verify-ca") => Tls::Verify {
                hostname: get("sslmode").as_deref() != Some("verify-ca"),
                root_cert: file("sslrootcert"),
                client: match (file("sslcert"), file("sslkey")) {
                    (Some(c), Some(k)) => Some((c, k)),
                    (None, None) => None,
                    _ => return Err("sslcert and sslkey go together".into()),
                },
            },
            Some(other) => return Err(format!("unknown sslmode {other:?}")),
        };
        let described = describe(&config, &tls);
        Ok(PgLocation {
            rest,
            tls,
            password_file: password_file.map(|p| base.join(p)),
            described,
        })
    }

    /// The driver's configuration, with the password read from the password file.
    pub(crate) fn config(&self) -> Result<postgres::Config, String> {
        let mut config = postgres::Config::from_str(&self.rest).map_err(|e| e.to_string())?;
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("password file {}: {e}", path.display()))?;
            let password = text.lines().next().unwrap_or("").trim_end_matches('\r');
            if password.is_empty() {
                return Err(format!("password file {} is empty", path.display()));
            }
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("demail-gateway");
        }
        Ok(config)
    }

    /// Files this location reads (for `check-config`).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.password_file.iter().cloned().collect();
        if let Tls::Verify {
            root_cert, client, ..
        } = &self.tls
        {
            v.extend(root_cert.iter().cloned());
            if let Some((c, k)) = client {
                v.push(c.clone());
                v.push(k.clone());
            }
        }
        v
    }
}

fn describe(config: &postgres::Config, tls: &Tls) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
            postgres::config::Host::Unix(d) => format!("{}:{p}", d.display()),
        })
        .collect();
    let mode = match tls {
        Tls::Disable => "disable",
        Tls::Verify { hostname: true, .. } => "verify-full",
        Tls::Verify { .. } => "verify-ca",
    };
    format!(
        "postgresql://{}@{}/{} (sslmode={mode})",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// libpq's key/value form: `key=value` pairs separated by spaces, values optionally in single
/// quotes with `\'` and `\\` escapes.
fn key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("{key:?} is not followed by '='"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("the value of {key:?} lacks its closing quote")),
                    Some('\'') => break,
                    Some('\\') => value.push(chars.next().unwrap_or('\\')),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(if c == '\\' {
                    chars.next();
                    chars.next().unwrap_or('\\')
                } else {
                    chars.next();
                    c
                });
            }
        }
        out.push((key, value));
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(v: &str) -> Result<PgLocation, String> {
        match Location::parse(v, Path::new("/etc/demail"), None)? {
            Location::Postgres(p) => Ok(p),
            Location::Sqlite(p) => panic!("{v} taken for SQLite {p:?}"),
        }
    }

    #[test]
    fn paths_stay_sqlite_and_resolve_against_the_config() {
        assert_eq!(
            Location::parse("evidence.sqlite", Path::new("/etc/demail"), None).unwrap(),
            Location::Sqlite("/etc/demail/evidence.sqlite".into())
        );
        assert_eq!(
            Location::parse("/var/lib/demail/e.sqlite", Path::new("/etc"), None).unwrap(),
            Location::Sqlite("/var/lib/demail/e.sqlite".into())
        );
        assert!(Location::parse("e.sqlite", Path::new("/"), Some("pw".into())).is_err());
    }

    #[test]
    fn both_forms_default_to_verify_full_and_never_show_the_password() {
        let url = pg("postgresql://gw:s3cret@db.example:5433/demail?sslrootcert=ca.pem").unwrap();
        assert_eq!(
            url.tls,
            Tls::Verify {
                hostname: true,
                root_cert: Some("/etc/demail/ca.pem".into()),
                client: None
            }
        );
        assert!(!url.rest.contains("sslrootcert"));
        assert_eq!(
            url.to_string(),
            "postgresql://gw@db.example:5433/demail (sslmode=verify-full)"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let kv = pg("host=db.example dbname=demail user=gw password='a b\\'c' sslmode=verify-ca")
            .unwrap();
        assert!(matches!(
            kv.tls,
            Tls::Verify {
                hostname: false,
                ..
            }
        ));
        assert_eq!(kv.config().unwrap().get_password(), Some(&b"a b'c"[..]));
        assert!(!kv.to_string().contains("a b"));
    }

    #[test]
    fn weak_tls_and_incomplete_strings_are_refused_with_the_reason() {
        for (v, why) in [
            (
                "postgresql://gw@db/demail?sslmode=require",
                "does not check",
            ),
            ("postgresql://gw@db/demail?sslmode=prefer", "does not check"),
            (
                "host=db dbname=demail user=gw sslmode=disable",
                "unix socket",
            ),
            (
                "host=db dbname=demail user=gw sslmode=bogus",
                "unknown sslmode",
            ),
            ("host=db user=gw", "no database"),
            ("dbname=demail user=gw", "no host"),
            ("host=db dbname=demail", "no user"),
            ("host=db dbname=demail user=gw sslcert=c.pem", "go together"),
            ("host=db dbname='demail user=gw", "closing quote"),
        ] {
            let err = pg(v).unwrap_err();
            assert!(err.contains(why), "{v}: {err}");
        }
        assert_eq!(
            pg("host=/run/postgresql dbname=demail user=gw")
                .unwrap()
                .tls,
            Tls::Disable
        );
    }

    #[test]
    fn a_password_file_is_read_and_may_not_double_a_password() {
        let dir = std::env::temp_dir().join(format!("demail-sql-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "hunter2\n").unwrap();
        let Location::Postgres(p) =
            Location::parse("host=db dbname=d user=u", &dir, Some("pw".into())).unwrap()
        else {
            panic!()
        };
        assert_eq!(p.config().unwrap().get_password(), Some(&b"hunter2"[..]));
        assert_eq!(p.files(), vec![dir.join("pw")]);
        let err = Location::parse("postgresql://u:x@db/d", &dir, Some("pw".into())).unwrap_err();
        assert!(err.contains("keep one"), "{err}");
        std::fs::write(dir.join("pw"), "\n").unwrap();
        assert!(p.config().unwrap_err().contains("empty"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
