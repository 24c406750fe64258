//! A test city for the IMAP proxy's end-to-end tests: Dovecot with the clerks' and the
//! poststellen's mailboxes, the proxy in front of it, and evidence from the real
//! confirmation flow (the clerk sends through Postfix and the milter, the provider simulator
//! answers with sealed Versand- and Eingangsbestätigungen).

use std::time::Duration;

use crate::city::{ACCOUNT, CLERK, POSTSTELLE, TENANT};
use crate::{City, CityOptions, swaks, wait_until};

/// A second clerk of [`TENANT`], allowed to send as [`ACCOUNT`].
pub const CLERK2: &str = "bauamt@example.test";
/// The other tenant's clerk and poststelle (logins of another tenant).
pub const OTHER_TENANT: &str = "Gemeinde Anderswo";
pub const OTHER_ACCOUNT: &str = "info@anderswo.de-mail.de";
pub const OTHER_CLERK: &str = "kasse@anderswo.example";
pub const OTHER_POSTSTELLE: &str = "poststelle@anderswo.example";
/// Every login's Dovecot password.
pub const PW: &str = "secret-pw";
/// The confirmation folders on the wire (modified UTF-7 under Dovecot's `/`).
pub const DISPATCH_FOLDER: &str = "De-Mail/Versandbest&AOQ-tigungen";
pub const RECEIPT_FOLDER: &str = "De-Mail/Eingangsbest&AOQ-tigungen";

const WAIT: Duration = Duration::from_secs(60);

/// The standard tenant with a second clerk, and a second tenant with its own account.
pub fn tenants() -> String {
    format!(
        r#"[[tenant]]
name = "{TENANT}"
public_body = true
internal_domains = ["example.test"]

  [[tenant.account]]
  address = "{ACCOUNT}"
  deliver_to = ["{POSTSTELLE}"]
  senders = ["{CLERK}", "{CLERK2}"]
  visible_to = ["{POSTSTELLE}"]
  default_options = ["dispatch", "receipt"]

[[tenant]]
name = "{OTHER_TENANT}"
public_body = true
internal_domains = ["anderswo.example"]

  [[tenant.account]]
  address = "{OTHER_ACCOUNT}"
  deliver_to = ["{OTHER_POSTSTELLE}"]
  senders = ["{OTHER_CLERK}"]
  visible_to = ["{OTHER_POSTSTELLE}"]
  default_options = ["dispatch", "receipt"]
"#
    )
}

/// Every login of [`tenants`], with [`PW`].
pub fn logins() -> Vec<(String, String)> {
    [CLERK, CLERK2, POSTSTELLE, OTHER_CLERK, OTHER_POSTSTELLE]
        .iter()
        .map(|l| (l.to_string(), PW.to_string()))
        .collect()
}

/// The city: [`tenants`], Dovecot with [`logins`], the proxy, a provider that sends
/// confirmations for `*@example.de-mail.de`.
pub fn start(proxy_toml: &str) -> City {
    City::start(CityOptions {
        tenants: tenants(),
        dovecot_users: logins(),
        imap_proxy: true,
        proxy_toml: proxy_toml.to_string(),
        provider_sends: true,
        provider_known_recipients: vec!["*@example.de-mail.de".into()],
        ..CityOptions::default()
    })
}

/// `from` sends a De-Mail to `to` through the public smtpd; returns its private-id once
/// recorded.
pub fn send_demail(city: &City, from: &str, to: &str, subject: &str) -> String {
    let before = city.submissions().len();
    let out = mail(city, from, to, subject);
    assert!(
        out.status.success(),
        "swaks:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let subs = wait_until(WAIT, "the submission recorded", || {
        let s = city.submissions();
        (s.len() > before).then_some(s)
    });
    subs[0].private_id.clone()
}

/// A short letter from `from` to `to` through the public smtpd (swaks); what swaks did.
pub fn mail(city: &City, from: &str, to: &str, subject: &str) -> std::process::Output {
    swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        from,
        "--to",
        to,
        "--header",
        &format!("Subject: {subject}"),
        "--body",
        "Sehr geehrte Damen und Herren,\r\nanbei Ihr Bescheid.\r\n",
    ])
}

/// Waits until `private_id` has `n` trusted confirmations recorded.
pub fn wait_confirmations(city: &City, private_id: &str, n: usize) {
    wait_until(WAIT, &format!("{n} confirmations of {private_id}"), || {
        let store = city.evidence()?;
        let c = store.confirmations(private_id).ok()?;
        (c.iter().filter(|c| c.data.trusted).count() >= n).then_some(())
    });
}

/// The raw bytes of every trusted confirmation of `private_ids`, as the evidence store keeps
/// them.
pub fn confirmation_blobs(city: &City, private_ids: &[String]) -> Vec<Vec<u8>> {
    let store = city.evidence().expect("evidence store");
    let mut out = Vec::new();
    for id in private_ids {
        for c in store.confirmations(id).expect("confirmations") {
            if c.data.trusted {
                out.push(store.read_blob(&c.data.raw).expect("blob"));
            }
        }
    }
    out
}
