//! Which client commands the proxy acts on, and how: forwarded as they arrive (most of them,
//! with a note of what to learn from the answer), or kept whole and answered by the proxy (the
//! virtual folders' commands, the merged ID, what the proxy removed from the capabilities).

use super::{ClientMsg, Internal, Pending, PendingKind, Route, Session, auth, list, local};
use crate::folders::Target;
use crate::token::{self, Token};

/// Commands a selected virtual folder answers itself; anything else that needs a selected
/// mailbox gets `BAD` there.
const SELECTED_LOCAL: &[&str] = &[
    "FETCH",
    "UID FETCH",
    "STORE",
    "UID STORE",
    "SEARCH",
    "UID SEARCH",
    "COPY",
    "UID COPY",
    "MOVE",
    "UID MOVE",
    "EXPUNGE",
    "UID EXPUNGE",
    "CLOSE",
    "UNSELECT",
    "CHECK",
    "NOOP",
    "IDLE",
    "SORT",
    "UID SORT",
    "THREAD",
    "UID THREAD",
];

/// Commands whose mailbox argument decides whether the proxy answers.
const MAILBOX_COMMANDS: &[&str] = &[
    "SELECT",
    "EXAMINE",
    "STATUS",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
];

/// Decides by the first line of a client message.
pub async fn first_line(s: &mut Session, line: &[u8]) -> Result<ClientMsg, String> {
    let Some((tag, name)) = token::head(line) else {
        // Not even `tag command`: Dovecot answers it untagged, so nothing is in flight (a
        // pending entry would never be answered and keep the client waiting for ever).
        return Ok(ClientMsg {
            tag: b"*".to_vec(),
            name: String::new(),
            route: Route::Forward,
            answer: Vec::new(),
        });
    };
    let has_literal = line_literal(line);
    if matches!(name.as_str(), "AUTHENTICATE" | "IDLE") {
        if name == "AUTHENTICATE" {
            send_id_first(s).await?;
        }
        if has_literal {
            // Dovecot takes neither a literal here; it would answer BAD and read the literal's
            // bytes as commands, which the proxy would have framed as data.
            return Ok(ClientMsg {
                answer: status_line(&tag, &format!("BAD {name} takes no literal.")),
                tag,
                name,
                route: Route::Discard,
            });
        }
        if !s.pending.is_empty() {
            // Their continuations must be the only ones Dovecot can send: the line goes back
            // and waits until nothing is in flight.
            s.cf.unread(line.to_vec());
            s.hold = true;
            return Ok(ClientMsg {
                tag,
                name,
                route: Route::Discard,
                answer: Vec::new(),
            });
        }
    }
    match name.as_str() {
        "LOGIN" => {
            send_id_first(s).await?;
            return Ok(forward(s, tag, name, PendingKind::Login(None)));
        }
        "AUTHENTICATE" => {
            let (plain, user) = match auth::authenticate(line) {
                Some((mech, initial)) => (
                    mech == "PLAIN",
                    initial.and_then(|i| {
                        if mech == "PLAIN" {
                            auth::plain_identity(&i)
                        } else {
                            None
                        }
                    }),
                ),
                None => (false, None),
            };
            // With SASL-IR the identity is known now; otherwise from the response line.
            let kind = PendingKind::Authenticate {
                plain,
                user: if plain { user } else { None },
                asked: false,
            };
            return Ok(forward(s, tag, name, kind));
        }
        "ID" if !s.id_sent => return Ok(collect(tag, name)),
        "COMPRESS" | "NOTIFY" | "STARTTLS" => return Ok(collect(tag, name)),
        _ => {}
    }
    let Some(layout) = s.layout.clone() else {
        return Ok(forward_plain(s, tag, name));
    };
    if s.selected.is_some() && SELECTED_LOCAL.contains(&name.as_str()) {
        return Ok(collect(tag, name));
    }
    if MAILBOX_COMMANDS.contains(&name.as_str()) {
        if has_literal {
            return Ok(collect(tag, name));
        }
        let args = match token::tokens(line) {
            Ok(t) => t,
            Err(_) => return Ok(forward_plain(s, tag, name)),
        };
        let names: Vec<&[u8]> = match name.as_str() {
            "RENAME" => args
                .iter()
                .skip(2)
                .take(2)
                .filter_map(Token::string)
                .collect(),
            _ => args.get(2).and_then(Token::string).into_iter().collect(),
        };
        let ours = names.iter().any(|n| layout.lookup(n, s.utf8).is_some());
        // (below the root too: CREATE there is refused, the rest decided when whole)
        if ours || s.selected.is_some() {
            // Ours, or it changes what is selected while a virtual folder is: the proxy sees to it.
            return Ok(collect(tag, name));
        }
        return Ok(forward_plain(s, tag, name));
    }
    if name == "APPEND" {
        if let Some(mailbox) = first_arg(line)
            && layout.is_virtual(&mailbox, s.utf8)
        {
            return Ok(ClientMsg {
                answer: status_line(&tag, "NO [CANNOT] De-Mail evidence folders are read-only."),
                tag,
                name,
                route: Route::Discard,
            });
        }
        return Ok(forward_plain(s, tag, name));
    }
    if s.selected.is_none() && matches!(name.as_str(), "COPY" | "UID COPY" | "MOVE" | "UID MOVE") {
        // From a real mailbox: refused only when the destination is ours.
        if has_literal {
            return Ok(collect(tag, name));
        }
        if let Ok(args) = token::tokens(line) {
            let dst_at = if name.starts_with("UID") { 4 } else { 3 };
            if let Some(dst) = args.get(dst_at).and_then(Token::string)
                && layout.is_virtual(dst, s.utf8)
            {
                return Ok(ClientMsg {
                    answer: status_line(
                        &tag,
                        "NO [CANNOT] De-Mail evidence folders are read-only.",
                    ),
                    tag,
                    name,
                    route: Route::Discard,
                });
            }
        }
        return Ok(forward_plain(s, tag, name));
    }
    if s.selected.is_some() && is_selected_state(&name) {
        return Ok(collect(tag, name));
    }
    Ok(forward_plain(s, tag, name))
}

