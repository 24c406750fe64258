//! Pure decisions: no I/O, unit-tested.

use std::fmt;

use crate::config::{Account, Config, Tenant};
use crate::options::Options;
use crate::route::{Resolved, Route};

/// What an address is, from the gateway's point of view.
#[derive(Debug, Clone, Copy)]
pub enum AddressClass<'a> {
    /// In a configured De-Mail domain. `own` is set when it is one of our tenants' accounts.
    DeMail {
        own: Option<(&'a Tenant, &'a Account)>,
    },
    /// In a tenant's internal mail domain.
    Internal { tenant: &'a Tenant },
    /// Anything else (the Internet).
    External,
}

/// A refusal a clerk can act on: an SMTP enhanced status code plus German and English text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Enhanced status code, e.g. `5.7.1`.
    pub status: &'static str,
    pub german: String,
    pub english: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.german, self.english)
    }
}

/// Which account a sender may use.
#[derive(Debug, Clone, Copy)]
pub struct SenderGrant<'a> {
    pub tenant: &'a Tenant,
    pub account: &'a Account,
}

/// The recipients of one message, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientMix {
    /// Every recipient is a De-Mail address.
    AllDeMail,
    /// No recipient is a De-Mail address (ordinary mail: not our business).
    NoDeMail,
}

/// Options resolved for one outbound De-Mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedOptions {
    pub options: Options,
    /// The subject with the recognised tags removed (whitespace tidied); unknown tags stay.
    pub subject: String,
    /// Whether the subject changed.
    pub subject_changed: bool,
}

impl Config {
    /// Lower-cases and checks `addr` (an addr-spec, angle brackets allowed) against the lists.
    pub fn classify(&self, addr: &str) -> AddressClass<'_> {
        crate::decide_impl::classify(self, addr)
    }

    /// Whether `addr` is in a configured De-Mail domain.
    pub fn is_demail(&self, addr: &str) -> bool {
        matches!(self.classify(addr), AddressClass::DeMail { .. })
    }

    /// Where a recipient goes: De-Mail when the written address, the address Postfix resolved
    /// it to or the transport Postfix resolved it to says so. Refuses routing operators
    /// (`5.1.3`) and a De-Mail address Postfix would not hand to the De-Mail transport (`4.3.5`).
    pub fn route(&self, written: &str, resolved: Resolved<'_>) -> Result<Route, Refusal> {
        crate::route::route(self, written, resolved)
    }

    /// Classify the whole recipient list: all De-Mail, none, or a refusal for a mix.
    pub fn check_recipients(&self, rcpts: &[Route]) -> Result<RecipientMix, Refusal> {
        crate::decide_impl::check_recipients(rcpts)
    }

    /// May this envelope sender (and SASL login, if any) send De-Mail, and as which account?
    /// The first account (in file order) whose `senders` match wins.
    pub fn authorise_sender(
        &self,
        envelope_sender: &str,
        sasl_login: Option<&str>,
    ) -> Result<SenderGrant<'_>, Refusal> {
        crate::decide_impl::authorise_sender(self, envelope_sender, sasl_login)
    }

    /// Defaults of the account, plus subject tags, plus `X-DeMail-Options`; refuses impossible
    /// combinations (Abholbestätigung from a tenant that is not a public body; an unknown
    /// keyword in `X-DeMail-Options`).
    pub fn resolve_options(
        &self,
        grant: SenderGrant<'_>,
        subject: &str,
        x_demail_options: Option<&str>,
    ) -> Result<ResolvedOptions, Refusal> {
        crate::decide_impl::resolve_options(self, grant, subject, x_demail_options)
    }

    /// Accounts whose evidence this IMAP login may see (`visible_to`).
    pub fn visible_accounts(&self, login: &str) -> Vec<&Account> {
        crate::decide_impl::visible_accounts(self, login)
    }

    /// Whether IMAP `login` sees the evidence of an outbound De-Mail sent as `account` by the
    /// envelope sender `clerk` (with SASL login `sasl_login`), as recorded at submission: the
    /// clerk and the SASL login see their own, and every login in the account's `visible_to`
    /// sees all of the account's. Only for accounts of ours; an empty login sees nothing.
    pub fn login_sees(
        &self,
        login: &str,
        account: &str,
        clerk: &str,
        sasl_login: Option<&str>,
    ) -> bool {
        crate::decide_impl::login_sees(self, login, account, clerk, sasl_login)
    }

    /// The tenant and account that own a De-Mail address of ours.
    pub fn account(&self, address: &str) -> Option<(&Tenant, &Account)> {
        match self.classify(address) {
            AddressClass::DeMail { own } => own,
            _ => None,
        }
    }

    /// Whether `addr` is a configured poststelle address (QES checks).
    pub fn is_poststelle(&self, addr: &str) -> bool {
        crate::decide_impl::is_poststelle(self, addr)
    }
}
