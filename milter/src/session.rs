//! Per-connection state and the decisions of the envelope and content stages. The indymilter
//! glue (`callbacks.rs`) only moves data in and verdicts out; the rules come from the policy.

use std::io::Write;
use std::sync::Arc;

use demail_policy::{Config, RecipientMix, Refusal, Resolved, Route};
use openssl::sha::Sha256;
use tempfile::SpooledTempFile;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::header::{Field, render_received};
use crate::record::Evidence;
use crate::text::smtp_text;

/// Bodies larger than this are spooled to a temporary file instead of memory.
pub const SPOOL_IN_MEMORY: usize = 1024 * 1024;

/// What every connection shares.
pub struct Shared {
    /// The current configuration; a reload sends a new one.
    pub config: watch::Receiver<Arc<Config>>,
    pub evidence: Arc<Evidence>,
    /// The trust snapshot of the current configuration (poststelle verifier, the provider).
    pub trust: Arc<crate::trust::Snapshots>,
    /// Slots for verifying messages beyond [`SPOOL_IN_MEMORY`]: one per core, since the work
    /// is CPU-bound anyway and parsing costs about the message size on the heap.
    pub verify_slots: Arc<tokio::sync::Semaphore>,
}

/// The answer to one milter stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// No more callbacks for this message (or, at connect, this connection), no changes.
    Accept,
    Reject(Reply),
    Tempfail,
    /// Accept the message but do not deliver it (evidence-only confirmations).
    Discard,
    /// Body stage: no more body chunks for this message (SMFIP_SKIP negotiated).
    Skip,
}

/// A permanent SMTP refusal: `code xcode text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: &'static str,
    pub xcode: String,
    pub text: String,
}

impl Reply {
    /// `code` for a policy refusal; a transient status class (4.x.x) gets 451 instead, since
    /// Postfix insists that reply code and enhanced status code agree.
    pub fn refusal(code: &'static str, refusal: &Refusal) -> Reply {
        let code = if refusal.status.starts_with('4') {
            "451"
        } else {
            code
        };
        Reply {
            code,
            xcode: refusal.status.to_string(),
            text: smtp_text(&refusal.to_string()),
        }
    }

    /// `552 5.3.4`: the message exceeds `[gateway] max_message_size`.
    pub fn too_large(limit: u64) -> Reply {
        let mib = limit as f64 / (1024.0 * 1024.0);
        Reply {
            code: "552",
            xcode: "5.3.4".into(),
            text: smtp_text(&format!(
                "Die Nachricht ist zu groß: eine De-Mail darf höchstens {limit} Bytes \
                 ({mib:.1} MiB) haben / Message too large: a De-Mail may have at most \
                 {limit} bytes ({mib:.1} MiB)"
            )),
        }
    }
}

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
}

/// The TLS client certificate Postfix verified, by its names (Postfix has no fingerprint macro).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClient {
    pub subject: String,
    pub issuer: Option<String>,
}

