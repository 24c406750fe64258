//! Thin indymilter glue: negotiation, macros in, verdicts out. Logic lives in `Session` (and
//! from there `outbound`, `poststelle` and `inbound`); every internal error becomes a tempfail
//! here.

use std::ffi::{CStr, CString};
use std::sync::Arc;
use std::time::Duration;

use demail_policy::Resolved;
use indymilter::{
    Actions, Callbacks, Context, ContextActions, EomContext, MacroStage, Macros, NegotiateContext,
    ProtoOpts, SetErrorReply, SmtpReply, Status,
};
use tracing::{Instrument, Span, error, info_span, warn};

use crate::Shared;
use crate::error::Error;
use crate::header::Edit;
use crate::metrics::Outcome;
use crate::session::{Finished, Session};
use crate::verdict::{End, Verdict};

/// The changes we make at end of message; a connection that cannot grant them is refused.
pub const REQUIRED_ACTIONS: Actions = Actions::ADD_HEADER
    .union(Actions::CHANGE_HEADER)
    .union(Actions::CHANGE_SENDER);

/// Header values exactly as written (leading space included): needed to rebuild the bytes
/// that leave, which are what the evidence records.
pub const REQUIRED_OPTS: ProtoOpts = ProtoOpts::LEADING_SPACE;

/// Stages whose answer is always "continue" (a refusal found in a header field is answered at
/// end of header): where the MTA offers it, it sends them without waiting for a reply, which
/// saves a round trip per header field.
pub const NOREPLY_OPTS: ProtoOpts = ProtoOpts::NOREPLY_CONNECT
    .union(ProtoOpts::NOREPLY_HELO)
    .union(ProtoOpts::NOREPLY_HEADER);

/// How often a long end-of-message step tells the MTA it is still working.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

const MACROS: [(MacroStage, &str); 7] = [
    (MacroStage::Connect, "{daemon_name} {client_addr} j"),
    (MacroStage::Helo, "{cert_subject} {cert_issuer}"),
    (
        MacroStage::Mail,
        "i {auth_authen} {mail_addr} {cert_subject} {cert_issuer}",
    ),
    (MacroStage::Rcpt, "i {rcpt_addr} {rcpt_host} {rcpt_mailer}"),
    (MacroStage::Data, "i"),
    (MacroStage::Eoh, "i"),
    (MacroStage::Eom, "i"),
];

pub fn make(shared: Arc<Shared>) -> Callbacks<Session> {
    let on_connect = Arc::clone(&shared);
    let on_negotiate = Arc::clone(&shared);
    Callbacks::new()
        .on_negotiate(move |cx, actions, opts| {
            let shared = Arc::clone(&on_negotiate);
            Box::pin(async move { negotiate(cx, shared, actions, opts) })
        })
        .on_connect(move |cx, _host, _socket| {
            let shared = Arc::clone(&on_connect);
            Box::pin(async move {
                let daemon = macro_text(&cx.macros, c"{daemon_name}");
                let client = macro_text(&cx.macros, c"{client_addr}").unwrap_or_default();
                let span = info_span!("conn", client = %client);
                let mut session = match cx.data.take() {
                    Some(s) => s.reset(),
                    None => Session::new(shared),
                };
                let verdict = span.in_scope(|| session.connect(daemon.as_deref()));
                let quiet = session.no_reply.contains(ProtoOpts::NOREPLY_CONNECT);
                cx.data = Some(session);
                unanswered(quiet, answer(&mut cx.reply, verdict))
            })
        })
        .on_helo(|cx, _host| {
            Box::pin(async move {
                tls_peer(cx);
                let quiet = cx
                    .data
                    .as_ref()
                    .is_some_and(|s| s.no_reply.contains(ProtoOpts::NOREPLY_HELO));
                unanswered(quiet, Status::Continue)
            })
        })
        .on_mail(|cx, args| {
            Box::pin(async move {
                tls_peer(cx);
                let sender = args.first().map(|a| a.to_string_lossy().into_owned());
                let sender = sender
                    .or_else(|| macro_text(&cx.macros, c"{mail_addr}"))
                    .unwrap_or_default();
                let sasl = macro_text(&cx.macros, c"{auth_authen}");
                let qid = macro_text(&cx.macros, c"i");
                stage(cx, true, |s| {
                    s.mail(&sender, sasl.as_deref(), qid.as_deref())
                })
            })
        })
        .on_rcpt(|cx, args| {
            Box::pin(async move {
                let rcpt = args.first().map(|a| a.to_string_lossy().into_owned());
                let rcpt = rcpt.unwrap_or_default();
                // Where Postfix resolved the recipient to: decides whether it is De-Mail.
                let addr = macro_text(&cx.macros, c"{rcpt_addr}");
                let mailer = macro_text(&cx.macros, c"{rcpt_mailer}");
                let host = macro_text(&cx.macros, c"{rcpt_host}");
                let resolved = Resolved {
                    addr: addr.as_deref(),
                    mailer: mailer.as_deref(),
                    host: host.as_deref(),
                };
                // A refused recipient is not the end of the message.
                stage(cx, false, |s| s.rcpt(&rcpt, resolved))
            })
        })
        .on_data(|cx| Box::pin(async move { stage(cx, true, Session::data) }))
        .on_header(|cx, name, value| {
            Box::pin(async move {
                let quiet = cx
                    .data
                    .as_ref()
                    .is_some_and(|s| s.no_reply.contains(ProtoOpts::NOREPLY_HEADER));
                let status = stage(cx, true, |s| s.header(name.as_bytes(), value.as_bytes()));
                unanswered(quiet, status)
            })
        })
        .on_eoh(|cx| Box::pin(async move { stage(cx, true, Session::eoh) }))
        .on_body(|cx, chunk| {
            Box::pin(async move {
                stage(cx, true, |s| {
                    s.body(&chunk).unwrap_or_else(|e| {
                        error!("{e}; tempfail");
                        Verdict::Tempfail
                    })
                })
            })
        })
        .on_eom(|cx| Box::pin(eom(cx)))
        .on_abort(|cx| {
            Box::pin(async move {
                if let Some(s) = cx.data.as_mut() {
                    s.abort();
                }
                Status::Continue
            })
        })
        .on_close(|cx| {
            Box::pin(async move {
                cx.data = cx.data.take().map(Session::reset);
                Status::Continue
            })
        })
}

