//! Parsers for the value syntaxes of the file: sizes, durations, sockets, fingerprints.
//! Each returns a message suitable for the admin on failure.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{DomainPattern, SocketSpec};
use crate::suggest::closest;

/// One of a fixed set of words, e.g. `tls = "implicit"`.
pub(super) fn choice<T: Copy>(raw: &str, choices: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, v)) = choices.iter().find(|(w, _)| *w == raw) {
        return Ok(*v);
    }
    let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
    let listed = words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = closest(raw, &words)
        .map(|w| format!("; did you mean \"{w}\"?"))
        .unwrap_or_default();
    Err(format!("expected one of {listed}, found {raw:?}{hint}"))
}

/// `20MiB`, `20 MB`, `512KiB`, `1048576` (bytes). Units are case-insensitive.
pub(super) fn size(raw: &str) -> Result<u64, String> {
    let t = raw.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let bad = || format!("expected a size like \"20MiB\", \"20MB\" or \"1048576\", found {raw:?}");
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = n
        .checked_mul(factor)
        .ok_or_else(|| format!("size {raw:?} is too large"))?;
    if bytes == 0 {
        return Err("size must be greater than zero".into());
    }
    Ok(bytes)
}

/// `5s`, `500ms`, `2min`.
pub(super) fn duration(raw: &str) -> Result<Duration, String> {
    let t = raw.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let bad = || format!("expected a duration like \"5s\" or \"500ms\", found {raw:?}");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "min" | "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err("duration must be greater than zero".into());
    }
    Ok(d)
}

/// `inet:HOST:PORT` (IPv6 host in brackets) or `unix:/ABSOLUTE/PATH`. Port 0 asks the kernel
/// for a free port, which tests use.
pub(super) fn socket(raw: &str) -> Result<SocketSpec, String> {
    let expected =
        || format!("expected \"inet:HOST:PORT\" or \"unix:/ABSOLUTE/PATH\", found {raw:?}");
    if let Some(rest) = raw.strip_prefix("inet:") {
        let (host, port) = host_port(rest).map_err(|e| format!("{}: {e}", expected()))?;
        Ok(SocketSpec::Inet { host, port })
    } else if let Some(path) = raw.strip_prefix("unix:") {
        if !path.starts_with('/') {
            return Err(format!("unix socket path must be absolute, found {path:?}"));
        }
        let path = PathBuf::from(path);
        // `..` would make the chroot-relative path smtpd uses name another file.
        if path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(format!(
                "unix socket path must not contain `..`, found {:?}",
                path.display()
            ));
        }
        Ok(SocketSpec::Unix(path))
    } else {
        Err(expected())
    }
}

/// `HOST:PORT`, `[IPV6]:PORT`; the returned host has no brackets.
pub(super) fn host_port(raw: &str) -> Result<(String, u16), String> {
    let (host, port) = raw
        .rsplit_once(':')
        .ok_or_else(|| format!("{raw:?} has no `:PORT`"))?;
    let host = match host.strip_prefix('[') {
        Some(h) => h
            .strip_suffix(']')
            .ok_or_else(|| format!("unbalanced `[` in {raw:?}"))?,
        None if host.contains(':') => {
            return Err(format!(
                "write an IPv6 address in brackets: [{host}]:{port}"
            ));
        }
        None => host,
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("bad host in {raw:?}"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("port {port:?} is not a number 0..65535"))?;
    Ok((host.to_string(), port))
}

/// A SHA-256 fingerprint: 64 hex digits, optionally as colon-separated pairs.
pub(super) fn fingerprint(raw: &str) -> Result<[u8; 32], String> {
    let bad = |why: &str| {
        format!(
            "SHA-256 fingerprint {raw:?} {why} (expected 64 hex digits, colons between pairs allowed)"
        )
    };
    let hex: String = if raw.contains(':') {
        let pairs: Vec<&str> = raw.split(':').collect();
        if pairs.iter().any(|p| p.len() != 2) {
            return Err(bad("has colons that do not separate pairs"));
        }
        pairs.concat()
    } else {
        raw.to_string()
    };
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(bad(&format!("contains `{c}`")));
    }
    if hex.len() != 64 {
        return Err(bad(&format!("has {} hex digits", hex.len())));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad("is not hex"))?;
    }
    Ok(out)
}

