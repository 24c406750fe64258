//! The base main.cf / master.cf of a test instance and how a test's options merge into them.

use std::fmt::Write as _;
use std::path::Path;

use super::PostfixOptions;

/// main.cf: the base settings, each overridden in place by a test's setting of the same key,
/// then the test's new keys in their order.
pub(super) fn main_cf(
    root: &Path,
    opts: &PostfixOptions,
    subst: &dyn Fn(&str) -> String,
) -> String {
    let r = root.display();
    let relay_transport = match opts.lmtp_port {
        Some(port) => format!("lmtp:inet:127.0.0.1:{port}"),
        None => "error:5.3.0 this test instance has no Dovecot (PostfixOptions::lmtp_port)".into(),
    };
    let base: Vec<(&str, String)> = vec![
        ("compatibility_level", "3.6".into()),
        ("queue_directory", format!("{r}/queue")),
        ("data_directory", format!("{r}/data")),
        ("mail_owner", "postfix".into()),
        ("setgid_group", "postdrop".into()),
        ("myhostname", "mx.example.test".into()),
        ("mydomain", "example.test".into()),
        ("myorigin", "$myhostname".into()),
        ("inet_interfaces", "127.0.0.1".into()),
        ("inet_protocols", "ipv4".into()),
        ("mynetworks", "127.0.0.0/8".into()),
        ("mydestination", String::new()),
        ("local_recipient_maps", String::new()),
        ("alias_maps", String::new()),
        ("alias_database", String::new()),
        ("relay_domains", "example.test".into()),
        ("relay_recipient_maps", String::new()),
        ("relay_transport", relay_transport),
        (
            "smtpd_relay_restrictions",
            "permit_mynetworks, reject_unauth_destination".into(),
        ),
        // A milter is optional (a test adds smtpd_milters); if one is set and down, mail waits.
        ("milter_default_action", "tempfail".into()),
        ("milter_protocol", "6".into()),
        // Tests wait for retries: keep the retry cycle short (nothing ever expires in a test).
        ("queue_run_delay", "1s".into()),
        ("minimal_backoff_time", "1s".into()),
        ("maximal_backoff_time", "2s".into()),
        ("smtp_connect_timeout", "5s".into()),
        // No syslog in a container: Postfix logs to a file through the postlog service.
        ("maillog_file", format!("{r}/maillog")),
        ("maillog_file_prefixes", format!("{r}")),
        ("smtputf8_enable", "no".into()),
        ("biff", "no".into()),
    ];
    let mut settings: Vec<(String, String)> =
        base.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    for (key, value) in &opts.main_cf {
        let key = key.trim();
        if key.is_empty() || key.contains(['=', '\n', ' ']) {
            panic!("Postfix: main.cf key {key:?} is not a parameter name");
        }
        match settings.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => settings.push((key.to_string(), value.clone())),
        }
    }
    let mut out = String::from("# e2e test instance (generated)\n");
    for (k, v) in settings {
        // A value with line breaks continues on indented lines, as main.cf allows.
        let v = subst(&v).replace('\n', "\n    ");
        let _ = writeln!(out, "{k} = {v}");
    }
    out
}

/// master.cf: the base services (no chroot anywhere), with the test's entries replacing
/// base entries of the same service name and type, new ones appended.
pub(super) fn master_cf(
    smtp_port: u16,
    extra: &[String],
    subst: &dyn Fn(&str) -> String,
) -> String {
    let base = format!(
        "127.0.0.1:{smtp_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
"
    );
    let mut entries = entries(&base);
    let extra_text: String = extra.iter().map(|l| format!("{}\n", subst(l))).collect();
    for entry in self::entries(&extra_text) {
        let existing = entry
            .key
            .as_ref()
            .and_then(|key| entries.iter_mut().find(|e| e.key.as_ref() == Some(key)));
        match existing {
            Some(slot) => *slot = entry,
            None => entries.push(entry),
        }
    }
    let mut out = String::from("# e2e test instance (generated)\n");
    for e in entries {
        out.push_str(&e.text);
    }
    out
}

