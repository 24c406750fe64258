//! The provider's back office: what happens to an accepted message per recipient, the
//! Abholbestätigung on demand, injections, and the record of everything sent.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use openssl::ssl::SslConnector;
use time::OffsetDateTime;

use super::compose::{self, Signer};
use super::config::{SendConfig, glob_match};
use super::mime;
use super::smtp::{self, Target, Transport};
use super::{
    ConfirmationKind, Dispatched, Forge, InboundSpec, NotificationKind, Outgoing, OutgoingKind,
    RecipientState, SendError,
};
use crate::receive::Accepted;

/// The sending side on its own (the [`crate::Simulator`] drives one for accepted messages).
/// All methods take `&self`; it is safe to share between threads.
pub struct Provider {
    cfg: SendConfig,
    /// De-Mail domain patterns (`*.parent` or exact) for the default `known_recipients`.
    demail_domains: Vec<String>,
    signer: Signer,
    tls: SslConnector,
    state: Mutex<State>,
    sent_cv: Condvar,
    log: bool,
}

#[derive(Default)]
struct State {
    dispatched: Vec<Dispatched>,
    sent: Vec<Outgoing>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Provider {
    /// Loads the signing identity and the TLS client. `demail_domains` decides which
    /// recipients are known when `known_recipients` is empty (empty too: all are).
    pub fn new(cfg: SendConfig, demail_domains: Vec<String>) -> Result<Provider, SendError> {
        cfg.validate()
            .map_err(|(key, msg)| SendError::Config(key, msg))?;
        let signer = Signer::load(&cfg)?;
        let tls = smtp::connector(&cfg)?;
        Ok(Provider {
            cfg,
            demail_domains,
            signer,
            tls,
            state: Mutex::new(State::default()),
            sent_cv: Condvar::new(),
            log: std::env::var_os("DEMAIL_SIM_LOG").is_some(),
        })
    }

    pub(crate) fn set_log(&mut self, log: bool) {
        self.log = log;
    }

    pub fn config(&self) -> &SendConfig {
        &self.cfg
    }

    /// The recipients' copies dispatched (or refused) so far, in order.
    pub fn dispatched(&self) -> Vec<Dispatched> {
        lock(&self.state).dispatched.clone()
    }

    /// Everything sent (or tried) so far, in order.
    pub fn sent(&self) -> Vec<Outgoing> {
        lock(&self.state).sent.clone()
    }

    /// Waits until at least `n` messages were sent (or tried) or `timeout` passed.
    pub fn wait_sent(&self, n: usize, timeout: Duration) -> Vec<Outgoing> {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.state);
        while st.sent.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            st = match self.sent_cv.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        st.sent.clone()
    }

