//! The small sections: `[inbound]`, `[evidence]`, `[trust]`, `[tags]`, `[milter]`.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::{Ctx, Spanned};
use super::reader::{Got, Section};
use super::values;
use crate::address::parse_addr_spec;
use crate::config::{
    DeliverConfirmations, EvidenceSettings, Gateway, Inbound, MilterSettings, Revocation,
    SocketSpec, Tags, TrustSettings, ValidationModel,
};
use crate::tags::SIGNER_PLACEHOLDER;

pub(super) const INBOUND_KEYS: &[&str] = &[
    "provider_service",
    "provider_client_fingerprints",
    "poststelle",
    "deliver_confirmations",
    "listen",
    "certificate",
    "key",
];
pub(super) const EVIDENCE_KEYS: &[&str] = &["database", "blobs", "retention_years"];
pub(super) const TRUST_KEYS: &[&str] = &[
    "trusted_lists",
    "anchors",
    "list_signers",
    "validation_model",
    "revocation",
    "ocsp_timeout",
];
pub(super) const TAGS_KEYS: &[&str] = &[
    "authoritative",
    "qes_valid",
    "signed_not_qualified",
    "signature_invalid",
    "signature_indeterminate",
    "qes_valid_attachment",
];
pub(super) const MILTER_KEYS: &[&str] = &["listen"];
/// Parses a string value with `parse`, reporting a failure at the value's line.
pub(super) fn convert<T>(
    ctx: &mut Ctx<'_>,
    s: &Spanned<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    parse(&s.value).map_err(|e| ctx.bad(s, e)).ok()
}

/// Validated addresses of a list, with their lines (for later cross-checks).
pub(super) fn addresses(ctx: &mut Ctx<'_>, list: Vec<Spanned<String>>) -> Vec<Spanned<String>> {
    list.into_iter()
        .filter_map(|a| {
            let value = convert(ctx, &a, parse_addr_spec)?;
            Some(Spanned { value, ..a })
        })
        .collect()
}

/// `[inbound]`; also returns the poststelle addresses with lines for cross-checks. The
/// `demail-in` server identity defaults to the gateway client certificate and key.
pub(super) fn inbound(
    ctx: &mut Ctx<'_>,
    s: &Section<'_>,
    gateway: &Gateway,
) -> (Inbound, Vec<Spanned<String>>) {
    let service = s.string_or(ctx, "provider_service", "demail-in");
    if service.value.is_empty()
        || service
            .value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        ctx.bad(
            &service,
            format!(
                "expected a master.cf service name, found {:?}",
                service.value
            ),
        );
    }
    let provider_client_fingerprints = s
        .strings_or_empty(ctx, "provider_client_fingerprints")
        .iter()
        .filter_map(|f| convert(ctx, f, values::fingerprint))
        .collect();
    let raw = s.strings_or_empty(ctx, "poststelle");
    let poststelle = addresses(ctx, raw);
    let deliver = s.string_or(ctx, "deliver_confirmations", "mailbox");
    let deliver_confirmations = convert(ctx, &deliver, |v| {
        values::choice(
            v,
            &[
                ("mailbox", DeliverConfirmations::Mailbox),
                ("evidence-only", DeliverConfirmations::EvidenceOnly),
            ],
        )
    })
    .unwrap_or(DeliverConfirmations::Mailbox);
    let listen = s.string_or(ctx, "listen", "0.0.0.0:1465");
    convert(ctx, &listen, values::host_port);
    let certificate = s.string(ctx, "certificate").found();
    let key = s.string(ctx, "key").found();
    let inbound = Inbound {
        provider_service: service.value,
        provider_client_fingerprints,
        poststelle: poststelle.iter().map(|a| a.value.clone()).collect(),
        deliver_confirmations,
        listen: listen.value,
        certificate: certificate.map_or_else(
            || gateway.client_certificate.clone(),
            |c| ctx.readable_file(&c),
        ),
        key: key.map_or_else(|| gateway.client_key.clone(), |k| ctx.readable_file(&k)),
    };
    (inbound, poststelle)
}

