//! A virtual folder answered by the proxy like a real mailbox: SELECT/EXAMINE, STATUS, FETCH,
//! SEARCH, STORE of `\Seen`/`\Flagged` (kept per login), COPY/MOVE out (a copy is appended to
//! Dovecot; the evidence stays), NOOP/IDLE announcing new evidence, CLOSE/EXPUNGE locally.

use std::sync::Arc;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{CommandBody, FetchModifier, SelectParameter, StoreModifier};
use imap_codec::imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;

use super::{ClientMsg, CopyJob, Internal, Session};
use crate::mailbox::{FlagChange, Flags, Item, MailboxError, Mailboxes, Role};
use crate::render::{self, Rendered, SearchContext};
use crate::sequence;
use crate::token::{self, Token};

/// The virtual folder a session has selected, as the client last saw it.
pub struct Selected {
    pub role: Role,
    pub read_only: bool,
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// Sequence number = index + 1.
    pub items: Vec<Item>,
}

/// Items loaded per blocking call.
const BATCH: usize = 256;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MailboxError> + Send + 'static,
) -> Result<T, MailboxError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(MailboxError::Other(format!("internal: {e}"))))
}

fn mailboxes(s: &Session) -> Arc<Mailboxes> {
    s.shared.mailboxes()
}

async fn unavailable(s: &Session, tag: &[u8], e: MailboxError) -> Result<(), String> {
    tracing::warn!(session = %s.session_id, "evidence not readable: {e}");
    s.reply(
        tag,
        "NO [UNAVAILABLE] The De-Mail evidence cannot be read right now; try again later.",
    )
    .await
}

fn flags_text(f: Flags) -> &'static str {
    match (f.seen, f.flagged) {
        (false, false) => "()",
        (true, false) => "(\\Seen)",
        (false, true) => "(\\Flagged)",
        (true, true) => "(\\Seen \\Flagged)",
    }
}

pub async fn select(
    s: &mut Session,
    tag: &[u8],
    role: Role,
    examine: bool,
    bytes: &[u8],
) -> Result<(), String> {
    let Some(login) = s.login.clone() else {
        return s
            .reply(tag, "NO [CANNOT] Not available for this login.")
            .await;
    };
    let mut condstore = false;
    let mut qresync: Option<(u32, u64, Option<SequenceSet>)> = None;
    if let Ok((_, cmd)) = CommandCodec::default().decode(bytes) {
        let params = match cmd.body {
            CommandBody::Select { parameters, .. } | CommandBody::Examine { parameters, .. } => {
                parameters
            }
            _ => Vec::new(),
        };
        for p in params {
            match p {
                SelectParameter::CondStore => condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    if !s.qresync {
                        return s
                            .reply(tag, "BAD QRESYNC must be enabled first (ENABLE QRESYNC).")
                            .await;
                    }
                    qresync = Some((uid_validity.get(), mod_sequence_value.get(), known_uids));
                }
            }
        }
    }
    let was_selected = s.selected.is_some() || s.upstream_selected;
    if s.upstream_selected {
        // Dovecot must not keep a mailbox selected underneath: its EXISTS/EXPUNGE would leak
        // into this folder, and a CLOSE would expunge the real one.
        s.internal(Internal::Unselect, b"UNSELECT\r\n").await?;
        s.upstream_selected = false;
    }
    s.selected = None;
    let mb = mailboxes(s);
    let snap = match blocking(move || mb.snapshot(&login, role)).await {
        Ok(v) => v,
        Err(e) => return unavailable(s, tag, e).await,
    };
    if condstore || qresync.is_some() {
        s.condstore = true;
    }
    let mut out = String::new();
    if was_selected && s.qresync {
        out.push_str("* OK [CLOSED] Previous mailbox closed.\r\n");
    }
    out.push_str("* FLAGS (\\Seen \\Flagged)\r\n");
    if examine {
        out.push_str("* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n");
    } else {
        out.push_str("* OK [PERMANENTFLAGS (\\Seen \\Flagged)] Flags kept for this login.\r\n");
    }
    out.push_str(&format!("* {} EXISTS\r\n* 0 RECENT\r\n", snap.items.len()));
    if let Some(i) = snap.items.iter().position(|i| !i.flags.seen) {
        out.push_str(&format!("* OK [UNSEEN {}] First unseen.\r\n", i + 1));
    }
    out.push_str(&format!(
        "* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] Predicted next UID\r\n",
        snap.uid_validity, snap.uid_next
    ));
    if s.condstore {
        out.push_str(&format!(
            "* OK [HIGHESTMODSEQ {}] Highest\r\n",
            snap.highest_modseq
        ));
    }
    if let Some((validity, since, known)) = qresync
        && validity == snap.uid_validity
    {
        let max = snap.uid_next.saturating_sub(1).max(1);
        let present: std::collections::HashSet<u32> = snap.items.iter().map(|i| i.uid).collect();
        // Without known UIDs every UID below UIDNEXT is one the client may know.
        let gone: Vec<u32> = match &known {
            Some(set) => set_members(set, max, 1_000_000)
                .into_iter()
                .filter(|u| !present.contains(u))
                .collect(),
            None => (1..snap.uid_next)
                .filter(|u| !present.contains(u))
                .take(1_000_000)
                .collect(),
        };
        if !gone.is_empty() {
            out.push_str(&format!("* VANISHED (EARLIER) {}\r\n", uid_ranges(&gone)));
        }
        for (i, it) in snap.items.iter().enumerate() {
            if it.modseq > since {
                out.push_str(&format!(
                    "* {} FETCH (UID {} FLAGS {} MODSEQ ({}))\r\n",
                    i + 1,
                    it.uid,
                    flags_text(it.flags),
                    it.modseq
                ));
            }
        }
    }
    out.push_str(&format!(
        "{} OK [{}] {} completed.\r\n",
        String::from_utf8_lossy(tag),
        if examine { "READ-ONLY" } else { "READ-WRITE" },
        if examine { "Examine" } else { "Select" }
    ));
    s.selected = Some(Selected {
        role,
        read_only: examine,
        uid_next: snap.uid_next,
        highest_modseq: snap.highest_modseq,
        items: snap.items,
    });
    s.send(out.into_bytes()).await
}

