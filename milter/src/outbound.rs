//! End of message for an outbound De-Mail: map the sender to the account, turn the clerk's
//! requests into TR-01201 option fields, record exactly what will leave, then accept.

use std::sync::Arc;

use demail_evidence::{Digest, NewSubmission, Recorded, Submission};
use demail_policy::{Account, Config, Options, ROUTE_FIELD, RecipientMix, SEND_TRANSPORT, Tenant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use tracing::{debug, warn};
use ulid::Ulid;

use crate::error::Error;
use crate::header::{Edit, Field, HeaderPlan, wire};
use crate::message::Message;
use crate::record::Evidence;
use crate::text::{decode_subject, encode_unstructured, mailbox, slug};
use crate::verdict::{End, Reply};

/// Who this submission is: new, or the one recorded for an earlier attempt of the same message.
#[derive(Debug, Clone)]
struct Identity {
    private_id: String,
    /// Used only when the message has no `Message-ID` of its own.
    message_id: String,
    /// Submission time; also the `Date` we add when the message has none.
    time: OffsetDateTime,
}

impl Identity {
    fn fresh(tenant: &Tenant, account: &Account) -> Identity {
        let ulid = Ulid::new();
        let domain = account.address.rsplit('@').next().unwrap_or("localhost");
        Identity {
            // <= 26 + 1 + 64 characters, well within the TR's 1024.
            private_id: format!("{ulid}.{}", slug(&tenant.name)),
            message_id: format!("<{ulid}@{domain}>"),
            time: OffsetDateTime::now_utc(),
        }
    }

    fn reuse(s: &Submission) -> Identity {
        Identity {
            private_id: s.private_id.clone(),
            message_id: s.message_id.clone(),
            time: s.time,
        }
    }
}

/// Everything the rewrite depends on, so a retry with the same input yields the same bytes.
struct Rewrite<'a> {
    tenant: &'a Tenant,
    account: &'a Account,
    clerk: &'a str,
    options: Options,
    /// The new subject, when tags were removed.
    subject: Option<&'a str>,
    identity: &'a Identity,
}

impl Rewrite<'_> {
    fn plan<'f>(&self, fields: &'f [Field]) -> Result<HeaderPlan<'f>, Error> {
        let mut plan = HeaderPlan::new(fields);
        // A clerk must not forge provider fields, and our own X-DeMail-* vocabulary (options,
        // verification results) is internal: none of it goes to the provider.
        plan.delete_where(|f| f.has_prefix("X-de-mail-") || f.has_prefix("X-DeMail-"));
        plan.set(
            "From",
            wire(&mailbox(&self.tenant.name, &self.account.address)),
        );
        // Confirmations go to Reply-To when there is one: a Reply-To the account did not ask
        // for would send them somewhere else, so it is replaced or removed.
        if self.account.reply_to_clerk {
            plan.set("Reply-To", wire(&format!("<{}>", self.clerk)));
        } else {
            plan.delete_where(|f| f.is("Reply-To"));
        }
        if let Some(subject) = self.subject {
            plan.set("Subject", wire(&encode_unstructured(subject)));
        }
        if !fields.iter().any(|f| f.is("Message-ID")) {
            plan.append("Message-ID", wire(&self.identity.message_id));
        }
        if !fields.iter().any(|f| f.is("Date")) {
            let date = self
                .identity
                .time
                .to_offset(time::UtcOffset::UTC)
                .format(&Rfc2822)
                .map_err(|_| Error::State("submission time cannot be written as a Date"))?;
            plan.append("Date", wire(&date));
        }
        for (name, value) in self.options.header_fields() {
            plan.append(name, wire(value));
        }
        plan.append("X-de-mail-private-id", wire(&self.identity.private_id));
        Ok(plan)
    }
}

/// `private_id` is set to the message's private-id once it is recorded.
///
/// The whole end of message runs on one blocking thread: lookup, rewrite and the durable
/// record are one hop off the runtime, not one per store access.
pub async fn finish(
    config: Arc<Config>,
    evidence: Arc<Evidence>,
    msg: Message,
    private_id: &mut Option<String>,
) -> Result<End, Error> {
    let (end, id) =
        tokio::task::spawn_blocking(move || finish_blocking(&config, &evidence, msg)).await??;
    *private_id = id;
    Ok(end)
}

fn finish_blocking(
    config: &Config,
    evidence: &Evidence,
    msg: Message,
) -> Result<(End, Option<String>), Error> {
    let mut private_id = None;
    let end = decide(config, evidence, msg, &mut private_id)?;
    Ok((end, private_id))
}

