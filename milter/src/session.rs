//! Per-connection state and the decisions of the envelope and content stages. The indymilter
//! glue (`callbacks.rs`) only moves data in and verdicts out; the rules come from the policy.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use demail_policy::{Config, RecipientMix, Resolved, Route};
use tempfile::SpooledTempFile;
use tracing::{debug, error, info, warn};

use crate::Shared;
use crate::error::Error;
use crate::header::Field;
use crate::message::{Kind, Message, SPOOL_IN_MEMORY, TlsClient};
use crate::metrics::{Outcome, kind_label};
use crate::verdict::{End, Reply, Verdict};

/// One connection from the MTA.
pub struct Session {
    pub shared: Arc<Shared>,
    /// The configuration this connection's current message is decided with (taken at connect
    /// and again at each MAIL, so a reload applies from the next message on).
    pub config: Arc<Config>,
    pub message: Option<Message>,
    /// The connection came in on the provider's dedicated smtpd (`{daemon_name}`).
    pub provider_service: bool,
    /// The verified TLS client certificate (`{cert_subject}`, `{cert_issuer}`): Postfix sets
    /// them only for a certificate that verified against its CA file.
    pub tls_client: Option<TlsClient>,
    /// The MTA granted SMFIP_SKIP: the body of ordinary mail can be skipped.
    pub skip_body: bool,
    /// Stages the MTA sends without waiting for a reply (negotiated; see `callbacks`).
    pub no_reply: indymilter::ProtoOpts,
    /// A verdict reached while reading header fields, answered at end of header: the MTA
    /// waits for no reply per field (SMFIP_NR_HDR), so nothing can be answered earlier.
    deferred: Option<Verdict>,
    /// The transaction since MAIL whose end is not yet logged and counted.
    pending: Option<Pending>,
}

/// What the one log line and the count at the end of a message need, kept from MAIL on
/// (the message itself may be gone by then).
struct Pending {
    queue_id: Option<String>,
    kind: Kind,
    /// Recipients refused at RCPT, and whether one of them was a De-Mail recipient.
    refused: u32,
    refused_demail: bool,
}

/// What end of message decided, with the private-id it concerns (when there is one).
pub struct Finished {
    pub end: End,
    pub private_id: Option<String>,
}

impl Session {
    pub fn new(shared: Arc<Shared>) -> Session {
        let config = Arc::clone(&shared.config.borrow());
        Session {
            shared,
            config,
            message: None,
            provider_service: false,
            tls_client: None,
            skip_body: false,
            no_reply: indymilter::ProtoOpts::empty(),
            deferred: None,
            pending: None,
        }
    }

    /// The session for the MTA's next SMTP connection on the same milter connection: nothing
    /// carried over but what was negotiated.
    pub fn reset(mut self) -> Session {
        self.abandon();
        let mut s = Session::new(self.shared);
        s.skip_body = self.skip_body;
        s.no_reply = self.no_reply;
        s
    }

    fn config(&self) -> &Config {
        &self.config
    }

    /// Connect: traffic on the provider's dedicated smtpd is inbound, never outbound.
    pub fn connect(&mut self, daemon_name: Option<&str>) -> Verdict {
        self.provider_service =
            daemon_name == Some(self.config().inbound.provider_service.as_str());
        if self.provider_service {
            debug!("provider service connection: inbound De-Mail and confirmations");
        }
        Verdict::Continue
    }

    /// The TLS client certificate macros of HELO or MAIL (absent: none verified).
    pub fn tls_peer(&mut self, subject: Option<String>, issuer: Option<String>) {
        if let Some(subject) = subject {
            self.tls_client = Some(TlsClient { subject, issuer });
        }
    }

    /// MAIL FROM: a new transaction.
    pub fn mail(
        &mut self,
        sender: &str,
        sasl_login: Option<&str>,
        queue_id: Option<&str>,
    ) -> Verdict {
        self.abandon();
        self.deferred = None;
        self.config = Arc::clone(&self.shared.config.borrow());
        self.pending = Some(Pending {
            queue_id: queue_id.map(str::to_string),
            kind: Kind::Undecided,
            refused: 0,
            refused_demail: false,
        });
        let provider = match self.provider_service {
            false => false,
            true => match self.provider_trusted() {
                Ok(trusted) => trusted,
                // Cannot tell who the provider is: the mail waits rather than pass unjudged.
                Err(e) => {
                    error!("{e}; tempfail");
                    return Verdict::Tempfail;
                }
            },
        };
        self.message = Some(Message {
            queue_id: queue_id.map(str::to_string),
            sender: strip_brackets(sender).to_string(),
            sasl_login: sasl_login.filter(|s| !s.is_empty()).map(str::to_string),
            recipients: Vec::new(),
            kind: if provider {
                Kind::Provider
            } else {
                Kind::Undecided
            },
            tls_client: self.tls_client.clone(),
            fields: Vec::new(),
            header_end_seen: false,
            origin: None,
            body: SpooledTempFile::new(SPOOL_IN_MEMORY),
            body_len: 0,
            received_len: 0,
        });
        Verdict::Continue
    }