pub(super) fn evidence(ctx: &mut Ctx<'_>, s: &Section<'_>) -> EvidenceSettings {
    let database = s.string_or(ctx, "database", "/var/lib/demail/evidence.sqlite");
    let blobs = s.string_or(ctx, "blobs", "/var/lib/demail/blobs");
    let retention_years = match s.integer(ctx, "retention_years") {
        Got::Found(y) => match u32::try_from(y.value) {
            Ok(v) if v >= 1 => v,
            _ => {
                ctx.bad(
                    &y,
                    format!("must be a whole number of years >= 1, found {}", y.value),
                );
                10
            }
        },
        _ => 10,
    };
    EvidenceSettings {
        database: ctx.path(&database),
        blobs: ctx.path(&blobs),
        retention_years,
    }
}

pub(super) fn trust(ctx: &mut Ctx<'_>, s: &Section<'_>) -> TrustSettings {
    let trusted_lists = s.string_or(ctx, "trusted_lists", "/var/lib/demail/trust");
    let files = |ctx: &mut Ctx<'_>, name: &str| -> Vec<PathBuf> {
        s.strings_or_empty(ctx, name)
            .iter()
            .map(|p| ctx.readable_file(p))
            .collect()
    };
    let anchors = files(ctx, "anchors");
    let list_signers = files(ctx, "list_signers");
    let model = s.string_or(ctx, "validation_model", "chain");
    let validation_model = convert(ctx, &model, |v| {
        values::choice(
            v,
            &[
                ("chain", ValidationModel::Chain),
                ("shell", ValidationModel::Shell),
            ],
        )
    })
    .unwrap_or(ValidationModel::Chain);
    let revocation = s.string_or(ctx, "revocation", "ocsp");
    let revocation = convert(ctx, &revocation, |v| {
        values::choice(
            v,
            &[
                ("ocsp", Revocation::Ocsp),
                ("crl", Revocation::Crl),
                ("off", Revocation::Off),
            ],
        )
    })
    .unwrap_or(Revocation::Ocsp);
    let timeout = s.string_or(ctx, "ocsp_timeout", "5s");
    let ocsp_timeout = convert(ctx, &timeout, values::duration).unwrap_or(Duration::from_secs(5));
    TrustSettings {
        trusted_lists: ctx.path(&trusted_lists),
        anchors,
        list_signers,
        validation_model,
        revocation,
        ocsp_timeout,
    }
}

pub(super) fn tags(ctx: &mut Ctx<'_>, s: &Section<'_>) -> Tags {
    let mut tag = |name: &str, default: &str| {
        let t = s.string_or(ctx, name, default);
        if t.value.contains(['\r', '\n']) {
            ctx.bad(&t, "a subject tag must not contain a line break");
        }
        t.value
    };
    let authoritative = tag("authoritative", "[De-Mail absenderbestätigt]");
    let qes_valid = tag("qes_valid", "[QES gültig]");
    let signed_not_qualified = tag("signed_not_qualified", "[signiert, keine QES]");
    let signature_invalid = tag("signature_invalid", "[Signatur ungültig]");
    let signature_indeterminate = tag("signature_indeterminate", "[Signatur unbestimmt]");
    let attachment = s.string_or(
        ctx,
        "qes_valid_attachment",
        &crate::tags::attachment_template(&qes_valid),
    );
    if attachment.value.contains(['\r', '\n']) {
        ctx.bad(&attachment, "a subject tag must not contain a line break");
    } else if !attachment.value.is_empty()
        && attachment.value.matches(SIGNER_PLACEHOLDER).count() != 1
    {
        ctx.bad(
            &attachment,
            format!(
                "must contain {SIGNER_PLACEHOLDER} exactly once (where the signer's name goes), \
                 e.g. \"[QES gültig: {SIGNER_PLACEHOLDER}]\"; \"\" disables the tag"
            ),
        );
    }
    Tags {
        authoritative,
        qes_valid,
        signed_not_qualified,
        signature_invalid,
        signature_indeterminate,
        qes_valid_attachment: attachment.value,
    }
}

pub(super) fn milter(ctx: &mut Ctx<'_>, s: &Section<'_>) -> MilterSettings {
    let listen = s.string_or(ctx, "listen", "inet:127.0.0.1:8891");
    let listen = convert(ctx, &listen, values::socket).unwrap_or(SocketSpec::Inet {
        host: "127.0.0.1".into(),
        port: 8891,
    });
    MilterSettings { listen }
}