/// Records the TLS client certificate names Postfix sends (only for a verified certificate).
fn tls_peer(cx: &mut Context<Session>) {
    let subject = macro_text(&cx.macros, c"{cert_subject}");
    let issuer = macro_text(&cx.macros, c"{cert_issuer}");
    if let Some(s) = cx.data.as_mut() {
        s.tls_peer(subject, issuer);
    }
}

fn negotiate(
    cx: &mut NegotiateContext<Session>,
    shared: Arc<Shared>,
    actions: Actions,
    opts: ProtoOpts,
) -> Status {
    let missing_actions = REQUIRED_ACTIONS.difference(actions);
    let missing_opts = REQUIRED_OPTS.difference(opts);
    if !missing_actions.is_empty() || !missing_opts.is_empty() {
        error!(
            ?missing_actions,
            ?missing_opts,
            "the MTA does not offer what the milter needs; refusing the connection \
             (Postfix then applies milter_default_action)"
        );
        return Status::Reject;
    }
    request(cx, actions, opts);
    // indymilter requests SKIP whenever the MTA offers it; the body of ordinary mail is
    // skipped only then.
    let mut session = Session::new(shared);
    session.skip_body = cx.requested_opts.contains(ProtoOpts::SKIP);
    session.no_reply = cx.requested_opts & NOREPLY_OPTS;
    cx.data = Some(session);
    Status::Continue
}

/// What the milter asks of an MTA that offers `actions` and `opts`: its actions, protocol
/// options (the no-reply stages among them, [`NOREPLY_OPTS`]) and macros. Public so that the
/// benchmark's null milter negotiates exactly the same.
pub fn request<T: Send>(cx: &mut NegotiateContext<T>, actions: Actions, opts: ProtoOpts) {
    cx.requested_actions = REQUIRED_ACTIONS | (actions & Actions::REQUEST_MACROS);
    cx.requested_opts |= REQUIRED_OPTS | (opts & NOREPLY_OPTS);
    for (stage, names) in MACROS {
        if let Ok(names) = CString::new(names) {
            cx.requested_macros.insert(stage, names);
        }
    }
}

/// Runs a synchronous session stage inside the message's log span. A verdict that ends the
/// message (`whole`: not a single recipient's) concludes it.
fn stage(
    cx: &mut Context<Session>,
    whole: bool,
    f: impl FnOnce(&mut Session) -> Verdict,
) -> Status {
    let span = message_span(&cx.macros);
    let verdict = match cx.data.as_mut() {
        Some(session) => span.in_scope(|| {
            let verdict = f(session);
            if whole && let Some(outcome) = outcome(&verdict) {
                let qid = macro_text(&cx.macros, c"i");
                session.conclude(outcome, qid.as_deref(), None, None);
            }
            verdict
        }),
        None => {
            span.in_scope(|| error!("no session (connect was not seen); tempfail"));
            Verdict::Tempfail
        }
    };
    answer(&mut cx.reply, verdict)
}

/// How a verdict ends the message, if it does.
fn outcome(verdict: &Verdict) -> Option<Outcome> {
    match verdict {
        Verdict::Continue | Verdict::Skip => None,
        Verdict::Accept => Some(Outcome::Accepted),
        Verdict::Discard => Some(Outcome::Discarded),
        Verdict::Tempfail => Some(Outcome::Tempfailed),
        Verdict::Reject(r) if r.code.starts_with('4') => Some(Outcome::Tempfailed),
        Verdict::Reject(_) => Some(Outcome::Rejected),
    }
}

