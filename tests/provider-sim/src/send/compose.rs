//! Building the messages: the dispatched copy of an accepted message, confirmations and
//! notifications about it, and inbound De-Mails; each signed with `X-de-mail-integrity`.

use std::path::PathBuf;

use demail_trust::integrity::{self, Alg, HashAlg, SigAlg};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use time::OffsetDateTime;

use super::config::SendConfig;
use super::mime::{self, RawField, base64_lines, header, random_hex};
use super::{
    ConfirmationKind, Dispatched, Forge, InboundSpec, NotificationKind, SendError, pdf, xml,
};

/// The TR version the simulator speaks (`X-de-mail-version`).
pub const VERSION: &str = "1.8";
const ALG: Alg = Alg {
    hash: HashAlg::Sha256,
    sig: SigAlg::Rsa,
};

/// The provider's qualified signing identity.
pub struct Signer {
    key: PKey<Private>,
    cert: X509,
    key_path: PathBuf,
    cert_path: PathBuf,
}

impl Signer {
    pub fn load(cfg: &SendConfig) -> Result<Signer, SendError> {
        let read = |key: &'static str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| SendError::File {
                key,
                path: path.clone(),
                reason: e.to_string(),
            })
        };
        let bad = |key: &'static str, path: &PathBuf| {
            let path = path.clone();
            move |e: openssl::error::ErrorStack| SendError::File {
                key,
                path,
                reason: e.to_string(),
            }
        };
        let key = PKey::private_key_from_pem(&read("signing_key", &cfg.signing_key)?)
            .map_err(bad("signing_key", &cfg.signing_key))?;
        let cert = X509::from_pem(&read("signing_cert", &cfg.signing_cert)?)
            .map_err(bad("signing_cert", &cfg.signing_cert))?;
        Ok(Signer {
            key,
            cert,
            key_path: cfg.signing_key.clone(),
            cert_path: cfg.signing_cert.clone(),
        })
    }

    /// `X-de-mail-integrity` with the qualified certificate (sha256/rsa).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SendError> {
        Ok(integrity::sign(message, &self.key, &self.cert, ALG)?)
    }
}

/// A unique id in the provider's domain, `<prefix.time.random@domain>`.
pub fn new_id(prefix: &str, cfg: &SendConfig) -> String {
    format!(
        "<{prefix}.{}.{}@{}>",
        OffsetDateTime::now_utc().unix_timestamp(),
        random_hex(8),
        cfg.provider_domain
    )
}

/// The copy of `original` for `recipient` as the provider dispatches it: its own fields
/// prepended (topmost counts, so a sender cannot preset them), then signed.
pub fn dispatched_copy(
    original: &[u8],
    message_id: &str,
    sender: &str,
    recipient: &str,
    cfg: &SendConfig,
    signer: &Signer,
) -> Result<Vec<u8>, SendError> {
    let fields = mime::raw_fields(original);
    let has = |n: &str| mime::field(&fields, n).is_some();
    let mut head = String::new();
    head.push_str(&header("X-de-mail-message-id", message_id));
    head.push_str(&header(
        "X-de-mail-actual-recipient",
        &format!("to={recipient}"),
    ));
    head.push_str(&header(
        "X-de-mail-originator-provider",
        &cfg.provider_domain,
    ));
    for (name, value) in [
        ("X-de-mail-sender", sender.to_string()),
        ("X-de-mail-chosen-recipient", format!("to={recipient}")),
        ("X-de-mail-message-type", "normal".into()),
        ("X-de-mail-version", VERSION.into()),
        // The gateway logs in with its hardware token: level "hoch" (IS_GS §10).
        ("X-de-mail-auth-level", "high".into()),
        ("X-de-mail-auth-mechanism", "hardware-token".into()),
        ("X-de-mail-account-holder", sender.to_string()),
    ] {
        if !has(name) {
            head.push_str(&header(name, &value));
        }
    }
    let mut copy = head.into_bytes();
    copy.extend_from_slice(original);
    signer.sign(&copy)
}

/// The unfolded `X-de-mail-integrity` value of a signed message.
pub fn integrity_value(signed: &[u8]) -> String {
    integrity::verify(signed)
        .integrity_value
        .unwrap_or_default()
}

