//! Finding the signatures in a mail, with the exact bytes each one signs.
//!
//! - `multipart/signed` (protocol application/pkcs7-signature or the legacy x-pkcs7): the first
//!   part exactly as transmitted (mail-parser offsets, no re-encoding), line ends made CRLF as
//!   RFC 8551 §3.1.1 requires; the second part is the detached CMS.
//! - `application/pkcs7-mime` signed-data where a MIME entity belongs (a message body, the first
//!   part of multipart/signed): opaque S/MIME; its content is a MIME entity that is searched on.
//! - `.p7s` beside other attachments: detached CAdES over the sibling of the same name without
//!   `.p7s`, else the sibling whose digest matches.
//! - `.p7m` attachments (or a message body named `*.p7m` other than `smime.p7m`): enveloping
//!   CAdES; its content is a document and is not searched.
//!
//! Like Thunderbird, we do not unwrap an opaque S/MIME object that is itself the content of an
//! opaque signature: the outer signer signed it as a blob, and a second opaque layer directly
//! inside is what signature-wrapping tricks use. Encrypted parts are noted, not inspected.

use std::borrow::Cow;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use openssl::hash::hash;
use time::OffsetDateTime;

use crate::report::{SignatureKind, SignedObject};
use crate::{attrs, cert, cms, oid, transfer};

/// Deepest nesting of messages and opaque signatures we follow.
const MAX_DEPTH: usize = 8;

/// The mail around an S/MIME signature, for the RFC 8550 §3 sender check and the date check.
#[derive(Debug, Clone, Default)]
pub struct MailContext {
    /// Addresses in the topmost From and Sender fields, lower case.
    pub senders: Vec<String>,
    pub date: Option<OffsetDateTime>,
}

/// A message and the buffer its part offsets refer to. mail-parser 0.11 gives the parts of an
/// inline message/rfc822 offsets into the outermost raw message, while an encoded one is
/// parsed from its own decoded buffer; `raw` follows that.
#[derive(Clone, Copy)]
struct Doc<'a> {
    msg: &'a Message<'a>,
    raw: &'a [u8],
}

impl<'a> Doc<'a> {
    fn root(msg: &'a Message<'a>) -> Doc<'a> {
        Doc {
            msg,
            raw: msg.raw_message(),
        }
    }

    fn nested(self, inner: &'a Message<'a>) -> Doc<'a> {
        let own = inner.raw_message();
        let within = self.raw.as_ptr_range().contains(&own.as_ptr());
        Doc {
            msg: inner,
            raw: if within { self.raw } else { own },
        }
    }

    fn slice(&self, from: u32, to: u32) -> Option<&'a [u8]> {
        self.raw.get(from as usize..to as usize)
    }
}

/// Where the signed bytes are.
#[derive(Debug, Clone)]
pub enum Content<'a> {
    /// In the CMS (eContent).
    Embedded,
    /// Borrowed from the raw mail when it needed no conversion (the usual CRLF mail).
    Detached(Cow<'a, [u8]>),
    /// Not found; the reason says why.
    Missing(String),
}

#[derive(Debug, Clone)]
pub struct Found<'a> {
    pub cms: Result<Vec<u8>, String>,
    pub content: Content<'a>,
    pub signed: SignedObject,
    /// Set for S/MIME signatures over the mail itself, not for signed attachments.
    pub mail: Option<MailContext>,
}

#[derive(Debug, Default)]
pub struct Scan<'a> {
    pub found: Vec<Found<'a>>,
    /// Parts we saw but did not check (encrypted, over the limits).
    pub notes: Vec<String>,
}

/// Searches a raw RFC 5322 message; `max_signatures` bounds the work on hostile mail.
pub fn scan(raw: &[u8], max_signatures: usize) -> Scan<'_> {
    let mut w = Walker {
        scan: Scan::default(),
        top: raw,
        max_signatures,
    };
    match MessageParser::default().parse(raw) {
        Some(msg) => {
            let doc = Doc::root(&msg);
            w.message(doc, "", &mail_context(doc), 0);
        }
        None => w.scan.notes.push("not a parseable mail".to_string()),
    }
    w.scan
}

