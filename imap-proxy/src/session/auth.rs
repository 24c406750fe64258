//! Who logs in (LOGIN, AUTHENTICATE PLAIN) and the one ID Dovecot gets before login.

use std::net::SocketAddr;

use crate::token::{self, Token};

/// The identity in a SASL PLAIN response (base64 `authzid NUL authcid NUL password`): the
/// authorisation identity when given (the mailbox Dovecot opens), else the authentication one.
pub fn plain_identity(b64: &[u8]) -> Option<String> {
    let raw = openssl::base64::decode_block(std::str::from_utf8(b64).ok()?.trim()).ok()?;
    let mut parts = raw.split(|&b| b == 0);
    let authz = parts.next()?;
    let authc = parts.next()?;
    let _password = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let who = if authz.is_empty() { authc } else { authz };
    let who = std::str::from_utf8(who).ok()?;
    (!who.is_empty()).then(|| who.to_string())
}

/// The user of a whole `tag LOGIN user password` message.
pub fn login_user(message: &[u8]) -> Option<String> {
    let t = token::tokens(message).ok()?;
    if t.len() != 4 {
        return None;
    }
    let user = t[2].string()?;
    t[3].string()?;
    String::from_utf8(user.to_vec()).ok()
}

/// `tag AUTHENTICATE mech [initial]`: the mechanism (upper case) and the initial response.
pub fn authenticate(message: &[u8]) -> Option<(String, Option<Vec<u8>>)> {
    let t = token::tokens(message).ok()?;
    let mech = t.get(2)?.upper()?;
    let initial = t.get(3).and_then(|x| x.string()).map(<[u8]>::to_vec);
    Some((mech, initial))
}

/// The field list of an ID command's argument (`NIL` is an empty list).
/// ID field names and values as the client sent them.
pub type IdFields = Vec<(Vec<u8>, Option<Vec<u8>>)>;

pub fn id_fields(args: &[Token]) -> Option<IdFields> {
    match args {
        [t] if t.is_atom("NIL") => Some(Vec::new()),
        [Token::List(items)] if items.len() % 2 == 0 => items
            .chunks(2)
            .map(|kv| {
                let k = match &kv[0] {
                    Token::Quoted(k) | Token::Literal(k) => k.clone(),
                    _ => return None,
                };
                let v = kv[1].string().map(<[u8]>::to_vec);
                Some((k, v))
            })
            .collect(),
        _ => None,
    }
}

/// RFC 2971: at most 30 field-value pairs; the proxy's own take four.
const MAX_CLIENT_FIELDS: usize = 26;

/// The one ID Dovecot sees: the client's fields, without any `x-` field (those are Dovecot's
/// trusted forwarding fields, honoured from `login_trusted_networks`, so a client must not
/// set them), then the proxy's: the client's real address and port and the session id.
pub fn merged_id(
    client: &[(Vec<u8>, Option<Vec<u8>>)],
    peer: SocketAddr,
    session_id: &str,
) -> Vec<u8> {
    let mut out = b"ID (".to_vec();
    let mut first = true;
    let mut push = |out: &mut Vec<u8>, k: &[u8], v: Option<&[u8]>| {
        if !first {
            out.push(b' ');
        }
        first = false;
        token::write_string(out, k);
        out.push(b' ');
        match v {
            Some(v) => token::write_string(out, v),
            None => out.extend_from_slice(b"NIL"),
        }
    };
    for (k, v) in client
        .iter()
        .filter(|(k, _)| !k.to_ascii_lowercase().starts_with(b"x-"))
        .filter(|(k, v)| k.len() <= 30 && v.as_ref().is_none_or(|v| v.len() <= 1024))
        .take(MAX_CLIENT_FIELDS)
    {
        push(&mut out, k, v.as_deref());
    }
    let ip = peer.ip().to_canonical().to_string();
    let port = peer.port().to_string();
    push(&mut out, b"x-originating-ip", Some(ip.as_bytes()));
    push(&mut out, b"x-originating-port", Some(port.as_bytes()));
    push(&mut out, b"x-session-id", Some(session_id.as_bytes()));
    out.extend_from_slice(b")\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        openssl::base64::encode_block(s).into_bytes()
    }

    #[test]
    fn plain_identities() {
        assert_eq!(
            plain_identity(&b64(b"\0alice\0pw")).as_deref(),
            Some("alice")
        );
        assert_eq!(
            plain_identity(&b64(b"bob\0admin\0pw")).as_deref(),
            Some("bob"),
            "the authorisation identity is the mailbox"
        );
        for bad in [&b"\0\0pw"[..], b"alice", b"\0alice\0pw\0x"] {
            assert_eq!(plain_identity(&b64(bad)), None);
        }
        assert_eq!(plain_identity(b"*"), None);
        assert_eq!(plain_identity(b"not base64!"), None);
    }

    #[test]
    fn login_users() {
        assert_eq!(
            login_user(b"a LOGIN alice pw\r\n").as_deref(),
            Some("alice")
        );
        assert_eq!(
            login_user(b"a LOGIN \"al ice\" \"p\\\"w\"\r\n").as_deref(),
            Some("al ice")
        );
        assert_eq!(
            login_user(b"a LOGIN {5+}\r\nalice {2+}\r\npw\r\n").as_deref(),
            Some("alice")
        );
        assert_eq!(login_user(b"a LOGIN alice\r\n"), None);
        assert_eq!(login_user(b"a LOGIN alice pw extra\r\n"), None);
    }

    #[test]
    fn id_merge_drops_client_forwarding_fields() {
        let t = token::tokens(
            b"a ID (\"name\" \"Outlook\" \"X-Originating-IP\" \"6.6.6.6\" \"x-session-id\" \"forged\")\r\n",
        )
        .unwrap();
        let fields = id_fields(&t[2..]).unwrap();
        let id = merged_id(&fields, "192.0.2.7:50123".parse().unwrap(), "S1");
        let text = String::from_utf8(id).unwrap();
        assert_eq!(
            text,
            "ID (\"name\" \"Outlook\" \"x-originating-ip\" \"192.0.2.7\" \"x-originating-port\" \"50123\" \"x-session-id\" \"S1\")\r\n"
        );
        assert_eq!(
            id_fields(&token::tokens(b"a ID NIL").unwrap()[2..]),
            Some(vec![])
        );
        assert_eq!(
            id_fields(&token::tokens(b"a ID (\"odd\")").unwrap()[2..]),
            None
        );
    }
}
