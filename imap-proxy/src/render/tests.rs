//! Hostile and boundary cases that need no Dovecot (the golden tests compare the rest).

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;

use super::Rendered;

fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

fn fetch(m: &[u8], items: &str) -> Vec<u8> {
    let cmd = format!("a FETCH 1 ({items})\r\n");
    let (_, c) = CommandCodec::default()
        .decode(cmd.as_bytes())
        .expect("item parses");
    let CommandBody::Fetch {
        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names),
        ..
    } = c.body
    else {
        panic!("not a FETCH");
    };
    let r = Rendered::new(m);
    let mut out = Vec::new();
    for n in names.iter() {
        assert!(r.fetch_item(n, &mut out));
    }
    out
}

fn literal(out: &[u8]) -> &[u8] {
    let open = out.iter().position(|&c| c == b'{').expect("a literal");
    let close = open + out[open..].iter().position(|&c| c == b'}').unwrap();
    &out[close + 3..]
}

fn max_paren_depth(s: &[u8]) -> usize {
    let (mut d, mut max) = (0usize, 0usize);
    for &c in s {
        match c {
            b'(' => {
                d += 1;
                max = max.max(d);
            }
            b')' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn deep_multipart(levels: usize) -> Vec<u8> {
    let mut m = String::from("Subject: deep\nMIME-Version: 1.0\n");
    for i in 0..levels {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
        ));
    }
    m.push_str("Content-Type: text/plain\n\nx\n");
    crlf(&m)
}

fn deep_rfc822(levels: usize) -> Vec<u8> {
    let mut m = String::new();
    for _ in 0..levels {
        m.push_str("MIME-Version: 1.0\nContent-Type: message/rfc822\n\n");
    }
    m.push_str("Subject: innermost\n\ntext\n");
    crlf(&m)
}

/// Hostile nesting is cut at Dovecot's 100 levels: rendering stays shallow on a small stack.
#[test]
fn deep_nesting_is_capped_and_needs_little_stack() {
    let cases = [
        deep_multipart(1000),
        deep_multipart(20000),
        deep_rfc822(1000),
        deep_rfc822(20000),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for m in &cases {
                let bs = fetch(m, "BODYSTRUCTURE");
                // One level of parentheses per part (plus an envelope list for rfc822 ones).
                assert!(max_paren_depth(&bs) < 2 * super::parse::MAX_NESTED_PARTS + 10);
                let opaque: &[u8] = b"\"application\" \"octet-stream\"";
                assert!(
                    bs.windows(opaque.len()).any(|w| w == opaque),
                    "the part beyond the limit is opaque"
                );
                let _ = fetch(m, "BODY BINARY.PEEK[] BODY.PEEK[1.1.1.1] ENVELOPE");
                let r = Rendered::new(m);
                let key = imap_codec::imap_types::search::SearchKey::Text(
                    "innermost".try_into().unwrap(),
                );
                let ctx = super::SearchContext {
                    seq: 1,
                    uid: 1,
                    max_seq: 1,
                    max_uid: 1,
                    seen: false,
                    flagged: false,
                    internal_date: time::OffsetDateTime::UNIX_EPOCH,
                    modseq: 1,
                };
                let _ = super::search_matches(&key, &ctx, &r);
            }
        })
        .unwrap();
    handle.join().expect("no stack overflow");
}

#[test]
fn unterminated_boundaries_end_at_the_data() {
    for m in [
        crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\npart one\n"),
        crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\nno part at all\n"),
        crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x"),
        crlf(
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: multipart/mixed; boundary=y\n\n--y\n\ninner\n",
        ),
    ] {
        let whole = fetch(&m, "BODY.PEEK[]");
        assert_eq!(literal(&whole), &m[..]);
        let bs = fetch(&m, "BODYSTRUCTURE");
        assert!(
            bs.starts_with(b"BODYSTRUCTURE ("),
            "{}",
            String::from_utf8_lossy(&bs)
        );
    }
    // The one open part runs to the end of the data.
    let m =
        crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\npart one\n");
    assert_eq!(literal(&fetch(&m, "BODY.PEEK[1]")), b"part one\r\n");
    // A multipart without any part gets Dovecot's empty text/plain child.
    let m =
        crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\nno part at all\n");
    assert!(fetch(&m, "BODY").starts_with(
        b"BODY ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")"
    ));
}

