//! Entry points for the fuzz targets in `fuzz/` into the parts of the proxy that read what a
//! client sends. Not an API: hidden from the documentation and free to change with the targets.

use demail_policy::FolderNames;
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::sequence::SequenceSet;

use crate::folders::{self, Layout, Namespace, Target};
use crate::framing::{FrameError, Framer, Piece};
use crate::session::{auth, classify, list, local};
use crate::{mutf7, sequence, token};

/// A client's byte stream, as the session reads it: cut into reads, framed with small limits
/// (from the first two bytes) so that the line and keep limits are reached, and every complete
/// message handed to what the session does with it. The framer must pass every byte on
/// unchanged and in order, and keep exactly the message it reports.
pub fn client_stream(data: &[u8]) {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let max_line = 8 + usize::from(*a) * 4;
    let keep_limit = usize::from(*b) * 16;
    let mut f = Framer::new(max_line, keep_limit);
    let mut out: Vec<u8> = Vec::with_capacity(rest.len());
    let mut message: Vec<u8> = Vec::new();
    let mut literal_left: u64 = 0;
    let mut pushed = 0;
    // Reads of 1..=61 bytes, varying with the data itself.
    let mut chunks = rest.chunks(1 + usize::from(*a % 61));
    loop {
        let piece = match f.next() {
            Ok(Some(p)) => p,
            Ok(None) => match chunks.next() {
                Some(c) => {
                    f.push(c);
                    pushed += c.len();
                    continue;
                }
                None => break,
            },
            // The session ends here (BYE): nothing more is read.
            Err(FrameError::LineTooLong(_)) => {
                assert!(f.buffered() > 0);
                break;
            }
        };
        let at_start_before = message.is_empty();
        match &piece {
            Piece::Line {
                bytes,
                first,
                literal,
            } => {
                assert_eq!(literal_left, 0, "a line inside a literal");
                assert_eq!(*first, at_start_before, "first flag out of step");
                assert!(bytes.ends_with(b"\n") && bytes.len() <= max_line);
                assert_eq!(bytes.iter().filter(|&&c| c == b'\n').count(), 1);
                out.extend_from_slice(bytes);
                message.extend_from_slice(bytes);
                if let Some((len, _)) = literal {
                    literal_left = u64::from(*len);
                }
            }
            Piece::Literal { bytes, done } => {
                assert!(!bytes.is_empty() && bytes.len() as u64 <= literal_left);
                literal_left -= bytes.len() as u64;
                assert_eq!(*done, literal_left == 0);
                out.extend_from_slice(bytes);
                message.extend_from_slice(bytes);
            }
        }
        assert_eq!(out.len() + f.buffered(), pushed, "bytes lost or invented");
        assert_eq!(
            out[..],
            rest[..out.len()],
            "bytes changed on the way through"
        );
        let complete = matches!(&piece, Piece::Line { literal: None, .. });
        assert_eq!(f.at_message_start(), complete);
        if complete {
            match f.kept() {
                Some(kept) => {
                    assert_eq!(kept, &message[..], "kept bytes are not the message");
                    assert!(kept.len() <= keep_limit);
                    command(kept);
                }
                None => assert!(message.len() > keep_limit || keep_limit == 0),
            }
            message.clear();
        }
    }
}

/// One complete client message through everything the session reads from it.
pub fn command(message: &[u8]) {
    let line_end = message
        .iter()
        .position(|&c| c == b'\n')
        .map_or(message.len(), |p| p + 1);
    let line = &message[..line_end];
    let _ = token::head(line);
    let _ = token::tokens(message);
    let _ = token::announcement_inside_quotes(line);
    let _ = classify::first_arg(line);
    let _ = list::Request::parse(message, false);
    let _ = list::Request::parse(message, true);
    let _ = auth::login_user(message);
    if let Some((_, Some(initial))) = auth::authenticate(message) {
        let _ = auth::plain_identity(&initial);
    }
    if let Ok(t) = token::tokens(message)
        && let Some(args) = t.get(2..)
    {
        let _ = auth::id_fields(args);
    }
    non_synchronising(message);
    virtual_folder_command(message);
}

/// `{N}` made `{N+}`: the same message otherwise, framed the same way, no synchronising
/// literal left.
fn non_synchronising(message: &[u8]) {
    let out = classify::non_synchronising(message);
    let mut f = Framer::new(usize::MAX / 2, 0);
    f.push(&out);
    let mut sync = 0;
    let mut seen = 0;
    while let Ok(Some(p)) = f.next() {
        match p {
            Piece::Line { bytes, literal, .. } => {
                seen += bytes.len();
                if let Some((_, true)) = literal {
                    sync += 1;
                }
            }
            Piece::Literal { bytes, .. } => seen += bytes.len(),
        }
    }
    assert_eq!(sync, 0, "a synchronising literal left in {out:?}");
    assert!(out.len() >= seen && out.len() - seen == f.buffered());
}