/// `*.parent` or an exact domain.
pub(super) fn domain_pattern(raw: &str) -> Result<DomainPattern, String> {
    if let Some(parent) = raw.strip_prefix("*.") {
        crate::address::parse_domain(parent)
            .map(DomainPattern::Subdomains)
            .map_err(|e| {
                format!("{e} (a wildcard needs a parent with a dot, e.g. \"*.de-mail.de\")")
            })
    } else if raw.contains('*') {
        Err(format!(
            "{raw:?}: `*` is only allowed as a leading `*.`, as in \"*.de-mail.de\""
        ))
    } else {
        crate::address::parse_domain(raw).map(DomainPattern::Exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("20MiB"), Ok(20 * 1024 * 1024));
        assert_eq!(size("20MB"), Ok(20_000_000));
        assert_eq!(size("20 mib"), Ok(20 * 1024 * 1024));
        assert_eq!(size("1048576"), Ok(1_048_576));
        assert_eq!(size("512KiB"), Ok(512 * 1024));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        for bad in [
            "",
            "MiB",
            "20 furlongs",
            "-5MB",
            "1.5MB",
            "0",
            "99999999999999999999GiB",
        ] {
            assert!(size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2min"), Ok(Duration::from_secs(120)));
        for bad in ["", "5", "s", "5h", "0s", "-1s", "1.5s"] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sockets() {
        assert_eq!(
            socket("inet:127.0.0.1:8891"),
            Ok(SocketSpec::Inet {
                host: "127.0.0.1".into(),
                port: 8891
            })
        );
        assert_eq!(
            socket("inet:[::1]:8891"),
            Ok(SocketSpec::Inet {
                host: "::1".into(),
                port: 8891
            })
        );
        assert_eq!(
            socket("unix:/var/spool/postfix/demail/milter.sock"),
            Ok(SocketSpec::Unix(
                "/var/spool/postfix/demail/milter.sock".into()
            ))
        );
        for bad in [
            "127.0.0.1:8891",
            "inet:127.0.0.1",
            "inet::8891",
            "inet:127.0.0.1:99999",
            "inet:::1:8891",
            "unix:relative.sock",
            "unix:/var/spool/postfix/../../etc/milter.sock",
            "unix:/var/spool/postfix/demail/..",
            "tcp:1.2.3.4:5",
        ] {
            assert!(socket(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn fingerprints() {
        let plain = "ab".repeat(32);
        assert_eq!(fingerprint(&plain), Ok([0xab; 32]));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(fingerprint(&colons), Ok([0xab; 32]));
        assert!(fingerprint(&"ab".repeat(31)).is_err());
        assert!(fingerprint(&"zz".repeat(32)).is_err());
        assert!(fingerprint("abc:d").is_err());
        let e = fingerprint(&"ab".repeat(20)).unwrap_err();
        assert!(e.contains("40 hex digits"), "{e}");
    }

    #[test]
    fn domain_patterns() {
        assert_eq!(
            domain_pattern("*.De-Mail.de"),
            Ok(DomainPattern::Subdomains("de-mail.de".into()))
        );
        assert_eq!(
            domain_pattern("demail.provider.example"),
            Ok(DomainPattern::Exact("demail.provider.example".into()))
        );
        for bad in ["*", "*.de", "de*.example", "a.*.example", "", "nodot"] {
            assert!(domain_pattern(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn choices_suggest() {
        let c = [("implicit", 1), ("starttls", 2)];
        assert_eq!(choice("starttls", &c), Ok(2));
        let e = choice("startls", &c).unwrap_err();
        assert!(e.contains("did you mean \"starttls\""), "{e}");
        assert!(choice("Implicit", &c).is_err());
    }
}
