//! `[[tenant]]` and `[[tenant.account]]`.

use super::ctx::{Ctx, Spanned};
use super::reader::{Got, Section};
use super::sections::{addresses, convert};
use crate::address::{parse_addr_spec, parse_domain};
use crate::config::{Account, SenderPattern, Tenant};
use crate::options::{DeMailOption, Options};
use crate::suggest::closest;

const NO_TENANT: &str = "no [[tenant]] yet: add one per town with a [[tenant.account]] for each of \
    its De-Mail accounts (see demail.toml(5)); until then nothing is taken as De-Mail";
const TENANT_KEYS: &[&str] = &["name", "public_body", "internal_domains", "account"];
const ACCOUNT_KEYS: &[&str] = &[
    "address",
    "deliver_to",
    "senders",
    "visible_to",
    "default_options",
    "reply_to_clerk",
];

/// Values with their lines kept for the checks that span tenants.
#[derive(Default)]
pub(super) struct Seen {
    /// Every valid account address.
    pub accounts: Vec<Spanned<String>>,
    /// Addresses that must not be De-Mail (deliver_to, visible_to, poststelle).
    pub not_demail: Vec<Spanned<String>>,
    /// Internal domains with the index of their tenant.
    pub internal: Vec<(usize, Spanned<String>)>,
}

pub(super) fn tenants(ctx: &mut Ctx<'_>, root: &Section<'_>, seen: &mut Seen) -> Vec<Tenant> {
    let got = root.tables(ctx, "tenant");
    if matches!(got, Got::Absent) {
        // The packaged file ships without one: say what to fill in, not only what is missing.
        ctx.error(root.line, "tenant", NO_TENANT);
        return Vec::new();
    }
    let Some(list) = got.found() else {
        return Vec::new();
    };
    if list.value.is_empty() {
        ctx.bad(&list, "at least one [[tenant]] is needed");
    }
    list.value
        .into_iter()
        .enumerate()
        .map(|(i, (table, line))| {
            let s = Section::open(ctx, table, format!("tenant[{i}]"), line, TENANT_KEYS);
            tenant(ctx, &s, i, seen)
        })
        .collect()
}

fn tenant(ctx: &mut Ctx<'_>, s: &Section<'_>, index: usize, seen: &mut Seen) -> Tenant {
    let name = s.req_string(ctx, "name").map(|n| {
        if n.value.trim().is_empty() {
            ctx.bad(&n, "the tenant name must not be empty");
        }
        n.value
    });
    // `None` when the value was wrong: then "retrieve" cannot be judged and is not reported.
    let public_body = match s.boolean(ctx, "public_body") {
        Got::Found(b) => Some(b.value),
        Got::Absent => Some(false),
        Got::Bad => None,
    };
    let mut internal_domains = Vec::new();
    for d in s.strings_or_empty(ctx, "internal_domains") {
        if let Some(value) = convert(ctx, &d, parse_domain) {
            internal_domains.push(value.clone());
            seen.internal.push((index, Spanned { value, ..d }));
        }
    }
    let got = s.tables(ctx, "account");
    let accounts = match s.required(ctx, "account", got) {
        Some(list) => {
            if list.value.is_empty() {
                ctx.bad(&list, "a tenant needs at least one [[tenant.account]]");
            }
            list.value
                .into_iter()
                .enumerate()
                .map(|(j, (table, line))| {
                    let path = format!("{}.account[{j}]", s.path);
                    let a = Section::open(ctx, table, path, line, ACCOUNT_KEYS);
                    account(ctx, &a, public_body, seen)
                })
                .collect()
        }
        None => Vec::new(),
    };
    Tenant {
        name: name.unwrap_or_default(),
        public_body: public_body.unwrap_or(false),
        internal_domains,
        accounts,
    }
}

