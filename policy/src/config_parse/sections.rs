//! The small sections: `[inbound]`, `[evidence]`, `[trust]`, `[tags]`, `[milter]`.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::{Ctx, Spanned};
use super::reader::{Got, Section};
use super::values;
use crate::address::parse_addr_spec;
use crate::config::{
    DEFAULT_MILTER_SOCKET, DeliverConfirmations, EvidenceSettings, Gateway, Inbound,
    MetricsSettings, MilterSettings, Revocation, SocketSpec, Tags, TrustSettings, ValidationModel,
};
use crate::error::ConfigError;
use crate::tags::SIGNER_PLACEHOLDER;
use demail_sql::Location;

pub(super) const INBOUND_KEYS: &[&str] = &[
    "provider_service",
    "provider_client_ca",
    "provider_client_certificates",
    "provider_client_fingerprints",
    "provider_signers",
    "poststelle",
    "deliver_confirmations",
    "listen",
    "certificate",
    "key",
];
pub(super) const EVIDENCE_KEYS: &[&str] =
    &["database", "password_file", "blobs", "retention_years"];
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
pub(super) const MILTER_KEYS: &[&str] = &["listen", "metrics"];
const METRICS_KEYS: &[&str] = &["listen"];
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
    let provider_client_fingerprints: Vec<[u8; 32]> = s
        .strings_or_empty(ctx, "provider_client_fingerprints")
        .iter()
        .filter_map(|f| convert(ctx, f, values::fingerprint))
        .collect();
    let client_ca = s.string(ctx, "provider_client_ca").found();
    let provider_client_ca = client_ca.as_ref().map(|c| ctx.readable_file(c));
    let client_certs = s.strings_or_empty(ctx, "provider_client_certificates");
    let provider_client_certificates: Vec<PathBuf> =
        client_certs.iter().map(|c| ctx.readable_file(c)).collect();
    let signers = s.strings_or_empty(ctx, "provider_signers");
    let provider_signers: Vec<PathBuf> = signers.iter().map(|c| ctx.readable_file(c)).collect();
    let unpinned = unpinned(
        s.line,
        client_ca.as_ref().zip(provider_client_ca.as_ref()),
        gateway,
        provider_client_certificates.is_empty(),
        provider_signers.is_empty(),
    );
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
        provider_client_ca,
        provider_client_certificates,
        provider_client_fingerprints,
        provider_signers,
        unpinned,
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

/// What leaves the provider unpinned: each problem at the key (or the section) it concerns.
/// Not a parse error, so that tools that never receive from the provider can still load the
/// file; `demailctl check-config` and `postfix-config` refuse it, and the milter trusts nothing
/// on the provider service while any remains.
fn unpinned(
    section_line: usize,
    client_ca: Option<(&Spanned<String>, &PathBuf)>,
    gateway: &Gateway,
    no_client_pin: bool,
    no_signers: bool,
) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let mut at = |line: usize, key: &str, message: String| {
        out.push(ConfigError {
            line,
            key: format!("inbound.{key}"),
            message,
        })
    };
    match client_ca {
        None => at(
            section_line,
            "provider_client_ca",
            "not set: name the CA file that issues only the provider's TLS client \
             certificates (demail-in would otherwise trust whatever CA it is given)"
                .into(),
        ),
        Some((spanned, path)) if same_file(path, &gateway.provider_ca) => at(
            spanned.line,
            "provider_client_ca",
            format!(
                "is the gateway's server CA ([gateway] provider_ca, {}): that CA (often a \
                 public one) certifies others too; use a CA file of the provider's client \
                 certificates alone",
                gateway.provider_ca.display()
            ),
        ),
        Some(_) => {}
    }
    if no_client_pin {
        at(
            section_line,
            "provider_client_certificates",
            "nothing pinned: name the provider's TLS client certificate(s) (PEM); the milter \
             checks their names, which a fingerprint alone does not give"
                .into(),
        );
    }
    if no_signers {
        at(
            section_line,
            "provider_signers",
            "nothing pinned: name the provider's seal certificate(s) (PEM) that sign \
             X-de-mail-integrity; without them no confirmation or notification counts"
                .into(),
        );
    }
    out
}

/// Same path, or files with the same bytes (a copy of the server CA is still that CA).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
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
        database: evidence_location(ctx, s, &database),
        blobs: ctx.path(&blobs),
        retention_years,
    }
}

/// `database` is an SQLite file or a PostgreSQL connection (URL or key/value form); the
/// optional `password_file` belongs to the latter.
fn evidence_location(ctx: &mut Ctx<'_>, s: &Section<'_>, database: &Spanned<String>) -> Location {
    let password_file = s.string(ctx, "password_file").found();
    if !Location::is_postgres(&database.value) {
        if let Some(p) = &password_file {
            ctx.bad(
                p,
                "a password file belongs to a PostgreSQL database; `database` names an SQLite file",
            );
        }
        return Location::Sqlite(ctx.path(database));
    }
    let password_file = password_file.map(|p| ctx.readable_file(&p));
    let base = ctx.base_dir().to_path_buf();
    match Location::parse(&database.value, &base, password_file.clone()) {
        Ok(location) => {
            if let Location::Postgres(pg) = &location {
                // Certificates named inside the connection string, reported at its line.
                for f in pg
                    .files()
                    .into_iter()
                    .filter(|f| Some(f) != password_file.as_ref())
                {
                    let shown = Spanned {
                        value: f.display().to_string(),
                        line: database.line,
                        key: database.key.clone(),
                    };
                    ctx.readable_file(&shown);
                }
            }
            location
        }
        Err(e) => {
            ctx.bad(database, e);
            Location::Sqlite(PathBuf::new())
        }
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
    let d = Tags::default();
    let authoritative = tag("authoritative", &d.authoritative);
    let qes_valid = tag("qes_valid", &d.qes_valid);
    let signed_not_qualified = tag("signed_not_qualified", &d.signed_not_qualified);
    let signature_invalid = tag("signature_invalid", &d.signature_invalid);
    let signature_indeterminate = tag("signature_indeterminate", &d.signature_indeterminate);
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
    let default = format!("unix:{DEFAULT_MILTER_SOCKET}");
    let listen = s.string_or(ctx, "listen", &default);
    let listen = convert(ctx, &listen, values::socket)
        .unwrap_or_else(|| SocketSpec::Unix(DEFAULT_MILTER_SOCKET.into()));
    MilterSettings {
        listen,
        metrics: metrics(ctx, s),
    }
}

/// The `metrics` table of a daemon's section: `listen = "host:port"` turns the endpoint on.
pub(super) fn metrics(ctx: &mut Ctx<'_>, s: &Section<'_>) -> Option<MetricsSettings> {
    let t = s.table(ctx, "metrics").found()?;
    let m = Section::open(ctx, t.value, t.key, t.line, METRICS_KEYS);
    let listen = m.string(ctx, "listen").found();
    let Some(listen) = listen else {
        ctx.error(
            m.line,
            m.path.clone(),
            "set listen = \"127.0.0.1:PORT\" or remove the table (no metrics endpoint)",
        );
        return None;
    };
    convert(ctx, &listen, values::host_port)?;
    Some(MetricsSettings {
        listen: listen.value,
    })
}
