//! Configuration errors and defaults, through `Config::parse` / `Config::load`.

use std::path::PathBuf;
use std::time::Duration;

use crate::testutil::{BASE, Fixture};
use crate::*;

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
}

/// 1-based line of the `n`-th (0-based) line containing `needle`.
fn nth_line_of(text: &str, needle: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(n)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} #{n} not in text"))
}

/// BASE with `from` replaced by `to` (exactly once).
fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "{from:?} must occur once in BASE"
    );
    BASE.replacen(from, to, 1)
}

fn errors(f: &Fixture, text: &str) -> Vec<ConfigError> {
    match f.parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.errors,
    }
}

/// The single error of `text`, checked to be at the line of `at`.
fn one_error(f: &Fixture, text: &str, at: &str) -> ConfigError {
    let errs = errors(f, text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, line_of(text, at), "{errs:#?}");
    errs[0].clone()
}

#[test]
fn three_problems_reported_together_with_lines() {
    let f = Fixture::new();
    let text = edit(
        "provider_ca = \"tls/ca.pem\"",
        "provder_ca = \"tls/ca.pem\"",
    )
    .replacen(
        "\"Info@Magdeburg.de-mail.de\"",
        "\"info magdeburg.de-mail.de\"",
        1,
    )
    .replacen("tls/client.key", "tls/missing.key", 1);
    let err = f.parse(&text).unwrap_err();
    assert_eq!(err.file, f.file());
    let e = &err.errors;
    // provider_ca is then also missing: that is a fourth, honest error at the table line.
    let find = |key: &str| {
        e.iter()
            .find(|x| x.key == key)
            .unwrap_or_else(|| panic!("no error for {key}: {e:#?}"))
    };
    let typo = find("gateway.provder_ca");
    assert_eq!(typo.line, line_of(&text, "provder_ca"));
    assert!(
        typo.message.contains("did you mean `provider_ca`?"),
        "{}",
        typo.message
    );
    let addr = find("tenant[0].account[0].address");
    assert_eq!(addr.line, line_of(&text, "info magdeburg"));
    assert!(addr.message.contains("a space"), "{}", addr.message);
    let key = find("gateway.client_key");
    assert_eq!(key.line, line_of(&text, "missing.key"));
    let expected = f.dir.path().join("tls/missing.key");
    assert_eq!(
        key.message,
        format!("file not found: {}", expected.display())
    );
    let missing = find("gateway.provider_ca");
    assert_eq!(missing.line, line_of(&text, "[gateway]"));
    assert!(
        missing.message.contains("[gateway] (line 2)"),
        "{}",
        missing.message
    );
    assert_eq!(e.len(), 4, "{e:#?}");
    // Sorted by line, one per line in the Display form FILE:LINE: KEY: MESSAGE.
    assert!(e.windows(2).all(|w| w[0].line <= w[1].line));
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 4);
    let first = shown.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "{}:{}: {}: {}",
            f.file().display(),
            e[0].line,
            e[0].key,
            e[0].message
        )
    );
}

#[test]
fn syntax_error_has_its_line() {
    let f = Fixture::new();
    let text = edit("port = 465", "port = 465\nhost2 = [\"a\" \"b\"]");
    let e = one_error(&f, &text, "host2");
    assert_eq!(e.key, "syntax");
    assert!(e.message.starts_with("TOML syntax error"), "{}", e.message);
    let text = edit("tls = \"implicit\"", "tls = \"implicit");
    let e = one_error(&f, &text, "tls = \"implicit");
    assert_eq!(e.key, "syntax");
}

/// Found by the `config` fuzz target: TOML reports a key left without a value at the end of
/// the file, and that was one line past the last.
#[test]
fn an_unfinished_key_at_the_end_is_on_the_last_line() {
    let f = Fixture::new();
    let text = format!("{BASE}  \"\"\"dress\n");
    let e = f.parse(&text).unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].key, "syntax");
    assert_eq!(e.errors[0].line, text.lines().count(), "{e}");
}