fn decide(
    config: &Config,
    evidence: &Evidence,
    msg: Message,
    private_id: &mut Option<String>,
) -> Result<End, Error> {
    let Message {
        queue_id,
        sender,
        sasl_login,
        recipients,
        fields,
        origin,
        mut body,
        body_len,
        ..
    } = msg;

    // RCPT already checked both; the policy is asked again so that nothing is sent on a stale
    // answer (the checks are pure and cheap).
    let grant = match config.authorise_sender(&sender, sasl_login.as_deref()) {
        Ok(g) => g,
        Err(r) => return Ok(End::Reject(Reply::refusal("554", &r))),
    };
    match config.check_recipients(&recipients) {
        Ok(RecipientMix::AllDeMail) => {}
        Ok(RecipientMix::NoDeMail) => {
            return Err(Error::State("De-Mail without De-Mail recipient"));
        }
        Err(r) => return Ok(End::Reject(Reply::refusal("554", &r))),
    }

    let subject_field = fields.iter().find(|f| f.is("Subject"));
    let subject = subject_field
        .map(|f| decode_subject(&f.value))
        .unwrap_or_default();
    let x_options: Vec<String> = fields
        .iter()
        .filter(|f| f.is("X-DeMail-Options"))
        .map(Field::text)
        .collect();
    let x_options = (!x_options.is_empty()).then(|| x_options.join(","));
    let resolved = match config.resolve_options(grant, &subject, x_options.as_deref()) {
        Ok(r) => r,
        Err(r) => {
            debug!(%sender, "options refused: {r}");
            return Ok(End::Reject(Reply::refusal("554", &r)));
        }
    };

    let origin_key = origin
        .ok_or(Error::State("end of message before end of header"))?
        .finish()
        .0;
    let previous = evidence.lookup(Digest(origin_key))?;
    let mut reused = previous.is_some();
    let mut identity = match &previous {
        Some(s) => Identity::reuse(s),
        None => Identity::fresh(grant.tenant, grant.account),
    };

    loop {
        let rewrite = Rewrite {
            tenant: grant.tenant,
            account: grant.account,
            clerk: &sender,
            options: resolved.options,
            subject: resolved
                .subject_changed
                .then_some(resolved.subject.as_str()),
            identity: &identity,
        };
        let plan = rewrite.plan(&fields)?;
        let head = plan.render();
        let limit = config.gateway.max_message_size;
        if head.len() as u64 + body_len > limit {
            debug!(limit, "De-Mail too large");
            return Ok(End::Reject(Reply::too_large(limit)));
        }

        let message_id = fields
            .iter()
            .find(|f| f.is("Message-ID"))
            .map(Field::text)
            .unwrap_or_else(|| identity.message_id.clone());
        let draft = Draft {
            private_id: identity.private_id.clone(),
            origin_key,
            tenant: grant.tenant.name.clone(),
            account: grant.account.address.clone(),
            clerk: sender.clone(),
            sasl_login: sasl_login.clone(),
            recipients: recipients.iter().map(|r| r.address.clone()).collect(),
            subject: resolved.subject.clone(),
            message_id,
            queue_id: queue_id.clone().unwrap_or_default(),
            options: resolved
                .options
                .keywords()
                .into_iter()
                .map(String::from)
                .collect(),
            time: identity.time,
        };
        let stored = evidence.store(&head, &mut body, move |content, size| {
            draft.complete(content, size)
        })?;

        let same = |s: &Submission| s.content.0 == stored.content.0;
        match &stored.recorded {
            Recorded::Inserted(_) => {
                debug!(
                    private_id = %identity.private_id,
                    account = %grant.account.address,
                    recipients = recipients.len(),
                    options = ?resolved.options.keywords(),
                    size = stored.size,
                    "De-Mail recorded"
                );
            }
            Recorded::AlreadyPresent(s) if same(s) => {
                debug!(private_id = %identity.private_id, "retried De-Mail: existing record reused");
            }
            Recorded::AlreadyPresent(_) if reused => {
                // Same message, but different bytes would leave now (the configuration changed
                // between the attempts): the record must describe what leaves, so a new one.
                warn!(private_id = %identity.private_id, "retried De-Mail differs from its record; recording it anew");
                identity = Identity::fresh(grant.tenant, grant.account);
                reused = false;
                continue;
            }
            Recorded::AlreadyPresent(_) => {
                return Err(Error::State(
                    "a fresh private id is already recorded for other content",
                ));
            }
        }
        *private_id = Some(identity.private_id.clone());
        let mut edits = plan.edits();
        // Last, after the recorded bytes: Postfix routes the message to the provider by this
        // field and drops it on the way out, so what leaves is exactly what was recorded.
        edits.push(Edit::Add {
            name: ROUTE_FIELD.into(),
            value: wire(&format!("{SEND_TRANSPORT} {}", identity.private_id)),
        });
        return Ok(End::Accept {
            sender: Some(grant.account.address.clone()),
            edits,
        });
    }
}

/// The submission record, waiting for the digest and size of the stored bytes.
struct Draft {
    private_id: String,
    origin_key: [u8; 32],
    tenant: String,
    account: String,
    clerk: String,
    sasl_login: Option<String>,
    recipients: Vec<String>,
    subject: String,
    message_id: String,
    queue_id: String,
    options: Vec<String>,
    time: OffsetDateTime,
}

impl Draft {
    fn complete(self, content: Digest, size: u64) -> NewSubmission {
        NewSubmission {
            private_id: self.private_id,
            origin_key: Digest(self.origin_key),
            tenant: self.tenant,
            account: self.account,
            clerk: self.clerk,
            sasl_login: self.sasl_login,
            recipients: self.recipients,
            subject: self.subject,
            message_id: self.message_id,
            queue_id: self.queue_id,
            options: self.options,
            content,
            size,
            time: self.time,
        }
    }
}