/// One master.cf entry (first line plus continuation lines), or a comment/blank line.
struct Entry {
    /// (service name, type) of an entry; None for comments.
    key: Option<(String, String)>,
    text: String,
}

fn entries(text: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for line in text.lines() {
        let continuation = line.starts_with([' ', '\t']) && !line.trim().is_empty();
        match out.last_mut() {
            Some(last) if continuation && last.key.is_some() => {
                last.text.push_str(line);
                last.text.push('\n');
                continue;
            }
            _ => {}
        }
        let trimmed = line.trim_start();
        let key = if trimmed.is_empty() || trimmed.starts_with('#') {
            None
        } else {
            let mut fields = trimmed.split_whitespace();
            match (fields.next(), fields.next()) {
                (Some(name), Some(kind)) => Some((name.to_string(), kind.to_string())),
                _ => panic!("Postfix: master.cf line {line:?} has no service name and type"),
            }
        };
        out.push(Entry {
            key,
            text: format!("{line}\n"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> String {
        s.replace("{dir}", "/cfg")
    }

    #[test]
    fn main_cf_overrides_in_place_and_appends_new_keys() {
        let opts = PostfixOptions {
            main_cf: vec![
                ("relay_domains".into(), "example.test, other.test".into()),
                ("transport_maps".into(), "texthash:{dir}/transport".into()),
            ],
            lmtp_port: Some(2424),
            ..PostfixOptions::default()
        };
        let cf = main_cf(Path::new("/r"), &opts, &id);
        assert_eq!(cf.matches("relay_domains =").count(), 1, "{cf}");
        assert!(
            cf.contains("relay_domains = example.test, other.test\n"),
            "{cf}"
        );
        assert!(
            cf.contains("relay_transport = lmtp:inet:127.0.0.1:2424\n"),
            "{cf}"
        );
        assert!(
            cf.ends_with("transport_maps = texthash:/cfg/transport\n"),
            "{cf}"
        );
        assert!(cf.contains("queue_directory = /r/queue\n"), "{cf}");
    }

    #[test]
    fn main_cf_without_dovecot_refuses_internal_mail_with_a_reason() {
        let cf = main_cf(Path::new("/r"), &PostfixOptions::default(), &id);
        assert!(cf.contains("relay_transport = error:5.3.0 "), "{cf}");
    }

    #[test]
    #[should_panic(expected = "is not a parameter name")]
    fn main_cf_rejects_a_key_with_an_equals_sign() {
        let opts = PostfixOptions {
            main_cf: vec![("a = b".into(), "c".into())],
            ..PostfixOptions::default()
        };
        main_cf(Path::new("/r"), &opts, &id);
    }

    #[test]
    fn master_cf_replaces_same_service_and_appends_new_ones() {
        let extra = vec![
            "# ours".to_string(),
            "demail unix - - n - - smtp\n  -o smtp_tls_CAfile={dir}/ca.pem".to_string(),
            "tlsmgr unix - - n 1000? 1 tlsmgr".to_string(),
            "  -o syslog_name=replaced".to_string(),
        ];
        let cf = master_cf(2525, &extra, &id);
        assert!(
            cf.starts_with("# e2e test instance (generated)\n127.0.0.1:2525 inet"),
            "{cf}"
        );
        assert_eq!(
            cf.matches("tlsmgr").count(),
            2,
            "one entry, name + command: {cf}"
        );
        assert!(
            cf.contains("tlsmgr unix - - n 1000? 1 tlsmgr\n  -o syslog_name=replaced\npostlog"),
            "{cf}"
        );
        assert!(
            cf.ends_with("# ours\ndemail unix - - n - - smtp\n  -o smtp_tls_CAfile=/cfg/ca.pem\n"),
            "{cf}"
        );
    }

    #[test]
    #[should_panic(expected = "has no service name and type")]
    fn master_cf_rejects_a_bare_word() {
        master_cf(2525, &["smtpd".to_string()], &id);
    }
}