    /// Whether the provider service's client is the provider: a configuration that pins it,
    /// a TLS client certificate Postfix verified, and that certificate's names
    /// (`{cert_subject}`, `{cert_issuer}`) those of a pinned one. Postfix pins the fingerprint
    /// itself (`check_ccert_access` from `demailctl postfix-config`); this holds even where a
    /// hand-merged Postfix configuration lacks it.
    fn provider_trusted(&self) -> Result<bool, crate::error::Error> {
        if !self.config.inbound.unpinned.is_empty() {
            warn!(
                "the provider is not pinned (see demailctl check-config): mail on the provider \
                 service is treated as untrusted"
            );
            return Ok(false);
        }
        let Some(tls) = &self.tls_client else {
            warn!("provider service without a verified TLS client certificate: untrusted mail");
            return Ok(false);
        };
        let snapshot = self.shared.trust.get(&self.config)?;
        if snapshot
            .provider
            .pins
            .client_matches(&tls.subject, tls.issuer.as_deref())
        {
            return Ok(true);
        }
        warn!(
            subject = %tls.subject,
            issuer = tls.issuer.as_deref().unwrap_or("-"),
            "TLS client certificate is not a pinned provider certificate: untrusted mail"
        );
        Ok(false)
    }

    /// RCPT TO: refuse routing operators, a De-Mail recipient the sender may not write to, and
    /// any recipient that would mix De-Mail and ordinary mail in one message. Whether a
    /// recipient is De-Mail is decided by where Postfix resolved it to (`resolved`), not only by
    /// how it is written.
    pub fn rcpt(&mut self, recipient: &str, resolved: Resolved<'_>) -> Verdict {
        let config = Arc::clone(&self.config);
        let provider_service = self.provider_service;
        let Some(msg) = self.message.as_mut() else {
            return Verdict::Tempfail;
        };
        let written = strip_brackets(recipient);
        if provider_service {
            // The provider delivers to De-Mail accounts (demail-in's access table admits only
            // ours); the sender rules are for clerks.
            msg.recipients.push(Route {
                address: written.to_lowercase(),
                demail: true,
            });
            return Verdict::Continue;
        }
        let refused = |pending: &mut Option<Pending>, demail: bool, refusal| {
            if let Some(p) = pending.as_mut() {
                p.refused += 1;
                p.refused_demail |= demail;
            }
            Verdict::Reject(Reply::refusal("550", &refusal))
        };
        let route = match config.route(written, resolved) {
            Ok(route) => route,
            Err(refusal) => {
                debug!(sender = %msg.sender, recipient = %written, ?resolved, "recipient refused: {refusal}");
                return refused(&mut self.pending, false, refusal);
            }
        };
        if route.demail
            && let Err(refusal) = config.authorise_sender(&msg.sender, msg.sasl_login.as_deref())
        {
            debug!(sender = %msg.sender, recipient = %route.address, "De-Mail recipient refused: {refusal}");
            return refused(&mut self.pending, true, refusal);
        }
        let demail = route.demail;
        msg.recipients.push(route);
        if let Err(refusal) = config.check_recipients(&msg.recipients) {
            let route = msg.recipients.pop();
            debug!(sender = %msg.sender, recipient = ?route.map(|r| r.address), "recipient refused: {refusal}");
            return refused(&mut self.pending, demail, refusal);
        }
        Verdict::Continue
    }