    fn client(&self) -> smtp::Client<'_> {
        smtp::Client {
            tls: &self.tls,
            server_name: &self.cfg.server_name,
            retries: self.cfg.retries,
            first_delay: self.cfg.retry_delay,
        }
    }

    fn default_target(&self) -> Target {
        Target {
            addr: self.cfg.deliver_to,
            transport: Transport::ImplicitTls,
        }
    }

    fn state_of(&self, recipient: &str) -> RecipientState {
        let r = recipient.to_lowercase();
        let known = if self.cfg.known_recipients.is_empty() {
            let domain = r.rsplit_once('@').map_or("", |(_, d)| d);
            self.demail_domains.is_empty()
                || crate::receive::is_demail_domain(domain, &self.demail_domains)
        } else {
            self.cfg.known_recipients.iter().any(|p| glob_match(p, &r))
        };
        if !known {
            RecipientState::Unknown
        } else if self
            .cfg
            .closed_accounts
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&r))
        {
            RecipientState::Closed
        } else {
            RecipientState::Delivered
        }
    }

    /// For each recipient of `a`: dispatch (or not), then the confirmations requested and
    /// the notifications due. Returns what was sent; failures to build a message are logged
    /// and skip only that message.
    pub fn handle_accepted(&self, a: &Accepted) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for rcpt in &a.rcpts {
            match self.dispatch_one(a, rcpt) {
                Ok(d) => out.extend(self.after_dispatch(&d)),
                Err(e) => self.note(format_args!("{}: <{rcpt}>: cannot dispatch: {e}", a.id)),
            }
        }
        out
    }

    fn dispatch_one(&self, a: &Accepted, rcpt: &str) -> Result<Dispatched, SendError> {
        let message_id = compose::new_id(&format!("sim-{}", a.id), &self.cfg);
        let signed = compose::dispatched_copy(
            &a.data,
            &message_id,
            &a.mail_from,
            rcpt,
            &self.cfg,
            &self.signer,
        )?;
        let parsed = MessageParser::default().parse(&a.data);
        let reply_to = parsed
            .as_ref()
            .and_then(|m| m.reply_to())
            .and_then(|r| r.first())
            .and_then(|r| r.address())
            .map(str::to_lowercase);
        let subject = parsed
            .as_ref()
            .and_then(|m| m.subject())
            .map(str::to_string)
            .or_else(|| a.subject.clone())
            .unwrap_or_default();
        let d = Dispatched {
            integrity: compose::integrity_value(&signed),
            message_id,
            accepted_id: a.id.clone(),
            sender: a.mail_from.clone(),
            confirm_to: reply_to.unwrap_or_else(|| a.mail_from.clone()),
            recipient: rcpt.to_lowercase(),
            private_id: a.private_id.clone(),
            subject,
            options: a.options,
            state: self.state_of(rcpt),
            signed,
            dispatched_at: OffsetDateTime::now_utc(),
            retrieved_at: None,
        };
        self.note(format_args!(
            "{}: {} for <{}>: {:?}",
            a.id, d.message_id, d.recipient, d.state
        ));
        lock(&self.state).dispatched.push(d.clone());
        Ok(d)
    }

    fn after_dispatch(&self, d: &Dispatched) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let notify = |kind| self.send_notification(d, kind);
        match d.state {
            RecipientState::Unknown => out.extend(notify(NotificationKind::UnknownRecipient)),
            RecipientState::Closed => out.extend(notify(NotificationKind::ClosedAccount)),
            RecipientState::Delivered => {
                if d.options.dispatch {
                    out.extend(self.send_confirmation(
                        d,
                        ConfirmationKind::Dispatch,
                        Forge::None,
                        None,
                    ));
                }
                if d.options.receipt {
                    out.extend(self.send_confirmation(
                        d,
                        ConfirmationKind::Receipt,
                        Forge::None,
                        None,
                    ));
                }
            }
        }
        out
    }

    fn send_notification(&self, d: &Dispatched, kind: NotificationKind) -> Option<Outgoing> {
        let now = OffsetDateTime::now_utc();
        match compose::notification(d, kind, now, &self.cfg, &self.signer) {
            Ok((from, data)) => Some(self.send(
                OutgoingKind::Notification(kind),
                false,
                d,
                &from,
                data,
                self.default_target(),
            )),
            Err(e) => {
                self.note(format_args!("{}: notification {kind:?}: {e}", d.message_id));
                None
            }
        }
    }

    fn send_confirmation(
        &self,
        d: &Dispatched,
        kind: ConfirmationKind,
        forge: Forge,
        target: Option<Target>,
    ) -> Option<Outgoing> {
        match self.build_confirmation(d, kind, forge) {
            Ok((from, data)) => Some(self.send(
                OutgoingKind::Confirmation(kind),
                forge != Forge::None,
                d,
                &from,
                data,
                target.unwrap_or_else(|| self.default_target()),
            )),
            Err(e) => {
                self.note(format_args!("{}: {}: {e}", d.message_id, kind.title()));
                None
            }
        }
    }

    fn build_confirmation(
        &self,
        d: &Dispatched,
        kind: ConfirmationKind,
        forge: Forge,
    ) -> Result<(String, Vec<u8>), SendError> {
        let now = d.retrieved_at.unwrap_or_else(OffsetDateTime::now_utc);
        let (from, data) = compose::confirmation(d, kind, now, &self.cfg, &self.signer)?;
        Ok((from, compose::apply_forge(forge, data)))
    }

    fn send(
        &self,
        kind: OutgoingKind,
        forged: bool,
        d: &Dispatched,
        from: &str,
        data: Vec<u8>,
        target: Target,
    ) -> Outgoing {
        let delivery = self.client().deliver(target, from, &d.confirm_to, &data);
        self.record(Outgoing {
            kind,
            forged,
            message_id: d.message_id.clone(),
            private_id: d.private_id.clone(),
            about_recipient: d.recipient.clone(),
            mail_from: from.to_string(),
            rcpt_to: d.confirm_to.clone(),
            data,
            target,
            delivery,
        })
    }

    fn record(&self, o: Outgoing) -> Outgoing {
        self.note(format_args!(
            "sent {:?}{} about {} <{}> to <{}> via {}: {:?} after {} attempt(s)",
            o.kind,
            if o.forged { " (forged)" } else { "" },
            o.message_id,
            o.about_recipient,
            o.rcpt_to,
            o.target.addr,
            o.delivery.result,
            o.delivery.attempts
        ));
        lock(&self.state).sent.push(o.clone());
        self.sent_cv.notify_all();
        o
    }

    fn note(&self, args: std::fmt::Arguments<'_>) {
        if self.log {
            eprintln!("demail-provider-sim: {args}");
        }
    }

    /// The recipient logged in: an Abholbestätigung for every delivered copy whose
    /// `X-de-mail-message-id` (with or without `<>`) or `X-de-mail-private-id` is `id`.
    /// Errors when none matches, none requested one, or it was retrieved already.
    pub fn retrieve(&self, id: &str) -> Result<Vec<Outgoing>, SendError> {
        let id = id.trim();
        let bare = |s: &str| {
            s.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        };
        let now = OffsetDateTime::now_utc();
        let due: Vec<Dispatched> = {
            let mut st = lock(&self.state);
            let matching: Vec<usize> = st
                .dispatched
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    bare(&d.message_id) == bare(id) || d.private_id.as_deref() == Some(id)
                })
                .map(|(i, _)| i)
                .collect();
            if matching.is_empty() {
                return Err(SendError::UnknownMessage(id.to_string()));
            }
            let delivered: Vec<usize> = matching
                .iter()
                .copied()
                .filter(|&i| st.dispatched[i].state == RecipientState::Delivered)
                .collect();
            if delivered.is_empty() {
                return Err(SendError::NotDelivered(id.to_string()));
            }
            if let Some(&i) = delivered
                .iter()
                .find(|&&i| st.dispatched[i].retrieved_at.is_some())
            {
                let d = &st.dispatched[i];
                return Err(SendError::AlreadyRetrieved {
                    id: d.message_id.clone(),
                    at: d.retrieved_at.map(mime::xs_datetime).unwrap_or_default(),
                });
            }
            if !delivered.iter().any(|&i| st.dispatched[i].options.retrieve) {
                return Err(SendError::RetrieveNotRequested(id.to_string()));
            }
            delivered
                .iter()
                .map(|&i| {
                    st.dispatched[i].retrieved_at = Some(now);
                    st.dispatched[i].clone()
                })
                .filter(|d| d.options.retrieve)
                .collect()
        };
        Ok(due
            .iter()
            .filter_map(|d| {
                self.send_confirmation(d, ConfirmationKind::Retrieve, Forge::None, None)
            })
            .collect())
    }

    /// Sends an inbound De-Mail to the city (to `spec.target`, default `deliver_to`).
    pub fn inject(&self, spec: &InboundSpec) -> Result<Outgoing, SendError> {
        let now = OffsetDateTime::now_utc();
        let (message_id, data) = compose::inbound(spec, now, &self.cfg, &self.signer)?;
        let data = compose::apply_forge(spec.forge, data);
        let target = spec.target.unwrap_or_else(|| self.default_target());
        let delivery = self.client().deliver(target, &spec.from, &spec.to, &data);
        Ok(self.record(Outgoing {
            kind: OutgoingKind::Inbound,
            forged: spec.forge != Forge::None,
            message_id,
            private_id: None,
            about_recipient: spec.to.clone(),
            mail_from: spec.from.clone(),
            rcpt_to: spec.to.clone(),
            data,
            target,
            delivery,
        }))
    }

    /// A confirmation of `kind` about the dispatched copy `message_id` (or private id), made
    /// wrong as `forge` says and sent to `target` (default `deliver_to`): for tests that a
    /// forged or misrouted confirmation counts for nothing. Changes no state here.
    pub fn forge_confirmation(
        &self,
        id: &str,
        kind: ConfirmationKind,
        forge: Forge,
        target: Option<Target>,
    ) -> Result<Outgoing, SendError> {
        let bare = |s: &str| {
            s.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        };
        let d = lock(&self.state)
            .dispatched
            .iter()
            .find(|d| bare(&d.message_id) == bare(id) || d.private_id.as_deref() == Some(id.trim()))
            .cloned()
            .ok_or_else(|| SendError::UnknownMessage(id.to_string()))?;
        let (from, data) = self.build_confirmation(&d, kind, forge)?;
        let target = target.unwrap_or_else(|| self.default_target());
        Ok(self.send(
            OutgoingKind::Confirmation(kind),
            true,
            &d,
            &from,
            data,
            target,
        ))
    }
}