/// `* STATUS name (...)` for a virtual folder; `None` without a login.
pub async fn status_line(
    s: &Session,
    role: Role,
    wire: &[u8],
    items: &[String],
) -> Result<Option<Vec<u8>>, String> {
    let Some(login) = s.login.clone() else {
        return Ok(None);
    };
    let mb = mailboxes(s);
    let snap = match blocking(move || mb.snapshot(&login, role)).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("evidence not readable for STATUS: {e}");
            return Ok(None);
        }
    };
    let mut parts = Vec::new();
    for item in items {
        let v = match item.as_str() {
            "MESSAGES" => snap.items.len() as u64,
            "UIDNEXT" => u64::from(snap.uid_next),
            "UIDVALIDITY" => u64::from(snap.uid_validity),
            "UNSEEN" => snap.items.iter().filter(|i| !i.flags.seen).count() as u64,
            "RECENT" | "DELETED" => 0,
            "SIZE" => snap.items.iter().map(|i| i.size).sum(),
            "HIGHESTMODSEQ" => snap.highest_modseq,
            _ => continue,
        };
        parts.push(format!("{item} {v}"));
    }
    let mut line = b"* STATUS ".to_vec();
    token::write_string(&mut line, wire);
    line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
    Ok(Some(line))
}

pub async fn status(s: &mut Session, tag: &[u8], role: Role, args: &[Token]) -> Result<(), String> {
    let Some(items) = args.get(3).and_then(Token::list) else {
        return s.reply(tag, "BAD STATUS needs a list of items.").await;
    };
    let items: Vec<String> = items.iter().filter_map(Token::upper).collect();
    let known = [
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "RECENT",
        "DELETED",
        "SIZE",
        "HIGHESTMODSEQ",
    ];
    if let Some(bad) = items.iter().find(|i| !known.contains(&i.as_str())) {
        return s
            .reply(tag, &format!("BAD Unknown STATUS item {bad}."))
            .await;
    }
    let wire = args[2].string().unwrap_or_default().to_vec();
    match status_line(s, role, &wire, &items).await? {
        Some(line) => {
            s.send(line).await?;
            s.reply(tag, "OK Status completed.").await
        }
        None => s.reply(tag, "NO [UNAVAILABLE] Status not available.").await,
    }
}