#[test]
fn duplicate_key_is_a_syntax_error_at_the_second() {
    let f = Fixture::new();
    let text = edit("port = 465", "port = 465\nport = 587");
    let e = one_error(&f, &text, "port = 587");
    assert!(e.message.contains("duplicate"), "{}", e.message);
}

#[test]
fn unknown_section_with_suggestion() {
    let f = Fixture::new();
    let text = format!("{BASE}\n[evidense]\nretention_years = 5\n");
    let e = one_error(&f, &text, "[evidense]");
    assert_eq!(e.key, "evidense");
    assert!(
        e.message.contains("unknown section `[evidense]`"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("did you mean `evidence`?"),
        "{}",
        e.message
    );
    let text = format!("{BASE}\n[zzz]\n");
    let e = one_error(&f, &text, "[zzz]");
    assert!(
        e.message.contains("known here: gateway, inbound"),
        "{}",
        e.message
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    let f = Fixture::new();
    let e = one_error(&f, &edit("port = 465", "port = \"465\""), "port =");
    assert_eq!(e.key, "gateway.port");
    assert_eq!(e.message, "expected an integer, found a string");
    let e = one_error(
        &f,
        &edit("public_body = true", "public_body = \"yes\""),
        "public_body",
    );
    assert_eq!(e.message, "expected true or false, found a string");
    let text = edit(
        "senders = [\"sasl:Wohngeld-*\"]",
        "senders = [\"sasl:Wohngeld-*\", 7]",
    );
    let e = one_error(&f, &text, "senders = [\"sasl:Wohngeld-*\", 7]");
    assert_eq!(e.key, "tenant[0].account[1].senders[1]");
    assert_eq!(e.message, "expected a string, found an integer");
    let text = edit(
        "domains = [\"*.de-mail.de\", \"demail.provider.example\"]",
        "domains = \"*.de-mail.de\"",
    );
    let e = one_error(&f, &text, "domains =");
    assert_eq!(e.message, "expected a list of strings, found a string");
    let text = format!("milter = 5\n{BASE}");
    let e = one_error(&f, &text, "milter = 5");
    assert_eq!(e.message, "expected a table, found an integer");
}

#[test]
fn missing_required_keys_name_table_and_line() {
    let f = Fixture::new();
    let text = edit("host = \"gateway.provider.example\"\n", "");
    let e = one_error(&f, &text, "[gateway]");
    assert_eq!(e.key, "gateway.host");
    assert_eq!(e.message, "required key is missing in [gateway] (line 2)");
    let text = edit("  address = \"wohngeld@magdeburg.de-mail.de\"\n", "");
    let errs = errors(&f, &text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "tenant[0].account[1].address");
    assert_eq!(errs[0].line, nth_line_of(&text, "[[tenant.account]]", 1));
    assert!(
        errs[0]
            .message
            .contains(&format!("[tenant[0].account[1]] (line {})", errs[0].line))
    );
}

#[test]
fn missing_sections() {
    let f = Fixture::new();
    let tenants_at = BASE.find("[[tenant]]").unwrap_or(BASE.len());
    let errs = errors(&f, &BASE[..tenants_at]);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "tenant");
    // The packaged file has none: the message says what to add.
    assert!(
        errs[0]
            .message
            .starts_with("no [[tenant]] yet: add one per town"),
        "{errs:#?}"
    );
    let gateway_end = BASE.find("[inbound]").unwrap_or(0);
    let errs = errors(&f, &BASE[gateway_end..]);
    assert!(
        errs.iter().any(|e| e.key == "gateway" && e.line == 1),
        "{errs:#?}"
    );
    // Without domains, accounts are not also reported as "not De-Mail".
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let text = edit(
        "  [[tenant.account]]\n  address = \"info@demail.provider.example\"\n  deliver_to = [\"info@hv.example\"]\n  senders = [\"*@hv.example\", \"sasl:hv-*\"]\n",
        "",
    );
    let errs = errors(&f, &text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "tenant[1].account");
    assert_eq!(errs[0].line, nth_line_of(&text, "[[tenant]]", 1));
}

#[test]
fn bad_values_are_reported_where_they_are() {
    let f = Fixture::new();
    let cases: &[(&str, &str, &str)] = &[
        ("port = 465", "port = 0", "1..65535"),
        ("port = 465", "port = 70000", "1..65535"),
        (
            "tls = \"implicit\"",
            "tls = \"startls\"",
            "did you mean \"starttls\"?",
        ),
        (
            "domains = [\"*.de-mail.de\", \"demail.provider.example\"]",
            "domains = []",
            "at least one",
        ),
        (
            "[inbound]\n",
            "[inbound]\nprovider_client_fingerprints = [\"abcd\"]\n",
            "4 hex digits",
        ),
        (
            "[inbound]\n",
            "[inbound]\ndeliver_confirmations = \"inbox\"\n",
            "\"mailbox\", \"evidence-only\"",
        ),
        (
            "[inbound]\n",
            "[inbound]\nlisten = \"1465\"\n",
            "no `:PORT`",
        ),
        (
            "[inbound]\n",
            "[inbound]\ncertificate = \"tls/none.pem\"\n",
            "file not found",
        ),
        (
            "default_options = [\"dispatch\", \"receipt\"]",
            "default_options = [\"dispatch\", \"reciept\"]",
            "did you mean \"receipt\"?",
        ),
        (
            "senders = [\"*@magdeburg.example\"]",
            "senders = [\"magdeburg.example\"]",
            "neither an address pattern",
        ),
        (
            "senders = [\"*@magdeburg.example\"]",
            "senders = [\"sasl:\"]",
            "needs a login pattern",
        ),
        (
            "internal_domains = [\"hv.example\"]",
            "internal_domains = [\"hv\"]",
            "has no dot",
        ),
    ];
    for (from, to, needle) in cases {
        let text = edit(from, to);
        let at = to.lines().last().unwrap_or(to);
        let e = one_error(&f, &text, at);
        assert!(e.message.contains(needle), "{to}: {}", e.message);
    }
}

#[test]
fn sizes_durations_sockets() {
    let f = Fixture::new();
    let with = |gateway_extra: &str, rest: &str| {
        let t = edit("port = 465", &format!("port = 465\n{gateway_extra}"));
        f.parse(&format!("{rest}\n{t}"))
    };
    let c = with("max_message_size = \"20MB\"", "").unwrap();
    assert_eq!(c.gateway.max_message_size, 20_000_000);
    let c = with("max_message_size = 1048576", "").unwrap();
    assert_eq!(c.gateway.max_message_size, 1_048_576);
    let c = with(
        "",
        "[trust]\nocsp_timeout = \"500ms\"\n[milter]\nlisten = \"unix:/run/demail/m.sock\"",
    )
    .unwrap();
    assert_eq!(c.trust.ocsp_timeout, Duration::from_millis(500));
    assert_eq!(
        c.milter.listen,
        SocketSpec::Unix("/run/demail/m.sock".into())
    );
    let e = with("max_message_size = \"20 furlongs\"", "").unwrap_err();
    assert!(e.errors[0].message.contains("like \"20MiB\""), "{e}");
    let e = with("", "[milter]\nlisten = \"unix:m.sock\"").unwrap_err();
    assert!(e.errors[0].message.contains("must be absolute"), "{e}");
    let e = with("", "[trust]\nocsp_timeout = 5").unwrap_err();
    assert_eq!(e.errors[0].message, "expected a string, found an integer");
    let e = with("", "[evidence]\nretention_years = 0").unwrap_err();
    assert!(e.errors[0].message.contains(">= 1"), "{e}");
}

#[test]
fn the_attachment_qes_tag_names_the_signer_and_follows_qes_valid() {
    let f = Fixture::new();
    assert_eq!(f.base().tags.qes_valid_attachment, "[QES gültig: {signer}]");
    let with = |tags: &str| f.parse(&format!("[tags]\n{tags}\n{BASE}"));
    let c = with("qes_valid = \"[QES ok]\"").unwrap();
    assert_eq!(c.tags.qes_valid_attachment, "[QES ok: {signer}]");
    let c = with("qes_valid_attachment = \"[QES von {signer}]\"").unwrap();
    assert_eq!(c.tags.qes_valid_attachment, "[QES von {signer}]");
    let c = with("qes_valid_attachment = \"\"").unwrap();
    assert_eq!(c.tags.qes_valid_attachment, "");
    for bad in ["[QES gültig]", "[{signer} {signer}]"] {
        let text = format!("[tags]\nqes_valid_attachment = \"{bad}\"\n{BASE}");
        let e = one_error(&f, &text, "qes_valid_attachment");
        assert_eq!(e.key, "tags.qes_valid_attachment", "{e:?}");
        assert!(e.message.contains("{signer} exactly once"), "{e:?}");
    }
}

#[test]
fn defaults_when_sections_are_absent() {
    let f = Fixture::new();
    let c = f.base();
    assert_eq!(c.gateway.max_message_size, 20 * 1024 * 1024);
    assert_eq!(c.gateway.auth_credentials, None);
    assert_eq!(c.inbound.provider_service, "demail-in");
    assert_eq!(
        c.inbound.deliver_confirmations,
        DeliverConfirmations::Mailbox
    );
    assert_eq!(c.inbound.listen, "0.0.0.0:1465");
    assert_eq!(c.inbound.certificate, c.gateway.client_certificate);
    assert_eq!(c.inbound.key, c.gateway.client_key);
    assert!(c.inbound.provider_client_fingerprints.is_empty());
    assert_eq!(
        c.evidence.database,
        demail_sql::Location::Sqlite(PathBuf::from("/var/lib/demail/evidence.sqlite"))
    );
    assert_eq!(c.evidence.blobs, PathBuf::from("/var/lib/demail/blobs"));
    assert_eq!(c.evidence.retention_years, 10);
    assert_eq!(
        c.trust.trusted_lists,
        PathBuf::from("/var/lib/demail/trust")
    );
    assert_eq!(c.trust.validation_model, ValidationModel::Chain);
    assert_eq!(c.trust.revocation, Revocation::Ocsp);
    assert_eq!(c.trust.ocsp_timeout, Duration::from_secs(5));
    assert_eq!(c.tags.authoritative, "[De-Mail absenderbestätigt]");
    assert_eq!(c.tags.qes_valid, "[QES gültig]");
    assert_eq!(c.tags.signed_not_qualified, "[signiert, keine QES]");
    assert_eq!(c.tags.signature_invalid, "[Signatur ungültig]");
    assert_eq!(c.tags.signature_indeterminate, "[Signatur unbestimmt]");
    // Not TCP: any local process could speak milter on 127.0.0.1 and claim demail-in.
    assert_eq!(
        c.milter.listen,
        SocketSpec::Unix("/var/spool/postfix/demail/milter.sock".into())
    );
    assert_eq!(
        c.milter.listen,
        SocketSpec::Unix(crate::DEFAULT_MILTER_SOCKET.into())
    );
    assert!(c.imap_proxy.is_none());
    assert!(!c.tenants[1].public_body);
    assert!(!c.tenants[0].accounts[0].reply_to_clerk);
    assert!(c.tenants[1].accounts[0].visible_to.is_empty());
}

#[test]
fn values_are_lowercased_and_paths_resolved() {
    let f = Fixture::new();
    let c = f.base();
    assert_eq!(c.source, f.file());
    assert_eq!(
        c.gateway.client_certificate,
        f.dir.path().join("tls/client.pem")
    );
    assert!(c.gateway.provider_ca.is_absolute());
    assert_eq!(c.inbound.poststelle, ["poststelle@magdeburg.example"]);
    assert_eq!(
        c.tenants[0].accounts[0].address,
        "info@magdeburg.de-mail.de"
    );
    assert_eq!(
        c.tenants[0].accounts[0].visible_to,
        ["poststelle@magdeburg.example", "chefin"]
    );
    assert_eq!(
        c.tenants[0].accounts[1].senders,
        [SenderPattern::Sasl("wohngeld-*".into())]
    );
    assert_eq!(
        c.gateway.domains,
        [
            DomainPattern::Subdomains("de-mail.de".into()),
            DomainPattern::Exact("demail.provider.example".into())
        ]
    );
    assert!(c.tenants[0].accounts[1].default_options.retrieve);
}

#[test]
fn cross_checks() {
    let f = Fixture::new();
    let e = one_error(
        &f,
        &edit(
            "address = \"info@demail.provider.example\"",
            "address = \"info@hv.example\"",
        ),
        "address = \"info@hv.example\"",
    );
    assert!(
        e.message.contains("not in a De-Mail domain"),
        "{}",
        e.message
    );
    let e = one_error(
        &f,
        &edit(
            "deliver_to = [\"info@hv.example\"]",
            "deliver_to = [\"info@hv.de-mail.de\"]",
        ),
        "deliver_to = [\"info@hv.de-mail.de\"]",
    );
    assert!(
        e.message
            .contains("is a De-Mail address (matches *.de-mail.de)"),
        "{}",
        e.message
    );
    assert_eq!(e.key, "tenant[1].account[0].deliver_to[0]");
    let e = one_error(
        &f,
        &edit(
            "poststelle = [\"Poststelle@Magdeburg.example\"]",
            "poststelle = [\"p@x.de-mail.de\"]",
        ),
        "poststelle =",
    );
    assert!(e.message.contains("is a De-Mail address"), "{}", e.message);
    let e = one_error(
        &f,
        &edit(
            "visible_to = [\"chefin\"]",
            "visible_to = [\"chefin@demail.provider.example\"]",
        ),
        "visible_to = [\"chefin@demail",
    );
    assert!(e.message.contains("is a De-Mail address"), "{}", e.message);
    let text = edit(
        "address = \"info@demail.provider.example\"",
        "address = \"INFO@magdeburg.de-mail.de\"",
    );
    let e = one_error(&f, &text, "address = \"INFO@magdeburg");
    let first = line_of(&text, "Info@Magdeburg.de-mail.de");
    assert!(
        e.message
            .contains(&format!("already configured at line {first}")),
        "{}",
        e.message
    );
    let e = one_error(
        &f,
        &edit(
            "internal_domains = [\"hv.example\"]",
            "internal_domains = [\"hv.example\", \"hv.de-mail.de\"]",
        ),
        "\"hv.de-mail.de\"]",
    );
    assert!(
        e.message
            .contains("both an internal domain and a De-Mail domain"),
        "{}",
        e.message
    );
    let text = edit(
        "internal_domains = [\"hv.example\"]",
        "internal_domains = [\"magdeburg.example\"]",
    );
    let errs = errors(&f, &text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, nth_line_of(&text, "internal_domains", 1));
    let first = nth_line_of(&text, "internal_domains", 0);
    assert!(
        errs[0].message.contains(&format!(
            "already an internal domain of tenant[0] (line {first})"
        )),
        "{}",
        errs[0].message
    );
}

#[test]
fn retrieve_default_needs_public_body() {
    let f = Fixture::new();
    let text = edit(
        "senders = [\"*@hv.example\", \"sasl:hv-*\"]",
        "senders = [\"*@hv.example\"]\n  default_options = [\"retrieve\"]",
    );
    let e = one_error(&f, &text, "default_options = [\"retrieve\"]");
    assert!(
        e.message.contains("only for public bodies"),
        "{}",
        e.message
    );
}

#[test]
fn unknown_key_in_account_suggests() {
    let f = Fixture::new();
    let text = edit(
        "senders = [\"sasl:Wohngeld-*\"]",
        "sender = [\"sasl:Wohngeld-*\"]",
    );
    let e = one_error(&f, &text, "sender = ");
    assert_eq!(e.key, "tenant[0].account[1].sender");
    assert!(
        e.message.contains("did you mean `senders`?"),
        "{}",
        e.message
    );
}

#[test]
fn imap_proxy_section() {
    let f = Fixture::new();
    let section = "[imap_proxy]\nlisten_imaps = \"0.0.0.0:993\"\ncertificate = \"tls/imap.pem\"\nkey = \"tls/imap.key\"\n[imap_proxy.folders]\nroot = \"DeMail\"\n";
    let c = f.parse(&format!("{BASE}\n{section}")).unwrap();
    let p = c.imap_proxy.expect("imap_proxy");
    assert_eq!(p.listen_imaps.as_deref(), Some("0.0.0.0:993"));
    assert_eq!(p.listen_imap, None);
    assert_eq!(p.certificate, f.dir.path().join("tls/imap.pem"));
    assert_eq!(p.backend, "127.0.0.1:143");
    assert_eq!(p.backend_tls, BackendTls::None);
    assert_eq!(p.state, PathBuf::from("/var/lib/demail/proxy-state.sqlite"));
    assert_eq!(p.folders.root, "DeMail");
    assert_eq!(p.folders.dispatch, "Versandbestätigungen");
    assert_eq!(p.folders.deemed_served, "Zustellfiktion");
    // Missing files, no listener, a bad folder name: all reported.
    let section = "[imap_proxy]\ncertificate = \"tls/nope.pem\"\nkey = \"tls/imap.key\"\n[imap_proxy.folders]\npending = \"Aus*\"\n";
    let text = format!("{BASE}\n{section}");
    let errs = errors(&f, &text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs.iter().any(
            |e| e.message.starts_with("file not found") && e.line == line_of(&text, "nope.pem")
        )
    );
    assert!(
        errs.iter()
            .any(|e| e.message.contains("at least one of listen_imaps"))
    );
    assert!(errs.iter().any(|e| e.key == "imap_proxy.folders.pending"));
}

#[test]
fn inline_tables_are_accepted() {
    let f = Fixture::new();
    let text = format!(
        "milter = {{ listen = \"inet:[::1]:9000\" }}\ntenant = [{{ name = \"X\", account = [{{ address = \"a@x.de-mail.de\", deliver_to = [\"a@x.example\"] }}] }}]\n{}",
        &BASE[..BASE.find("[[tenant]]").unwrap_or(0)]
    );
    let c = f.parse(&text).unwrap();
    assert_eq!(
        c.milter.listen,
        SocketSpec::Inet {
            host: "::1".into(),
            port: 9000
        }
    );
    assert_eq!(c.tenants[0].accounts[0].address, "a@x.de-mail.de");
}

#[test]
fn trust_files_must_exist() {
    let f = Fixture::new();
    let text = format!(
        "{BASE}\n[trust]\nanchors = [\"tls/anchor.pem\", \"/nonexistent/a.pem\"]\nlist_signers = [\"tls\"]\n"
    );
    let errs = errors(&f, &text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(errs[0].key, "trust.anchors[1]");
    assert_eq!(errs[0].message, "file not found: /nonexistent/a.pem");
    assert!(
        errs[1].message.starts_with("not a regular file"),
        "{}",
        errs[1].message
    );
}

#[test]
fn load_reads_files_and_reports_unreadable_ones_at_line_0() {
    let f = Fixture::new();
    std::fs::write(f.file(), BASE).expect("write");
    let c = Config::load(&f.file()).unwrap();
    assert_eq!(c.tenants.len(), 2);
    let missing = f.dir.path().join("absent.toml");
    let e = Config::load(&missing).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].line, 0);
    assert!(e.errors[0].message.starts_with("cannot read file"), "{e}");
    let bad = f.dir.path().join("latin1.toml");
    std::fs::write(&bad, b"# ok\n# caf\xe9\n").expect("write");
    let e = Config::load(&bad).unwrap_err();
    assert_eq!(e.errors[0].line, 2);
    assert!(e.errors[0].message.contains("UTF-8"), "{e}");
}

