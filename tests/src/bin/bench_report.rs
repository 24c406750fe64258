//! `bench-report`: what `bench/run` uses to describe the machine and to turn the benchmarks'
//! result lines (JSON Lines, see `demail_e2e::result_lines`) into bench/RESULTS.md.
//!
//! Lines it reads besides the figures, all written by bench/run:
//! `{"plan": {"mode", "command", "sections"}}`, one `{"context": "before"|"after", ...}` from
//! `bench-report context` at each end, and per benchmark
//! `{"benchmark", "command", "sections", "exit", "seconds", "log"}`.

use demail_e2e::machine::{command, cpu_model, load_average, mem_total};
use demail_e2e::result_lines::{Figure, Target};
use serde_json::{Value, json};
use std::fmt::Write as _;

const USAGE: &str = "\
Usage: bench-report context before|after
       bench-report prefilled EMPTY.jsonl PREFILLED.jsonl RECORDS
       bench-report render RESULTS.jsonl

  context    prints one line: date, load average, machine and versions
  prefilled  prints result lines (section evidence) comparing the milter benchmark's mails/s
             with a store prefilled with RECORDS records (PREFILLED) against an empty one
  render     prints bench/RESULTS.md for the result lines in the file";

/// The sections in the order RESULTS.md shows them, with their headings.
const SECTIONS: [(&str, &str); 6] = [
    (
        "milter",
        "Milter: Postfix with demail-milter, its peers and limits",
    ),
    ("qes", "QES verification"),
    ("proxy", "IMAP proxy"),
    ("evidence", "Evidence store"),
    ("memory", "Memory"),
    ("postgres", "PostgreSQL"),
];

/// The ratio a milter throughput must keep with a full store (issue 11: must not degrade).
const PREFILLED_TARGET: f64 = 0.9;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["context", when @ ("before" | "after")] => {
            println!("{}", context(when));
            Ok(())
        }
        ["prefilled", empty, full, records] => prefilled_cmd(empty, full, records),
        ["render", path] => read(path).map(|text| {
            let input = Input::parse(&text);
            print!("{}", render(&input, &|p: &str| log_tail(p, 25)));
        }),
        _ => Err(format!("bad arguments {args:?}\n\n{USAGE}")),
    };
    if let Err(e) = result {
        eprintln!("bench-report: {e}");
        std::process::exit(2);
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn prefilled_cmd(empty: &str, full: &str, records: &str) -> Result<(), String> {
    let records: u64 = records
        .parse()
        .map_err(|_| format!("RECORDS: {records:?} is not a whole number"))?;
    let empty = Input::parse(&read(empty)?).figures;
    let full = Input::parse(&read(full)?).figures;
    let lines = prefilled(&empty, &full, records);
    if lines.is_empty() {
        eprintln!("bench-report: no milter mails/s figure in both runs to compare");
    }
    for f in lines {
        println!("{}", f.to_json());
    }
    Ok(())
}

/// For every mails/s figure of the milter section in both runs: the one with the full store,
/// and its ratio to the empty store's. Only the variants that write evidence (demail-milter)
/// have the target; bare Postfix and the peers do not touch the store, so their ratios show
/// how far the two runs differ by noise alone.
fn prefilled(empty: &[Figure], full: &[Figure], records: u64) -> Vec<Figure> {
    let n = thousands(records);
    let mut out = Vec::new();
    for f in full
        .iter()
        .filter(|f| f.section == "milter" && f.unit == "mails/s")
    {
        let Some(e) = empty
            .iter()
            .find(|e| e.section == "milter" && e.unit == "mails/s" && e.name == f.name)
        else {
            continue;
        };
        let lower = f.name.to_lowercase();
        let ours = lower.contains("demail-milter") || lower.contains("with milter");
        out.push(Figure::new(
            "evidence",
            &format!("{}, store with {n} records", f.name),
            f.value,
            "mails/s",
            None,
        ));
        out.push(Figure::new(
            "evidence",
            &format!("{}: store with {n} records / empty store", f.name),
            f.value / e.value,
            "ratio",
            ours.then(|| Target::at_least(PREFILLED_TARGET)),
        ));
    }
    out
}

/// Date, load average and, before the run, the machine and the versions that matter.
fn context(when: &str) -> Value {
    let mut v = json!({
        "context": when,
        "date": command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        "load": load_average(),
    });
    if when == "before" {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        v["machine"] = json!([
            ["CPU", format!("{} ({cores} cores)", cpu_model())],
            ["RAM", mem_total()],
            ["Kernel", command("uname", &["-sr"])],
        ]);
        let opendkim = command("opendkim", &["-V"]);
        v["versions"] = json!([
            ["rustc", command("rustc", &["--version"])],
            ["Postfix", command("postconf", &["-dh", "mail_version"])],
            ["Dovecot", command("dovecot", &["--version"])],
            ["OpenSSL", openssl::version::version()],
            [
                "OpenDKIM",
                if opendkim == "?" {
                    "not installed".to_string()
                } else {
                    opendkim.lines().next().unwrap_or("?").to_string()
                }
            ],
            ["SQLite (bundled)", rusqlite::version()],
        ]);
    }
    v
}

fn log_tail(path: &str, n: usize) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    Some(lines[lines.len().saturating_sub(n)..].join("\n"))
}