/// What a selected virtual folder does with a command before it reads the evidence: the
/// Outlook rewrite, imap-codec's decoding, the sequence sets against a folder of each size.
fn virtual_folder_command(message: &[u8]) {
    let _ = local::bytes_dest(message, false);
    let _ = local::bytes_dest(message, true);
    let (bytes, _) = local::rewrite_rfc822_peek(message);
    let Ok((_, cmd)) = CommandCodec::default().decode(&bytes) else {
        return;
    };
    match cmd.body {
        CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            ..
        } => {
            sequence_set_checks(&sequence_set);
            for item in local::expand(macro_or_item_names) {
                let _ = local::needs_content(&item);
                let _ = local::marks_seen(&item);
            }
        }
        CommandBody::Store { sequence_set, .. }
        | CommandBody::Copy { sequence_set, .. }
        | CommandBody::Move { sequence_set, .. } => sequence_set_checks(&sequence_set),
        CommandBody::ExpungeUid { sequence_set } => sequence_set_checks(&sequence_set),
        CommandBody::Search { criteria, .. } => {
            for key in criteria.as_ref() {
                let _ = local::needs_bytes(key);
            }
        }
        _ => {}
    }
}

/// The ranges a set resolves to are sorted, disjoint and apart, and hold exactly the numbers
/// the set contains; the members listed are bounded and in the set.
fn sequence_set_checks(set: &SequenceSet) {
    for largest in [0, 1, 7, 100_000, u32::MAX] {
        let ranges = sequence::ranges(set, largest);
        for w in ranges.windows(2) {
            assert!(
                w[0].1.saturating_add(1) < w[1].0,
                "ranges overlap: {ranges:?}"
            );
        }
        let mut probes: Vec<u32> = vec![0, 1, 2, largest.saturating_sub(1), largest];
        for &(lo, hi) in ranges.iter().take(16) {
            probes.extend([lo.saturating_sub(1), lo, hi, hi.saturating_add(1)]);
        }
        for n in probes {
            assert_eq!(
                sequence::in_ranges(&ranges, n),
                sequence::contains(set, n, largest),
                "{n} with * = {largest}"
            );
        }
        let members = local::set_members(set, largest, 64);
        assert!(members.len() <= 64);
        assert!(members.iter().all(|&n| sequence::contains(set, n, largest)));
    }
}

/// A mailbox name as a client sends it: every text survives modified UTF-7, a spelling the
/// decoder accepts names what its canonical spelling names (the decoder is lenient on purpose:
/// a sloppy spelling of a virtual name is still ours, never a real folder behind it), and the
/// virtual folders are found under both wire forms.
pub fn mailbox_name(names: &FolderNames, data: &[u8]) {
    let decoded = mutf7::decode(data);
    if let Some(d) = &decoded {
        let canonical = mutf7::encode(d);
        assert_eq!(mutf7::decode(canonical.as_bytes()).as_ref(), Some(d));
    }
    let text = String::from_utf8_lossy(data);
    assert_eq!(
        mutf7::decode(mutf7::encode(&text).as_bytes()).as_deref(),
        Some(&*text)
    );
    for (prefix, delimiter) in [("", Some('/')), ("INBOX.", Some('.')), ("", None)] {
        let ns = Namespace {
            prefix: prefix.to_string(),
            delimiter,
        };
        let layout = Layout::new(names, &ns);
        for (target, name) in layout.names() {
            for utf8 in [false, true] {
                let wire = folders::encode(name, utf8);
                assert_eq!(layout.lookup(&wire, utf8), Some(target), "{name:?}");
            }
        }
        let as_utf7 = layout.lookup(&folders::encode(&text, false), false);
        let as_utf8 = layout.lookup(text.as_bytes(), true);
        assert_eq!(
            as_utf7, as_utf8,
            "{text:?} named differently by its two wire forms"
        );
        let raw = layout.lookup(data, false);
        if let Some(d) = &decoded {
            let canonical = mutf7::encode(d);
            assert_eq!(raw, layout.lookup(canonical.as_bytes(), false), "{d:?}");
        }
        if let Some(Target::Folder(_) | Target::Root) = raw {
            assert!(layout.is_virtual(data, false));
        }
    }
}
