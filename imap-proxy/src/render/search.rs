use imap_codec::imap_types::search::SearchKey;

use super::{Rendered, SearchContext};

pub(crate) fn matches(_key: &SearchKey<'_>, _ctx: &SearchContext, _msg: &Rendered<'_>) -> bool {
    false
}