#[derive(Debug, Default)]
struct Plan {
    mode: String,
    command: String,
    sections: Vec<String>,
}

#[derive(Debug)]
struct Context {
    when: String,
    date: String,
    load: String,
    machine: Vec<(String, String)>,
    versions: Vec<(String, String)>,
}

#[derive(Debug)]
struct Run {
    benchmark: String,
    command: String,
    sections: Vec<String>,
    exit: i64,
    seconds: f64,
    log: Option<String>,
}

#[derive(Debug, Default)]
struct Input {
    plan: Option<Plan>,
    contexts: Vec<Context>,
    runs: Vec<Run>,
    figures: Vec<Figure>,
    /// Lines that could not be read, with why: shown, never dropped.
    bad: Vec<String>,
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("?").to_string()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_str()?.into(), p.get(1)?.as_str()?.into())))
                .collect()
        })
        .unwrap_or_default()
}

impl Input {
    fn parse(text: &str) -> Input {
        let mut input = Input::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    input.bad.push(format!("line {}: {e}: {line}", i + 1));
                    continue;
                }
            };
            if let Some(p) = v.get("plan") {
                input.plan = Some(Plan {
                    mode: str_of(p, "mode"),
                    command: str_of(p, "command"),
                    sections: strings(p.get("sections")),
                });
            } else if v.get("context").is_some() {
                input.contexts.push(Context {
                    when: str_of(&v, "context"),
                    date: str_of(&v, "date"),
                    load: str_of(&v, "load"),
                    machine: pairs(v.get("machine")),
                    versions: pairs(v.get("versions")),
                });
            } else if v.get("benchmark").is_some() {
                match v.get("exit").and_then(Value::as_i64) {
                    Some(exit) => input.runs.push(Run {
                        benchmark: str_of(&v, "benchmark"),
                        command: str_of(&v, "command"),
                        sections: strings(v.get("sections")),
                        exit,
                        seconds: v.get("seconds").and_then(Value::as_f64).unwrap_or(0.0),
                        log: v.get("log").and_then(Value::as_str).map(str::to_string),
                    }),
                    None => input
                        .bad
                        .push(format!("line {}: benchmark without exit: {line}", i + 1)),
                }
            } else {
                match Figure::from_json(&v) {
                    Ok(f) => input.figures.push(f),
                    Err(e) => input.bad.push(format!("line {}: {e}: {line}", i + 1)),
                }
            }
        }
        input
    }

    /// The plan's sections, else the known ones with something in them; then any other
    /// section a figure names.
    fn sections(&self) -> Vec<String> {
        let mut out: Vec<String> = match &self.plan {
            Some(p) => p.sections.clone(),
            None => SECTIONS
                .iter()
                .map(|(s, _)| s.to_string())
                .filter(|s| {
                    self.figures.iter().any(|f| &f.section == s)
                        || self.runs.iter().any(|r| r.sections.contains(s))
                })
                .collect(),
        };
        for f in &self.figures {
            if !out.contains(&f.section) {
                out.push(f.section.clone());
            }
        }
        out
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn value_text(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if unit == "ratio" {
        format!("{v:.3}")
    } else if a >= 1000.0 && v.fract() == 0.0 && a < 1e15 {
        thousands(a as u64)
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn duration_text(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// Table cells must not break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn render(input: &Input, tail: &dyn Fn(&str) -> Option<String>) -> String {
    let mut md = String::from("# Benchmark results\n\n");
    let before = input.contexts.iter().find(|c| c.when == "before");
    let after = input.contexts.iter().rev().find(|c| c.when == "after");
    let plan = input.plan.as_ref();
    let _ = write!(
        md,
        "Written by `{}` on {}",
        plan.map_or("bench/run", |p| p.command.as_str()),
        before.map_or("?", |c| c.date.as_str())
    );
    let total: f64 = input.runs.iter().map(|r| r.seconds).sum();
    let _ = writeln!(md, "; the benchmarks took {}.", duration_text(total));
    if plan.is_some_and(|p| p.mode == "quick") {
        md.push_str(
            "A quick run (small sizes, one round): for a look; the targets are judged on a \
             full run.\n",
        );
    }
    md.push_str(
        "\nEach benchmark runs its variants side by side in one run, alternating in rounds, and \
         reports medians; peers and limits stand beside the figures with a target (target \
         \"—\"), measured in the same run. Do not edit by hand: `bench/run` writes this file.\n\n",
    );

    let judged: Vec<&Figure> = input.figures.iter().filter(|f| f.met.is_some()).collect();
    let met = judged.iter().filter(|f| f.met == Some(true)).count();
    let failed: Vec<&Run> = input.runs.iter().filter(|r| r.exit != 0).collect();
    let _ = write!(
        md,
        "**Summary:** {} figures with a target: {met} met, {} not met.",
        judged.len(),
        judged.len() - met
    );
    if failed.is_empty() {
        md.push_str(" No benchmark failed.\n\n");
    } else {
        let names: Vec<&str> = failed.iter().map(|r| r.benchmark.as_str()).collect();
        let _ = writeln!(
            md,
            " **{} benchmark(s) failed: {}** (see Failures).\n",
            failed.len(),
            names.join(", ")
        );
    }

    md.push_str("## Machine\n\n| | |\n|---|---|\n");
    for (k, v) in before.map(|c| c.machine.as_slice()).unwrap_or_default() {
        let _ = writeln!(md, "| {} | {} |", cell(k), cell(v));
    }
    let _ = writeln!(
        md,
        "| Load average (1, 5, 15 min) | before {}; after {} |",
        before.map_or("?", |c| c.load.as_str()),
        after.map_or("?", |c| c.load.as_str())
    );
    for (k, v) in before.map(|c| c.versions.as_slice()).unwrap_or_default() {
        let _ = writeln!(md, "| {} | {} |", cell(k), cell(v));
    }
    let _ = writeln!(
        md,
        "| Date | {} to {} |\n",
        before.map_or("?", |c| c.date.as_str()),
        after.map_or("?", |c| c.date.as_str())
    );

    md.push_str("## Benchmarks run\n\n| benchmark | command | sections | result | time |\n");
    md.push_str("|---|---|---|---|---|\n");
    for r in &input.runs {
        let result = if r.exit == 0 {
            "ok".to_string()
        } else {
            format!("**failed** (exit {})", r.exit)
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {result} | {} |",
            cell(&r.benchmark),
            cell(&r.command),
            r.sections.join(", "),
            duration_text(r.seconds)
        );
    }
    md.push('\n');

    for section in input.sections() {
        let heading = SECTIONS
            .iter()
            .find(|(s, _)| *s == section)
            .map_or(section.as_str(), |(_, h)| h);
        let _ = writeln!(md, "## {heading} (`{section}`)\n");
        for r in failed.iter().filter(|r| r.sections.contains(&section)) {
            let _ = writeln!(
                md,
                "**`{}` failed** (exit {}): its figures here are missing or incomplete.\n",
                r.benchmark, r.exit
            );
        }
        let figures: Vec<&Figure> = input
            .figures
            .iter()
            .filter(|f| f.section == section)
            .collect();
        if figures.is_empty() {
            md.push_str("No figures reported.\n\n");
            continue;
        }
        md.push_str("| figure | value | unit | target | met |\n|---|---|---|---|---|\n");
        for f in figures {
            let met = match f.met {
                Some(true) => "met",
                Some(false) => "**not met**",
                None if f.target.is_some() => "?",
                None => "—",
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {met} |",
                cell(&f.name),
                value_text(f.value, &f.unit),
                cell(&f.unit),
                f.target.as_deref().map_or("—".into(), cell)
            );
        }
        md.push('\n');
    }

    if !failed.is_empty() {
        md.push_str("## Failures\n\n");
        for r in &failed {
            let _ = writeln!(
                md,
                "### {} (exit {} after {})\n\n`{}`",
                r.benchmark,
                r.exit,
                duration_text(r.seconds),
                r.command
            );
            match r.log.as_deref().and_then(|p| Some((p, tail(p)?))) {
                Some((path, text)) => {
                    let _ = writeln!(md, "; the end of its log ({path}):\n\n```\n{text}\n```\n");
                }
                None => md.push_str("; no log kept.\n\n"),
            }
        }
    }
    if !input.bad.is_empty() {
        md.push_str("## Lines that could not be read\n\n```\n");
        for b in &input.bad {
            let _ = writeln!(md, "{b}");
        }
        md.push_str("```\n");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(v: Value) -> String {
        format!("{v}\n")
    }

    fn sample() -> String {
        let mut s = line(json!({"plan": {"mode": "full", "command": "bench/run",
            "sections": ["milter", "qes", "proxy", "memory"]}}));
        s += &line(json!({"context": "before", "date": "2026-12-03 17:00 UTC",
            "load": "0.5 0.4 0.3", "machine": [["CPU", "Test CPU (2 cores)"]],
            "versions": [["Postfix", "3.7.11"]]}));
        s += &line(
            Figure::new(
                "milter",
                "De-Mail stream, demail-milter / bare Postfix",
                0.41,
                "ratio",
                Some(Target::at_least(0.5)),
            )
            .to_json(),
        );
        s += &line(Figure::new("milter", "bare Postfix", 1340.0, "mails/s", None).to_json());
        s += &line(
            Figure::new(
                "qes",
                "verify_mail / floor",
                0.6,
                "ratio",
                Some(Target::at_least(0.5)),
            )
            .to_json(),
        );
        s += &line(
            json!({"benchmark": "milter-throughput", "command": "bench/milter-throughput",
            "sections": ["milter", "memory"], "exit": 0, "seconds": 130.4, "log": "/x/m.log"}),
        );
        s += &line(
            json!({"benchmark": "imap-proxy", "command": "bench/imap-proxy",
            "sections": ["proxy", "memory"], "exit": 101, "seconds": 12, "log": "/x/p.log"}),
        );
        s += &line(json!({"context": "after", "date": "2026-12-03 17:20 UTC",
            "load": "2.5 1.4 0.9"}));
        s
    }

    fn rendered(text: &str) -> String {
        render(&Input::parse(text), &|p: &str| {
            (p == "/x/p.log").then(|| "thread 'main' panicked at: Dovecot did not start".into())
        })
    }

    #[test]
    fn met_and_not_met_beside_peers() {
        let md = rendered(&sample());
        assert!(md.contains(
            "| De-Mail stream, demail-milter / bare Postfix | 0.410 | ratio | >= 0.5 | **not met** |"
        ));
        assert!(md.contains("| verify_mail / floor | 0.600 | ratio | >= 0.5 | met |"));
        assert!(md.contains("| bare Postfix | 1,340 | mails/s | — | — |"));
        assert!(md.contains("2 figures with a target: 1 met, 1 not met."));
        assert!(
            md.contains("| Load average (1, 5, 15 min) | before 0.5 0.4 0.3; after 2.5 1.4 0.9 |")
        );
        assert!(md.contains("| CPU | Test CPU (2 cores) |"));
        assert!(md.contains("| Postfix | 3.7.11 |"));
    }

    #[test]
    fn a_failed_benchmark_is_reported_not_left_out() {
        let md = rendered(&sample());
        assert!(md.contains("**1 benchmark(s) failed: imap-proxy**"));
        assert!(md.contains(
            "| imap-proxy | `bench/imap-proxy` | proxy, memory | **failed** (exit 101) | 12 s |"
        ));
        let proxy = md
            .split("## IMAP proxy (`proxy`)")
            .nth(1)
            .expect("proxy section");
        let proxy = proxy.split("\n## ").next().unwrap_or_default();
        assert!(
            proxy.contains("**`imap-proxy` failed** (exit 101)"),
            "{proxy}"
        );
        assert!(proxy.contains("No figures reported."), "{proxy}");
        assert!(md.contains("Dovecot did not start"));
        // Sections without lines say so; the memory section also names the failed benchmark.
        let memory = md
            .split("## Memory (`memory`)")
            .nth(1)
            .expect("memory section");
        assert!(memory.contains("No figures reported."));
        assert!(memory.contains("`imap-proxy` failed"));
        assert!(!md.contains("## Evidence store"), "not in the plan");
    }

    #[test]
    fn missing_target_and_missing_met() {
        let mut s = sample();
        s += &line(
            json!({"section": "proxy", "name": "RSS per idle session", "value": 42.5,
            "unit": "KiB", "target": null, "met": null}),
        );
        // `met` left out: computed from a target it can read; "?" for one it cannot.
        s += &line(
            json!({"section": "memory", "name": "50 MiB message, peak RSS",
            "value": 9.5, "unit": "MiB", "target": "< 64 MiB"}),
        );
        s += &line(
            json!({"section": "memory", "name": "odd", "value": 1, "unit": "s",
            "target": "about a second"}),
        );
        s += "not json\n";
        let md = rendered(&s);
        assert!(md.contains("| RSS per idle session | 42.50 | KiB | — | — |"));
        assert!(md.contains("| 50 MiB message, peak RSS | 9.50 | MiB | < 64 MiB | met |"));
        assert!(md.contains("| odd | 1.00 | s | about a second | ? |"));
        assert!(md.contains("## Lines that could not be read"));
        assert!(md.contains("line 12:"));
    }

    #[test]
    fn without_a_plan_the_sections_follow_the_lines() {
        let f = Figure::new("evidence", "verify", 2.0, "s", None);
        let md = rendered(&line(f.to_json()));
        assert!(md.contains("## Evidence store (`evidence`)"));
        assert!(!md.contains("## Milter"));
        assert!(md.contains("No benchmark failed."));
    }

    #[test]
    fn the_prefilled_store_is_compared_per_variant() {
        let empty = vec![
            Figure::new(
                "milter",
                "De-Mail stream, demail-milter",
                400.0,
                "mails/s",
                None,
            ),
            Figure::new(
                "milter",
                "De-Mail stream, bare Postfix",
                1300.0,
                "mails/s",
                None,
            ),
            Figure::new("milter", "milter CPU per De-Mail", 1.4, "ms", None),
        ];
        let full = vec![
            Figure::new(
                "milter",
                "De-Mail stream, demail-milter",
                340.0,
                "mails/s",
                None,
            ),
            Figure::new(
                "milter",
                "De-Mail stream, bare Postfix",
                1320.0,
                "mails/s",
                None,
            ),
            Figure::new("milter", "only in this run", 10.0, "mails/s", None),
        ];
        let out = prefilled(&empty, &full, 1_000_000);
        assert_eq!(out.len(), 4, "{out:?}");
        let ours = &out[1];
        assert_eq!(
            ours.name,
            "De-Mail stream, demail-milter: store with 1,000,000 records / empty store"
        );
        assert!((ours.value - 0.85).abs() < 1e-9);
        assert_eq!(ours.target.as_deref(), Some(">= 0.9"));
        assert_eq!(ours.met, Some(false));
        assert_eq!(out[3].target, None, "bare Postfix has no target");
        assert!(out.iter().all(|f| f.section == "evidence"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(value_text(3100.0, "verifications/s"), "3,100");
        assert_eq!(value_text(355.26, "mails/s"), "355.3");
        assert_eq!(value_text(0.0351, "ms"), "0.035");
        assert_eq!(value_text(1.0, "ratio"), "1.000");
        assert_eq!(duration_text(130.4), "2 min 10 s");
    }
}
