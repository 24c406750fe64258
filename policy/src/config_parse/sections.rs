//! The single-table sections: `[gateway]`, `[inbound]`, `[evidence]`, `[trust]`, `[tags]`,
//! `[milter]`, `[imap_proxy]`.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::{Ctx, Spanned};
use super::reader::{Got, Section, StrOrInt};
use super::values;
use crate::address::parse_addr_spec;
use crate::config::*;

pub(super) const GATEWAY_KEYS: &[&str] = &[
    "host",
    "port",
    "tls",
    "client_certificate",
    "client_key",
    "provider_ca",
    "auth_credentials",
    "domains",
    "max_message_size",
];
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
];
pub(super) const MILTER_KEYS: &[&str] = &["listen"];
pub(super) const IMAP_PROXY_KEYS: &[&str] = &[
    "listen_imaps",
    "listen_imap",
    "certificate",
    "key",
    "backend",
    "backend_tls",
    "state",
    "folders",
];
const FOLDER_KEYS: &[&str] = &[
    "root",
    "dispatch",
    "receipt",
    "retrieve",
    "failed",
    "pending",
    "deemed_served",
];

const DEFAULT_MAX_MESSAGE_SIZE: u64 = 20 << 20;

/// Parses a string value with `parse`, reporting a failure at the value's line.
pub(super) fn convert<T>(
    ctx: &mut Ctx<'_>,
    s: &Spanned<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    parse(&s.value).map_err(|e| ctx.bad(s, e)).ok()
}

/// `[gateway]`; the flag says whether `domains` is usable for cross-checks.
pub(super) fn gateway(ctx: &mut Ctx<'_>, s: &Section<'_>) -> (Gateway, bool) {
    let host = s.req_string(ctx, "host").map(|h| {
        if h.value.is_empty() || h.value.chars().any(|c| c.is_whitespace() || c == '/') {
            ctx.bad(
                &h,
                format!("expected a host name or IP address, found {:?}", h.value),
            );
        }
        h.value
    });
    let port = s.integer(ctx, "port");
    let port = s
        .required(ctx, "port", port)
        .and_then(|p| match u16::try_from(p.value) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                ctx.bad(&p, format!("port must be 1..65535, found {}", p.value));
                None
            }
        });
    let tls = s.req_string(ctx, "tls").and_then(|t| {
        convert(ctx, &t, |v| {
            values::choice(
                v,
                &[
                    ("implicit", GatewayTls::Implicit),
                    ("starttls", GatewayTls::Starttls),
                ],
            )
        })
    });
    let file = |ctx: &mut Ctx<'_>, name: &str| {
        s.req_string(ctx, name)
            .map(|p| ctx.readable_file(&p))
            .unwrap_or_default()
    };
    let client_certificate = file(ctx, "client_certificate");
    let client_key = file(ctx, "client_key");
    let provider_ca = file(ctx, "provider_ca");
    let auth_credentials = s
        .string(ctx, "auth_credentials")
        .found()
        .map(|p| ctx.readable_file(&p));
    let (domains, domains_ok) = domains(ctx, s);
    let max_message_size = match s.string_or_integer(ctx, "max_message_size") {
        Got::Found(v) => match v.value {
            StrOrInt::Str(ref text) => values::size(text).map_err(|e| ctx.bad(&v, e)).ok(),
            StrOrInt::Int(n) if n > 0 => u64::try_from(n).ok(),
            StrOrInt::Int(n) => {
                ctx.bad(&v, format!("size must be greater than zero, found {n}"));
                None
            }
        },
        _ => None,
    };
    let gw = Gateway {
        host: host.unwrap_or_default(),
        port: port.unwrap_or(0),
        tls: tls.unwrap_or(GatewayTls::Implicit),
        client_certificate,
        client_key,
        provider_ca,
        auth_credentials,
        domains,
        max_message_size: max_message_size.unwrap_or(DEFAULT_MAX_MESSAGE_SIZE),
    };
    (gw, domains_ok)
}

/// Stand-in when `[gateway]` is missing (the error is already reported).
pub(super) fn placeholder_gateway() -> Gateway {
    Gateway {
        host: String::new(),
        port: 0,
        tls: GatewayTls::Implicit,
        client_certificate: PathBuf::new(),
        client_key: PathBuf::new(),
        provider_ca: PathBuf::new(),
        auth_credentials: None,
        domains: Vec::new(),
        max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
    }
}