/// Commands that need a selected mailbox and that the proxy does not serve for its folders.
fn is_selected_state(name: &str) -> bool {
    name.starts_with("UID ") || matches!(name, "ESEARCH" | "GETQUOTA" | "SETQUOTA")
}

fn collect(tag: Vec<u8>, name: String) -> ClientMsg {
    ClientMsg {
        tag,
        name,
        route: Route::Collect,
        answer: Vec::new(),
    }
}

fn forward_plain(s: &mut Session, tag: Vec<u8>, name: String) -> ClientMsg {
    let kind = match name.as_str() {
        "LIST" | "LSUB" => PendingKind::List(list::Request::default()),
        "SELECT" | "EXAMINE" => PendingKind::Select,
        "CLOSE" | "UNSELECT" => PendingKind::Deselect,
        "IDLE" => PendingKind::Idle {
            started: false,
            done: false,
        },
        "ENABLE" => PendingKind::Enable,
        _ => PendingKind::Plain,
    };
    forward(s, tag, name, kind)
}

fn forward(s: &mut Session, tag: Vec<u8>, name: String, kind: PendingKind) -> ClientMsg {
    if matches!(name.as_str(), "SELECT" | "EXAMINE") {
        // A real mailbox replaces a virtual one.
        s.selected = None;
    }
    s.pending.push_back(Pending {
        tag: tag.clone(),
        kind,
    });
    ClientMsg {
        tag,
        name,
        route: Route::Forward,
        answer: Vec::new(),
    }
}

/// The proxy's own ID goes to Dovecot before the first LOGIN/AUTHENTICATE.
async fn send_id_first(s: &mut Session) -> Result<(), String> {
    if s.id_sent {
        return Ok(());
    }
    s.id_sent = true;
    let fields = s.client_id.take().unwrap_or_default();
    let id = auth::merged_id(&fields, s.peer, &s.session_id);
    s.internal(Internal::Id, &id).await
}

/// A forwarded message is complete: learn what its answer needs.
pub async fn forwarded(s: &mut Session, msg: &ClientMsg) -> Result<(), String> {
    // Borrowed, not copied: this runs for every forwarded command.
    let Session {
        cf, pending, hold, ..
    } = s;
    learn(pending, hold, msg, cf.kept());
    Ok(())
}

fn learn(
    pending: &mut std::collections::VecDeque<Pending>,
    hold: &mut bool,
    msg: &ClientMsg,
    kept: Option<&[u8]>,
) {
    let Some(p) = pending.iter_mut().rev().find(|p| p.tag == msg.tag) else {
        return;
    };
    match (&mut p.kind, kept) {
        (PendingKind::Login(user), Some(bytes)) => {
            *user = auth::login_user(bytes);
            // Wait for the answer: what follows depends on who logged in.
            *hold = true;
        }
        (PendingKind::Login(_), None) => *hold = true,
        // The client waits for Dovecot's `+` or its tagged answer.
        (PendingKind::Authenticate { .. } | PendingKind::Idle { .. }, _) => *hold = true,
        (PendingKind::List(req), Some(bytes)) => {
            *req = list::Request::parse(bytes, msg.name == "LSUB").unwrap_or_default();
        }
        _ => {}
    }
}