#[test]
fn milter_socket_as_smtpd_sees_it() {
    let root = std::path::Path::new(crate::POSTFIX_CHROOT);
    let unix = |p: &str| SocketSpec::Unix(p.into());
    let default = unix(crate::DEFAULT_MILTER_SOCKET);
    assert_eq!(
        default.postfix_milter(None).unwrap(),
        "unix:/var/spool/postfix/demail/milter.sock"
    );
    assert_eq!(
        default.postfix_milter(Some(root)).unwrap(),
        "unix:/demail/milter.sock"
    );
    let inet = SocketSpec::Inet {
        host: "127.0.0.1".into(),
        port: 8891,
    };
    assert_eq!(
        inet.postfix_milter(Some(root)).unwrap(),
        "inet:127.0.0.1:8891"
    );
    let v6 = SocketSpec::Inet {
        host: "::1".into(),
        port: 8891,
    };
    assert_eq!(v6.postfix_milter(None).unwrap(), "inet:[::1]:8891");
    // Outside the chroot (a look-alike prefix is not inside), or the chroot itself: smtpd
    // cannot reach it, so no value is made up.
    for outside in [
        "/run/demail/milter.sock",
        "/var/spool/postfixX/milter.sock",
        "/var/spool/postfix",
        "/var/spool",
    ] {
        let e = unix(outside).postfix_milter(Some(root)).unwrap_err();
        assert!(
            e.contains(outside) && e.contains("outside the smtpd chroot"),
            "{e}"
        );
    }
}

