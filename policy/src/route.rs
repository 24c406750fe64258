//! Where a recipient goes, decided by what Postfix will do with it, not by how it is written.
//!
//! Postfix rewrites some recipient forms before routing (`user%domain@` a local destination,
//! `"user@domain"@` a local destination, bang paths), and its smtpd tells milters at RCPT the
//! transport and address it resolved (`{rcpt_mailer}`, `{rcpt_addr}`). A recipient is De-Mail
//! when any of the written address, the resolved address or the resolved transport says so,
//! so that no rewriting can carry a De-Mail past the sender checks.

use crate::address::normalise;
use crate::config::Config;
use crate::decide::Refusal;

/// The master.cf name of the transport that De-Mail domains resolve to (`transport_maps`).
/// In the configuration `demailctl postfix-config` writes, it refuses everything: only a
/// message the milter handled as De-Mail is sent on, through [`SEND_TRANSPORT`].
pub const DEMAIL_TRANSPORT: &str = "demail";

/// The master.cf name of the smtp transport that carries De-Mail the milter handled to the
/// provider gateway (selected by the milter's [`ROUTE_FIELD`]).
pub const SEND_TRANSPORT: &str = "demail-send";

/// The header field the milter adds to a De-Mail it handled. Postfix's
/// `milter_header_checks` (which see only fields a milter added) turn it into the route to
/// [`SEND_TRANSPORT`]; that transport's `smtp_header_checks` drop it, so it never leaves and is
/// not part of the recorded bytes. A sender's own field of this name is deleted by the milter.
pub const ROUTE_FIELD: &str = "X-DeMail-Route";

/// What Postfix's smtpd reported at RCPT for a recipient; `None` where the MTA sent nothing
/// (a milter test client, or a Postfix configured without the macros).
#[derive(Debug, Clone, Copy, Default)]
pub struct Resolved<'a> {
    /// `{rcpt_addr}`: the address after Postfix's own rewriting.
    pub addr: Option<&'a str>,
    /// `{rcpt_mailer}`: the delivery transport.
    pub mailer: Option<&'a str>,
    /// `{rcpt_host}`: the next hop (for the log only: the transport decides).
    pub host: Option<&'a str>,
}

/// A recipient, as the gateway treats it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Where the mail goes: the resolved address when Postfix reported one, else the written
    /// one (lower-cased, without angle brackets).
    pub address: String,
    /// Whether it is De-Mail (and so needs an authorised sender and goes to the provider).
    pub demail: bool,
}

/// The routing operator in an address's local part, if any: Postfix (or a host behind it) may
/// turn such an address into one of another domain.
pub(crate) fn routing_operator(addr: &str) -> Option<&'static str> {
    let addr = normalise(addr);
    if addr.starts_with('@') || addr.contains(':') || addr.contains(',') {
        return Some("a source route (@host:)");
    }
    let local = addr.rsplit_once('@').map_or(addr.as_str(), |(l, _)| l);
    if local.contains('"') || local.contains('\\') {
        Some("a quoted local part")
    } else if local.contains('@') {
        Some("`@` in the local part")
    } else if local.contains('%') {
        Some("`%` (percent hack)")
    } else if local.contains('!') {
        Some("`!` (bang path)")
    } else {
        None
    }
}

