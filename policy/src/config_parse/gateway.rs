//! `[gateway]`: the provider's gateway and the De-Mail domains.

use std::path::PathBuf;

use super::ctx::Ctx;
use super::reader::{Got, Section, StrOrInt};
use super::sections::convert;
use super::values;
use crate::config::{DomainPattern, Gateway, GatewayTls};

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
const DEFAULT_MAX_MESSAGE_SIZE: u64 = 20 << 20;

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
