//! One smtp-source run against one smtpd, timed, and checked afterwards.

use std::process::Command;
use std::time::{Duration, Instant};

use demail_e2e::City;
use demail_e2e::city::{CITIZEN, CLERK, INTERN};
use demail_e2e::procfs;

/// Which milter the smtpd listener the stream goes to has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    DemailMilter,
    NullMilter,
    OpenDkim,
    Bare,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::DemailMilter,
        Variant::NullMilter,
        Variant::OpenDkim,
        Variant::Bare,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::DemailMilter => "demail-milter",
            Variant::NullMilter => "null milter",
            Variant::OpenDkim => "OpenDKIM",
            Variant::Bare => "bare Postfix",
        }
    }
}

/// What kind of mail the stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// From the authorised clerk to a De-Mail recipient: an outbound De-Mail, with the
    /// milter's full work (policy, options, header rewrite, fsynced evidence).
    DeMail,
    /// From an Internet sender to an ordinary address of the city: ordinary mail, which the
    /// milter accepts at end of header.
    Ordinary,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::DeMail => "De-Mail",
            Kind::Ordinary => "ordinary",
        }
    }

    pub fn from(self) -> &'static str {
        match self {
            Kind::DeMail => CLERK,
            Kind::Ordinary => "nachbar@example.org",
        }
    }

    pub fn to(self) -> &'static str {
        match self {
            Kind::DeMail => CITIZEN,
            Kind::Ordinary => INTERN,
        }
    }

    fn helo(self) -> &'static str {
        match self {
            Kind::DeMail => "clerk-pc.example.test",
            Kind::Ordinary => "mail.example.org",
        }
    }
}

/// What smtp-source sends.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    pub kind: Kind,
    pub messages: usize,
    /// Payload bytes per message (smtp-source -l).
    pub size: u64,
    pub sessions: usize,
}

pub fn check_tools() -> Result<(), String> {
    for (tool, args, package) in [
        ("smtp-source", &["-h"][..], "postfix"),
        ("opendkim", &["-V"][..], "opendkim"),
    ] {
        if let Err(e) = Command::new(tool).args(args).output() {
            return Err(format!(
                "cannot run {tool}: {e} (apt-get install {package})"
            ));
        }
    }
    Ok(())
}

/// What one run measured.
pub struct Measured {
    pub mails_per_second: f64,
    /// CPU time the milter process used during the run, per message (None without a milter).
    pub milter_cpu_per_mail: Option<Duration>,
    /// CPU time of Postfix's master and all its processes during the run, per message.
    pub postfix_cpu_per_mail: Option<Duration>,
}

/// Sends the stream to 127.0.0.1:`port`, whose milter (if any) is the process `milter_pid`.
/// Panics if a message was not accepted or did not end up held, or if demail-milter did not
/// record exactly the De-Mails (so a fast failure never looks like throughput).
pub fn run(
    city: &City,
    s: &Stream,
    port: u16,
    variant: Variant,
    milter_pid: Option<u32>,
) -> Measured {
    let pf = city.postfix();
    let master = pf.master_pid().and_then(|p| u32::try_from(p).ok());
    let milter_cpu = || milter_pid.and_then(procfs::cpu_time);
    let postfix_cpu = || master.and_then(procfs::tree_cpu_time);
    let recorded_before = match variant {
        Variant::DemailMilter => city.submissions().len(),
        _ => 0,
    };
    let (milter_before, postfix_before) = (milter_cpu(), postfix_cpu());
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
            s.kind.from(),
            "-t",
            s.kind.to(),
            "-S",
            "bench",
            "-M",
            s.kind.helo(),
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run smtp-source: {e}"));
    let elapsed = start.elapsed();
    let (milter_after, postfix_after) = (milter_cpu(), postfix_cpu());
    let per_mail = |before: Option<Duration>, after: Option<Duration>| {
        let used = after?.checked_sub(before?)?;
        Some(used / u32::try_from(s.messages).unwrap_or(u32::MAX))
    };
    let what = format!("{} stream, {}", s.kind.name(), variant.name());
    if !out.status.success() {
        panic!(
            "smtp-source ({what}) failed: {}{}\n--- maillog tail ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&pf.log(), 20)
        );
    }
    let held = pf.queued("hold");
    if held != s.messages {
        panic!(
            "{what}: {held} of {} messages held\n--- maillog tail ---\n{}",
            s.messages,
            tail(&pf.log(), 20)
        );
    }
    if variant == Variant::DemailMilter {
        let recorded = city.submissions().len() - recorded_before;
        let expected = match s.kind {
            Kind::DeMail => s.messages,
            Kind::Ordinary => 0,
        };
        if recorded != expected {
            panic!("{what}: {recorded} messages recorded as De-Mail, expected {expected}");
        }
    }
    pf.delete_all("hold");
    Measured {
        mails_per_second: s.messages as f64 / elapsed.as_secs_f64(),
        milter_cpu_per_mail: per_mail(milter_before, milter_after),
        postfix_cpu_per_mail: per_mail(postfix_before, postfix_after),
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
