//! The decisions behind the `Config` methods in `decide.rs`.
//!
//! Refusal texts are plain ASCII (umlauts spelt ae/oe/ue): they travel in SMTP replies, which
//! Postfix and mail clients only pass through reliably as ASCII.

mod subject_tags;
#[cfg(test)]
mod tests;

use crate::address::{domain_of, glob_match, login_key, normalise};
use crate::config::{Account, Config, SenderPattern, Tenant};
use crate::decide::{AddressClass, RecipientMix, Refusal, ResolvedOptions, SenderGrant};
use crate::options::DeMailOption;
use crate::route::Route;

pub(crate) fn classify<'a>(config: &'a Config, addr: &str) -> AddressClass<'a> {
    let addr = normalise(addr);
    let Some(domain) = domain_of(&addr) else {
        return AddressClass::External;
    };
    if config.gateway.domains.iter().any(|p| p.matches(domain)) {
        // Compare without a trailing root dot, as the configured addresses are written.
        let bare = addr.strip_suffix('.').unwrap_or(&addr);
        let own = config.tenants.iter().find_map(|t| {
            t.accounts
                .iter()
                .find(|a| a.address == bare)
                .map(|a| (t, a))
        });
        return AddressClass::DeMail { own };
    }
    match config
        .tenants
        .iter()
        .find(|t| t.internal_domains.iter().any(|d| d == domain))
    {
        Some(tenant) => AddressClass::Internal { tenant },
        None => AddressClass::External,
    }
}

pub(crate) fn check_recipients(rcpts: &[Route]) -> Result<RecipientMix, Refusal> {
    let demail = rcpts.iter().filter(|r| r.demail).count();
    if demail == 0 {
        Ok(RecipientMix::NoDeMail)
    } else if demail == rcpts.len() {
        Ok(RecipientMix::AllDeMail)
    } else {
        Err(Refusal {
            status: "5.7.1",
            german: "De-Mail ist ein geschlossenes Netz: De-Mail-Empfaenger und gewoehnliche \
                     E-Mail-Empfaenger koennen nicht in derselben Nachricht stehen. Bitte \
                     senden Sie an beide als getrennte Nachrichten."
                .into(),
            english: "De-Mail is a closed network: De-Mail recipients and ordinary e-mail \
                      recipients cannot be in the same message. Please send separate messages."
                .into(),
        })
    }
}

pub(crate) fn authorise_sender<'a>(
    config: &'a Config,
    envelope_sender: &str,
    sasl_login: Option<&str>,
) -> Result<SenderGrant<'a>, Refusal> {
    let sender = normalise(envelope_sender);
    let login = sasl_login
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty());
    // A bounce (empty sender) never speaks for an account, whatever the patterns say.
    if !sender.is_empty() {
        for tenant in &config.tenants {
            for account in &tenant.accounts {
                if account
                    .senders
                    .iter()
                    .any(|p| sender_matches(p, &sender, login.as_deref()))
                {
                    return Ok(SenderGrant { tenant, account });
                }
            }
        }
    }
    let shown = if sender.is_empty() {
        "<>"
    } else {
        sender.as_str()
    };
    Err(Refusal {
        status: "5.7.1",
        german: format!(
            "Sie sind nicht berechtigt, von der Adresse {shown} De-Mail zu versenden. Bitte \
             wenden Sie sich an die Administration des De-Mail-Gateways."
        ),
        english: format!(
            "You are not authorised to send De-Mail from the address {shown}. Please ask the \
             administrator of the De-Mail gateway."
        ),
    })
}

fn sender_matches(pattern: &SenderPattern, sender: &str, login: Option<&str>) -> bool {
    match pattern {
        SenderPattern::Address(glob) => glob_match(glob, sender),
        SenderPattern::Sasl(glob) => login.is_some_and(|l| glob_match(glob, l)),
    }
}

pub(crate) fn resolve_options(
    _config: &Config,
    grant: SenderGrant<'_>,
    subject: &str,
    x_demail_options: Option<&str>,
) -> Result<ResolvedOptions, Refusal> {
    let mut options = grant.account.default_options;
    let (tagged, stripped) = subject_tags::extract(subject);
    for option in tagged {
        options.set(option, true);
    }
    for word in x_demail_options
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let option = DeMailOption::from_keyword(word).ok_or_else(|| unknown_keyword(word))?;
        options.set(option, true);
    }
    if options.retrieve && !grant.tenant.public_body {
        return Err(Refusal {
            status: "5.7.1",
            german: format!(
                "Eine Abholbestaetigung duerfen nur oeffentliche Stellen (Behoerden) anfordern; \
                 \"{}\" ist nicht als oeffentliche Stelle eingerichtet. Bitte senden Sie ohne \
                 [Abholbestaetigung].",
                grant.tenant.name
            ),
            english: format!(
                "Only public bodies (Behoerden) may request an Abholbestaetigung (retrieval \
                 confirmation); \"{}\" is not configured as a public body. Please send without \
                 [Abholbestaetigung].",
                grant.tenant.name
            ),
        });
    }
    let subject_changed = stripped.is_some();
    Ok(ResolvedOptions {
        options,
        subject: stripped.unwrap_or_else(|| subject.to_string()),
        subject_changed,
    })
}

/// 5.6.0 (a content error, RFC 3463 "other media error"), not 5.7.x: the message is malformed
/// rather than forbidden, and the sending program must fix its header.
fn unknown_keyword(word: &str) -> Refusal {
    // Keep hostile header bytes out of the SMTP reply.
    let shown: String = word
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    let known = DeMailOption::ALL.map(DeMailOption::keyword).join(", ");
    Refusal {
        status: "5.6.0",
        german: format!(
            "Unbekannte Option \"{shown}\" im Kopffeld X-DeMail-Options. Erlaubt sind: {known}."
        ),
        english: format!(
            "Unknown option \"{shown}\" in the X-DeMail-Options header field. Allowed: {known}."
        ),
    }
}

pub(crate) fn visible_accounts<'a>(config: &'a Config, login: &str) -> Vec<&'a Account> {
    let login = login.trim().to_lowercase();
    if login.is_empty() {
        return Vec::new();
    }
    config
        .tenants
        .iter()
        .flat_map(|t: &'a Tenant| t.accounts.iter())
        .filter(|a| a.visible_to.contains(&login))
        .collect()
}

pub(crate) fn login_sees(
    config: &Config,
    login: &str,
    account: &str,
    clerk: &str,
    sasl_login: Option<&str>,
) -> bool {
    let login = login_key(login);
    if login.is_empty() {
        return false;
    }
    // Evidence of an account the configuration no longer names belongs to nobody here.
    let Some((_, account)) = config.account(account) else {
        return false;
    };
    login_key(clerk) == login
        || sasl_login.is_some_and(|s| login_key(s) == login)
        || account.visible_to.iter().any(|v| login_key(v) == login)
}

pub(crate) fn is_poststelle(config: &Config, addr: &str) -> bool {
    let addr = normalise(addr);
    !addr.is_empty() && config.inbound.poststelle.contains(&addr)
}