    /// DATA: decides what the content is: provider traffic, a De-Mail, mail to the poststelle,
    /// or ordinary mail (header fields only).
    pub fn data(&mut self) -> Verdict {
        let config = Arc::clone(&self.config);
        let provider_service = self.provider_service;
        let Some(msg) = self.message.as_mut() else {
            return Verdict::Tempfail;
        };
        if msg.kind != Kind::Undecided {
            return Verdict::Continue;
        }
        if provider_service {
            // The provider service, but not the pinned provider: untrusted like the Internet.
            msg.kind = Kind::Ordinary;
            return Verdict::Continue;
        }
        match config.check_recipients(&msg.recipients) {
            Ok(RecipientMix::NoDeMail)
                if msg
                    .recipients
                    .iter()
                    .any(|r| config.is_poststelle(&r.address)) =>
            {
                debug!("mail to the poststelle: signatures will be checked");
                msg.kind = Kind::Poststelle;
                Verdict::Continue
            }
            Ok(RecipientMix::NoDeMail) => {
                debug!("ordinary mail: header fields are checked for forged De-Mail fields");
                msg.kind = Kind::Ordinary;
                Verdict::Continue
            }
            Ok(RecipientMix::AllDeMail) => {
                msg.kind = Kind::DeMail;
                Verdict::Continue
            }
            Err(refusal) => Verdict::Reject(Reply::refusal("554", &refusal)),
        }
    }

    /// A header field. Never refuses by itself (the MTA does not wait for an answer per
    /// field): a refusal found here is kept and answered at end of header.
    pub fn header(&mut self, name: &[u8], value: &[u8]) -> Verdict {
        if self.deferred.is_none() {
            let verdict = self.read_field(name, value);
            if verdict != Verdict::Continue {
                self.deferred = Some(verdict);
            }
        }
        Verdict::Continue
    }

    fn read_field(&mut self, name: &[u8], value: &[u8]) -> Verdict {
        let verdict = self.data();
        if verdict != Verdict::Continue {
            return verdict;
        }
        let limit = self.config().gateway.max_message_size;
        let Some(msg) = self.message.as_mut() else {
            return Verdict::Tempfail;
        };
        let field = Field::new(name, value);
        if msg.kind == Kind::Ordinary {
            // Only what may need changing is kept: the cost of ordinary mail stays low.
            if crate::vocabulary::may_need_change(&field) {
                msg.fields.push(field);
            }
            return Verdict::Continue;
        }
        msg.received_len += (name.len() + value.len() + 3) as u64;
        msg.fields.push(field);
        // Inbound mail is not ours to refuse: beyond the limit it is just not verified.
        // Once refused, the fields that follow are not kept (bounded memory).
        if msg.received_len > limit && msg.kind == Kind::DeMail {
            debug!(limit, "De-Mail too large (header)");
            return Verdict::Reject(Reply::too_large(limit));
        }
        Verdict::Continue
    }

    /// End of header: the received header section starts the origin key. Ordinary mail with
    /// nothing to neutralise is accepted here.
    pub fn eoh(&mut self) -> Verdict {
        if let Some(verdict) = self.deferred.take() {
            return verdict;
        }
        let verdict = self.data();
        if verdict != Verdict::Continue {
            return verdict;
        }
        let config = Arc::clone(&self.config);
        let Some(msg) = self.message.as_mut() else {
            return Verdict::Tempfail;
        };
        if msg.kind == Kind::Ordinary {
            if crate::vocabulary::needs_neutralising(&msg.fields, &config.tags) {
                debug!("forged De-Mail fields or tags from an untrusted source: renaming them");
                return Verdict::Continue;
            }
            // Done here: the glue logs and counts the message from what MAIL kept.
            if let Some(p) = self.pending.as_mut() {
                p.kind = Kind::Ordinary;
            }
            self.message = None;
            return Verdict::Accept;
        }
        msg.end_header();
        Verdict::Continue
    }

    /// A body chunk: hashed for the origin key, spooled (memory, then disk) for the evidence.
    pub fn body(&mut self, chunk: &[u8]) -> Result<Verdict, crate::error::Error> {
        let verdict = self.data();
        if verdict != Verdict::Continue {
            return Ok(verdict);
        }
        let limit = self.config().gateway.max_message_size;
        let skip_body = self.skip_body;
        let Some(msg) = self.message.as_mut() else {
            return Ok(Verdict::Tempfail);
        };
        if msg.kind == Kind::Ordinary {
            // Only header fields change: the body is not needed.
            return Ok(if skip_body {
                Verdict::Skip
            } else {
                Verdict::Continue
            });
        }
        msg.end_header();
        msg.received_len += chunk.len() as u64;
        if matches!(msg.kind, Kind::Poststelle | Kind::Provider) {
            // Beyond the limit the body is only counted (bounded memory and disk); the end of
            // message then reports it unverified.
            if msg.received_len <= limit {
                msg.body
                    .write_all(chunk)
                    .map_err(crate::error::Error::Spool)?;
                msg.body_len += chunk.len() as u64;
            }
            return Ok(Verdict::Continue);
        }
        if msg.received_len > limit {
            debug!(limit, "De-Mail too large");
            return Ok(Verdict::Reject(Reply::too_large(limit)));
        }
        if let Some(origin) = msg.origin.as_mut() {
            origin.update(chunk);
        }
        msg.body
            .write_all(chunk)
            .map_err(crate::error::Error::Spool)?;
        msg.body_len += chunk.len() as u64;
        Ok(Verdict::Continue)
    }

