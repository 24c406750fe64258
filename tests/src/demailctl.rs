//! Applying `demailctl postfix-config` to a test Postfix, the way an admin does: write the
//! fragments and tables with `--write`, then merge main.cf and master.cf.

use std::path::Path;

use crate::PostfixOptions;
use crate::process;
use crate::tools::cargo_bin;

/// Runs `demailctl --config CONFIG postfix-config --dir TABLES --write` and turns the written
/// `main.cf` and `master.cf` fragments into options for [`crate::Postfix::start`]; the tables
/// stay in `tables_dir` (which must be readable by Postfix's unprivileged processes).
pub fn demailctl_postfix_options(config: &Path, tables_dir: &Path) -> PostfixOptions {
    let bin = cargo_bin("demailctl");
    let config_s = config.to_string_lossy();
    let dir_s = tables_dir.to_string_lossy();
    let out = process::run(
        &bin.to_string_lossy(),
        &[
            "--config",
            &config_s,
            "postfix-config",
            "--dir",
            &dir_s,
            "--write",
        ],
    );
    if !out.status.success() {
        panic!("demailctl postfix-config failed:\n{}", process::text(&out));
    }
    let read = |name: &str| {
        let path = tables_dir.join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("demailctl wrote no readable {}: {e}", path.display()))
    };
    PostfixOptions {
        main_cf: parse_main_cf(&read("main.cf"), "demailctl main.cf"),
        master_cf: read("master.cf").lines().map(str::to_string).collect(),
        ..PostfixOptions::default()
    }
}

/// `key = value` settings of a main.cf fragment, in order. Comments and blank lines are
/// skipped; indented lines continue the previous value, as in main.cf itself.
pub fn parse_main_cf(text: &str, origin: &str) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match settings.last_mut() {
                Some((_, value)) => {
                    if !value.is_empty() {
                        value.push(' ');
                    }
                    value.push_str(trimmed);
                    continue;
                }
                None => panic!("{origin}:{}: continuation line before any setting", n + 1),
            }
        }
        let Some((key, value)) = line.split_once('=') else {
            panic!("{origin}:{}: expected `key = value`, got {line:?}", n + 1);
        };
        settings.push((key.trim().to_string(), value.trim().to_string()));
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_cf_fragment_settings_in_order_with_continuations() {
        let text = "# why\ntransport_maps = texthash:/x/transport\n\nsmtpd_recipient_restrictions =\n  permit_mynetworks,\n\treject\nempty =\n";
        let got = parse_main_cf(text, "t");
        assert_eq!(
            got,
            vec![
                (
                    "transport_maps".to_string(),
                    "texthash:/x/transport".to_string()
                ),
                (
                    "smtpd_recipient_restrictions".into(),
                    "permit_mynetworks, reject".into()
                ),
                ("empty".into(), String::new()),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "t:2: expected `key = value`")]
    fn main_cf_fragment_garbage_names_the_line() {
        parse_main_cf("a = b\nnonsense\n", "t");
    }
}