#[test]
fn imap_proxy_limits_have_defaults_and_bad_values_are_named_where_they_stand() {
    let f = Fixture::new();
    let head = "[imap_proxy]\nlisten_imaps = \"0.0.0.0:993\"\ncertificate = \"tls/imap.pem\"\nkey = \"tls/imap.key\"\n";
    let c = f.parse(&format!("{BASE}\n{head}")).unwrap();
    let l = c.imap_proxy.expect("imap_proxy").limits;
    assert_eq!(l.max_line_length, 64 * 1024);
    assert_eq!(l.max_literal_size, 100 * 1024 * 1024);
    assert_eq!(l.max_connections_per_ip, 100);
    assert_eq!(l.max_connections_per_login, 20);
    assert_eq!(l.idle_timeout, std::time::Duration::from_secs(1800));
    let c = f
        .parse(&format!(
            "{BASE}\n{head}max_literal_size = \"60MiB\"\nidle_timeout = \"31min\"\nmax_connections_per_ip = 5\n"
        ))
        .unwrap();
    let l = c.imap_proxy.expect("imap_proxy").limits;
    assert_eq!(l.max_literal_size, 60 << 20);
    assert_eq!(l.idle_timeout, std::time::Duration::from_secs(31 * 60));
    assert_eq!(l.max_connections_per_ip, 5);
    for (line, key) in [
        ("max_literal_size = \"lots\"", "imap_proxy.max_literal_size"),
        ("max_line_length = 0", "imap_proxy.max_line_length"),
        ("idle_timeout = \"soon\"", "imap_proxy.idle_timeout"),
        (
            "max_connections_per_login = -3",
            "imap_proxy.max_connections_per_login",
        ),
        (
            "backend_ca = \"tls/missing-ca.pem\"",
            "imap_proxy.backend_ca",
        ),
    ] {
        let text = format!("{BASE}\n{head}{line}\n");
        let errs = errors(&f, &text);
        assert!(
            errs.iter()
                .any(|e| e.key == key && e.line == line_of(&text, line)),
            "{line}: {errs:#?}"
        );
    }
}

