//! Decisions against a real parsed configuration (`testutil::BASE`).

use crate::testutil::Fixture;
use crate::*;

fn demail_own(c: &Config, addr: &str) -> Option<String> {
    match c.classify(addr) {
        AddressClass::DeMail { own } => {
            Some(own.map(|(_, a)| a.address.clone()).unwrap_or_default())
        }
        _ => None,
    }
}

#[test]
fn classify_demail_by_pattern_and_own_account() {
    let f = Fixture::new();
    let c = f.base();
    assert_eq!(
        demail_own(&c, "info@magdeburg.de-mail.de").as_deref(),
        Some("info@magdeburg.de-mail.de")
    );
    assert_eq!(
        demail_own(&c, " <INFO@Magdeburg.De-Mail.DE> ").as_deref(),
        Some("info@magdeburg.de-mail.de")
    );
    // Deeper subdomain: De-Mail, not ours.
    assert_eq!(demail_own(&c, "x@a.b.de-mail.de").as_deref(), Some(""));
    assert_eq!(
        demail_own(&c, "buerger@example.de-mail.de").as_deref(),
        Some("")
    );
    // Exact provider domain.
    assert_eq!(
        demail_own(&c, "info@demail.provider.example").as_deref(),
        Some("info@demail.provider.example")
    );
    assert!(c.is_demail("info@magdeburg.de-mail.de."));
    let (t, a) = c
        .account("<wohngeld@magdeburg.de-mail.de>")
        .expect("own account");
    assert_eq!(t.name, "Landeshauptstadt Magdeburg");
    assert_eq!(a.address, "wohngeld@magdeburg.de-mail.de");
}

#[test]
fn classify_parent_and_lookalike_domains_are_not_demail() {
    let f = Fixture::new();
    let c = f.base();
    for addr in [
        "info@de-mail.de",
        "info@evilde-mail.de",
        "info@x.de-mail.de.evil.example",
        "info@sub.demail.provider.example",
    ] {
        assert!(matches!(c.classify(addr), AddressClass::External), "{addr}");
    }
}

#[test]
fn classify_internal_and_external_and_garbage() {
    let f = Fixture::new();
    let c = f.base();
    match c.classify("Anna@Magdeburg.example") {
        AddressClass::Internal { tenant } => assert_eq!(tenant.name, "Landeshauptstadt Magdeburg"),
        other => panic!("{other:?}"),
    }
    match c.classify("x@hv.example") {
        AddressClass::Internal { tenant } => assert_eq!(tenant.name, "Hausverwaltung GmbH"),
        other => panic!("{other:?}"),
    }
    // A subdomain of an internal domain is not internal.
    assert!(matches!(
        c.classify("a@sub.magdeburg.example"),
        AddressClass::External
    ));
    for garbage in [
        "",
        "<>",
        "   ",
        "no-at-sign",
        "@magdeburg.de-mail.de",
        "x@",
        "<@>",
    ] {
        assert!(
            matches!(c.classify(garbage), AddressClass::External),
            "{garbage:?}"
        );
    }
    assert!(c.account("anna@magdeburg.example").is_none());
}

#[test]
fn recipients_all_none_or_mixed() {
    let f = Fixture::new();
    let c = f.base();
    let routes = |addrs: &[&str]| -> Vec<Route> {
        addrs
            .iter()
            .map(|a| c.route(a, Resolved::default()).unwrap())
            .collect()
    };
    assert_eq!(
        c.check_recipients(&routes(&["a@x.de-mail.de", "<B@Y.DE-MAIL.DE>"])),
        Ok(RecipientMix::AllDeMail)
    );
    assert_eq!(
        c.check_recipients(&routes(&["a@magdeburg.example", "b@gmail.example"])),
        Ok(RecipientMix::NoDeMail)
    );
    assert_eq!(c.check_recipients(&[]), Ok(RecipientMix::NoDeMail));
    let r = c
        .check_recipients(&routes(&["a@x.de-mail.de", "b@gmail.example"]))
        .unwrap_err();
    assert_eq!(r.status, "5.7.1");
    assert!(r.german.contains("geschlossenes Netz"), "{}", r.german);
    assert!(r.german.contains("getrennte Nachrichten"), "{}", r.german);
    assert!(r.english.contains("closed network"), "{}", r.english);
    assert!(r.english.contains("separate messages"), "{}", r.english);
    assert!(r.to_string().starts_with(&r.german));
    assert!(r.german.is_ascii() && r.english.is_ascii());
}

