//! FETCH data and SEARCH matching for the messages the proxy serves itself, computed from the
//! exact bytes (BODYSTRUCTURE, ENVELOPE, sections, partial ranges) the way Dovecot presents the
//! same bytes, so a client cannot tell a virtual folder from a real one.

use imap_codec::imap_types::fetch::MessageDataItemName;
use imap_codec::imap_types::search::SearchKey;
use time::OffsetDateTime;

/// A message parsed once, rendered for many FETCH items.
pub struct Rendered<'a> {
    pub bytes: &'a [u8],
}

impl<'a> Rendered<'a> {
    pub fn new(bytes: &'a [u8]) -> Rendered<'a> {
        Rendered { bytes }
    }

    /// Appends one FETCH data item, name included (`ENVELOPE (...)`, `BODY[1]<0> {12}\r\n...`),
    /// for every content-derived item. Returns false for items that are not content-derived
    /// (FLAGS, UID, INTERNALDATE, MODSEQ: the session adds those).
    pub fn fetch_item(&self, _item: &MessageDataItemName<'_>, _out: &mut Vec<u8>) -> bool {
        false
    }
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
pub fn search_matches(_key: &SearchKey<'_>, _ctx: &SearchContext, _msg: &Rendered<'_>) -> bool {
    false
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
