//! Checks that relate values from different tables.

use std::collections::HashMap;

use super::ctx::Ctx;
use super::tenants::Seen;
use crate::address::domain_of;
use crate::config::DomainPattern;

/// `domains` is `None` when `[gateway] domains` had errors: De-Mail membership is then unknown
/// and checking it would only repeat that error for every address.
pub(super) fn run(ctx: &mut Ctx<'_>, seen: &Seen, domains: Option<&[DomainPattern]>) {
    unique_accounts(ctx, seen);
    internal_domains(ctx, seen, domains);
    let Some(domains) = domains else { return };
    let pattern_of =
        |addr: &str| domain_of(addr).and_then(|d| domains.iter().find(|p| p.matches(d)));
    for a in &seen.accounts {
        if pattern_of(&a.value).is_none() {
            let list: Vec<String> = domains.iter().map(ToString::to_string).collect();
            ctx.bad(
                a,
                format!(
                    "{} is not in a De-Mail domain of [gateway] domains ({})",
                    a.value,
                    list.join(", ")
                ),
            );
        }
    }
    for a in &seen.not_demail {
        if let Some(p) = pattern_of(&a.value) {
            ctx.bad(
                a,
                format!(
                    "{} is a De-Mail address (matches {p}); this must be an ordinary mailbox \
                     or login of the city",
                    a.value
                ),
            );
        }
    }
}

fn unique_accounts(ctx: &mut Ctx<'_>, seen: &Seen) {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for a in &seen.accounts {
        match first.get(a.value.as_str()) {
            Some(line) => ctx.bad(
                a,
                format!("account {} is already configured at line {line}", a.value),
            ),
            None => {
                first.insert(&a.value, a.line);
            }
        }
    }
}

fn internal_domains(ctx: &mut Ctx<'_>, seen: &Seen, domains: Option<&[DomainPattern]>) {
    let mut first: HashMap<&str, (usize, usize)> = HashMap::new();
    for (tenant, d) in &seen.internal {
        if let Some(p) = domains.and_then(|ds| ds.iter().find(|p| p.matches(&d.value))) {
            ctx.bad(
                d,
                format!(
                    "{} is both an internal domain and a De-Mail domain (matches {p})",
                    d.value
                ),
            );
        }
        match first.get(d.value.as_str()) {
            Some((t, line)) if t == tenant => {
                ctx.bad(
                    d,
                    format!("{} is listed twice (first at line {line})", d.value),
                );
            }
            Some((t, line)) => ctx.bad(
                d,
                format!(
                    "{} is already an internal domain of tenant[{t}] (line {line}); \
                     a domain belongs to one tenant",
                    d.value
                ),
            ),
            None => {
                first.insert(&d.value, (*tenant, d.line));
            }
        }
    }
}