/// A confirmation about `d`, signed; returns (system address, bytes).
pub fn confirmation(
    d: &Dispatched,
    kind: ConfirmationKind,
    now: OffsetDateTime,
    cfg: &SendConfig,
    signer: &Signer,
) -> Result<(String, Vec<u8>), SendError> {
    let from = format!("{}@{}", kind.system_local_part(), cfg.provider_domain);
    let subject = format!("*{}* {}", kind.title(), d.subject);
    let lines = confirmation_lines(d, kind, now, cfg);
    let text = lines.join("\n");
    let time = mime::xs_datetime(now);
    let delivery = mime::xs_datetime(d.dispatched_at);
    let metadata = mime::raw_fields(&d.signed);
    let ack = xml::Acknowledge {
        sender: &from,
        metadata: &metadata,
        subject: &subject,
        text: &text,
        hash: &d.integrity,
        time: &time,
        delivery_time: (kind == ConfirmationKind::Retrieve).then_some(delivery.as_str()),
    };
    let xml = xml::acknowledge(&ack, &signer.key_path, &signer.cert_path)?;
    let pdf = pdf::text_document(&subject, &lines);
    let mut head = common_head(&from, &d.confirm_to, &subject, now, cfg);
    head.push_str(&header("X-de-mail-message-type", kind.message_type()));
    head.push_str(&about_original(d));
    let parts = Parts {
        text: &text,
        xml: &xml,
        pdf: &pdf,
        stem: "bestaetigung",
    };
    Ok((from, signer.sign(&multipart(head, &parts).into_bytes())?))
}

/// A notification that `d` could not be delivered, signed; returns (system address, bytes).
pub fn notification(
    d: &Dispatched,
    kind: NotificationKind,
    now: OffsetDateTime,
    cfg: &SendConfig,
    signer: &Signer,
) -> Result<(String, Vec<u8>), SendError> {
    let from = format!("Meldung@{}", cfg.provider_domain);
    let subject = format!("*Meldung: {}* {}", kind.german(), d.subject);
    let lines = vec![
        format!(
            "Die Nachricht mit den folgenden Angaben wurde nicht zugestellt: {}.",
            kind.german()
        ),
        String::new(),
        format!("Absender: {}", d.sender),
        format!("Empfänger: {}", d.recipient),
        format!("Datum: {}", mime::german_datetime(d.dispatched_at)),
        format!("Betreff: {}", d.subject),
        format!("Nachrichten-ID: {}", d.message_id),
        format!("Grund: {}", kind.as_str()),
        String::new(),
        format!("Diese Meldung erstellte {}.", cfg.provider_name),
    ];
    let text = lines.join("\n");
    let xml = xml::notification(&subject, &text, &mime::xs_datetime(now), &from);
    let pdf = pdf::text_document(&subject, &lines);
    let mut head = common_head(&from, &d.confirm_to, &subject, now, cfg);
    head.push_str(&header("X-de-mail-message-type", "notification"));
    head.push_str(&header("X-de-mail-notification-type", kind.as_str()));
    head.push_str(&about_original(d));
    let parts = Parts {
        text: &text,
        xml: &xml,
        pdf: &pdf,
        stem: "meldung",
    };
    Ok((from, signer.sign(&multipart(head, &parts).into_bytes())?))
}

fn confirmation_lines(
    d: &Dispatched,
    kind: ConfirmationKind,
    now: OffsetDateTime,
    cfg: &SendConfig,
) -> Vec<String> {
    let (intro, when) = match kind {
        ConfirmationKind::Dispatch => (
            "Die Nachricht mit den folgenden Angaben wurde an den Empfänger versandt.",
            d.dispatched_at,
        ),
        ConfirmationKind::Receipt => (
            "Die Nachricht mit den folgenden Angaben ist im Postfach des Empfängers eingegangen.",
            d.dispatched_at,
        ),
        ConfirmationKind::Retrieve => (
            "Der Empfänger der Nachricht mit den folgenden Angaben hat sich sicher an seinem \
             De-Mail-Konto angemeldet.",
            now,
        ),
    };
    let mut lines = vec![intro.to_string(), String::new()];
    if kind == ConfirmationKind::Retrieve {
        lines.push(format!(
            "Eingang im Postfach: {}",
            mime::german_datetime(d.dispatched_at)
        ));
    }
    lines.extend([
        format!("Absender: {}", d.sender),
        format!("Empfänger: {}", d.recipient),
        format!("Datum: {}", mime::german_datetime(when)),
        format!("Betreff: {}", d.subject),
        format!("Nachrichten-ID: {}", d.message_id),
        format!("Prüfsumme: {}", d.integrity),
        String::new(),
        format!(
            "Die Bestätigung stellte {} ({}) aus.",
            cfg.provider_name, cfg.provider_domain
        ),
    ]);
    lines
}