/// A kept message is complete: the proxy answers it, or forwards it after all.
pub async fn collected(s: &mut Session, msg: &ClientMsg, bytes: &[u8]) -> Result<(), String> {
    match msg.name.as_str() {
        "ID" => {
            let fields = token::tokens(bytes)
                .ok()
                .and_then(|t| auth::id_fields(t.get(2..).unwrap_or_default()));
            match fields {
                Some(mut fields) => {
                    if let Some(pre) = s.client_id.take() {
                        fields.extend(pre);
                    }
                    s.id_sent = true;
                    let id = auth::merged_id(&fields, s.peer, &s.session_id);
                    let mut cmd = msg.tag.clone();
                    cmd.push(b' ');
                    cmd.extend_from_slice(&id);
                    s.pending.push_back(Pending {
                        tag: msg.tag.clone(),
                        kind: PendingKind::Plain,
                    });
                    s.send_up(cmd).await
                }
                None => s.reply(&msg.tag, "BAD Invalid ID arguments.").await,
            }
        }
        "COMPRESS" => {
            s.reply(&msg.tag, "BAD COMPRESS is not offered on this connection.")
                .await
        }
        "NOTIFY" => {
            s.reply(&msg.tag, "BAD NOTIFY is not offered on this connection.")
                .await
        }
        "STARTTLS" => {
            let why = if s.side.tls {
                "BAD TLS is already active."
            } else {
                "BAD STARTTLS is only possible before anything else."
            };
            s.reply(&msg.tag, why).await
        }
        _ => {
            if !s.pending.is_empty() {
                // Wait for what is in flight (mbsync pipelines deeply): selected state and
                // ordering must not change under it.
                s.deferred = Some((
                    ClientMsg {
                        tag: msg.tag.clone(),
                        name: msg.name.clone(),
                        route: msg.route,
                        answer: Vec::new(),
                    },
                    bytes.to_vec(),
                ));
                s.hold = true;
                return Ok(());
            }
            run_collected(s, msg, bytes).await
        }
    }
}

/// Runs a kept command with nothing in flight.
pub async fn run_collected(s: &mut Session, msg: &ClientMsg, bytes: &[u8]) -> Result<(), String> {
    let Some(layout) = s.layout.clone() else {
        return forward_collected(s, msg, bytes).await;
    };
    let args = match token::tokens(bytes) {
        Ok(a) => a,
        Err(e) => return s.reply(&msg.tag, &format!("BAD {}", e.0)).await,
    };
    let name = msg.name.as_str();
    if MAILBOX_COMMANDS.contains(&name) {
        let target = args
            .get(2)
            .and_then(Token::string)
            .and_then(|n| layout.lookup(n, s.utf8));
        let rename_to = (name == "RENAME")
            .then(|| {
                args.get(3)
                    .and_then(Token::string)
                    .and_then(|n| layout.lookup(n, s.utf8))
            })
            .flatten();
        let read_only = "NO [CANNOT] De-Mail evidence folders cannot be changed.";
        let no_new = "NO [CANNOT] No folders can be made in the De-Mail folder tree.";
        if target.is_some() {
            s.shared.metrics.virtual_command(name);
        }
        return match (name, target, rename_to) {
            ("SELECT" | "EXAMINE", Some(Target::Folder(role)), _) => {
                local::select(s, &msg.tag, role, name == "EXAMINE", bytes).await
            }
            ("SELECT" | "EXAMINE", Some(Target::Root), _) => {
                s.selected = None;
                s.reply(
                    &msg.tag,
                    "NO [CANNOT] This folder only holds the De-Mail folders.",
                )
                .await
            }
            ("STATUS", Some(Target::Folder(role)), _) => {
                local::status(s, &msg.tag, role, &args).await
            }
            ("STATUS", Some(Target::Root), _) => {
                s.reply(&msg.tag, "NO [CANNOT] Mailbox is not selectable.")
                    .await
            }
            ("CREATE", Some(_), _) | ("RENAME", _, Some(_)) => s.reply(&msg.tag, no_new).await,
            (_, Some(Target::Folder(_) | Target::Root), _) => s.reply(&msg.tag, read_only).await,
            // A real folder below the root (made before the proxy): Dovecot's as before.
            _ => forward_collected(s, msg, bytes).await,
        };
    }
    if s.selected.is_some() {
        s.shared.metrics.virtual_command(name);
        return local::command(s, msg, bytes).await;
    }
    if matches!(name, "COPY" | "UID COPY" | "MOVE" | "UID MOVE") {
        let dst_at = if name.starts_with("UID") { 4 } else { 3 };
        if args
            .get(dst_at)
            .and_then(Token::string)
            .is_some_and(|n| layout.is_virtual(n, s.utf8))
        {
            return s
                .reply(
                    &msg.tag,
                    "NO [CANNOT] De-Mail evidence folders are read-only.",
                )
                .await;
        }
    }
    forward_collected(s, msg, bytes).await
}

