//! LIST, LSUB and LIST-EXTENDED: the virtual folders join Dovecot's answer (before its tagged
//! OK), with `\Subscribed` wherever subscriptions are asked for (Thunderbird shows only
//! subscribed folders), never a special-use attribute, with `* STATUS` lines for LIST-STATUS;
//! a real folder of the same name is left out so no name appears twice.

use super::{Session, local};
use crate::folders::{self, Namespace, Target};
use crate::token::{self, Token};

#[derive(Clone, Debug, Default)]
pub struct Request {
    pub lsub: bool,
    /// LIST-EXTENDED (selection or return options, or several patterns).
    pub extended: bool,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    pub select_subscribed: bool,
    pub select_special_use: bool,
    pub return_subscribed: bool,
    pub return_children: bool,
    /// STATUS items asked for by `RETURN (STATUS (...))`.
    pub return_status: Option<Vec<String>>,
    /// Parsed at all; an unparsable request gets nothing added (Dovecot answers it).
    pub valid: bool,
}

impl Request {
    pub fn parse(message: &[u8], lsub: bool) -> Option<Request> {
        let t = token::tokens(message).ok()?;
        let mut r = Request {
            lsub,
            valid: true,
            ..Request::default()
        };
        let mut i = 2;
        if !lsub && let Some(Token::List(sel)) = t.get(i) {
            r.extended = true;
            for o in sel {
                match o.upper().as_deref() {
                    Some("SUBSCRIBED") => r.select_subscribed = true,
                    Some("SPECIAL-USE") => r.select_special_use = true,
                    _ => {}
                }
            }
            i += 1;
        }
        r.reference = t.get(i)?.string().unwrap_or_default().to_vec();
        i += 1;
        match t.get(i)? {
            Token::List(ps) if !lsub => {
                r.extended = true;
                r.patterns = ps
                    .iter()
                    .filter_map(|p| p.string().map(<[u8]>::to_vec))
                    .collect();
            }
            p => r.patterns = vec![p.string()?.to_vec()],
        }
        i += 1;
        if !lsub && t.get(i).is_some_and(|w| w.is_atom("RETURN")) {
            r.extended = true;
            let opts = t.get(i + 1)?.list()?;
            let mut j = 0;
            while j < opts.len() {
                match opts[j].upper().as_deref() {
                    Some("SUBSCRIBED") => r.return_subscribed = true,
                    Some("CHILDREN") => r.return_children = true,
                    Some("STATUS") => {
                        let items = opts.get(j + 1)?.list()?;
                        r.return_status = Some(items.iter().filter_map(Token::upper).collect());
                        j += 1;
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        Some(r)
    }
}

/// The virtual folders' lines for this request, in the answer's order.
pub async fn virtual_lines(s: &mut Session, req: &Request) -> Result<Vec<Vec<u8>>, String> {
    let (Some(layout), Some(ns)) = (s.layout.clone(), s.namespace.clone()) else {
        return Ok(Vec::new());
    };
    if !req.valid || req.select_special_use || s.login.is_none() {
        return Ok(Vec::new());
    }
    let delim = ns.delimiter;
    let Some(reference) = folders::decode(&req.reference, s.utf8) else {
        return Ok(Vec::new());
    };
    let patterns: Vec<String> = req
        .patterns
        .iter()
        .filter_map(|p| folders::decode(p, s.utf8))
        .map(|p| format!("{reference}{p}"))
        .collect();
    let subscribed = req.lsub || req.select_subscribed || req.return_subscribed;
    let mut out = Vec::new();
    for (target, name) in layout.names() {
        if !patterns.iter().any(|p| folders::matches(p, name, delim)) {
            continue;
        }
        let mut attrs: Vec<&str> = Vec::new();
        match target {
            Target::Root => {
                attrs.push("\\Noselect");
                if !req.lsub {
                    attrs.push("\\HasChildren");
                }
            }
            Target::Folder(_) if !req.lsub => attrs.push("\\HasNoChildren"),
            Target::Folder(_) => {}
            Target::UnderRoot => continue,
        }
        if subscribed && !req.lsub {
            attrs.push("\\Subscribed");
        }
        let mut line = format!(
            "* {} ({}) ",
            if req.lsub { "LSUB" } else { "LIST" },
            attrs.join(" ")
        )
        .into_bytes();
        match delim {
            Some(d) => token::write_string(&mut line, d.to_string().as_bytes()),
            None => line.extend_from_slice(b"NIL"),
        }
        line.push(b' ');
        let wire = folders::encode(name, s.utf8);
        token::write_string(&mut line, &wire);
        line.extend_from_slice(b"\r\n");
        out.push(line);
        if let (Target::Folder(role), Some(items)) = (target, &req.return_status)
            && let Some(status) = local::status_line(s, role, &wire, items).await?
        {
            out.push(status);
        }
    }
    Ok(out)
}

/// Whether a LIST/LSUB/STATUS line from Dovecot goes to the client: not when it names one of
/// the virtual folders (the virtual one is listed instead).
pub fn keep_upstream_line(s: &Session, message: &[u8]) -> bool {
    let Some(layout) = &s.layout else {
        return true;
    };
    let Ok(t) = token::tokens(message) else {
        return true;
    };
    let name = match t.get(1).and_then(Token::upper).as_deref() {
        Some("LIST" | "LSUB") => t.get(4),
        Some("STATUS") => t.get(2),
        _ => None,
    };
    match name.and_then(Token::string) {
        Some(n) => !layout.is_virtual(n, s.utf8),
        None => true,
    }
}

/// The first personal namespace of a `* NAMESPACE` answer.
pub fn personal_namespace(line: &[u8]) -> Option<Namespace> {
    let t = token::tokens(line).ok()?;
    let personal = t.get(2)?.list()?;
    let first = personal.first()?.list()?;
    let prefix = String::from_utf8(first.first()?.string()?.to_vec()).ok()?;
    let delimiter = first
        .get(1)
        .and_then(Token::string)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.chars().next());
    Some(Namespace { prefix, delimiter })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thunderbird_and_outlook_forms() {
        let r = Request::parse(
            b"12 list (subscribed) \"\" \"*\" return (special-use)\r\n",
            false,
        )
        .unwrap();
        assert!(r.extended && r.select_subscribed && !r.select_special_use);
        assert_eq!(r.patterns, vec![b"*".to_vec()]);
        let r = Request::parse(
            b"a LIST \"\" (\"INBOX\" \"De-Mail/*\") RETURN (SUBSCRIBED CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
            false,
        )
        .unwrap();
        assert_eq!(r.patterns.len(), 2);
        assert!(r.return_subscribed && r.return_children);
        assert_eq!(
            r.return_status,
            Some(vec!["MESSAGES".into(), "UNSEEN".into()])
        );
        let r = Request::parse(b"a LSUB \"\" \"*\"\r\n", true).unwrap();
        assert!(r.lsub && !r.extended);
        let r = Request::parse(b"a LIST (SPECIAL-USE) \"\" \"*\"\r\n", false).unwrap();
        assert!(r.select_special_use);
        assert!(Request::parse(b"a LIST\r\n", false).is_none());
    }

    #[test]
    fn namespaces() {
        assert_eq!(
            personal_namespace(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
            Some(Namespace {
                prefix: String::new(),
                delimiter: Some('/')
            })
        );
        assert_eq!(
            personal_namespace(b"* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\"))\r\n"),
            Some(Namespace {
                prefix: "INBOX.".into(),
                delimiter: Some('.')
            })
        );
        assert_eq!(personal_namespace(b"* NAMESPACE NIL NIL NIL\r\n"), None);
    }
}