fn account(
    ctx: &mut Ctx<'_>,
    s: &Section<'_>,
    public_body: Option<bool>,
    seen: &mut Seen,
) -> Account {
    let address = s.req_string(ctx, "address").and_then(|a| {
        let value = convert(ctx, &a, parse_addr_spec)?;
        seen.accounts.push(Spanned {
            value: value.clone(),
            ..a
        });
        Some(value)
    });
    let got = s.strings(ctx, "deliver_to");
    let deliver_to = match s.required(ctx, "deliver_to", got) {
        Some(list) => {
            if list.value.is_empty() {
                ctx.bad(&list, "needs at least one mailbox for inbound De-Mail");
            }
            addresses(ctx, list.value)
        }
        None => Vec::new(),
    };
    let senders = s
        .strings_or_empty(ctx, "senders")
        .iter()
        .filter_map(|p| convert(ctx, p, sender_pattern))
        .collect();
    let visible_to: Vec<Spanned<String>> = s
        .strings_or_empty(ctx, "visible_to")
        .into_iter()
        .filter_map(|l| {
            let value = convert(ctx, &l, login)?;
            Some(Spanned { value, ..l })
        })
        .collect();
    let default_options = default_options(ctx, s, public_body);
    let reply_to_clerk = s.bool_or(ctx, "reply_to_clerk", false);
    seen.not_demail.extend(deliver_to.iter().cloned());
    seen.not_demail
        .extend(visible_to.iter().filter(|l| l.value.contains('@')).cloned());
    Account {
        address: address.unwrap_or_default(),
        deliver_to: deliver_to.into_iter().map(|a| a.value).collect(),
        senders,
        visible_to: visible_to.into_iter().map(|l| l.value).collect(),
        default_options,
        reply_to_clerk,
    }
}

fn default_options(ctx: &mut Ctx<'_>, s: &Section<'_>, public_body: Option<bool>) -> Options {
    let mut options = Options::default();
    let keywords: Vec<&str> = DeMailOption::ALL.iter().map(|o| o.keyword()).collect();
    for word in s.strings_or_empty(ctx, "default_options") {
        // Exact keywords only: the file is written once, so no case folding is needed here.
        let Some(option) = DeMailOption::ALL
            .into_iter()
            .find(|o| o.keyword() == word.value)
        else {
            let hint = closest(&word.value, &keywords)
                .map(|k| format!("; did you mean \"{k}\"?"))
                .unwrap_or_else(|| format!(" (known: {})", keywords.join(", ")));
            ctx.bad(&word, format!("unknown option {:?}{hint}", word.value));
            continue;
        };
        if option == DeMailOption::Retrieve && public_body == Some(false) {
            ctx.bad(
                &word,
                "\"retrieve\" (Abholbestätigung) is only for public bodies; \
                 set public_body = true on the tenant or remove it",
            );
        }
        options.set(option, true);
    }
    options
}

/// `sasl:GLOB` or an address glob such as `*@stadt.example`.
fn sender_pattern(raw: &str) -> Result<SenderPattern, String> {
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("sender pattern {raw:?} contains whitespace"));
    }
    if let Some(glob) = raw.strip_prefix("sasl:") {
        if glob.is_empty() {
            return Err("\"sasl:\" needs a login pattern, e.g. \"sasl:wohngeld-*\"".into());
        }
        return Ok(SenderPattern::Sasl(glob.to_lowercase()));
    }
    if !raw.contains('@') {
        return Err(format!(
            "sender pattern {raw:?} is neither an address pattern with `@` \
             (\"*@stadt.example\") nor \"sasl:LOGIN\""
        ));
    }
    Ok(SenderPattern::Address(raw.to_lowercase()))
}

/// An IMAP login: an address, or a bare user name as Dovecot may use.
fn login(raw: &str) -> Result<String, String> {
    if raw.contains('@') {
        return parse_addr_spec(raw);
    }
    if raw.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "expected an IMAP login (address or user name), found {raw:?}"
        ));
    }
    Ok(raw.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_patterns() {
        assert_eq!(
            sender_pattern("*@Magdeburg.example"),
            Ok(SenderPattern::Address("*@magdeburg.example".into()))
        );
        assert_eq!(
            sender_pattern("sasl:Wohngeld-*"),
            Ok(SenderPattern::Sasl("wohngeld-*".into()))
        );
        assert!(sender_pattern("sasl:").is_err());
        assert!(sender_pattern("magdeburg.example").is_err());
        assert!(sender_pattern("* @x.example").is_err());
    }

    #[test]
    fn logins() {
        assert_eq!(
            login("Poststelle@Magdeburg.example").as_deref(),
            Ok("poststelle@magdeburg.example")
        );
        assert_eq!(login("Meier").as_deref(), Ok("meier"));
        assert!(login("a b").is_err());
        assert!(login("a@b").is_err());
    }
}