/// From, To, Date, Message-ID, Subject and the provider's De-Mail fields of a message the
/// provider itself sends.
fn common_head(
    from: &str,
    to: &str,
    subject: &str,
    now: OffsetDateTime,
    cfg: &SendConfig,
) -> String {
    let mut h = String::new();
    h.push_str(&header("From", from));
    h.push_str(&header("To", to));
    h.push_str(&header("Date", &mime::rfc2822(now)));
    h.push_str(&header("Message-ID", &new_id("confirmation", cfg)));
    h.push_str(&header("Subject", subject));
    h.push_str(&header("X-de-mail-sender", from));
    h.push_str(&header("X-de-mail-chosen-recipient", &format!("to={to}")));
    h.push_str(&header("X-de-mail-actual-recipient", &format!("to={to}")));
    h.push_str(&header(
        "X-de-mail-originator-provider",
        &cfg.provider_domain,
    ));
    h.push_str(&header("X-de-mail-version", VERSION));
    h
}

/// The fields that tie a confirmation to the original.
fn about_original(d: &Dispatched) -> String {
    let mut h = header("X-de-mail-message-id", &d.message_id);
    let yes_no = if d.options.private { "yes" } else { "no" };
    h.push_str(&header("X-de-mail-private", yes_no));
    if let Some(p) = &d.private_id {
        h.push_str(&header("X-de-mail-private-id", p));
    }
    h
}

struct Parts<'a> {
    text: &'a str,
    xml: &'a str,
    pdf: &'a [u8],
    stem: &'a str,
}

fn multipart(mut head: String, p: &Parts<'_>) -> String {
    let boundary = format!("=_demail-sim-{}", random_hex(12));
    head.push_str("MIME-Version: 1.0\r\n");
    head.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    head.push_str("This is a De-Mail confirmation in MIME format.\r\n");
    let stem = p.stem;
    let part = |ctype: String, disposition: Option<String>, data: &[u8]| {
        let mut s = format!("\r\n--{boundary}\r\nContent-Type: {ctype}\r\n");
        if let Some(d) = disposition {
            s.push_str(&format!("Content-Disposition: {d}\r\n"));
        }
        s.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        s.push_str(&base64_lines(data));
        s
    };
    head.push_str(&part(
        "text/plain; charset=UTF-8".into(),
        None,
        p.text.replace('\n', "\r\n").as_bytes(),
    ));
    head.push_str(&part(
        format!("application/xml; name=\"{stem}.xml\""),
        Some(format!("attachment; filename=\"{stem}.xml\"")),
        p.xml.as_bytes(),
    ));
    head.push_str(&part(
        format!("application/pdf; name=\"{stem}.pdf\""),
        Some(format!("attachment; filename=\"{stem}.pdf\"")),
        p.pdf,
    ));
    head.push_str(&format!("\r\n--{boundary}--\r\n"));
    head
}