/// A command while a virtual folder is selected.
pub async fn command(s: &mut Session, msg: &ClientMsg, bytes: &[u8]) -> Result<(), String> {
    let tag = msg.tag.as_slice();
    match msg.name.as_str() {
        "NOOP" | "CHECK" => {
            refresh(s, true).await?;
            return s.reply(tag, &format!("OK {} completed.", msg.name)).await;
        }
        "IDLE" => {
            s.idle = Some(tag.to_vec());
            return s.send(b"+ idling\r\n".to_vec()).await;
        }
        "CLOSE" | "UNSELECT" => {
            s.selected = None;
            return s.reply(tag, &format!("OK {} completed.", msg.name)).await;
        }
        "EXPUNGE" | "UID EXPUNGE" => {
            let read_only = s.selected.as_ref().is_some_and(|v| v.read_only);
            return if read_only {
                s.reply(tag, "NO [READ-ONLY] Mailbox is read-only.").await
            } else {
                s.reply(
                    tag,
                    "OK Expunge completed; De-Mail evidence is never removed.",
                )
                .await
            };
        }
        "SORT" | "UID SORT" | "THREAD" | "UID THREAD" => {
            return s
                .reply(
                    tag,
                    &format!("BAD {} is not offered in De-Mail folders.", msg.name),
                )
                .await;
        }
        _ => {}
    }
    // Outlook's RFC822.PEEK is BODY.PEEK[] answered under the name RFC822.
    let (bytes, rfc822_peek) = rewrite_rfc822_peek(bytes);
    let cmd = match CommandCodec::default().decode(&bytes) {
        Ok((_, c)) => c,
        Err(_) => {
            return s
                .reply(
                    tag,
                    &format!("BAD Error in IMAP command {}: invalid arguments.", msg.name),
                )
                .await;
        }
    };
    match cmd.body {
        CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            modifiers,
        } => {
            fetch(
                s,
                tag,
                &sequence_set,
                macro_or_item_names,
                uid,
                &modifiers,
                rfc822_peek,
            )
            .await
        }
        CommandBody::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
            modifiers,
        } => {
            store(
                s,
                tag,
                &sequence_set,
                kind,
                response,
                &flags,
                uid,
                &modifiers,
            )
            .await
        }
        CommandBody::Search {
            criteria,
            uid,
            charset,
        } => {
            let known = ["UTF-8", "US-ASCII"];
            match charset {
                Some(c) if !known.iter().any(|k| k.eq_ignore_ascii_case(c.as_ref())) => {
                    s.reply(tag, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.")
                        .await
                }
                _ => search(s, tag, criteria.as_ref(), uid).await,
            }
        }
        CommandBody::Copy {
            sequence_set, uid, ..
        } => copy(s, tag, &sequence_set, uid, bytes_dest(&bytes, uid), false).await,
        CommandBody::Move {
            sequence_set, uid, ..
        } => copy(s, tag, &sequence_set, uid, bytes_dest(&bytes, uid), true).await,
        _ => {
            s.reply(
                tag,
                &format!("BAD {} is not available in a De-Mail folder.", msg.name),
            )
            .await
        }
    }
}

pub(crate) fn bytes_dest(bytes: &[u8], uid: bool) -> Option<Vec<u8>> {
    let t = token::tokens(bytes).ok()?;
    t.get(if uid { 4 } else { 3 })?.string().map(<[u8]>::to_vec)
}