async fn eom(cx: &mut EomContext<Session>) -> Status {
    let span = message_span(&cx.macros);
    // With smtpd's default delayed queue-file creation, `i` first arrives after MAIL.
    let queue_id = macro_text(&cx.macros, c"i");
    let start = std::time::Instant::now();
    let mut private_id = None;
    let result = async {
        let session = cx
            .data
            .as_mut()
            .ok_or(Error::State("no session at end of message"))?;
        // Accepted earlier (ordinary mail without anything to change) or aborted: nothing to do.
        let Some(work) = session.finish(queue_id.clone()) else {
            return Ok(Verdict::Continue);
        };
        tokio::pin!(work);
        // Writing a large message and fsyncing can outlast Postfix's milter timeouts: report
        // progress meanwhile (each report restarts Postfix's timer).
        let mut ticks = tokio::time::interval(PROGRESS_EVERY);
        ticks.tick().await;
        let Finished {
            end,
            private_id: id,
        } = loop {
            tokio::select! {
                end = &mut work => break end?,
                _ = ticks.tick() => {
                    if let Err(source) = cx.actions.progress().await {
                        return Err(Error::Action { action: "progress", source });
                    }
                }
            }
        };
        private_id = id;
        match end {
            // Stored as evidence, not delivered: header changes would be pointless.
            End::Discard => Ok(Verdict::Discard),
            End::Reject(reply) => Ok(Verdict::Reject(reply)),
            End::Accept { sender, edits } => {
                apply(&cx.actions, sender.as_deref(), edits).await?;
                Ok(Verdict::Accept)
            }
        }
    }
    .instrument(span.clone())
    .await;
    let verdict = result.unwrap_or_else(|e: Error| {
        span.in_scope(|| error!("{e}; tempfail"));
        Verdict::Tempfail
    });
    if let Some(session) = cx.data.as_mut() {
        // Continue at end of message accepts it as it is.
        let outcome = outcome(&verdict).unwrap_or(Outcome::Accepted);
        let took = Some(start.elapsed());
        span.in_scope(|| {
            session.conclude(outcome, queue_id.as_deref(), private_id.as_deref(), took)
        });
    }
    answer(&mut cx.reply, verdict)
}

async fn apply(
    actions: &impl ContextActions,
    sender: Option<&str>,
    edits: Vec<Edit>,
) -> Result<(), Error> {
    let act = |action: &'static str| move |source| Error::Action { action, source };
    if let Some(sender) = sender {
        actions
            .change_sender(
                cstring("MAIL FROM", format!("<{sender}>").into_bytes())?,
                None::<CString>,
            )
            .await
            .map_err(act("change_sender"))?;
    }
    for edit in edits {
        match edit {
            Edit::Change { name, index, value } => {
                let value = cstring(&String::from_utf8_lossy(&name), value)?;
                actions
                    .change_header(cstring("header name", name)?, index, Some(value))
                    .await
                    .map_err(act("change_header"))?;
            }
            Edit::Delete { name, index } => actions
                .change_header(cstring("header name", name)?, index, None::<CString>)
                .await
                .map_err(act("delete_header"))?,
            Edit::Add { name, value } => {
                let value = cstring(&String::from_utf8_lossy(&name), value)?;
                actions
                    .add_header(cstring("header name", name)?, value)
                    .await
                    .map_err(act("add_header"))?;
            }
        }
    }
    Ok(())
}

fn cstring(what: &str, bytes: Vec<u8>) -> Result<CString, Error> {
    CString::new(bytes).map_err(|_| Error::Nul(what.to_string()))
}

/// The status of a stage the MTA expects no reply for: `Noreply` where negotiated. Such a stage
/// only ever continues (`Session` defers what a header field decides to end of header).
fn unanswered(quiet: bool, status: Status) -> Status {
    match (quiet, status) {
        (false, status) => status,
        (true, Status::Continue) => Status::Noreply,
        (true, status) => {
            error!(?status, "a stage without reply decided {status:?}; ignored");
            Status::Noreply
        }
    }
}

/// Turns a verdict into the indymilter status, setting the custom reply for a rejection.
fn answer(reply: &mut SmtpReply, verdict: Verdict) -> Status {
    match verdict {
        Verdict::Continue => Status::Continue,
        Verdict::Accept => Status::Accept,
        Verdict::Tempfail => Status::Tempfail,
        Verdict::Discard => Status::Discard,
        Verdict::Skip => Status::Skip,
        Verdict::Reject(r) => {
            // The milter protocol sends a 4xx text only with a tempfail answer.
            let status = if r.code.starts_with('4') {
                Status::Tempfail
            } else {
                Status::Reject
            };
            match reply.set_error_reply(r.code, Some(&r.xcode), [r.text.as_str()]) {
                Ok(()) => status,
                Err(source) => {
                    let e = Error::Reply {
                        code: r.code,
                        xcode: r.xcode,
                        source,
                    };
                    warn!("{e}; tempfail instead");
                    Status::Tempfail
                }
            }
        }
    }
}

fn macro_text(macros: &Macros, name: &CStr) -> Option<String> {
    macros
        .get(name)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
}

/// Log span keyed by the Postfix queue id, so a message's lines can be found with its id.
fn message_span(macros: &Macros) -> Span {
    let qid = macro_text(macros, c"i").unwrap_or_else(|| "-".into());
    info_span!("msg", qid = %qid)
}