/// An inbound De-Mail from another provider's user to the city; returns (message id, bytes).
pub fn inbound(
    spec: &InboundSpec,
    now: OffsetDateTime,
    cfg: &SendConfig,
    signer: &Signer,
) -> Result<(String, Vec<u8>), SendError> {
    for (what, v) in [("from", &spec.from), ("to", &spec.to)] {
        if !v.contains('@') || v.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>')) {
            return Err(SendError::BadSpec(format!(
                "{what} {v:?} is not an address"
            )));
        }
    }
    let message_id = new_id("demail", cfg);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut h = String::new();
    h.push_str(&header("From", &spec.from));
    h.push_str(&header("To", &spec.to));
    h.push_str(&header("Subject", &spec.subject));
    h.push_str(&header("Date", &mime::rfc2822(now)));
    h.push_str(&header("Message-ID", &new_id("message", cfg)));
    h.push_str(&header("X-de-mail-message-id", &message_id));
    h.push_str(&header("X-de-mail-sender", &spec.from));
    h.push_str(&header(
        "X-de-mail-chosen-recipient",
        &format!("to={}", spec.to),
    ));
    h.push_str(&header(
        "X-de-mail-actual-recipient",
        &format!("to={}", spec.to),
    ));
    h.push_str(&header(
        "X-de-mail-authoritative",
        yes_no(spec.authoritative),
    ));
    h.push_str(&header("X-de-mail-private", yes_no(spec.private)));
    let level = if spec.authoritative || spec.private {
        "high"
    } else {
        "normal"
    };
    h.push_str(&header("X-de-mail-auth-level", level));
    let mechanism = if level == "high" { "eid" } else { "password" };
    h.push_str(&header("X-de-mail-auth-mechanism", mechanism));
    h.push_str(&header(
        "X-de-mail-originator-provider",
        &cfg.provider_domain,
    ));
    h.push_str(&header("X-de-mail-message-type", "normal"));
    h.push_str(&header("X-de-mail-version", VERSION));
    let holder = spec.account_holder.as_deref().unwrap_or(&spec.from);
    h.push_str(&header("X-de-mail-account-holder", holder));
    h.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n");
    let body = spec.body.replace("\r\n", "\n").replace('\n', "\r\n");
    if body.is_ascii() {
        h.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        h.push_str(&body);
        if !body.ends_with("\r\n") {
            h.push_str("\r\n");
        }
    } else {
        h.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        h.push_str(&base64_lines(body.as_bytes()));
    }
    let data = if spec.signed {
        signer.sign(h.as_bytes())?
    } else {
        integrity::hash_only(h.as_bytes(), HashAlg::Sha256)?
    };
    Ok((message_id, data))
}

/// `signed` made wrong as `forge` says.
pub fn apply_forge(forge: Forge, signed: Vec<u8>) -> Vec<u8> {
    match forge {
        Forge::None => signed,
        Forge::NoIntegrity => strip_integrity(&signed),
        Forge::TamperedBody => {
            let mut m = signed;
            if !m.ends_with(b"\r\n") {
                m.extend_from_slice(b"\r\n");
            }
            m.extend_from_slice(b"Changed after signing.\r\n");
            m
        }
        Forge::BadSignature => corrupt_signature(signed),
    }
}

/// Removes the integrity fields.
fn strip_integrity(message: &[u8]) -> Vec<u8> {
    let fields = mime::raw_fields(message);
    let head_len: usize = fields.iter().map(|f| f.raw.len()).sum();
    let is_integrity = |f: &RawField| {
        f.name.eq_ignore_ascii_case(integrity::INTEGRITY_FIELD)
            || f.name.eq_ignore_ascii_case(integrity::CERTIFICATE_FIELD)
    };
    let mut out: Vec<u8> = fields
        .iter()
        .filter(|f| !is_integrity(f))
        .flat_map(|f| f.raw.bytes())
        .collect();
    out.extend_from_slice(message.get(head_len..).unwrap_or_default());
    out
}

/// Changes one base64 character inside the `b=` tag of the topmost integrity field.
fn corrupt_signature(mut message: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&message).into_owned();
    let Some(start) = text.find(&format!("{}:", integrity::INTEGRITY_FIELD)) else {
        return message;
    };
    // The field ends at the first line break not followed by folding whitespace.
    let mut field_end = start;
    loop {
        match text[field_end..].find("\r\n") {
            Some(j) if text[field_end + j + 2..].starts_with([' ', '\t']) => {
                field_end += j + 2;
            }
            Some(j) => {
                field_end += j;
                break;
            }
            None => {
                field_end = text.len();
                break;
            }
        }
    }
    let field = &text[start..field_end];
    // `b=` preceded by `;` or whitespace (not the `b` of `bh=`).
    let Some(b) = field
        .match_indices("b=")
        .find(|(i, _)| field[..*i].ends_with([';', ' ', '\t', '\n']))
        .map(|(i, _)| start + i + 2)
    else {
        return message;
    };
    // Skip folding whitespace to a base64 character a few positions in.
    let pos = (b..field_end)
        .filter(|&i| message[i].is_ascii_alphanumeric())
        .nth(10);
    if let Some(i) = pos {
        message[i] = if message[i] == b'A' { b'B' } else { b'A' };
    }
    message
}