#[test]
fn sender_by_address_glob() {
    let f = Fixture::new();
    let c = f.base();
    let g = c
        .authorise_sender("<Anna.Meier@Magdeburg.example>", None)
        .unwrap();
    assert_eq!(g.account.address, "info@magdeburg.de-mail.de");
    assert_eq!(g.tenant.name, "Landeshauptstadt Magdeburg");
    let g = c.authorise_sender("x@hv.example", None).unwrap();
    assert_eq!(g.account.address, "info@demail.provider.example");
}

#[test]
fn sender_by_sasl_glob_case_insensitive() {
    let f = Fixture::new();
    let c = f.base();
    let g = c
        .authorise_sender("someone@elsewhere.example", Some("WOHNGELD-meier"))
        .unwrap();
    assert_eq!(g.account.address, "wohngeld@magdeburg.de-mail.de");
    // The sasl pattern is matched against the login only, never the envelope sender.
    assert!(
        c.authorise_sender("wohngeld-meier@elsewhere.example", None)
            .is_err()
    );
    // Empty login counts as none.
    assert!(
        c.authorise_sender("someone@elsewhere.example", Some("  "))
            .is_err()
    );
}

#[test]
fn sender_first_account_in_file_order_wins() {
    let f = Fixture::new();
    let c = f.base();
    // Matches both info (address glob) and wohngeld (sasl): info comes first in the file.
    let g = c
        .authorise_sender("wohngeld-meier@magdeburg.example", Some("wohngeld-meier"))
        .unwrap();
    assert_eq!(g.account.address, "info@magdeburg.de-mail.de");
}

#[test]
fn sender_refusals() {
    let f = Fixture::new();
    let c = f.base();
    let r = c
        .authorise_sender("mallory@evil.example", Some("mallory"))
        .unwrap_err();
    assert_eq!(r.status, "5.7.1");
    assert!(r.german.contains("nicht berechtigt"), "{}", r.german);
    assert!(r.german.contains("mallory@evil.example"), "{}", r.german);
    assert!(r.german.contains("Administration"), "{}", r.german);
    assert!(r.english.contains("not authorised"), "{}", r.english);
    assert!(r.english.contains("administrator"), "{}", r.english);
    // A bounce is never authorised, even with a login that would match.
    for bounce in ["", "<>", " <> "] {
        let r = c.authorise_sender(bounce, Some("wohngeld-x")).unwrap_err();
        assert!(r.german.contains("<>"), "{}", r.german);
    }
    // Lookalike domain must not match `*@magdeburg.example`.
    assert!(c.authorise_sender("a@evilmagdeburg.example", None).is_err());
    assert!(
        c.authorise_sender("a@magdeburg.example.evil", None)
            .is_err()
    );
}

fn grant<'a>(c: &'a Config, account: &str) -> SenderGrant<'a> {
    let (tenant, account) = c.account(account).expect("account");
    SenderGrant { tenant, account }
}

fn opts(words: &[&str]) -> Options {
    let mut o = Options::default();
    for w in words {
        o.set(DeMailOption::from_keyword(w).expect("keyword"), true);
    }
    o
}

#[test]
fn options_start_from_defaults_and_keep_subject() {
    let f = Fixture::new();
    let c = f.base();
    let r = c
        .resolve_options(
            grant(&c, "info@magdeburg.de-mail.de"),
            "Bescheid  [Entwurf]",
            None,
        )
        .unwrap();
    assert_eq!(r.options, opts(&["dispatch", "receipt"]));
    assert_eq!(r.subject, "Bescheid  [Entwurf]");
    assert!(!r.subject_changed);
}