#[test]
fn header_lines_without_colon_stay_where_they_are() {
    for line in ["no colon here", "::::", "no-colon-either", "\x00nul"] {
        let m = crlf(&format!("Subject: s\n{line}\nFrom: a@b.c\n\nbody\n"));
        let not = fetch(&m, "BODY.PEEK[HEADER.FIELDS.NOT (Subject)]");
        let want = crlf(&format!("{line}\nFrom: a@b.c\n\n"))
            .iter()
            .map(|&c| if c == 0 { 0x80 } else { c })
            .collect::<Vec<_>>();
        if line.contains(':') && !line.starts_with(':') {
            continue;
        }
        assert_eq!(literal(&not), &want[..], "{line:?}");
        let only = fetch(&m, "BODY.PEEK[HEADER.FIELDS (From)]");
        assert_eq!(literal(&only), b"From: a@b.c\r\n\r\n");
        let env = fetch(&m, "ENVELOPE");
        assert!(
            env.windows(5).any(|w| w == b"\"a\" \""),
            "{}",
            String::from_utf8_lossy(&env)
        );
    }
}

#[test]
fn boundaries_inside_quoted_strings_and_prefixes() {
    // The parameter value holds ';', '=' and escaped quotes; the line must match it exactly.
    let m = crlf(
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"a; b=\\\"c\\\"\"; x=y\n\n\
         --a; b=\"c\"\nContent-Type: text/plain\n\none\n--a; b=\"c\"--\n",
    );
    assert_eq!(literal(&fetch(&m, "BODY.PEEK[1]")), b"one");
    // Dovecot matches boundaries by prefix: "--bXYZ" is a boundary line of "b".
    let m = crlf(
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\
         --b\n\none\n--bXYZ\n\ntwo\n--b--\n",
    );
    assert_eq!(literal(&fetch(&m, "BODY.PEEK[1]")), b"one");
    assert_eq!(literal(&fetch(&m, "BODY.PEEK[2]")), b"two");
    // A quoted boundary that is never used leaves the body to the multipart.
    let m = crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"--\"\n\n----\nx\n");
    let bs = fetch(&m, "BODYSTRUCTURE");
    assert!(bs.starts_with(b"BODYSTRUCTURE ("));
}

#[test]
fn partial_ranges_follow_rfc9051() {
    let m = crlf("Subject: p\n\n0123456789\n");
    let n = m.len();
    let whole = literal(&fetch(&m, "BODY.PEEK[]")).to_vec();
    for (off, len) in [
        (0usize, 1usize),
        (0, n),
        (0, n + 100),
        (5, 3),
        (n - 1, 10),
        (n, 1),
        (n + 5, 1),
    ] {
        let got = fetch(&m, &format!("BODY.PEEK[]<{off}.{len}>"));
        let head = format!("BODY[]<{off}> {{");
        assert!(got.starts_with(head.as_bytes()));
        let want = if off >= n {
            &[][..]
        } else {
            &whole[off..n.min(off + len)]
        };
        assert_eq!(literal(&got), want, "<{off}.{len}>");
    }
    // The partial range of a header subset applies after subsetting.
    let got = fetch(&m, "BODY.PEEK[HEADER.FIELDS (SUBJECT)]<2.5>");
    assert_eq!(literal(&got), b"bject");
}

#[test]
fn not_content_items_are_left_to_the_session() {
    let m = crlf("Subject: x\n\ny\n");
    let r = Rendered::new(&m);
    let mut out = Vec::new();
    use imap_codec::imap_types::fetch::MessageDataItemName as N;
    for item in [N::Flags, N::Uid, N::InternalDate, N::ModSeq] {
        assert!(!r.fetch_item(&item, &mut out));
    }
    assert!(out.is_empty());
}

#[test]
fn undecodable_binary_is_an_error_with_dovecots_answer() {
    use super::FetchError;
    use imap_codec::imap_types::fetch::MessageDataItemName as N;
    let one = std::num::NonZeroU32::new(1).unwrap();
    for (cte, body, err) in [
        ("x-uuencode", "begin 644 f\n", FetchError::UnknownCte),
        ("base64", "SGVs-bG8=\n", FetchError::InvalidData),
        ("base64", "SGVsbA\n", FetchError::Truncated),
        ("quoted-printable", "bad=ZZ\n", FetchError::InvalidData),
    ] {
        let m = crlf(&format!(
            "MIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: {cte}\n\n{body}"
        ));
        let r = Rendered::new(&m);
        let mut out = Vec::new();
        let item = N::Binary {
            section: vec![one],
            partial: None,
            peek: true,
        };
        assert_eq!(
            r.try_fetch_item(&item, &mut out),
            Err(err),
            "{cte} {body:?}"
        );
        assert!(out.is_empty());
        assert!(r.fetch_item(&item, &mut out));
        assert_eq!(out, b"BINARY[1] NIL");
    }
    assert!(
        FetchError::UnknownCte
            .tagged_no()
            .starts_with("NO [UNKNOWN-CTE]")
    );
}