#[test]
fn metrics_are_off_by_default_and_a_bad_listen_is_named_where_it_stands() {
    let f = Fixture::new();
    let proxy = "[imap_proxy]\nlisten_imaps = \"0.0.0.0:993\"\ncertificate = \"tls/imap.pem\"\nkey = \"tls/imap.key\"\n";
    let c = f.parse(&format!("{BASE}\n{proxy}")).unwrap();
    assert_eq!(c.milter.metrics, None);
    assert_eq!(c.imap_proxy.expect("imap_proxy").metrics, None);

    let text = format!(
        "{BASE}\n[milter]\n[milter.metrics]\nlisten = \"127.0.0.1:9151\"\n{proxy}[imap_proxy.metrics]\nlisten = \"[::1]:9152\"\n"
    );
    let c = f.parse(&text).unwrap();
    let listen = |m: Option<MetricsSettings>| m.map(|m| m.listen);
    assert_eq!(listen(c.milter.metrics), Some("127.0.0.1:9151".into()));
    assert_eq!(
        listen(c.imap_proxy.expect("imap_proxy").metrics),
        Some("[::1]:9152".into())
    );

    for (table, line, key) in [
        (
            "[milter.metrics]",
            "listen = \"9151\"",
            "milter.metrics.listen",
        ),
        ("[milter.metrics]", "listen = 9151", "milter.metrics.listen"),
        (
            "[milter.metrics]",
            "lsten = \"127.0.0.1:9151\"",
            "milter.metrics.lsten",
        ),
        (
            "[imap_proxy.metrics]",
            "listen = \"::1:9152\"",
            "imap_proxy.metrics.listen",
        ),
    ] {
        let text = if table.starts_with("[milter") {
            format!("{BASE}\n[milter]\n{table}\n{line}\n")
        } else {
            format!("{BASE}\n{proxy}{table}\n{line}\n")
        };
        let errs = errors(&f, &text);
        assert!(
            errs.iter()
                .any(|e| e.key == key && e.line == line_of(&text, line)),
            "{line}: {errs:#?}"
        );
    }
    // A table without listen is a mistake, not a silent "off".
    let text = format!("{BASE}\n[milter]\n[milter.metrics]\n");
    let errs = errors(&f, &text);
    assert!(
        errs.iter()
            .any(|e| e.key == "milter.metrics" && e.line == line_of(&text, "[milter.metrics]")),
        "{errs:#?}"
    );
}

