//! Reads `demail.toml` with `toml_edit` (which keeps byte spans) and walks it by hand, so that
//! every problem is reported at once with its line, instead of serde's first-error-only.

mod crosscheck;
mod ctx;
mod gateway;
mod imap_proxy;
mod reader;
mod sections;
mod tenants;
#[cfg(test)]
mod tests;
mod values;

use std::path::Path;

use toml_edit::{Document, Table};

use crate::config::Config;
use crate::error::{ConfigError, ConfigErrors};
use ctx::Ctx;
use gateway::{GATEWAY_KEYS, placeholder_gateway};
use imap_proxy::IMAP_PROXY_KEYS;
use reader::Section;
use sections::*;

const TOP_KEYS: &[&str] = &[
    "gateway",
    "inbound",
    "evidence",
    "trust",
    "tags",
    "milter",
    "imap_proxy",
    "tenant",
];

pub(crate) fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file_error = |message: String| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![ConfigError {
            line: 0,
            key: "file".into(),
            message,
        }],
    };
    let bytes = std::fs::read(path).map_err(|e| file_error(format!("cannot read file: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, path),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            Err(ConfigErrors {
                file: path.to_path_buf(),
                errors: vec![ConfigError {
                    line,
                    key: "encoding".into(),
                    message: "the file is not valid UTF-8".into(),
                }],
            })
        }
    }
}

pub(crate) fn parse(text: &str, source: &Path) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx::new(text, ctx::base_dir(source));
    let doc = match text.parse::<Document<String>>() {
        Ok(doc) => doc,
        Err(e) => {
            let line = ctx.span_line(e.span()).unwrap_or(1);
            ctx.error(
                line,
                "syntax",
                format!("TOML syntax error: {}", e.message().trim()),
            );
            return Err(finish(ctx, source));
        }
    };
    let config = walk(&mut ctx, doc.as_table(), source);
    if ctx.errors.is_empty() {
        Ok(config)
    } else {
        Err(finish(ctx, source))
    }
}

fn finish(ctx: Ctx<'_>, source: &Path) -> ConfigErrors {
    let mut errors = ctx.errors;
    errors.sort_by_key(|e| e.line);
    ConfigErrors {
        file: source.to_path_buf(),
        errors,
    }
}

/// Builds the whole configuration. Values that failed are replaced by placeholders so the walk
/// can go on collecting errors; the result is only returned when there were none.
fn walk(ctx: &mut Ctx<'_>, doc: &Table, source: &Path) -> Config {
    let empty = Table::new();
    let root = Section::open(ctx, doc, String::new(), 1, TOP_KEYS);
    let section = |ctx: &mut Ctx<'_>, name: &str, known: &[&str]| {
        root.table(ctx, name)
            .found()
            .map(|t| Section::open(ctx, t.value, t.key, t.line, known))
    };
    let defaults = |name: &str, known: &[&str], ctx: &mut Ctx<'_>| {
        Section::open(ctx, &empty, name.to_string(), 1, known)
    };

    let (gateway, domains_ok) = match section(ctx, "gateway", GATEWAY_KEYS) {
        Some(s) => gateway::gateway(ctx, &s),
        None => {
            if !root.contains("gateway") {
                ctx.error(1, "gateway", "required section [gateway] is missing");
            }
            (placeholder_gateway(), false)
        }
    };
    let s = section(ctx, "inbound", INBOUND_KEYS)
        .unwrap_or_else(|| defaults("inbound", INBOUND_KEYS, ctx));
    let (inbound, poststelle) = sections::inbound(ctx, &s, &gateway);
    let s = section(ctx, "evidence", EVIDENCE_KEYS)
        .unwrap_or_else(|| defaults("evidence", EVIDENCE_KEYS, ctx));
    let evidence = sections::evidence(ctx, &s);
    let s = section(ctx, "trust", TRUST_KEYS).unwrap_or_else(|| defaults("trust", TRUST_KEYS, ctx));
    let trust = sections::trust(ctx, &s);
    let s = section(ctx, "tags", TAGS_KEYS).unwrap_or_else(|| defaults("tags", TAGS_KEYS, ctx));
    let tags = sections::tags(ctx, &s);
    let s =
        section(ctx, "milter", MILTER_KEYS).unwrap_or_else(|| defaults("milter", MILTER_KEYS, ctx));
    let milter = sections::milter(ctx, &s);
    let imap_proxy = section(ctx, "imap_proxy", IMAP_PROXY_KEYS)
        .map(|s| imap_proxy::imap_proxy(ctx, &s, &empty));

    let mut seen = tenants::Seen::default();
    let tenants = tenants::tenants(ctx, &root, &mut seen);
    seen.not_demail.extend(poststelle);
    crosscheck::run(ctx, &seen, domains_ok.then_some(gateway.domains.as_slice()));

    Config {
        source: std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf()),
        gateway,
        inbound,
        evidence,
        trust,
        tags,
        milter,
        imap_proxy,
        tenants,
    }
}