pub(crate) fn rewrite_rfc822_peek(bytes: &[u8]) -> (Vec<u8>, bool) {
    let needle = b"RFC822.PEEK";
    let mut out = Vec::with_capacity(bytes.len());
    let mut found = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= needle.len()
            && bytes[i..i + needle.len()].eq_ignore_ascii_case(needle)
        {
            out.extend_from_slice(b"BODY.PEEK[]");
            i += needle.len();
            found = true;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    (out, found)
}

pub(crate) fn set_members(set: &SequenceSet, largest: u32, cap: usize) -> Vec<u32> {
    sequence::ranges(set, largest)
        .into_iter()
        .flat_map(|(lo, hi)| lo..=hi)
        .take(cap)
        .collect()
}

fn uid_ranges(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// Indexes of the selected items the set names.
fn chosen(sel: &Selected, set: &SequenceSet, uid: bool) -> Vec<usize> {
    let n = sel.items.len() as u32;
    let max_uid = sel.items.last().map_or(0, |i| i.uid);
    // Sorted, merged ranges: a set of thousands of ranges against a folder of 100,000
    // messages costs a binary search per message, not a scan.
    let ranges = sequence::ranges(set, if uid { max_uid } else { n });
    let inside = |v: u32| sequence::in_ranges(&ranges, v);
    sel.items
        .iter()
        .enumerate()
        .filter(|(i, it)| inside(if uid { it.uid } else { *i as u32 + 1 }))
        .map(|(i, _)| i)
        .collect()
}

pub(crate) fn expand(names: MacroOrMessageDataItemNames<'_>) -> Vec<MessageDataItemName<'_>> {
    match names {
        MacroOrMessageDataItemNames::Macro(m) => {
            let mut v = vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
            ];
            match m {
                Macro::Fast => {}
                Macro::All => v.push(MessageDataItemName::Envelope),
                Macro::Full => {
                    v.push(MessageDataItemName::Envelope);
                    v.push(MessageDataItemName::Body);
                }
                _ => {}
            }
            v
        }
        MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
    }
}

/// Items that read the message's bytes.
pub(crate) fn needs_content(item: &MessageDataItemName<'_>) -> bool {
    !matches!(
        item,
        MessageDataItemName::Flags
            | MessageDataItemName::Uid
            | MessageDataItemName::InternalDate
            | MessageDataItemName::Rfc822Size
            | MessageDataItemName::ModSeq
    )
}

/// Items that set `\Seen` (RFC 9051 6.4.5).
pub(crate) fn marks_seen(item: &MessageDataItemName<'_>) -> bool {
    matches!(
        item,
        MessageDataItemName::BodyExt { peek: false, .. }
            | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Text
            | MessageDataItemName::Binary { peek: false, .. }
    )
}

async fn contents(
    s: &Session,
    role: Role,
    uids: Vec<u32>,
) -> Result<Vec<Option<Arc<Vec<u8>>>>, MailboxError> {
    let Some(login) = s.login.clone() else {
        return Ok(vec![None; uids.len()]);
    };
    let mb = mailboxes(s);
    blocking(move || {
        uids.iter()
            .map(|&u| mb.content(&login, role, u))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
}

#[allow(clippy::too_many_arguments)]
async fn fetch(
    s: &mut Session,
    tag: &[u8],
    set: &SequenceSet,
    names: MacroOrMessageDataItemNames<'_>,
    uid: bool,
    modifiers: &[FetchModifier],
    rfc822_peek: bool,
) -> Result<(), String> {
    let items = expand(names);
    let Some(sel) = s.selected.as_ref() else {
        return s.reply(tag, "BAD No mailbox selected.").await;
    };
    let role = sel.role;
    let read_only = sel.read_only;
    let changed_since = modifiers.iter().find_map(|m| match m {
        FetchModifier::ChangedSince(v) => Some(v.get()),
        FetchModifier::Vanished => None,
    });
    let mut idx = chosen(sel, set, uid);
    if let Some(since) = changed_since {
        idx.retain(|&i| sel.items[i].modseq > since);
    }
    // Items once each; those known without the message first.
    let mut order: Vec<&MessageDataItemName<'_>> = Vec::new();
    for buffered in [true, false] {
        for item in &items {
            if render::is_buffered_item(item) == buffered && !order.contains(&item) {
                order.push(item);
            }
        }
    }
    let want_content = items.iter().any(needs_content);
    let want_seen = !read_only && items.iter().any(marks_seen);
    let want_modseq = changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq);
    let want_uid = uid || items.contains(&MessageDataItemName::Uid);
    for chunk in idx.chunks(BATCH) {
        let uids: Vec<u32> = {
            let sel = s.selected.as_ref().expect("checked");
            chunk.iter().map(|&i| sel.items[i].uid).collect()
        };
        let bodies = if want_content {
            match contents(s, role, uids.clone()).await {
                Ok(b) => b,
                Err(e) => return unavailable(s, tag, e).await,
            }
        } else {
            vec![None; uids.len()]
        };
        // \Seen first, so the FLAGS in this answer are the new ones.
        if want_seen {
            let unseen: Vec<u32> = {
                let sel = s.selected.as_ref().expect("checked");
                chunk
                    .iter()
                    .filter(|&&i| !sel.items[i].flags.seen)
                    .map(|&i| sel.items[i].uid)
                    .collect()
            };
            if !unseen.is_empty() {
                let changes = match apply_flags(
                    s,
                    role,
                    unseen,
                    FlagChange {
                        seen: Some(true),
                        flagged: None,
                    },
                )
                .await
                {
                    Ok(c) => c,
                    Err(e) => return unavailable(s, tag, e).await,
                };
                update_items(s, &changes);
            }
        }
        let mut out = Vec::new();
        for (k, &i) in chunk.iter().enumerate() {
            let sel = s.selected.as_ref().expect("checked");
            let it = &sel.items[i];
            // Dovecot's order: UID, then the other items it knows without the message (as
            // requested), then the rest (as requested); each item once.
            let mut parts: Vec<Vec<u8>> = Vec::new();
            if want_uid {
                parts.push(format!("UID {}", it.uid).into_bytes());
            }
            let mut flags_done = false;
            let mut modseq_done = false;
            for item in order.iter().copied() {
                match item {
                    MessageDataItemName::Uid => {}
                    MessageDataItemName::Flags => {
                        flags_done = true;
                        parts.push(format!("FLAGS {}", flags_text(it.flags)).into_bytes());
                    }
                    MessageDataItemName::InternalDate => parts.push(
                        format!("INTERNALDATE {}", render::internal_date(it.internal_date))
                            .into_bytes(),
                    ),
                    MessageDataItemName::Rfc822Size => {
                        parts.push(format!("RFC822.SIZE {}", it.size).into_bytes())
                    }
                    MessageDataItemName::ModSeq => {
                        modseq_done = true;
                        parts.push(format!("MODSEQ ({})", it.modseq).into_bytes());
                    }
                    other => {
                        if want_seen && !flags_done {
                            // \Seen was just set: the new flags come with the first content item.
                            flags_done = true;
                            parts.push(format!("FLAGS {}", flags_text(it.flags)).into_bytes());
                        }
                        if want_modseq && !modseq_done {
                            modseq_done = true;
                            parts.push(format!("MODSEQ ({})", it.modseq).into_bytes());
                        }
                        let Some(body) = bodies[k].as_ref() else {
                            continue;
                        };
                        let r = Rendered::new(body);
                        let mut piece = Vec::new();
                        match r.try_fetch_item(other, &mut piece) {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(e) => {
                                s.send(out).await?;
                                return s.reply(tag, e.tagged_no()).await;
                            }
                        }
                        if rfc822_peek
                            && matches!(
                                other,
                                MessageDataItemName::BodyExt {
                                    section: None,
                                    partial: None,
                                    peek: true
                                }
                            )
                            && piece.starts_with(b"BODY[]")
                        {
                            piece.splice(..6, b"RFC822".iter().copied());
                        }
                        parts.push(piece);
                    }
                }
            }
            if want_seen && !flags_done {
                parts.push(format!("FLAGS {}", flags_text(it.flags)).into_bytes());
            }
            if want_modseq && !modseq_done {
                parts.push(format!("MODSEQ ({})", it.modseq).into_bytes());
            }
            out.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
            for (j, p) in parts.iter().enumerate() {
                if j > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(p);
            }
            out.extend_from_slice(b")\r\n");
            if out.len() > 256 * 1024 {
                s.send(std::mem::take(&mut out)).await?;
            }
        }
        if !out.is_empty() {
            s.send(out).await?;
        }
    }
    s.reply(
        tag,
        if uid {
            "OK UID Fetch completed."
        } else {
            "OK Fetch completed."
        },
    )
    .await
}

/// Applies one change to several UIDs; returns (uid, flags, modseq) for those that exist.
async fn apply_flags(
    s: &Session,
    role: Role,
    uids: Vec<u32>,
    change: FlagChange,
) -> Result<Vec<(u32, Flags, u64)>, MailboxError> {
    let Some(login) = s.login.clone() else {
        return Ok(Vec::new());
    };
    let mb = mailboxes(s);
    blocking(move || {
        let mut out = Vec::new();
        for u in uids {
            if let Some((f, m)) = mb.store_flags(&login, role, u, change)? {
                out.push((u, f, m));
            }
        }
        Ok(out)
    })
    .await
}

fn update_items(s: &mut Session, changes: &[(u32, Flags, u64)]) {
    let Some(sel) = s.selected.as_mut() else {
        return;
    };
    for &(uid, flags, modseq) in changes {
        if let Ok(i) = sel.items.binary_search_by_key(&uid, |it| it.uid) {
            sel.items[i].flags = flags;
            sel.items[i].modseq = modseq;
        }
        sel.highest_modseq = sel.highest_modseq.max(modseq);
    }
}

#[allow(clippy::too_many_arguments)]
async fn store(
    s: &mut Session,
    tag: &[u8],
    set: &SequenceSet,
    kind: StoreType,
    response: StoreResponse,
    flags: &[Flag<'_>],
    uid: bool,
    modifiers: &[StoreModifier],
) -> Result<(), String> {
    let Some(sel) = s.selected.as_ref() else {
        return s.reply(tag, "BAD No mailbox selected.").await;
    };
    if sel.read_only {
        return s
            .reply(tag, "OK Store ignored with read-only mailbox.")
            .await;
    }
    let role = sel.role;
    let seen = flags.contains(&Flag::Seen);
    let flagged = flags.contains(&Flag::Flagged);
    let change = match kind {
        StoreType::Add => FlagChange {
            seen: seen.then_some(true),
            flagged: flagged.then_some(true),
        },
        StoreType::Remove => FlagChange {
            seen: seen.then_some(false),
            flagged: flagged.then_some(false),
        },
        StoreType::Replace => FlagChange {
            seen: Some(seen),
            flagged: Some(flagged),
        },
    };
    let unchanged_since = modifiers
        .iter()
        .map(|StoreModifier::UnchangedSince(v)| *v)
        .next();
    let idx = chosen(sel, set, uid);
    let mut modified = Vec::new();
    let mut targets = Vec::new();
    for &i in &idx {
        let it = &sel.items[i];
        if unchanged_since.is_some_and(|u| it.modseq > u) {
            modified.push(if uid { it.uid } else { i as u32 + 1 });
        } else {
            targets.push(it.uid);
        }
    }
    let changes = if change.seen.is_some() || change.flagged.is_some() {
        match apply_flags(s, role, targets.clone(), change).await {
            Ok(c) => c,
            Err(e) => return unavailable(s, tag, e).await,
        }
    } else {
        Vec::new()
    };
    update_items(s, &changes);
    let sel = s.selected.as_ref().expect("checked");
    let mut out = String::new();
    let silent = matches!(response, StoreResponse::Silent);
    for &u in &targets {
        let Ok(i) = sel.items.binary_search_by_key(&u, |it| it.uid) else {
            continue;
        };
        let it = &sel.items[i];
        if silent && !s.condstore {
            continue;
        }
        let mut line = format!("* {} FETCH (", i + 1);
        let mut parts = Vec::new();
        if !silent {
            parts.push(format!("FLAGS {}", flags_text(it.flags)));
        }
        if uid {
            parts.push(format!("UID {}", it.uid));
        }
        if s.condstore {
            parts.push(format!("MODSEQ ({})", it.modseq));
        }
        line.push_str(&parts.join(" "));
        line.push_str(")\r\n");
        out.push_str(&line);
    }
    let t = String::from_utf8_lossy(tag);
    if modified.is_empty() {
        out.push_str(&format!("{t} OK Store completed.\r\n"));
    } else {
        out.push_str(&format!(
            "{t} OK [MODIFIED {}] Conditional store failed.\r\n",
            uid_ranges(&modified)
        ));
    }
    s.send(out.into_bytes()).await
}

/// Keys that need nothing but flags, dates, numbers and sets.
pub(crate) fn needs_bytes(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_bytes),
        SearchKey::Or(a, b) => needs_bytes(a) || needs_bytes(b),
        SearchKey::Not(k) => needs_bytes(k),
        SearchKey::All
        | SearchKey::Answered
        | SearchKey::Deleted
        | SearchKey::Draft
        | SearchKey::Flagged
        | SearchKey::New
        | SearchKey::Old
        | SearchKey::Recent
        | SearchKey::Seen
        | SearchKey::Unanswered
        | SearchKey::Undeleted
        | SearchKey::Undraft
        | SearchKey::Unflagged
        | SearchKey::Unseen
        | SearchKey::Keyword(_)
        | SearchKey::Unkeyword(_)
        | SearchKey::SequenceSet(_)
        | SearchKey::Uid(_)
        | SearchKey::Since(_)
        | SearchKey::Before(_)
        | SearchKey::On(_)
        | SearchKey::ModSequence { .. } => false,
        _ => true,
    }
}

async fn search(
    s: &mut Session,
    tag: &[u8],
    criteria: &[SearchKey<'_>],
    uid: bool,
) -> Result<(), String> {
    let Some(sel) = s.selected.as_ref() else {
        return s.reply(tag, "BAD No mailbox selected.").await;
    };
    let role = sel.role;
    let max_seq = sel.items.len() as u32;
    let max_uid = sel.items.last().map_or(0, |i| i.uid);
    let content = criteria.iter().any(needs_bytes);
    let all: Vec<usize> = (0..sel.items.len()).collect();
    let mut hits = Vec::new();
    for chunk in all.chunks(BATCH) {
        let uids: Vec<u32> = {
            let sel = s.selected.as_ref().expect("checked");
            chunk.iter().map(|&i| sel.items[i].uid).collect()
        };
        let bodies = if content {
            match contents(s, role, uids).await {
                Ok(b) => b,
                Err(e) => return unavailable(s, tag, e).await,
            }
        } else {
            vec![None; chunk.len()]
        };
        let sel = s.selected.as_ref().expect("checked");
        for (k, &i) in chunk.iter().enumerate() {
            let it = &sel.items[i];
            let ctx = SearchContext {
                seq: i as u32 + 1,
                uid: it.uid,
                max_seq,
                max_uid,
                seen: it.flags.seen,
                flagged: it.flags.flagged,
                internal_date: it.internal_date,
                modseq: it.modseq,
            };
            let empty: &[u8] = &[];
            let r = Rendered::new(bodies[k].as_ref().map_or(empty, |b| b.as_slice()));
            if criteria.iter().all(|c| render::search_matches(c, &ctx, &r)) {
                hits.push(if uid { it.uid } else { i as u32 + 1 });
            }
        }
    }
    let mut line = String::from("* SEARCH");
    for h in hits {
        line.push(' ');
        line.push_str(&h.to_string());
    }
    line.push_str("\r\n");
    line.push_str(&format!(
        "{} OK Search completed.\r\n",
        String::from_utf8_lossy(tag)
    ));
    s.send(line.into_bytes()).await
}

async fn copy(
    s: &mut Session,
    tag: &[u8],
    set: &SequenceSet,
    uid: bool,
    dest: Option<Vec<u8>>,
    is_move: bool,
) -> Result<(), String> {
    let Some(dest) = dest else {
        return s.reply(tag, "BAD Missing destination mailbox.").await;
    };
    if s.layout
        .as_ref()
        .is_some_and(|l| l.is_virtual(&dest, s.utf8))
    {
        return s
            .reply(tag, "NO [CANNOT] De-Mail evidence folders are read-only.")
            .await;
    }
    if !crate::capability::has(&s.upstream_caps, "LITERAL+") {
        return s
            .reply(
                tag,
                "NO [CANNOT] Copying out of De-Mail folders needs LITERAL+ on the mail server.",
            )
            .await;
    }
    let Some(sel) = s.selected.as_ref() else {
        return s.reply(tag, "BAD No mailbox selected.").await;
    };
    let role = sel.role;
    let idx = chosen(sel, set, uid);
    if idx.is_empty() {
        return s.reply(tag, "OK No messages.").await;
    }
    let items: Vec<(u32, Flags, time::OffsetDateTime)> = idx
        .iter()
        .map(|&i| {
            let it = &sel.items[i];
            (it.uid, it.flags, it.internal_date)
        })
        .collect();
    let bodies = match contents(s, role, items.iter().map(|i| i.0).collect()).await {
        Ok(b) => b,
        Err(e) => return unavailable(s, tag, e).await,
    };
    let mut job = CopyJob {
        tag: tag.to_vec(),
        outstanding: 0,
        src_uids: Vec::new(),
        dst_uids: Vec::new(),
        uid_validity: None,
        failure: None,
        is_move,
    };
    let mut cmds = Vec::new();
    for ((uid, flags, date), body) in items.into_iter().zip(bodies) {
        let Some(body) = body else { continue };
        let mut cmd = b"APPEND ".to_vec();
        token::write_string(&mut cmd, &dest);
        cmd.extend_from_slice(
            format!(" {} {} ", flags_text(flags), render::internal_date(date)).as_bytes(),
        );
        cmd.extend_from_slice(format!("{{{}+}}\r\n", body.len()).as_bytes());
        cmd.extend_from_slice(&body);
        cmd.extend_from_slice(b"\r\n");
        job.src_uids.push(uid);
        cmds.push(cmd);
    }
    job.outstanding = cmds.len();
    if cmds.is_empty() {
        return s.reply(tag, "OK No messages.").await;
    }
    s.copy = Some(job);
    s.hold = true;
    for c in cmds {
        s.internal(Internal::CopyAppend, &c).await?;
    }
    Ok(())
}

/// One APPEND of a COPY/MOVE answered; the last one answers the client.
pub async fn copy_append_done(s: &mut Session, ok: bool, line: &[u8]) -> Result<(), String> {
    let Some(job) = s.copy.as_mut() else {
        return Ok(());
    };
    job.outstanding -= 1;
    let text = String::from_utf8_lossy(line);
    if ok {
        if let Some(code) = text.split("[APPENDUID ").nth(1) {
            let mut w = code.split([' ', ']']);
            job.uid_validity = w.next().and_then(|v| v.parse().ok());
            if let Some(u) = w.next().and_then(|v| v.parse().ok()) {
                job.dst_uids.push(u);
            }
        }
    } else if job.failure.is_none() {
        let rest = text
            .trim_end()
            .split_once(' ')
            .map(|x| x.1)
            .unwrap_or("NO Copy failed.");
        job.failure = Some(rest.to_string());
    }
    if job.outstanding > 0 {
        return Ok(());
    }
    let job = s.copy.take().expect("present");
    let t = String::from_utf8_lossy(&job.tag).into_owned();
    let what = if job.is_move { "Move" } else { "Copy" };
    let answer = match job.failure {
        Some(f) => format!("{t} {f}\r\n"),
        None => match job.uid_validity {
            Some(v) if job.dst_uids.len() == job.src_uids.len() => format!(
                "{t} OK [COPYUID {v} {} {}] {what} completed; the De-Mail evidence stays.\r\n",
                job.src_uids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                job.dst_uids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => format!("{t} OK {what} completed; the De-Mail evidence stays.\r\n"),
        },
    };
    s.send(answer.into_bytes()).await
}

/// Tells the client what changed in the selected virtual folder since it last looked: items
/// that left (EXPUNGE, or VANISHED with QRESYNC), flags changed by another session of the
/// same login, new evidence (EXISTS).
pub async fn refresh(s: &mut Session, _in_command: bool) -> Result<(), String> {
    let (Some(sel), Some(login)) = (s.selected.as_ref(), s.login.clone()) else {
        return Ok(());
    };
    let role = sel.role;
    let mb = mailboxes(s);
    let snap = match blocking(move || mb.snapshot(&login, role)).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("evidence not readable: {e}");
            return Ok(());
        }
    };
    let sel = s.selected.as_mut().expect("checked");
    let mut out = String::new();
    let new_uids: std::collections::HashSet<u32> = snap.items.iter().map(|i| i.uid).collect();
    let gone: Vec<(usize, u32)> = sel
        .items
        .iter()
        .enumerate()
        .filter(|(_, it)| !new_uids.contains(&it.uid))
        .map(|(i, it)| (i, it.uid))
        .collect();
    if !gone.is_empty() {
        if s.qresync {
            let uids: Vec<u32> = gone.iter().map(|g| g.1).collect();
            out.push_str(&format!("* VANISHED {}\r\n", uid_ranges(&uids)));
        } else {
            for (i, _) in gone.iter().rev() {
                out.push_str(&format!("* {} EXPUNGE\r\n", i + 1));
            }
        }
        sel.items.retain(|it| new_uids.contains(&it.uid));
    }
    let mut by_uid: std::collections::HashMap<u32, &Item> =
        snap.items.iter().map(|i| (i.uid, i)).collect();
    for (i, it) in sel.items.iter_mut().enumerate() {
        if let Some(n) = by_uid.remove(&it.uid)
            && (n.flags != it.flags)
        {
            it.flags = n.flags;
            it.modseq = n.modseq;
            out.push_str(&format!(
                "* {} FETCH (UID {} FLAGS {}",
                i + 1,
                it.uid,
                flags_text(it.flags)
            ));
            if s.condstore {
                out.push_str(&format!(" MODSEQ ({})", it.modseq));
            }
            out.push_str(")\r\n");
        }
    }
    let last = sel.items.last().map_or(0, |i| i.uid);
    let before = sel.items.len();
    sel.items
        .extend(snap.items.iter().filter(|i| i.uid > last).cloned());
    if sel.items.len() != before || !gone.is_empty() {
        out.push_str(&format!("* {} EXISTS\r\n", sel.items.len()));
    }
    sel.uid_next = snap.uid_next;
    sel.highest_modseq = sel.highest_modseq.max(snap.highest_modseq);
    if !out.is_empty() {
        s.send(out.into_bytes()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(uid_ranges(&[5, 1, 2, 3, 9]), "1:3,5,9");
        assert_eq!(uid_ranges(&[7]), "7");
    }

    #[test]
    fn rfc822_peek_rewritten() {
        let (b, f) = rewrite_rfc822_peek(b"a UID FETCH 4 (UID RFC822.SIZE RFC822.PEEK)\r\n");
        assert!(f);
        assert_eq!(b, b"a UID FETCH 4 (UID RFC822.SIZE BODY.PEEK[])\r\n");
    }
}