/// `[evidence] database` names a PostgreSQL server in either libpq form; what would let the
/// gateway talk to an unchecked server, or read a secret that is not there, is refused at its
/// line.
#[test]
fn evidence_on_postgresql_is_checked_where_it_is_written() {
    let f = Fixture::new();
    let dir = f.file().parent().unwrap().to_path_buf();
    let pw = dir.join("gateway.password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let ca = dir.join("pg-ca.pem");
    std::fs::write(&ca, "not checked here\n").unwrap();
    let url = format!(
        "[evidence]\ndatabase = \"postgresql://demail_gateway@db.example.test:5433/demail?sslrootcert={}\"\npassword_file = \"gateway.password\"\n",
        ca.display()
    );
    let c = f.parse(&format!("{BASE}{url}")).unwrap();
    let shown = c.evidence.database.describe();
    assert!(shown.contains("db.example.test"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(c.evidence.database.sqlite_path().is_none());
    let kv = "[evidence]\ndatabase = \"host=db.example.test dbname=demail user=demail_gateway sslmode=verify-full\"\npassword_file = \"gateway.password\"\n";
    assert!(f.parse(&format!("{BASE}{kv}")).is_ok());

    let text = format!(
        "{BASE}[evidence]\ndatabase = \"host=db.example.test dbname=demail user=gw sslmode=require\"\n"
    );
    let e = one_error(&f, &text, "sslmode=require");
    assert_eq!(e.key, "evidence.database");
    assert!(e.message.contains("verify-full"), "{}", e.message);

    let text = format!(
        "{BASE}[evidence]\ndatabase = \"host=db.example.test dbname=demail user=gw\"\npassword_file = \"missing.password\"\n"
    );
    let e = one_error(&f, &text, "missing.password");
    assert!(e.message.contains("file not found"), "{}", e.message);

    let text = format!(
        "{BASE}[evidence]\ndatabase = \"postgresql://gw@db.example.test/demail?sslrootcert=/nonexistent/ca.pem\"\n"
    );
    let e = one_error(&f, &text, "sslrootcert");
    assert!(e.message.contains("/nonexistent/ca.pem"), "{}", e.message);

    let text = format!(
        "{BASE}[evidence]\ndatabase = \"evidence.sqlite\"\npassword_file = \"gateway.password\"\n"
    );
    let e = one_error(&f, &text, "password_file");
    assert!(e.message.contains("PostgreSQL"), "{}", e.message);
}