pub(crate) fn route(
    config: &Config,
    written: &str,
    resolved: Resolved<'_>,
) -> Result<Route, Refusal> {
    if let Some(what) = routing_operator(written) {
        return Err(Refusal {
            status: "5.1.3",
            german: format!(
                "Empfaengeradressen mit Weiterleitungszeichen werden nicht angenommen: {what}. \
                 Bitte schreiben Sie die Adresse als name@domain."
            ),
            english: format!(
                "Recipient addresses with routing operators are not accepted: {what}. Please \
                 write the address as name@domain."
            ),
        });
    }
    let resolved_addr = resolved.addr.map(normalise).filter(|a| !a.is_empty());
    let to_demail_transport = resolved.mailer == Some(DEMAIL_TRANSPORT);
    let demail = config.is_demail(written)
        || resolved_addr
            .as_deref()
            .is_some_and(|a| config.is_demail(a))
        || to_demail_transport;
    if let (true, Some(mailer)) = (demail, resolved.mailer)
        && !to_demail_transport
    {
        // The address is De-Mail, but Postfix would deliver it some other way (a transport
        // map that does not send the De-Mail domains to the gateway): never let it leave.
        return Err(Refusal {
            status: "4.3.5",
            german: format!(
                "Diese De-Mail-Adresse wuerde nicht ueber den De-Mail-Anbieter zugestellt \
                 (Postfix-Transport {mailer:?} statt {DEMAIL_TRANSPORT:?}); die Nachricht \
                 wird nicht versandt. Bitte informieren Sie die Administration."
            ),
            english: format!(
                "This De-Mail address would not be delivered through the De-Mail provider \
                 (Postfix transport {mailer:?} instead of {DEMAIL_TRANSPORT:?}); the message is \
                 not sent. Please tell the administrator."
            ),
        });
    }
    Ok(Route {
        address: resolved_addr.unwrap_or_else(|| normalise(written)),
        demail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Fixture;

    fn resolved<'a>(addr: &'a str, mailer: &'a str) -> Resolved<'a> {
        Resolved {
            addr: Some(addr),
            mailer: Some(mailer),
            host: None,
        }
    }

    #[test]
    fn routing_operators_are_refused_in_every_form() {
        let f = Fixture::new();
        let c = f.base();
        for addr in [
            "buerger%example.de-mail.de@magdeburg.example",
            "<buerger%example.de-mail.de@[127.0.0.1]>",
            "\"buerger@example.de-mail.de\"@magdeburg.example",
            "example.de-mail.de!buerger@magdeburg.example",
            "example.de-mail.de!buerger",
            "@relay.example:buerger@example.de-mail.de",
            "a\\@b@magdeburg.example",
            "buerger%example.de-mail.de",
        ] {
            let e = c.route(addr, Resolved::default()).unwrap_err();
            assert_eq!(e.status, "5.1.3", "{addr}");
        }
        assert_eq!(routing_operator("anna.meier+x@magdeburg.example"), None);
    }

    #[test]
    fn the_resolved_transport_or_address_makes_a_recipient_de_mail() {
        let f = Fixture::new();
        let c = f.base();
        // Written as an ordinary address, resolved by Postfix to De-Mail.
        let r = c
            .route(
                "alias@magdeburg.example",
                resolved("buerger@example.de-mail.de", DEMAIL_TRANSPORT),
            )
            .unwrap();
        assert!(r.demail);
        assert_eq!(r.address, "buerger@example.de-mail.de");
        // Only the transport says so (an admin's transport map naming another domain).
        let r = c
            .route(
                "x@other.example",
                resolved("x@other.example", DEMAIL_TRANSPORT),
            )
            .unwrap();
        assert!(r.demail);
        // Ordinary, and resolved as ordinary.
        let r = c
            .route(
                "anna@extern.example",
                resolved("anna@extern.example", "smtp"),
            )
            .unwrap();
        assert!(!r.demail);
        // No macros at all: the written address decides.
        let r = c
            .route("<Buerger@Example.De-Mail.de>", Resolved::default())
            .unwrap();
        assert!(r.demail);
        assert_eq!(r.address, "buerger@example.de-mail.de");
    }

    #[test]
    fn de_mail_that_postfix_would_route_elsewhere_waits() {
        let f = Fixture::new();
        let c = f.base();
        for mailer in ["smtp", "relay", "local", "lmtp"] {
            let e = c
                .route(
                    "buerger@example.de-mail.de",
                    resolved("buerger@example.de-mail.de", mailer),
                )
                .unwrap_err();
            assert_eq!(e.status, "4.3.5", "{mailer}");
            assert!(e.english.contains(mailer), "{e}");
        }
        // Resolved to a De-Mail address by a rewrite, but not to the De-Mail transport.
        let e = c
            .route(
                "alias@magdeburg.example",
                resolved("buerger@example.de-mail.de", "smtp"),
            )
            .unwrap_err();
        assert_eq!(e.status, "4.3.5");
    }
}
