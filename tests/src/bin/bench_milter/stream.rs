//! One smtp-source run against one smtpd, timed, and checked afterwards.

use std::process::Command;
use std::time::{Duration, Instant};

use demail_e2e::City;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    WithMilter,
    WithoutMilter,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::WithMilter => "with milter",
            Variant::WithoutMilter => "without milter",
        }
    }
}

/// What smtp-source sends.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    pub messages: usize,
    /// Payload bytes per message (smtp-source -l).
    pub size: u64,
    pub sessions: usize,
    pub from: &'static str,
    pub to: &'static str,
}

pub fn check_tools() -> Result<(), String> {
    match Command::new("smtp-source").arg("-h").output() {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "cannot run smtp-source: {e} (apt-get install postfix)"
        )),
    }
}

/// What one run measured.
pub struct Measured {
    pub mails_per_second: f64,
    /// CPU time the milter process used during the run, per message (with the milter only).
    pub milter_cpu_per_mail: Option<Duration>,
}

/// Sends the stream to 127.0.0.1:`port`. Panics if a message was not accepted or did not end
/// up held (so a fast failure never looks like throughput).
pub fn run(city: &City, s: &Stream, port: u16, variant: Variant) -> Measured {
    let pf = city.postfix();
    let cpu = || city.milter().and_then(|m| m.cpu_time());
    let cpu_before = cpu();
    let recorded_before = match variant {
        Variant::WithMilter => city.submissions().len(),
        Variant::WithoutMilter => 0,
    };
    let start = Instant::now();
    let out = Command::new("smtp-source")
        .args([
            "-s",
            &s.sessions.to_string(),
            "-m",
            &s.messages.to_string(),
            "-l",
            &s.size.to_string(),
            "-f",
            s.from,
            "-t",
            s.to,
            "-S",
            "bench",
            "-M",
            "clerk-pc.example.test",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run smtp-source: {e}"));
    let elapsed = start.elapsed();
    let milter_cpu_per_mail = match (variant, cpu_before, cpu()) {
        (Variant::WithMilter, Some(a), Some(b)) => {
            Some(b.saturating_sub(a) / u32::try_from(s.messages).unwrap_or(u32::MAX))
        }
        _ => None,
    };
    if !out.status.success() {
        panic!(
            "smtp-source ({}) failed: {}{}\n--- maillog tail ---\n{}",
            variant.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&pf.log(), 20)
        );
    }
    let held = pf.queued("hold");
    if held != s.messages {
        panic!(
            "{}: {held} of {} messages held\n--- maillog tail ---\n{}",
            variant.name(),
            s.messages,
            tail(&pf.log(), 20)
        );
    }
    if variant == Variant::WithMilter {
        let recorded = city.submissions().len() - recorded_before;
        if recorded != s.messages {
            panic!(
                "with milter: {recorded} of {} messages recorded",
                s.messages
            );
        }
    }
    pf.delete_all("hold");
    Measured {
        mails_per_second: s.messages as f64 / elapsed.as_secs_f64(),
        milter_cpu_per_mail,
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
