//! Which of Dovecot's capabilities the proxy passes on. Kept: everything it can keep consistent
//! for the virtual folders too. Removed: what it cannot honour there or on the wire between.

/// Removed wherever capabilities appear (greeting, CAPABILITY, tagged `OK [CAPABILITY ...]`).
/// - COMPRESS: Thunderbird and mbsync send it right after login; the proxy frames plain bytes.
/// - NOTIFY: events about mailboxes the proxy serves itself could not be produced.
/// - STARTTLS/LOGINDISABLED: TLS towards the client is the proxy's own (added back below).
/// - SORT, THREAD, ESEARCH, ESORT, SEARCHRES, CONTEXT, WITHIN, PREVIEW, SNIPPET, SAVEDATE,
///   CATENATE, URL-PARTIAL: not served for the virtual folders.
const REMOVED_PREFIXES: &[&str] = &[
    "COMPRESS=",
    "NOTIFY",
    "STARTTLS",
    "LOGINDISABLED",
    "SORT",
    "THREAD=",
    "ESEARCH",
    "ESORT",
    "SEARCHRES",
    "CONTEXT=",
    "WITHIN",
    "PREVIEW",
    "SNIPPET=",
    "SAVEDATE",
    "CATENATE",
    "URL-PARTIAL",
    "URLAUTH",
];

/// How the client side of this connection stands.
#[derive(Clone, Copy, Debug)]
pub struct ClientSide {
    /// TLS is active towards the client.
    pub tls: bool,
    /// The listener offers STARTTLS (plain IMAP port).
    pub starttls_offered: bool,
    /// Login without TLS is allowed on this listener (loopback only, see policy).
    pub plaintext_login: bool,
    /// Whether the proxy can serve BINARY for its own folders.
    pub binary: bool,
}

/// Filters a space-separated capability list.
pub fn filter(caps: &str, side: ClientSide) -> String {
    let mut out: Vec<&str> = Vec::new();
    let login_disabled = !side.tls && !side.plaintext_login;
    for cap in caps.split(' ').filter(|c| !c.is_empty()) {
        let upper = cap.to_ascii_uppercase();
        if REMOVED_PREFIXES.iter().any(|p| upper.starts_with(p)) {
            continue;
        }
        if upper == "BINARY" && !side.binary {
            continue;
        }
        if login_disabled && upper.starts_with("AUTH=") {
            continue;
        }
        out.push(cap);
    }
    let mut s = out.join(" ");
    if !side.tls && side.starttls_offered {
        s.push_str(" STARTTLS");
    }
    if login_disabled {
        s.push_str(" LOGINDISABLED");
    }
    s
}

/// Rewrites the capability list inside a response line, if it carries one: `* CAPABILITY ...`,
/// `* OK [CAPABILITY ...] text` and `tag OK [CAPABILITY ...] text`. `None`: no list in it.
pub fn rewrite_line(line: &[u8], side: ClientSide) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(line).ok()?;
    let body = text.trim_end_matches(['\r', '\n']);
    let mut parts = body.splitn(3, ' ');
    let tag = parts.next()?;
    let word = parts.next()?;
    let rest = parts.next().unwrap_or("");
    if tag == "*" && word.eq_ignore_ascii_case("CAPABILITY") {
        return Some(format!("* CAPABILITY {}\r\n", filter(rest, side)).into_bytes());
    }
    let status = ["OK", "PREAUTH", "BYE", "NO", "BAD"];
    if !status.iter().any(|s| word.eq_ignore_ascii_case(s)) {
        return None;
    }
    let code = rest.strip_prefix('[')?;
    let (name, tail) = code.split_once(' ')?;
    if !name.eq_ignore_ascii_case("CAPABILITY") {
        return None;
    }
    let (list, after) = tail.split_once(']')?;
    Some(
        format!(
            "{tag} {word} [CAPABILITY {}]{after}\r\n",
            filter(list, side)
        )
        .into_bytes(),
    )
}

/// Whether a capability is in a list (case-insensitive).
pub fn has(caps: &str, cap: &str) -> bool {
    caps.split(' ').any(|c| c.eq_ignore_ascii_case(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOVECOT: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE COMPRESS=DEFLATE AUTH=PLAIN";

    fn side(tls: bool, plaintext: bool) -> ClientSide {
        ClientSide {
            tls,
            starttls_offered: true,
            plaintext_login: plaintext,
            binary: true,
        }
    }

    #[test]
    fn keeps_what_clients_need_and_drops_compress() {
        let f = filter(DOVECOT, side(true, false));
        for keep in [
            "UIDPLUS",
            "MOVE",
            "IDLE",
            "NAMESPACE",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ENABLE",
            "CONDSTORE",
            "QRESYNC",
            "LITERAL+",
            "ID",
            "UNSELECT",
            "AUTH=PLAIN",
            "BINARY",
        ] {
            assert!(has(&f, keep), "{keep} missing in {f}");
        }
        for gone in ["COMPRESS=DEFLATE", "NOTIFY", "SORT", "ESEARCH", "STARTTLS"] {
            assert!(!has(&f, gone), "{gone} kept in {f}");
        }
    }

    #[test]
    fn plain_listener_disables_login_until_tls() {
        let f = filter(DOVECOT, side(false, false));
        assert!(has(&f, "STARTTLS") && has(&f, "LOGINDISABLED"));
        assert!(!f.contains("AUTH="));
        let loopback = filter(DOVECOT, side(false, true));
        assert!(has(&loopback, "STARTTLS") && !has(&loopback, "LOGINDISABLED"));
    }

    #[test]
    fn rewrites_the_three_places() {
        let s = side(true, false);
        let g = rewrite_line(
            b"* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE IDLE] Dovecot ready.\r\n",
            s,
        );
        assert_eq!(
            g.unwrap(),
            b"* OK [CAPABILITY IMAP4rev1 IDLE] Dovecot ready.\r\n"
        );
        let t = rewrite_line(b"a1 OK [CAPABILITY IMAP4rev1 NOTIFY MOVE] Logged in\r\n", s);
        assert_eq!(
            t.unwrap(),
            b"a1 OK [CAPABILITY IMAP4rev1 MOVE] Logged in\r\n"
        );
        let c = rewrite_line(b"* CAPABILITY IMAP4rev1 COMPRESS=DEFLATE\r\n", s);
        assert_eq!(c.unwrap(), b"* CAPABILITY IMAP4rev1\r\n");
        assert!(rewrite_line(b"* OK [UIDNEXT 4] x\r\n", s).is_none());
        assert!(rewrite_line(b"* 3 EXISTS\r\n", s).is_none());
    }
}
