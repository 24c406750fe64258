//! SMTP command lines (RFC 5321 §4.1) parsed into a [`Command`]; no I/O, no policy.

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Ehlo(String),
    Helo(String),
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    Mail {
        path: String,
        params: Vec<Param>,
    },
    Rcpt {
        path: String,
        params: Vec<Param>,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Unknown,
}

/// An ESMTP parameter `KEYWORD[=value]`; the keyword in upper case.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Param {
    pub key: String,
    pub value: Option<String>,
}

/// A malformed command: the reply to send.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError(pub &'static str);

pub(crate) fn parse(line: &str) -> Result<Command, SyntaxError> {
    let (verb, rest) = match line.split_once(' ') {
        Some((v, r)) => (v, r.trim()),
        None => (line, ""),
    };
    let no_args = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(SyntaxError("501 5.5.4 Syntax error: no parameters allowed"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" | "HELO" if rest.is_empty() || rest.contains(' ') => Err(SyntaxError(
            "501 5.5.4 Syntax error: EHLO/HELO needs exactly one domain or address literal",
        )),
        "EHLO" => Ok(Command::Ehlo(rest.to_string())),
        "HELO" => Ok(Command::Helo(rest.to_string())),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => parse_auth(rest),
        "MAIL" => {
            let (path, params) = parse_path_command(rest, "FROM:")?;
            Ok(Command::Mail { path, params })
        }
        "RCPT" => {
            let (path, params) = parse_path_command(rest, "TO:")?;
            Ok(Command::Rcpt { path, params })
        }
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        _ => Ok(Command::Unknown),
    }
}

fn parse_auth(rest: &str) -> Result<Command, SyntaxError> {
    let mut parts = rest.split(' ').filter(|p| !p.is_empty());
    let mechanism = parts
        .next()
        .ok_or(SyntaxError(
            "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
        ))?
        .to_ascii_uppercase();
    let initial = parts.next().map(str::to_string);
    if parts.next().is_some() {
        return Err(SyntaxError(
            "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
        ));
    }
    Ok(Command::Auth { mechanism, initial })
}

/// `FROM:<path> params` / `TO:<path> params`; a space after the colon is tolerated.
fn parse_path_command(rest: &str, prefix: &str) -> Result<(String, Vec<Param>), SyntaxError> {
    let err = SyntaxError(if prefix == "FROM:" {
        "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
    } else {
        "501 5.5.4 Syntax: RCPT TO:<address> [parameters]"
    });
    let head = rest.get(..prefix.len()).ok_or(SyntaxError(err.0))?;
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(err);
    }
    let after = rest[prefix.len()..].trim_start();
    let inner_end = closing_bracket(after).ok_or(SyntaxError(err.0))?;
    let path = strip_source_route(&after[1..inner_end]);
    let mut params = Vec::new();
    for word in after[inner_end + 1..].split(' ').filter(|w| !w.is_empty()) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (word, None),
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(SyntaxError("501 5.5.4 Syntax error in parameters"));
        }
        params.push(Param {
            key: key.to_ascii_uppercase(),
            value,
        });
    }
    Ok((path.to_string(), params))
}

/// Index of the `>` closing the path that starts at `s[0] == '<'`, honouring quoted strings.
fn closing_bracket(s: &str) -> Option<usize> {
    if !s.starts_with('<') {
        return None;
    }
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `@a,@b:user@example` → `user@example` (RFC 5321 §4.1.2: source routes are ignored).
fn strip_source_route(path: &str) -> &str {
    if path.starts_with('@')
        && let Some((_, mailbox)) = path.split_once(':')
    {
        return mailbox;
    }
    path
}

/// Splits a mailbox into local part and domain (lower-cased, a trailing dot removed).
pub(crate) fn split_mailbox(addr: &str) -> Option<(&str, String)> {
    let (local, domain) = addr.rsplit_once('@')?;
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if local.is_empty() || domain.is_empty() || domain.contains(['<', '>', ' ']) {
        return None;
    }
    Some((local, domain.to_lowercase()))
}

/// Does `domain` (lower case) belong to one of the De-Mail domain patterns?
pub(crate) fn is_demail_domain(domain: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_prefix("*.") {
        Some(parent) => domain
            .strip_suffix(parent)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        None => domain == p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive_and_arguments_checked() {
        assert_eq!(
            parse("ehlo gw.example"),
            Ok(Command::Ehlo("gw.example".into()))
        );
        assert_eq!(parse("QUIT"), Ok(Command::Quit));
        assert!(parse("QUIT now").is_err());
        assert!(parse("EHLO").is_err());
        assert_eq!(parse("STARTTLS"), Ok(Command::StartTls));
        assert_eq!(parse("XYZZY"), Ok(Command::Unknown));
        assert_eq!(
            parse("AUTH plain AGd3AHNlY3JldA=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGd3AHNlY3JldA==".into())
            })
        );
    }

    #[test]
    fn mail_and_rcpt_paths_and_parameters() {
        assert_eq!(
            parse("MAIL FROM:<info@magdeburg.de-mail.de> SIZE=1000 body=8BITMIME SMTPUTF8"),
            Ok(Command::Mail {
                path: "info@magdeburg.de-mail.de".into(),
                params: vec![
                    Param {
                        key: "SIZE".into(),
                        value: Some("1000".into())
                    },
                    Param {
                        key: "BODY".into(),
                        value: Some("8BITMIME".into())
                    },
                    Param {
                        key: "SMTPUTF8".into(),
                        value: None
                    },
                ]
            })
        );
        assert_eq!(
            parse("mail from: <>"),
            Ok(Command::Mail {
                path: String::new(),
                params: vec![]
            })
        );
        assert_eq!(
            parse("RCPT TO:<@relay.example:bob@x.de-mail.de>"),
            Ok(Command::Rcpt {
                path: "bob@x.de-mail.de".into(),
                params: vec![]
            })
        );
        assert_eq!(
            parse(r#"RCPT TO:<"odd > name"@x.de-mail.de>"#),
            Ok(Command::Rcpt {
                path: r#""odd > name"@x.de-mail.de"#.into(),
                params: vec![]
            })
        );
        assert!(parse("MAIL FROM:info@x").is_err());
        assert!(parse("MAIL TO:<a@b>").is_err());
        assert!(parse("RCPT TO:<a@b").is_err());
        assert!(parse("MAIL FROM:<a@b> =x").is_err());
        assert!(parse("MAIL").is_err());
    }

    #[test]
    fn demail_domains() {
        let patterns = vec!["*.de-mail.de".to_string(), "provider.example".to_string()];
        assert!(is_demail_domain("magdeburg.de-mail.de", &patterns));
        assert!(is_demail_domain("a.b.de-mail.de", &patterns));
        assert!(!is_demail_domain("de-mail.de", &patterns));
        assert!(!is_demail_domain("evilde-mail.de", &patterns));
        assert!(is_demail_domain("provider.example", &patterns));
        assert!(!is_demail_domain("sub.provider.example", &patterns));
        assert!(!is_demail_domain("gmail.com", &patterns));
    }

    #[test]
    fn mailboxes() {
        assert_eq!(
            split_mailbox("Bob@X.De-Mail.De."),
            Some(("Bob", "x.de-mail.de".into()))
        );
        assert_eq!(split_mailbox("postmaster"), None);
        assert_eq!(split_mailbox("@x"), None);
    }
}
