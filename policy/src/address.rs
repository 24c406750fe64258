//! Address and domain helpers shared by configuration validation and the decisions.

use std::fmt;

use crate::config::DomainPattern;

/// Characters that never belong in an addr-spec as admins write it (quoted local parts,
/// display names and address lists are not configuration values).
const FORBIDDEN: &[char] = &['<', '>', '(', ')', '[', ']', '\\', ',', ';', ':', '"'];

/// Strips surrounding whitespace and angle brackets and lower-cases, as SMTP envelopes arrive
/// (`<Info@Magdeburg.de-mail.de>`).
pub(crate) fn normalise(addr: &str) -> String {
    let t = addr.trim();
    let t = t.strip_prefix('<').unwrap_or(t);
    let t = t.strip_suffix('>').unwrap_or(t);
    t.trim().to_lowercase()
}

/// An IMAP login, envelope sender or SASL login as compared for visibility: trimmed,
/// lower-cased, Unicode NFC (a composed and a decomposed `ü` are one spelling). Nothing else is
/// folded: a look-alike (Cyrillic `а`, fullwidth `ａ`) is a different login.
pub fn login_key(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    raw.trim().to_lowercase().nfc().collect()
}

/// The domain part of a normalised address, without a trailing root dot; `None` when there is
/// no `@` or either side is empty.
pub(crate) fn domain_of(normalised: &str) -> Option<&str> {
    let (local, domain) = normalised.rsplit_once('@')?;
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    (!local.is_empty() && !domain.is_empty()).then_some(domain)
}

/// Checks an addr-spec from the configuration and returns it lower-cased.
pub(crate) fn parse_addr_spec(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty address".into());
    }
    if let Some(c) = raw.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("address {raw:?} contains {}", describe(c)));
    }
    if let Some(c) = raw.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(format!(
            "address {raw:?} contains `{c}`; write the bare address (local@domain)"
        ));
    }
    let mut parts = raw.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "address {raw:?} must contain exactly one `@` (local@domain)"
        ));
    };
    if local.is_empty() {
        return Err(format!("address {raw:?} has an empty local part"));
    }
    check_domain(domain).map_err(|e| format!("address {raw:?}: {e}"))?;
    Ok(raw.to_lowercase())
}

/// Checks a mail domain (at least two labels) and returns it lower-cased.
pub(crate) fn parse_domain(raw: &str) -> Result<String, String> {
    check_domain(raw)?;
    Ok(raw.to_lowercase())
}

fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("empty domain".into());
    }
    if !domain.contains('.') {
        return Err(format!(
            "domain {domain:?} has no dot (expected e.g. `stadt.example`)"
        ));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(format!(
                "domain {domain:?} has an empty label (`..` or a dot at an end)"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("domain {domain:?} contains {}", describe(c)));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "domain {domain:?}: a label starts or ends with `-`"
            ));
        }
    }
    Ok(())
}

fn describe(c: char) -> String {
    if c == ' ' {
        "a space".into()
    } else if c.is_whitespace() || c.is_control() {
        format!("the control/whitespace character U+{:04X}", u32::from(c))
    } else {
        format!("`{c}`")
    }
}

impl DomainPattern {
    /// Whether a lower-case domain (no trailing dot) is covered by this pattern.
    pub fn matches(&self, domain: &str) -> bool {
        match self {
            DomainPattern::Exact(d) => domain == d,
            DomainPattern::Subdomains(parent) => domain
                .strip_suffix(parent.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|head| !head.is_empty()),
        }
    }
}

impl fmt::Display for DomainPattern {
    /// The configuration spelling: `*.de-mail.de` or `provider.example`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Subdomains(p) => write!(f, "*.{p}"),
        }
    }
}

/// Glob match where `*` stands for any run of characters (also none); everything else is
/// literal. Linear backtracking on the last `*`, so hostile input costs O(n*m) at worst.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_brackets_space_and_case() {
        assert_eq!(
            normalise("  <Info@Magdeburg.DE-Mail.de> "),
            "info@magdeburg.de-mail.de"
        );
        assert_eq!(normalise("<>"), "");
        assert_eq!(normalise(""), "");
    }

    #[test]
    fn domain_of_needs_both_sides() {
        assert_eq!(domain_of("a@b.de"), Some("b.de"));
        assert_eq!(domain_of("a@b.de."), Some("b.de"));
        assert_eq!(domain_of("@b.de"), None);
        assert_eq!(domain_of("a@"), None);
        assert_eq!(domain_of("garbage"), None);
    }

    #[test]
    fn addr_spec_accepts_plain_and_lowercases() {
        assert_eq!(
            parse_addr_spec("Info@Magdeburg.Example").as_deref(),
            Ok("info@magdeburg.example")
        );
        assert_eq!(
            parse_addr_spec("a.b+c@x.y.example").as_deref(),
            Ok("a.b+c@x.y.example")
        );
    }

    #[test]
    fn addr_spec_rejects_bad_forms() {
        for bad in [
            "",
            "info",
            "info@",
            "@magdeburg.example",
            "a@@magdeburg.example",
            "a@b@magdeburg.example",
            "info@localhost",
            "in fo@magdeburg.example",
            "<info@magdeburg.example>",
            "info@magdeburg..example",
            "info@[127.0.0.1]",
            "Max <info@magdeburg.example>",
        ] {
            assert!(parse_addr_spec(bad).is_err(), "{bad:?} was accepted");
        }
        let e = parse_addr_spec("in fo@x.example").unwrap_err();
        assert!(e.contains("a space"), "{e}");
    }

    #[test]
    fn subdomain_pattern_excludes_parent_and_lookalikes() {
        let p = DomainPattern::Subdomains("de-mail.de".into());
        assert!(p.matches("x.de-mail.de"));
        assert!(p.matches("a.b.de-mail.de"));
        assert!(!p.matches("de-mail.de"));
        assert!(!p.matches("evilde-mail.de"));
        assert!(!p.matches(".de-mail.de"));
        assert!(!p.matches("x.de-mail.de.evil"));
        let e = DomainPattern::Exact("provider.example".into());
        assert!(e.matches("provider.example"));
        assert!(!e.matches("x.provider.example"));
        assert_eq!(p.to_string(), "*.de-mail.de");
        assert_eq!(e.to_string(), "provider.example");
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_match("*@magdeburg.example", "anna@magdeburg.example"));
        assert!(!glob_match(
            "*@magdeburg.example",
            "anna@evil-magdeburg.example.org"
        ));
        assert!(!glob_match(
            "*@magdeburg.example",
            "anna@sub.magdeburg.examplex"
        ));
        assert!(glob_match("wohngeld-*", "wohngeld-"));
        assert!(glob_match("wohngeld-*", "wohngeld-meier"));
        assert!(!glob_match("wohngeld-*", "wohngeld"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("*", ""));
        assert!(glob_match("ü*", "über"));
    }
}