#[test]
fn options_from_subject_tags_are_added_and_stripped() {
    let f = Fixture::new();
    let c = f.base();
    let r = c
        .resolve_options(
            grant(&c, "info@magdeburg.de-mail.de"),
            "[EXTERN] Bescheid [Abholbestaetigung] zum Antrag [PERSÖNLICH] [absenderbestätigt]",
            None,
        )
        .unwrap();
    assert_eq!(
        r.options,
        opts(&[
            "dispatch",
            "receipt",
            "retrieve",
            "private",
            "authoritative"
        ])
    );
    assert_eq!(r.subject, "[EXTERN] Bescheid zum Antrag");
    assert!(r.subject_changed);
}

#[test]
fn options_from_header_keywords() {
    let f = Fixture::new();
    let c = f.base();
    let r = c
        .resolve_options(
            grant(&c, "info@demail.provider.example"),
            "Abrechnung",
            Some(" Authoritative,private  dispatch,, "),
        )
        .unwrap();
    assert_eq!(r.options, opts(&["authoritative", "private", "dispatch"]));
    assert!(!r.subject_changed);
    // An empty header adds nothing.
    let r = c
        .resolve_options(grant(&c, "info@demail.provider.example"), "x", Some(""))
        .unwrap();
    assert_eq!(r.options, Options::default());
}

#[test]
fn header_and_tags_cannot_switch_defaults_off() {
    let f = Fixture::new();
    let c = f.base();
    let r = c
        .resolve_options(
            grant(&c, "wohngeld@magdeburg.de-mail.de"),
            "x",
            Some("private"),
        )
        .unwrap();
    assert_eq!(
        r.options,
        opts(&["dispatch", "receipt", "retrieve", "private"])
    );
}

#[test]
fn unknown_header_keyword_is_refused_naming_it() {
    let f = Fixture::new();
    let c = f.base();
    let r = c
        .resolve_options(
            grant(&c, "info@magdeburg.de-mail.de"),
            "x",
            Some("dispatch, recipt"),
        )
        .unwrap_err();
    assert_eq!(r.status, "5.6.0");
    assert!(r.german.contains("\"recipt\""), "{}", r.german);
    assert!(r.english.contains("\"recipt\""), "{}", r.english);
    assert!(r.english.contains("X-DeMail-Options"), "{}", r.english);
    // Control characters from a hostile header do not reach the reply.
    let r = c
        .resolve_options(grant(&c, "info@magdeburg.de-mail.de"), "x", Some("a\u{7}b"))
        .unwrap_err();
    assert!(r.english.contains("\"a?b\""), "{}", r.english);
}

#[test]
fn retrieve_only_for_public_bodies() {
    let f = Fixture::new();
    let c = f.base();
    let g = grant(&c, "info@demail.provider.example");
    for (subject, header) in [
        ("[Abholbestätigung] Mahnung", None),
        ("Mahnung", Some("retrieve")),
    ] {
        let r = c.resolve_options(g, subject, header).unwrap_err();
        assert_eq!(r.status, "5.7.1");
        assert!(r.german.contains("oeffentliche Stellen"), "{}", r.german);
        assert!(r.english.contains("public bodies"), "{}", r.english);
        assert!(r.german.contains("Hausverwaltung GmbH"), "{}", r.german);
    }
    // The same request from a public body passes.
    let r = c
        .resolve_options(
            grant(&c, "info@magdeburg.de-mail.de"),
            "[Abholbestätigung] Bescheid",
            None,
        )
        .unwrap();
    assert!(r.options.retrieve);
    assert_eq!(r.subject, "Bescheid");
}

#[test]
fn visible_accounts_by_login() {
    let f = Fixture::new();
    let c = f.base();
    let addrs = |login: &str| -> Vec<String> {
        c.visible_accounts(login)
            .iter()
            .map(|a| a.address.clone())
            .collect()
    };
    assert_eq!(
        addrs("Poststelle@Magdeburg.example"),
        ["info@magdeburg.de-mail.de"]
    );
    assert_eq!(
        addrs("CHEFIN"),
        ["info@magdeburg.de-mail.de", "wohngeld@magdeburg.de-mail.de"]
    );
    assert!(addrs("anna@magdeburg.example").is_empty());
    assert!(addrs("").is_empty());
}

