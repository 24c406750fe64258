//! The figures: one line per run as it ends, then per stream a table of medians, the ratios
//! against their targets, and the same as result lines (`BENCH_RESULTS`, sections "milter"
//! and "memory").

use std::collections::BTreeMap;
use std::time::Duration;

use demail_e2e::result_lines::{Target, record as emit};

use crate::machine::mib;
use crate::memory::Concurrent;
use crate::stream::{Kind, Measured, Variant};

/// Per stream and variant, the runs' mails/s, milter and Postfix CPU per message (µs).
#[derive(Default)]
pub struct Figures {
    runs: BTreeMap<(usize, usize), Runs>,
}

#[derive(Default)]
struct Runs {
    rate: Vec<f64>,
    milter_us: Vec<f64>,
    postfix_us: Vec<f64>,
}

fn key(kind: Kind, v: Variant) -> (usize, usize) {
    let k = match kind {
        Kind::DeMail => 0,
        Kind::Ordinary => 1,
    };
    let v = Variant::ALL.iter().position(|&x| x == v).unwrap_or(0);
    (k, v)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn print_run(round: usize, kind: Kind, v: Variant, m: &Measured) {
    let cpu =
        |d: Option<Duration>| d.map_or_else(|| "-".to_string(), |d| format!("{:.0}", micros(d)));
    println!(
        "round {round}  {:<8} {:<14} {:>8.1} mails/s   milter CPU {:>6} us/mail   Postfix CPU {:>6} us/mail",
        kind.name(),
        v.name(),
        m.mails_per_second,
        cpu(m.milter_cpu_per_mail),
        cpu(m.postfix_cpu_per_mail),
    );
}

impl Figures {
    pub fn add(&mut self, kind: Kind, v: Variant, m: &Measured) {
        let r = self.runs.entry(key(kind, v)).or_default();
        r.rate.push(m.mails_per_second);
        if let Some(c) = m.milter_cpu_per_mail {
            r.milter_us.push(micros(c));
        }
        if let Some(c) = m.postfix_cpu_per_mail {
            r.postfix_us.push(micros(c));
        }
    }

    fn median_of(&self, kind: Kind, v: Variant, f: impl Fn(&Runs) -> &Vec<f64>) -> f64 {
        self.runs
            .get(&key(kind, v))
            .map_or(f64::NAN, |r| median(f(r)))
    }

    pub fn print_and_emit(&self, rounds: usize) {
        for kind in [Kind::DeMail, Kind::Ordinary] {
            println!(
                "{} stream ({} -> {}), medians of {rounds} round(s)",
                kind.name(),
                kind.from(),
                kind.to()
            );
            println!(
                "  {:<14} {:>10} {:>22} {:>24}",
                "variant", "mails/s", "milter CPU us/mail", "Postfix CPU us/mail"
            );
            for v in Variant::ALL {
                let rate = self.median_of(kind, v, |r| &r.rate);
                let milter = self.median_of(kind, v, |r| &r.milter_us);
                let postfix = self.median_of(kind, v, |r| &r.postfix_us);
                let shown = |x: f64| {
                    if x.is_nan() {
                        "-".into()
                    } else {
                        format!("{x:.0}")
                    }
                };
                println!(
                    "  {:<14} {rate:>10.1} {:>22} {:>24}",
                    v.name(),
                    shown(milter),
                    shown(postfix)
                );
                let stream = format!("{} stream", kind.name());
                emit(
                    "milter",
                    &format!("{stream}, {}", v.name()),
                    round1(rate),
                    "mails/s",
                    None,
                );
                if v != Variant::Bare {
                    let target = (v == Variant::DemailMilter && kind == Kind::DeMail)
                        .then_some(Target::at_most(0.5));
                    emit(
                        "milter",
                        &format!("{stream}, {} CPU per message", v.name()),
                        round3(milter / 1000.0),
                        "ms",
                        target,
                    );
                }
                emit(
                    "milter",
                    &format!("{stream}, Postfix CPU per message with {}", v.name()),
                    round3(postfix / 1000.0),
                    "ms",
                    None,
                );
            }
            let ratios: &[(Variant, Option<Target>)] = match kind {
                Kind::DeMail => &[
                    (Variant::Bare, Some(Target::at_least(0.5))),
                    (Variant::OpenDkim, Some(Target::at_least(2.0))),
                    (Variant::NullMilter, None),
                ],
                Kind::Ordinary => &[
                    (Variant::Bare, Some(Target::at_least(0.8))),
                    (Variant::NullMilter, None),
                ],
            };
            let ours = self.median_of(kind, Variant::DemailMilter, |r| &r.rate);
            for &(other, target) in ratios {
                let ratio = ours / self.median_of(kind, other, |r| &r.rate);
                let verdict = match target {
                    Some(t) if t.met(ratio) => format!("target {}: met", t.text("ratio")),
                    Some(t) => format!("target {}: NOT met", t.text("ratio")),
                    None => "no target".into(),
                };
                let name = format!("{} stream, demail-milter / {}", kind.name(), other.name());
                println!("  {name:<46} {ratio:>7.3}   ({verdict})");
                emit("milter", &name, round3(ratio), "ratio", target);
            }
            let cpu = self.median_of(kind, Variant::DemailMilter, |r| &r.milter_us);
            if kind == Kind::DeMail {
                let t = Target::at_most(0.5);
                println!(
                    "  demail-milter CPU per De-Mail {:>24.3} ms (target {}: {})",
                    cpu / 1000.0,
                    t.text("ms"),
                    if t.met(cpu / 1000.0) {
                        "met"
                    } else {
                        "NOT met"
                    }
                );
            }
            println!();
        }
    }
}

pub fn memory(
    stream_peak: Option<u64>,
    n: usize,
    conc: &Concurrent,
    big_mib: u64,
    big: (Option<u64>, Option<u64>, f64),
) {
    println!(
        "demail-milter peak RSS over the stream runs      {}",
        mib(stream_peak)
    );
    emit(
        "memory",
        "demail-milter peak RSS over the stream runs",
        mib_value(stream_peak),
        "MiB",
        None,
    );
    println!(
        "fresh demail-milter, {n} SMTP connections at once: {} of them held in DATA; RSS {} before, {} with them (peak {})",
        conc.in_data,
        mib(conc.idle_kib),
        mib(conc.rss_kib),
        mib(conc.peak_kib)
    );
    if let Some(f) = &conc.first_failure {
        println!(
            "  {} did not reach DATA, so the RSS is for {} connections; the first: {f}",
            n - conc.in_data,
            conc.in_data
        );
    }
    emit(
        "memory",
        &format!("demail-milter SMTP connections held in DATA of {n} opened at once"),
        conc.in_data as f64,
        "connections",
        None,
    );
    emit(
        "memory",
        &format!("demail-milter peak RSS with {n} concurrent connections in DATA"),
        mib_value(conc.peak_kib),
        "MiB",
        None,
    );
    let (idle, peak, seconds) = big;
    let target = Target::below(64.0);
    let peak_mib = mib_value(peak);
    println!(
        "fresh demail-milter, one {big_mib} MiB message ({seconds:.1} s): RSS {} before, peak {} (target {}: {})",
        mib(idle),
        mib(peak),
        target.text("MiB"),
        if target.met(peak_mib) {
            "met"
        } else {
            "NOT met"
        }
    );
    emit(
        "memory",
        &format!("demail-milter peak RSS, one {big_mib} MB message"),
        peak_mib,
        "MiB",
        Some(target),
    );
}

fn mib_value(kib: Option<u64>) -> f64 {
    kib.map_or(f64::NAN, |k| (k as f64 / 1024.0 * 10.0).round() / 10.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