/// Random damage to real message shapes never makes rendering or SEARCH panic (a panic would
/// end the clerk's session). A small deterministic generator, so a failure can be replayed.
#[test]
fn mangled_messages_never_panic() {
    use crate::render::{SearchContext, search_matches};
    use imap_codec::imap_types::IntoStatic;
    use imap_codec::imap_types::search::SearchKey;
    let seeds = [
        crlf(
            "From: A <a@b.example>\nTo: c@d.example\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\
             MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\n\
             Content-Type: text/plain; charset*=utf-8''%C3%A4\nContent-Transfer-Encoding: \
             quoted-printable\n\nHallo =C3=A4=\n\n--b1\nContent-Type: message/rfc822\n\n\
             Subject: inner\nContent-Type: multipart/alternative; boundary=b2\n\n--b2\n\
             Content-Transfer-Encoding: base64\n\nSGFsbG8=\n--b2--\n--b1--\n",
        ),
        crlf("Subject: x\n\nbody only\n"),
        crlf("Content-Type: multipart/signed; boundary=\"s\"\nMIME-Version: 1.0\n\n--s\n\n--s\n"),
    ];
    let items = [
        "BODYSTRUCTURE",
        "BODY",
        "ENVELOPE",
        "BODY.PEEK[]",
        "BODY.PEEK[1]",
        "BODY.PEEK[2.1.1]",
        "BODY.PEEK[1.MIME]",
        "BODY.PEEK[2.HEADER]",
        "BODY.PEEK[2.TEXT]",
        "BODY.PEEK[HEADER.FIELDS (Subject From)]",
        "BODY.PEEK[HEADER.FIELDS.NOT (Subject)]",
        "BODY.PEEK[TEXT]<3.20>",
        "BINARY.PEEK[1]",
        "BINARY.PEEK[2.1.1]",
        "BINARY.SIZE[1]",
        "RFC822.HEADER",
        "RFC822.TEXT",
    ];
    let names: Vec<_> = items
        .iter()
        .map(|i| {
            let cmd = format!("a FETCH 1 ({i})\r\n");
            let (_, c) = CommandCodec::default()
                .decode(cmd.as_bytes())
                .expect("parses");
            let CommandBody::Fetch {
                macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(n),
                ..
            } = c.body
            else {
                panic!("not a FETCH");
            };
            n.into_iter().next().expect("one item").into_static()
        })
        .collect();
    let keys: Vec<SearchKey<'static>> = [
        "TEXT hallo",
        "BODY x",
        "SUBJECT gr",
        "FROM a",
        "HEADER Content-Type mixed",
        "SENTBEFORE 1-Jan-2030",
        "LARGER 10",
    ]
    .iter()
    .map(|k| {
        let cmd = format!("a SEARCH {k}\r\n");
        let (_, c) = CommandCodec::default()
            .decode(cmd.as_bytes())
            .expect("parses");
        let CommandBody::Search { criteria, .. } = c.body else {
            panic!("not a SEARCH");
        };
        criteria.into_inner().remove(0).into_static()
    })
    .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"\r\n-:;=\" \t<>()[]{}\\bB1\x00\xff\xc3";
    for round in 0..3000u32 {
        let mut m = seeds[(round as usize) % seeds.len()].clone();
        for _ in 0..(1 + next() % 8) {
            let at = (next() as usize) % (m.len() + 1);
            match next() % 4 {
                0 if at < m.len() => {
                    m.remove(at);
                }
                1 => m.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                2 => {
                    let end = (at + (next() as usize) % 40).min(m.len());
                    m.drain(at..end);
                }
                _ => {
                    let piece = b"\r\n--b1\r\n".to_vec();
                    for (k, b) in piece.into_iter().enumerate() {
                        m.insert((at + k).min(m.len()), b);
                    }
                }
            }
        }
        let r = Rendered::new(&m);
        let mut out = Vec::new();
        for n in &names {
            let _ = r.try_fetch_item(n, &mut out);
        }
        let ctx = SearchContext {
            seq: 1,
            uid: 1,
            max_seq: 1,
            max_uid: 1,
            seen: false,
            flagged: false,
            internal_date: time::OffsetDateTime::UNIX_EPOCH,
            modseq: 1,
        };
        for k in &keys {
            let _ = search_matches(k, &ctx, &r);
        }
        // Whatever the damage: RFC822.SIZE is the length of BODY[] as served.
        let mut whole = Vec::new();
        assert!(r.fetch_item(&names[3], &mut whole));
        let text = String::from_utf8_lossy(&whole);
        let announced: u64 = text
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("BODY[] without a literal: {text:?}"));
        assert_eq!(announced, r.size(), "round {round}");
    }
}