/// One mail transaction.
pub struct Message {
    pub queue_id: Option<String>,
    /// Envelope sender without angle brackets ("" for the null sender).
    pub sender: String,
    pub sasl_login: Option<String>,
    /// Each recipient where Postfix will deliver it (resolved address, De-Mail or not).
    pub recipients: Vec<Route>,
    /// Decided at DATA: every recipient is De-Mail, so the content is ours to process.
    pub demail: bool,
    /// Decided at DATA: ordinary mail with a poststelle recipient, whose signatures we check.
    pub poststelle: bool,
    /// Decided at MAIL: the provider's traffic (provider service, and the pinned client
    /// certificate when fingerprints are configured), verified and recorded at the end.
    pub provider: bool,
    /// Decided at DATA: any other mail. Only header fields that forge our or the provider's
    /// vocabulary are kept (to be renamed); without any, it is accepted at end of header.
    pub ordinary: bool,
    /// The verified TLS client certificate of the connection, for the evidence.
    pub tls_client: Option<TlsClient>,
    pub fields: Vec<Field>,
    pub header_end_seen: bool,
    /// SHA-256 of the message as received: the origin key that makes retries idempotent.
    pub origin: Sha256,
    pub body: SpooledTempFile,
    pub body_len: u64,
    /// Bytes received so far (headers as rendered, plus body), for the early size check.
    pub received_len: u64,
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
        }
    }

    /// The session for the MTA's next SMTP connection on the same milter connection: nothing
    /// carried over but what was negotiated.
    pub fn reset(self) -> Session {
        let mut s = Session::new(self.shared);
        s.skip_body = self.skip_body;
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
        self.config = Arc::clone(&self.shared.config.borrow());
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
            demail: false,
            poststelle: false,
            provider,
            ordinary: false,
            tls_client: self.tls_client.clone(),
            fields: Vec::new(),
            header_end_seen: false,
            origin: Sha256::new(),
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
        let route = match config.route(written, resolved) {
            Ok(route) => route,
            Err(refusal) => {
                info!(sender = %msg.sender, recipient = %written, ?resolved, "recipient refused: {refusal}");
                return Verdict::Reject(Reply::refusal("550", &refusal));
            }
        };
        if route.demail
            && let Err(refusal) = config.authorise_sender(&msg.sender, msg.sasl_login.as_deref())
        {
            info!(sender = %msg.sender, recipient = %route.address, "De-Mail recipient refused: {refusal}");
            return Verdict::Reject(Reply::refusal("550", &refusal));
        }
        msg.recipients.push(route);
        if let Err(refusal) = config.check_recipients(&msg.recipients) {
            let route = msg.recipients.pop();
            info!(sender = %msg.sender, recipient = ?route.map(|r| r.address), "recipient refused: {refusal}");
            return Verdict::Reject(Reply::refusal("550", &refusal));
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
        if msg.demail || msg.poststelle || msg.provider || msg.ordinary {
            return Verdict::Continue;
        }
        if provider_service {
            // The provider service, but not the pinned provider: untrusted like the Internet.
            msg.ordinary = true;
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
                msg.poststelle = true;
                Verdict::Continue
            }
            Ok(RecipientMix::NoDeMail) => {
                debug!("ordinary mail: header fields are checked for forged De-Mail fields");
                msg.ordinary = true;
                Verdict::Continue
            }
            Ok(RecipientMix::AllDeMail) => {
                msg.demail = true;
                Verdict::Continue
            }
            Err(refusal) => Verdict::Reject(Reply::refusal("554", &refusal)),
        }
    }

    pub fn header(&mut self, name: &[u8], value: &[u8]) -> Verdict {
        let verdict = self.data();
        if verdict != Verdict::Continue {
            return verdict;
        }
        let limit = self.config().gateway.max_message_size;
        let Some(msg) = self.message.as_mut() else {
            return Verdict::Tempfail;
        };
        let field = Field::new(name, value);
        if msg.ordinary {
            // Only what may need changing is kept: the cost of ordinary mail stays low.
            if crate::inbound::may_need_change(&field) {
                msg.fields.push(field);
            }
            return Verdict::Continue;
        }
        msg.received_len += (name.len() + value.len() + 3) as u64;
        msg.fields.push(field);
        // Inbound mail is not ours to refuse: beyond the limit it is just not verified.
        if msg.received_len > limit && !msg.poststelle && !msg.provider {
            info!(limit, "De-Mail too large (header)");
            return Verdict::Reject(Reply::too_large(limit));
        }
        Verdict::Continue
    }

    /// End of header: the received header section starts the origin key. Ordinary mail with
    /// nothing to neutralise is accepted here.
    pub fn eoh(&mut self) -> Verdict {
        let verdict = self.data();
        if verdict != Verdict::Continue {
            return verdict;
        }
        let config = Arc::clone(&self.config);
        let Some(msg) = self.message.as_mut() else {
            return Verdict::Tempfail;
        };
        if msg.ordinary {
            if crate::inbound::needs_neutralising(&msg.fields, &config.tags) {
                info!("forged De-Mail fields or tags from an untrusted source: renaming them");
                return Verdict::Continue;
            }
            self.message = None;
            return Verdict::Accept;
        }
        end_header(msg);
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
        if msg.ordinary {
            // Only header fields change: the body is not needed.
            return Ok(if skip_body {
                Verdict::Skip
            } else {
                Verdict::Continue
            });
        }
        end_header(msg);
        msg.received_len += chunk.len() as u64;
        if msg.poststelle || msg.provider {
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
            info!(limit, "De-Mail too large");
            return Ok(Verdict::Reject(Reply::too_large(limit)));
        }
        msg.origin.update(chunk);
        msg.body
            .write_all(chunk)
            .map_err(crate::error::Error::Spool)?;
        msg.body_len += chunk.len() as u64;
        Ok(Verdict::Continue)
    }

    pub fn abort(&mut self) {
        self.message = None;
    }
}

fn end_header(msg: &mut Message) {
    if !msg.header_end_seen {
        msg.header_end_seen = true;
        let head = render_received(&msg.fields);
        msg.origin.update(&head);
        // The rendered size is exact (CRLF folding), replacing the estimate.
        let estimate: u64 = msg
            .fields
            .iter()
            .map(|f| (f.name.len() + f.value.len() + 3) as u64)
            .sum();
        msg.received_len = msg.received_len - estimate + head.len() as u64;
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

    #[test]
    fn refusal_codes_follow_the_status_class() {
        let r = Refusal {
            status: "5.7.1",
            german: "Nicht erlaubt".into(),
            english: "Not allowed".into(),
        };
        let reply = Reply::refusal("550", &r);
        assert_eq!((reply.code, reply.xcode.as_str()), ("550", "5.7.1"));
        assert_eq!(reply.text, "Nicht erlaubt / Not allowed");
        let t = Refusal {
            status: "4.7.0",
            ..r
        };
        assert_eq!(Reply::refusal("550", &t).code, "451");
    }

    #[test]
    fn too_large_text() {
        let r = Reply::too_large(20 * 1024 * 1024);
        assert_eq!((r.code, r.xcode.as_str()), ("552", "5.3.4"));
        assert!(r.text.contains("20971520 Bytes (20.0 MiB)"), "{}", r.text);
        assert!(r.text.is_ascii());
    }
}