fn domains(ctx: &mut Ctx<'_>, s: &Section<'_>) -> (Vec<DomainPattern>, bool) {
    let got = s.strings(ctx, "domains");
    let Some(list) = s.required(ctx, "domains", got) else {
        return (Vec::new(), false);
    };
    let errors_before = ctx.errors.len();
    if list.value.is_empty() {
        ctx.bad(
            &list,
            "needs at least one De-Mail domain, e.g. [\"*.de-mail.de\"]",
        );
    }
    let patterns: Vec<DomainPattern> = list
        .value
        .iter()
        .filter_map(|d| convert(ctx, d, values::domain_pattern))
        .collect();
    let ok = ctx.errors.len() == errors_before;
    (patterns, ok)
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
    Tags {
        authoritative: tag("authoritative", "[De-Mail absenderbestätigt]"),
        qes_valid: tag("qes_valid", "[QES gültig]"),
        signed_not_qualified: tag("signed_not_qualified", "[signiert, keine QES]"),
        signature_invalid: tag("signature_invalid", "[Signatur ungültig]"),
        signature_indeterminate: tag("signature_indeterminate", "[Signatur unbestimmt]"),
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

/// `[imap_proxy]` (present). `empty` stands in for a missing `[imap_proxy.folders]`.
pub(super) fn imap_proxy(
    ctx: &mut Ctx<'_>,
    s: &Section<'_>,
    empty: &toml_edit::Table,
) -> ImapProxySettings {
    let listen = |ctx: &mut Ctx<'_>, name: &str| {
        let l = s.string(ctx, name).found()?;
        convert(ctx, &l, values::host_port)?;
        Some(l.value)
    };
    let listen_imaps = listen(ctx, "listen_imaps");
    let listen_imap = listen(ctx, "listen_imap");
    if !s.contains("listen_imaps") && !s.contains("listen_imap") {
        ctx.error(
            s.line,
            s.path.clone(),
            "set at least one of listen_imaps (implicit TLS, 993) and listen_imap (STARTTLS, 143)",
        );
    }
    let certificate = s
        .req_string(ctx, "certificate")
        .map(|p| ctx.readable_file(&p))
        .unwrap_or_default();
    let key = s
        .req_string(ctx, "key")
        .map(|p| ctx.readable_file(&p))
        .unwrap_or_default();
    let backend = s.string_or(ctx, "backend", "127.0.0.1:143");
    convert(ctx, &backend, values::host_port);
    let backend_tls = s.string_or(ctx, "backend_tls", "none");
    let backend_tls = convert(ctx, &backend_tls, |v| {
        values::choice(
            v,
            &[
                ("none", BackendTls::None),
                ("starttls", BackendTls::Starttls),
                ("implicit", BackendTls::Implicit),
            ],
        )
    })
    .unwrap_or(BackendTls::None);
    let state = s.string_or(ctx, "state", "/var/lib/demail/proxy-state.sqlite");
    let folders_table = s.table(ctx, "folders").found();
    let folders = match folders_table {
        Some(t) => Section::open(ctx, t.value, t.key, t.line, FOLDER_KEYS),
        None => Section::open(ctx, empty, s.key("folders"), s.line, FOLDER_KEYS),
    };
    ImapProxySettings {
        listen_imaps,
        listen_imap,
        certificate,
        key,
        backend: backend.value,
        backend_tls,
        state: ctx.path(&state),
        folders: folder_names(ctx, &folders),
    }
}

fn folder_names(ctx: &mut Ctx<'_>, s: &Section<'_>) -> FolderNames {
    let mut name = |key: &str, default: &str| {
        let n = s.string_or(ctx, key, default);
        if n.value.is_empty() {
            ctx.bad(&n, "a folder name must not be empty");
        } else if let Some(c) = n
            .value
            .chars()
            .find(|c| c.is_control() || matches!(c, '*' | '%' | '"' | '\\'))
        {
            ctx.bad(
                &n,
                format!("a folder name must not contain {c:?} (IMAP reserves it)"),
            );
        }
        n.value
    };
    FolderNames {
        root: name("root", "De-Mail"),
        dispatch: name("dispatch", "Versandbestätigungen"),
        receipt: name("receipt", "Eingangsbestätigungen"),
        retrieve: name("retrieve", "Abholbestätigungen"),
        failed: name("failed", "Fehlermeldungen"),
        pending: name("pending", "Ausstehend"),
        deemed_served: name("deemed_served", "Zustellfiktion"),
    }
}