struct Walker<'a> {
    scan: Scan<'a>,
    /// The mail given to `scan`: signed parts inside it are handed out borrowed.
    top: &'a [u8],
    max_signatures: usize,
}

/// IMAP section numbering; `/` marks the step into an opaque signature's content.
fn join(prefix: &str, index: usize) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        format!("{prefix}{index}")
    } else {
        format!("{prefix}.{index}")
    }
}

fn ctype(part: &MessagePart<'_>) -> (String, String) {
    part.content_type().map_or_else(
        || ("text".to_string(), "plain".to_string()),
        |ct| {
            (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase(),
            )
        },
    )
}

fn type_label(part: &MessagePart<'_>) -> String {
    let (t, s) = ctype(part);
    format!("{t}/{s}")
}

fn filename(part: &MessagePart<'_>) -> Option<String> {
    part.attachment_name().map(str::to_string)
}

fn ends_with_ci(name: &str, suffix: &str) -> bool {
    name.len() >= suffix.len()
        && name.is_char_boundary(name.len() - suffix.len())
        && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

fn is_signature_file(part: &MessagePart<'_>) -> bool {
    let (t, s) = ctype(part);
    (t == "application" && (s == "pkcs7-signature" || s == "x-pkcs7-signature"))
        || filename(part).is_some_and(|n| ends_with_ci(&n, ".p7s"))
}

fn is_pkcs7_mime(part: &MessagePart<'_>) -> bool {
    let (t, s) = ctype(part);
    (t == "application" && (s == "pkcs7-mime" || s == "x-pkcs7-mime"))
        || filename(part).is_some_and(|n| ends_with_ci(&n, ".p7m"))
}

fn is_certs_only(part: &MessagePart<'_>) -> bool {
    part.content_type()
        .and_then(|ct| ct.attribute("smime-type"))
        .is_some_and(|t| t.eq_ignore_ascii_case("certs-only"))
        || filename(part).is_some_and(|n| ends_with_ci(&n, ".p7c"))
}

/// The transfer-decoded body of a leaf part.
fn body(doc: Doc<'_>, part: &MessagePart<'_>) -> Result<Vec<u8>, String> {
    let raw = doc
        .slice(part.offset_body, part.offset_end)
        .ok_or("part offsets outside the message")?;
    transfer::decode(raw, part.content_transfer_encoding())
        .ok_or_else(|| "invalid base64 in the part".to_string())
}

/// From/Sender/Date of a message, matching field names strictly on the raw bytes: mail-parser
/// 0.11 also reads `Fr om:` as From, and the sender check must see what clients display.
fn mail_context(doc: Doc<'_>) -> MailContext {
    let mut ctx = MailContext::default();
    let (mut have_from, mut have_sender, mut have_date) = (false, false, false);
    for h in doc.msg.root_part().headers() {
        let name = doc
            .slice(h.offset_field, h.offset_start)
            .unwrap_or_default();
        let name = name.strip_suffix(b":").unwrap_or(name);
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if (is("from") && !have_from) || (is("sender") && !have_sender) {
            if is("from") {
                have_from = true;
            } else {
                have_sender = true;
            }
            if let Some(addrs) = h.value.as_address() {
                ctx.senders.extend(
                    addrs
                        .iter()
                        .filter_map(|a| a.address())
                        .map(str::to_ascii_lowercase),
                );
            }
        } else if is("date") && !have_date {
            have_date = true;
            ctx.date = h
                .value
                .as_datetime()
                .and_then(|d| OffsetDateTime::from_unix_timestamp(d.to_timestamp()).ok());
        }
    }
    ctx
}

impl<'a> Walker<'a> {
    /// `bytes` as a slice of the scanned mail, if it lies within it (not in a buffer decoded
    /// from a nested message or an opaque signature's content).
    fn in_top(&self, bytes: &[u8]) -> Option<&'a [u8]> {
        let start = bytes
            .as_ptr()
            .addr()
            .checked_sub(self.top.as_ptr().addr())?;
        self.top.get(start..start.checked_add(bytes.len())?)
    }

    fn full(&mut self, where_: &str) -> bool {
        if self.scan.found.len() >= self.max_signatures {
            self.scan.notes.push(format!(
                "{where_}: more than {} signatures, the rest was not checked",
                self.max_signatures
            ));
            true
        } else {
            false
        }
    }

    fn message(&mut self, doc: Doc<'_>, prefix: &str, ctx: &MailContext, depth: usize) {
        if depth > MAX_DEPTH {
            self.scan
                .notes
                .push(format!("{prefix}: nested too deeply, not searched"));
            return;
        }
        if doc.msg.root_part().is_multipart() {
            self.part(doc, 0, prefix, prefix, ctx, depth, true);
        } else {
            self.part(doc, 0, &join(prefix, 1), prefix, ctx, depth, true);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn part(
        &mut self,
        doc: Doc<'_>,
        id: usize,
        section: &str,
        child_prefix: &str,
        ctx: &MailContext,
        depth: usize,
        entity_root: bool,
    ) {
        let Some(part) = doc.msg.parts.get(id) else {
            return;
        };
        let (_, s) = ctype(part);
        match &part.body {
            PartType::Multipart(children) => {
                let children: Vec<usize> = children.iter().map(|c| *c as usize).collect();
                if s == "signed" && self.multipart_signed(doc, &children, child_prefix, ctx) {
                    let first = join(child_prefix, 1);
                    self.part(doc, children[0], &first, &first, ctx, depth, true);
                    return;
                }
                for (i, child) in children.iter().enumerate() {
                    let sec = join(child_prefix, i + 1);
                    self.part(doc, *child, &sec, &sec, ctx, depth, false);
                }
                self.detached_attachments(doc, &children, child_prefix);
            }
            PartType::Message(nested) => {
                let nested = doc.nested(nested);
                self.message(nested, section, &mail_context(nested), depth + 1);
            }
            _ if is_certs_only(part) => {}
            _ if is_signature_file(part) && entity_root => self.lone_signature(doc, part, section),
            _ if is_pkcs7_mime(part) => {
                self.pkcs7_mime(doc, part, section, ctx, depth, entity_root)
            }
            _ => {}
        }
    }

    /// A `.p7s` that is a whole body: there is no document beside it.
    fn lone_signature(&mut self, doc: Doc<'_>, part: &MessagePart<'_>, section: &str) {
        if self.full(section) {
            return;
        }
        self.scan.found.push(Found {
            cms: body(doc, part),
            content: Content::Missing("a detached signature without a document beside it".into()),
            signed: SignedObject {
                kind: SignatureKind::DetachedAttachment,
                section: section.to_string(),
                filename: filename(part),
                content_type: Some(type_label(part)),
            },
            mail: None,
        });
    }

    /// Returns false when this is not S/MIME (e.g. PGP/MIME), to be walked as a plain multipart.
    fn multipart_signed(
        &mut self,
        doc: Doc<'_>,
        children: &[usize],
        prefix: &str,
        ctx: &MailContext,
    ) -> bool {
        let (Some(first), Some(sig)) = (
            children.first().and_then(|i| doc.msg.parts.get(*i)),
            children.get(1).and_then(|i| doc.msg.parts.get(*i)),
        ) else {
            return false;
        };
        let (t, s) = ctype(sig);
        if t != "application" || !(s == "pkcs7-signature" || s == "x-pkcs7-signature") {
            return false;
        }
        let section = join(prefix, 1);
        if self.full(&section) {
            return true;
        }
        let content = match doc.slice(first.offset_header, first.offset_end) {
            Some(bytes) => Content::Detached(match transfer::canonical_crlf(bytes) {
                Cow::Borrowed(b) => self
                    .in_top(b)
                    .map_or_else(|| Cow::Owned(b.to_vec()), Cow::Borrowed),
                Cow::Owned(o) => Cow::Owned(o),
            }),
            None => Content::Missing("signed part outside the message".to_string()),
        };
        self.scan.found.push(Found {
            cms: body(doc, sig),
            content,
            signed: SignedObject {
                kind: SignatureKind::MultipartSigned,
                section,
                filename: None,
                content_type: Some(type_label(first)),
            },
            mail: Some(ctx.clone()),
        });
        true
    }

    fn pkcs7_mime(
        &mut self,
        doc: Doc<'_>,
        part: &MessagePart<'_>,
        section: &str,
        ctx: &MailContext,
        depth: usize,
        entity_root: bool,
    ) {
        let name = filename(part);
        let cms = body(doc, part);
        if let Ok(bytes) = &cms {
            match cms::content_type(bytes).as_deref() {
                Some(oid::SIGNED_DATA) | None => {}
                Some(other) => {
                    self.scan.notes.push(format!(
                        "{section}: {} ({}) not inspected",
                        type_label(part),
                        oid::name(other)
                    ));
                    return;
                }
            }
        }
        let opaque = entity_root
            && name
                .as_deref()
                .is_none_or(|n| n.eq_ignore_ascii_case("smime.p7m"));
        if self.full(section) {
            return;
        }
        let econtent = cms.as_ref().ok().and_then(|b| {
            cms::parse_signed_data(b)
                .ok()
                .and_then(|sd| sd.econtent.map(|c| c.into_owned()))
        });
        self.scan.found.push(Found {
            cms,
            content: Content::Embedded,
            signed: SignedObject {
                kind: if opaque {
                    SignatureKind::Opaque
                } else {
                    SignatureKind::EnvelopingAttachment
                },
                section: section.to_string(),
                // `smime.p7m` names the wrapper, not a document.
                filename: name.filter(|_| !opaque),
                content_type: Some(type_label(part)),
            },
            mail: opaque.then(|| ctx.clone()),
        });
        let Some(inner) = econtent.filter(|_| opaque) else {
            return;
        };
        let Some(inner_msg) = MessageParser::default().parse(&inner) else {
            return;
        };
        if is_pkcs7_mime(inner_msg.root_part()) {
            self.scan.notes.push(format!(
                "{section}: an opaque S/MIME object inside an opaque signature is part of the \
                 outer signed content and was not unwrapped"
            ));
            return;
        }
        self.message(
            Doc::root(&inner_msg),
            &format!("{section}/"),
            ctx,
            depth + 1,
        );
    }

    /// `.p7s` files among the children of a multipart: each signs a sibling.
    fn detached_attachments(&mut self, doc: Doc<'_>, children: &[usize], prefix: &str) {
        let leaves: Vec<(usize, &MessagePart<'_>)> = children
            .iter()
            .enumerate()
            .filter_map(|(i, id)| doc.msg.parts.get(*id).map(|p| (i, p)))
            .filter(|(_, p)| !p.is_multipart() && !p.is_message())
            .collect();
        for (i, sig) in leaves.iter().filter(|(_, p)| is_signature_file(p)) {
            let section = join(prefix, i + 1);
            if self.full(&section) {
                return;
            }
            let cms = body(doc, sig);
            let docs: Vec<&(usize, &MessagePart<'_>)> = leaves
                .iter()
                .filter(|(_, p)| !is_signature_file(p))
                .collect();
            let sig_name = filename(sig);
            let by_name = sig_name
                .as_deref()
                .filter(|n| ends_with_ci(n, ".p7s"))
                .and_then(|n| {
                    let stem = &n[..n.len() - 4];
                    docs.iter()
                        .find(|(_, p)| filename(p).is_some_and(|d| d.eq_ignore_ascii_case(stem)))
                });
            let document = by_name.copied().or_else(|| {
                let bytes = cms.as_ref().ok()?;
                docs.iter()
                    .find(|(_, p)| {
                        body(doc, p).is_ok_and(|content| digest_matches(bytes, &content))
                    })
                    .copied()
            });
            let (content, signed) = match document {
                Some((di, dp)) => (
                    match body(doc, dp) {
                        Ok(b) => Content::Detached(Cow::Owned(b)),
                        Err(e) => Content::Missing(e),
                    },
                    SignedObject {
                        kind: SignatureKind::DetachedAttachment,
                        section: join(prefix, di + 1),
                        filename: filename(dp),
                        content_type: Some(type_label(dp)),
                    },
                ),
                None => (
                    Content::Missing(format!(
                        "no attachment beside {} is the document it signs",
                        sig_name.as_deref().unwrap_or("the signature")
                    )),
                    SignedObject {
                        kind: SignatureKind::DetachedAttachment,
                        section,
                        filename: sig_name.clone(),
                        content_type: Some(type_label(sig)),
                    },
                ),
            };
            self.scan.found.push(Found {
                cms,
                content,
                signed,
                mail: None,
            });
        }
    }
}

/// Does the first signer's messageDigest match `content`? (Used only to pick a document.)
fn digest_matches(cms_der: &[u8], content: &[u8]) -> bool {
    let Ok(sd) = cms::parse_signed_data(cms_der) else {
        return false;
    };
    let Some(signer) = sd.signers.first() else {
        return false;
    };
    let Some(expected) = signer
        .signed_attrs
        .as_ref()
        .and_then(|a| attrs::typed(a).ok())
        .and_then(|v| v.message_digest)
    else {
        return false;
    };
    cert::digest_by_oid(&signer.digest_algorithm.oid)
        .and_then(|md| hash(md, content).ok())
        .is_some_and(|d| *d == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_numbers() {
        assert_eq!(join("", 1), "1");
        assert_eq!(join("2", 1), "2.1");
        assert_eq!(join("1/", 2), "1/2");
    }

    #[test]
    fn strict_sender_fields() {
        let raw = b"Fr om: mallory@evil.example\r\nFrom: Alice <Alice@Example.com>\r\n\
                    From: second@example.com\r\nDate: Mon, 26 Jan 2026 14:38:03 +0000\r\n\r\nhi\r\n";
        let msg = MessageParser::default().parse(&raw[..]).unwrap();
        let ctx = mail_context(Doc::root(&msg));
        assert_eq!(ctx.senders, vec!["alice@example.com".to_string()]);
        assert_eq!(ctx.date.unwrap().unix_timestamp(), 1_769_438_283);
    }

    /// A multipart/signed mail; `nl` is its line end.
    fn signed_mail(nl: &str) -> String {
        [
            "From: a@b.example",
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
             micalg=sha-256; boundary=\"XX\"",
            "",
            "--XX",
            "Content-Type: text/plain",
            "",
            "signed text",
            "--XX",
            "Content-Type: application/pkcs7-signature",
            "Content-Transfer-Encoding: base64",
            "",
            "MIIB",
            "--XX--",
            "",
        ]
        .join(nl)
    }

    #[test]
    fn signed_part_borrowed_when_already_crlf() {
        let crlf = signed_mail("\r\n");
        let s = scan(crlf.as_bytes(), 8);
        let expected = b"Content-Type: text/plain\r\n\r\nsigned text";
        match &s.found[..] {
            [f] => match &f.content {
                Content::Detached(Cow::Borrowed(b)) => {
                    assert_eq!(*b, expected);
                    // A slice of the mail itself, not a copy.
                    assert!(crlf.as_bytes().as_ptr_range().contains(&b.as_ptr()));
                }
                other => panic!("expected borrowed content, got {other:?}"),
            },
            other => panic!("expected one signature, got {other:?}"),
        }
        let lf = signed_mail("\n");
        let s = scan(lf.as_bytes(), 8);
        match &s.found[..] {
            [f] => match &f.content {
                Content::Detached(Cow::Owned(b)) => assert_eq!(b, expected),
                other => panic!("expected converted content, got {other:?}"),
            },
            other => panic!("expected one signature, got {other:?}"),
        }
    }

    #[test]
    fn unsigned_and_garbage_mail() {
        assert!(
            scan(b"From: a@b.example\r\n\r\nhello\r\n", 8)
                .found
                .is_empty()
        );
        let s = scan(b"", 8);
        assert!(s.found.is_empty());
    }
}
