//! `[imap_proxy]` and `[imap_proxy.folders]`.

use super::ctx::Ctx;
use super::reader::Section;
use super::reader::{Got, StrOrInt};
use super::sections::{convert, metrics};
use super::values;
use crate::config::{BackendTls, FolderNames, ImapProxySettings, ProxyLimits};

pub(super) const IMAP_PROXY_KEYS: &[&str] = &[
    "listen_imaps",
    "listen_imap",
    "certificate",
    "key",
    "backend",
    "backend_tls",
    "state",
    "folders",
    "backend_ca",
    "max_line_length",
    "max_literal_size",
    "max_connections_per_ip",
    "max_connections_per_login",
    "idle_timeout",
    "metrics",
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
    let backend_ca = s
        .string(ctx, "backend_ca")
        .found()
        .map(|p| ctx.readable_file(&p));
    let size = |ctx: &mut Ctx<'_>, name: &str, default: u64| match s.string_or_integer(ctx, name) {
        Got::Found(v) => match v.value {
            StrOrInt::Str(ref text) => values::size(text)
                .map_err(|e| ctx.bad(&v, e))
                .unwrap_or(default),
            StrOrInt::Int(n) if n > 0 => u64::try_from(n).unwrap_or(default),
            StrOrInt::Int(n) => {
                ctx.bad(&v, format!("must be greater than zero, found {n}"));
                default
            }
        },
        _ => default,
    };
    let limits = ProxyLimits {
        max_line_length: size(ctx, "max_line_length", 64 * 1024).max(1024),
        max_literal_size: size(ctx, "max_literal_size", 100 * 1024 * 1024),
        max_connections_per_ip: size(ctx, "max_connections_per_ip", 100),
        max_connections_per_login: size(ctx, "max_connections_per_login", 20),
        idle_timeout: {
            let t = s.string_or(ctx, "idle_timeout", "30min");
            convert(ctx, &t, values::duration).unwrap_or(std::time::Duration::from_secs(1800))
        },
    };
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
        backend_ca,
        limits,
        metrics: metrics(ctx, s),
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
