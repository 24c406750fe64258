//! FETCH data and SEARCH matching for the messages the proxy serves itself, computed from the
//! exact bytes (BODYSTRUCTURE, ENVELOPE, sections, partial ranges) the way Dovecot 2.3 presents
//! the same bytes, so a client cannot tell a virtual folder from a real one.
//!
//! The MIME walk is a port of Dovecot's own message parser (boundary prefix matching, which
//! line breaks belong to a boundary, sizes counted as CRLF, at most 100 nested and 10000 parts),
//! so BODYSTRUCTURE, sections and sizes agree with it byte for byte, including on broken input.

mod address;
mod binary;
mod fetch;
mod header;
mod parse;
mod quote;
mod rfc822;
mod search;
mod structure;

use std::cell::OnceCell;

use imap_codec::imap_types::fetch::MessageDataItemName;
use imap_codec::imap_types::search::SearchKey;
use time::OffsetDateTime;

pub use fetch::FetchError;

/// A message parsed once (on first use), rendered for many FETCH items.
pub struct Rendered<'a> {
    pub bytes: &'a [u8],
    parts: OnceCell<Vec<parse::Part>>,
}

impl<'a> Rendered<'a> {
    pub fn new(bytes: &'a [u8]) -> Rendered<'a> {
        Rendered {
            bytes,
            parts: OnceCell::new(),
        }
    }

    pub(crate) fn parts(&self) -> &[parse::Part] {
        self.parts.get_or_init(|| parse::parse(self.bytes))
    }

    /// Appends one FETCH data item, name included (`ENVELOPE (...)`, `BODY[1]<0> {12}\r\n...`),
    /// for every content-derived item. Returns false for items that are not content-derived
    /// (FLAGS, UID, INTERNALDATE, MODSEQ: the session adds those).
    ///
    /// BINARY of a part Dovecot cannot decode is written as `BINARY[...] NIL`; a session that
    /// wants Dovecot's tagged `NO [UNKNOWN-CTE]`/`NO [PARSE]` uses [`Rendered::try_fetch_item`].
    pub fn fetch_item(&self, item: &MessageDataItemName<'_>, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        match self.try_fetch_item(item, out) {
            Ok(done) => done,
            Err(_) => {
                out.truncate(start);
                out.extend_from_slice(&fetch::item_name(item));
                out.extend_from_slice(b" NIL");
                true
            }
        }
    }

    /// Like [`Rendered::fetch_item`], but a BINARY item whose content Dovecot would refuse to
    /// decode is an error (nothing is written): answer the FETCH with
    /// [`FetchError::tagged_no`].
    pub fn try_fetch_item(
        &self,
        item: &MessageDataItemName<'_>,
        out: &mut Vec<u8>,
    ) -> Result<bool, FetchError> {
        fetch::item(self, item, out)
    }

    /// RFC822.SIZE: the length of BODY[] (line ends counted as CRLF, as served).
    pub fn size(&self) -> u64 {
        structure::vsize(self.bytes, 0, self.bytes.len()).0 as u64
    }
}

/// Whether Dovecot writes this item among the "buffered" ones. Dovecot answers a FETCH with the
/// buffered items first (UID, FLAGS, INTERNALDATE, MODSEQ, RFC822.SIZE, in the order asked;
/// for UID FETCH the UID leads), then all others in the order asked; a repeated item of the
/// first kind, or a repeated ENVELOPE/BODY/BODYSTRUCTURE/RFC822*, is written once.
pub fn is_buffered_item(item: &MessageDataItemName<'_>) -> bool {
    matches!(
        item,
        MessageDataItemName::Uid
            | MessageDataItemName::Flags
            | MessageDataItemName::InternalDate
            | MessageDataItemName::Rfc822Size
    ) || matches!(item, MessageDataItemName::ModSeq)
}

/// What SEARCH knows of a message besides its bytes.
pub struct SearchContext {
    pub seq: u32,
    pub uid: u32,
    /// Highest sequence number and UID in the mailbox (for `*`).
    pub max_seq: u32,
    pub max_uid: u32,
    pub seen: bool,
    pub flagged: bool,
    pub internal_date: OffsetDateTime,
    pub modseq: u64,
}

/// Whether the message matches the key (RFC 9051 6.4.4 semantics; strings compared
/// case-insensitively after decoding MIME words).
pub fn search_matches(key: &SearchKey<'_>, ctx: &SearchContext, msg: &Rendered<'_>) -> bool {
    search::matches(key, ctx, msg)
}

/// `dd-Mon-yyyy hh:mm:ss +zzzz` (RFC 9051 date-time) with the quotes.
pub fn internal_date(t: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let off = t.offset();
    let (h, m, _) = off.as_hms();
    let sign = if off.is_negative() { '-' } else { '+' };
    format!(
        "\"{:02}-{}-{} {:02}:{:02}:{:02} {}{:02}{:02}\"",
        t.day(),
        MONTHS[t.month() as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second(),
        sign,
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

#[cfg(test)]
mod tests;