#[test]
fn login_sees_own_and_visible_to_evidence() {
    let f = Fixture::new();
    let c = f.base();
    let info = "info@magdeburg.de-mail.de";
    let wohngeld = "wohngeld@magdeburg.de-mail.de";
    let hv = "info@demail.provider.example";
    let anna = "anna@magdeburg.example";
    let sees =
        |login: &str, account: &str, sasl: Option<&str>| c.login_sees(login, account, anna, sasl);
    // The clerk (envelope sender) and the SASL login, in any case and with white space.
    for login in [
        "anna@magdeburg.example",
        "Anna@Magdeburg.Example",
        " anna@magdeburg.example\t",
    ] {
        assert!(sees(login, info, None), "{login:?}");
    }
    assert!(sees("wohngeld-anna", wohngeld, Some("Wohngeld-Anna")));
    assert!(sees("WOHNGELD-ANNA ", wohngeld, Some("wohngeld-anna")));
    // visible_to, case-insensitively; the account's address as written in any case.
    assert!(sees("Poststelle@magdeburg.example", info, None));
    assert!(sees(
        "poststelle@magdeburg.example",
        "<INFO@Magdeburg.de-mail.de>",
        None
    ));
    assert!(sees("chefin", wohngeld, None));
    assert!(sees("Chefin", info, None));
    // The other tenant's clerk sees his own.
    assert!(c.login_sees("Verwalter@hv.example", hv, "verwalter@hv.example", None));
    // NFC: a decomposed umlaut is the same login as the composed one.
    assert!(c.login_sees(
        "j\u{fc}rgen@magdeburg.example",
        info,
        "ju\u{308}rgen@magdeburg.example",
        None
    ));
}

#[test]
fn login_sees_nothing_of_others() {
    let f = Fixture::new();
    let c = f.base();
    let info = "info@magdeburg.de-mail.de";
    let hv = "info@demail.provider.example";
    let anna = "anna@magdeburg.example";
    for login in [
        // Another clerk of the same tenant.
        "bernd@magdeburg.example",
        // A login of another tenant, and that tenant's whole account.
        "verwalter@hv.example",
        "info@demail.provider.example",
        // Look-alikes: Cyrillic a (U+0430), fullwidth a, a zero-width space, a prefix, a suffix.
        "\u{430}nna@magdeburg.example",
        "\u{ff41}nna@magdeburg.example",
        "an\u{200b}na@magdeburg.example",
        "anna",
        "anna@magdeburg.example.evil",
        "anna@magdeburg.example*",
        // Empty, white space only.
        "",
        " \t\r\n",
    ] {
        assert!(
            !c.login_sees(login, info, anna, Some("wohngeld-anna")),
            "{login:?}"
        );
    }
    // poststelle sees info's evidence, not wohngeld's, and nothing of the other tenant.
    assert!(!c.login_sees(
        "poststelle@magdeburg.example",
        "wohngeld@magdeburg.de-mail.de",
        anna,
        None
    ));
    assert!(!c.login_sees("chefin", hv, "verwalter@hv.example", None));
    assert!(!c.login_sees("\u{441}hefin", info, anna, None));
    // An empty recorded clerk or SASL login does not match an empty login.
    assert!(!c.login_sees("", info, "", Some("")));
    assert!(!c.login_sees(" ", info, " ", Some(" ")));
    // An account that is not ours (say removed from the configuration): nobody sees it,
    // not even its clerk.
    for account in [
        "alt@magdeburg.de-mail.de",
        "buerger@example.de-mail.de",
        "",
        "anna@magdeburg.example",
    ] {
        assert!(!c.login_sees(anna, account, anna, None), "{account:?}");
        assert!(!c.login_sees("chefin", account, anna, None), "{account:?}");
    }
}

#[test]
fn poststelle_exact_lowercased() {
    let f = Fixture::new();
    let c = f.base();
    assert!(c.is_poststelle("poststelle@magdeburg.example"));
    assert!(c.is_poststelle("<POSTSTELLE@magdeburg.EXAMPLE>"));
    assert!(!c.is_poststelle("poststelle@sub.magdeburg.example"));
    assert!(!c.is_poststelle("poststelle2@magdeburg.example"));
    assert!(!c.is_poststelle(""));
}