/// Sends a kept command to Dovecot after all. Its synchronising literals were already
/// answered by the proxy, so they travel as non-synchronising ones (Dovecot offers LITERAL+).
async fn forward_collected(s: &mut Session, msg: &ClientMsg, bytes: &[u8]) -> Result<(), String> {
    if s.selected.is_some() && matches!(msg.name.as_str(), "SELECT" | "EXAMINE") && s.qresync {
        s.send(b"* OK [CLOSED] Previous mailbox closed.\r\n".to_vec())
            .await?;
    }
    let mut fwd = forward_plain(s, msg.tag.clone(), msg.name.clone());
    fwd.route = Route::Forward;
    let out = non_synchronising(bytes);
    s.send_up(out).await?;
    learn(&mut s.pending, &mut s.hold, &fwd, Some(bytes));
    Ok(())
}

/// Rewrites every `{N}` literal announcement of a complete message to `{N+}`.
pub fn non_synchronising(message: &[u8]) -> Vec<u8> {
    let mut f = crate::framing::Framer::new(usize::MAX / 2, 0);
    f.push(message);
    let mut out = Vec::with_capacity(message.len() + 8);
    while let Ok(Some(p)) = f.next() {
        match p {
            crate::framing::Piece::Line {
                bytes,
                literal: Some((len, true)),
                ..
            } => {
                let ann = format!("{{{len}}}");
                let crlf = if bytes.ends_with(b"\r\n") { 2 } else { 1 };
                let cut = bytes.len() - crlf - ann.len();
                out.extend_from_slice(&bytes[..cut]);
                out.extend_from_slice(format!("{{{len}+}}").as_bytes());
                out.extend_from_slice(&bytes[bytes.len() - crlf..]);
            }
            crate::framing::Piece::Line { bytes, .. }
            | crate::framing::Piece::Literal { bytes, .. } => out.extend_from_slice(&bytes),
        }
    }
    out
}

fn status_line(tag: &[u8], text: &str) -> Vec<u8> {
    let mut v = tag.to_vec();
    v.push(b' ');
    v.extend_from_slice(text.as_bytes());
    v.extend_from_slice(b"\r\n");
    v
}

/// Whether the line ends with a literal announcement.
fn line_literal(line: &[u8]) -> bool {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    l.ends_with(b"}")
}

/// The first argument of a command line ending in a literal announcement (APPEND's mailbox),
/// when it is written in the line itself.
pub(crate) fn first_arg(line: &[u8]) -> Option<Vec<u8>> {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    let cut = l.iter().rposition(|&b| b == b'{')?;
    let head = &l[..cut];
    let head = head.strip_suffix(b"~").unwrap_or(head);
    let t = token::tokens(head).ok()?;
    t.get(2)?.string().map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_become_non_synchronising() {
        assert_eq!(
            non_synchronising(b"a SELECT {5}\r\nINBOX\r\n"),
            b"a SELECT {5+}\r\nINBOX\r\n"
        );
        assert_eq!(
            non_synchronising(b"a RENAME {1}\r\nx {2+}\r\nyz\r\n"),
            b"a RENAME {1+}\r\nx {2+}\r\nyz\r\n"
        );
        assert_eq!(non_synchronising(b"a NOOP\r\n"), b"a NOOP\r\n");
    }

    #[test]
    fn append_mailbox_from_the_line() {
        assert_eq!(
            first_arg(b"a APPEND \"De-Mail/Ausstehend\" (\\Seen) {10}\r\n").as_deref(),
            Some(&b"De-Mail/Ausstehend"[..])
        );
        assert_eq!(
            first_arg(b"a APPEND INBOX {10+}\r\n").as_deref(),
            Some(&b"INBOX"[..])
        );
        assert_eq!(first_arg(b"a APPEND {5}\r\n"), None);
    }
}
