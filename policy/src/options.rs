//! The five TR-01201 shipping options a clerk or a program can request.

/// One shipping option, named as in the configuration and in `X-DeMail-Options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeMailOption {
    /// Versandbestätigung: `X-de-mail-confirmation-of-dispatch`.
    Dispatch,
    /// Eingangsbestätigung: `X-de-mail-confirmation-of-receipt`.
    Receipt,
    /// Abholbestätigung: `X-de-mail-confirmation-of-retrieve`.
    Retrieve,
    /// absenderbestätigt: `X-de-mail-authoritative`.
    Authoritative,
    /// persönlich: `X-de-mail-private`.
    Private,
}

impl DeMailOption {
    pub const ALL: [DeMailOption; 5] = [
        DeMailOption::Dispatch,
        DeMailOption::Receipt,
        DeMailOption::Retrieve,
        DeMailOption::Authoritative,
        DeMailOption::Private,
    ];

    /// The configuration / `X-DeMail-Options` keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            DeMailOption::Dispatch => "dispatch",
            DeMailOption::Receipt => "receipt",
            DeMailOption::Retrieve => "retrieve",
            DeMailOption::Authoritative => "authoritative",
            DeMailOption::Private => "private",
        }
    }

    /// The TR-01201 header field that carries this option (value `yes`/`no`).
    pub fn header_field(self) -> &'static str {
        match self {
            DeMailOption::Dispatch => "X-de-mail-confirmation-of-dispatch",
            DeMailOption::Receipt => "X-de-mail-confirmation-of-receipt",
            DeMailOption::Retrieve => "X-de-mail-confirmation-of-retrieve",
            DeMailOption::Authoritative => "X-de-mail-authoritative",
            DeMailOption::Private => "X-de-mail-private",
        }
    }

    pub fn from_keyword(word: &str) -> Option<DeMailOption> {
        DeMailOption::ALL
            .into_iter()
            .find(|o| o.keyword().eq_ignore_ascii_case(word.trim()))
    }
}

/// A set of requested options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub dispatch: bool,
    pub receipt: bool,
    pub retrieve: bool,
    pub authoritative: bool,
    pub private: bool,
}

impl Options {
    pub fn get(&self, o: DeMailOption) -> bool {
        match o {
            DeMailOption::Dispatch => self.dispatch,
            DeMailOption::Receipt => self.receipt,
            DeMailOption::Retrieve => self.retrieve,
            DeMailOption::Authoritative => self.authoritative,
            DeMailOption::Private => self.private,
        }
    }

    pub fn set(&mut self, o: DeMailOption, on: bool) {
        match o {
            DeMailOption::Dispatch => self.dispatch = on,
            DeMailOption::Receipt => self.receipt = on,
            DeMailOption::Retrieve => self.retrieve = on,
            DeMailOption::Authoritative => self.authoritative = on,
            DeMailOption::Private => self.private = on,
        }
    }

    /// The requested options as keywords, in TR order (for records and logs).
    pub fn keywords(&self) -> Vec<&'static str> {
        DeMailOption::ALL
            .into_iter()
            .filter(|o| self.get(*o))
            .map(DeMailOption::keyword)
            .collect()
    }

    /// `(field, "yes"|"no")` for every TR-01201 option field, in TR order.
    pub fn header_fields(&self) -> [(&'static str, &'static str); 5] {
        DeMailOption::ALL.map(|o| (o.header_field(), if self.get(o) { "yes" } else { "no" }))
    }
}