    /// End of message: the work that decides it, as a future that owns what it needs (so the
    /// glue can report progress to the MTA while it runs). None when there is nothing left to
    /// do (the message was accepted earlier or aborted).
    pub fn finish(
        &mut self,
        queue_id: Option<String>,
    ) -> Option<impl Future<Output = Result<Finished, Error>> + Send + 'static> {
        let mut msg = self.message.take()?;
        if queue_id.is_some() {
            msg.queue_id = queue_id;
        }
        if let Some(p) = self.pending.as_mut() {
            p.kind = msg.kind;
            p.queue_id.clone_from(&msg.queue_id);
        }
        let config = Arc::clone(&self.config);
        let shared = Arc::clone(&self.shared);
        Some(async move {
            let mut private_id = None;
            let end = match msg.kind {
                // Nothing decided (no DATA): nothing to change.
                Kind::Undecided => Ok(End::Accept {
                    sender: None,
                    edits: Vec::new(),
                }),
                // Forged fields from an untrusted source: renamed, nothing else (no I/O).
                Kind::Ordinary => Ok(End::Accept {
                    sender: None,
                    edits: crate::vocabulary::neutralise_only(&msg.fields, &config.tags),
                }),
                Kind::Provider => {
                    crate::inbound::finish(
                        config,
                        Arc::clone(&shared.evidence),
                        Arc::clone(&shared.trust),
                        Arc::clone(&shared.verify_slots),
                        &shared.metrics,
                        msg,
                        &mut private_id,
                    )
                    .await
                }
                Kind::Poststelle => {
                    crate::poststelle::finish(
                        config,
                        Arc::clone(&shared.trust),
                        Arc::clone(&shared.verify_slots),
                        Arc::clone(&shared.evidence),
                        &shared.metrics,
                        msg,
                    )
                    .await
                }
                Kind::DeMail => {
                    crate::outbound::finish(
                        config,
                        Arc::clone(&shared.evidence),
                        msg,
                        &mut private_id,
                    )
                    .await
                }
            }?;
            Ok(Finished { end, private_id })
        })
    }

    pub fn abort(&mut self) {
        self.abandon();
    }

    /// The client left the transaction (RSET, a new MAIL, QUIT, a lost connection) before its
    /// end: refused if every recipient was refused at RCPT, else aborted.
    fn abandon(&mut self) {
        let rejected = self.pending.as_ref().is_some_and(|p| p.refused > 0)
            && self
                .message
                .as_ref()
                .is_none_or(|m| m.recipients.is_empty());
        let outcome = if rejected {
            Outcome::Rejected
        } else {
            Outcome::Aborted
        };
        self.conclude(outcome, None, None, None);
        self.message = None;
    }

    /// The end of the current message (if one is open): exactly one info line with queue id,
    /// kind, outcome and private-id, and one count. `took` is the milter's own work at end of
    /// message.
    pub fn conclude(
        &mut self,
        outcome: Outcome,
        queue_id: Option<&str>,
        private_id: Option<&str>,
        took: Option<Duration>,
    ) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let mut kind = self.message.as_ref().map_or(p.kind, |m| m.kind);
        if kind == Kind::Undecided && p.refused_demail {
            // Refused at RCPT before DATA decided: it was to be an outbound De-Mail.
            kind = Kind::DeMail;
        }
        let metrics = &self.shared.metrics;
        metrics.message(kind, outcome);
        if let Some(took) = took {
            metrics.end_of_message(kind, took);
        }
        let queue_id = queue_id.or(p.queue_id.as_deref()).unwrap_or("-");
        let (kind, outcome) = (kind_label(kind), outcome.label());
        match private_id {
            Some(private_id) => info!(queue_id, kind, outcome, private_id, "message {outcome}"),
            None => info!(queue_id, kind, outcome, "message {outcome}"),
        }
    }
}

/// `<a@b>` -> `a@b`; ESMTP parameters are passed separately by the MTA.
pub fn strip_brackets(addr: &str) -> &str {
    let a = addr.trim();
    a.strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets() {
        assert_eq!(strip_brackets("<a@b>"), "a@b");
        assert_eq!(strip_brackets("<>"), "");
        assert_eq!(strip_brackets(" a@b "), "a@b");
    }
}
