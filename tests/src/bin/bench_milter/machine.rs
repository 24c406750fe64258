//! What the figures were measured on, printed before them.

use std::process::Command;

use crate::args::Args;

pub fn print_header(args: &Args) {
    println!("bench-milter: Postfix with demail-milter, a null milter, OpenDKIM and no milter");
    println!(
        "date          {}",
        command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    println!("kernel        {}", command("uname", &["-sr"]));
    println!("cpu           {} x {}", cores(), cpu_model());
    println!("memory        {}", mem_total());
    println!(
        "load average  {} (other work on the machine adds noise to both variants)",
        load_average()
    );
    println!(
        "postfix       {}",
        command("postconf", &["-dh", "mail_version"])
    );
    println!(
        "build         {}",
        if cfg!(debug_assertions) {
            "debug (numbers are not meaningful)"
        } else {
            "release"
        }
    );
    println!(
        "streams       {} messages of {} bytes payload per run, {} parallel sessions: De-Mails \
         (authorised clerk to a De-Mail recipient) and ordinary inbound mail",
        args.messages, args.size, args.sessions
    );
    println!(
        "rounds        {}; each runs every variant once per stream, rotating the order; medians below",
        args.rounds
    );
    println!();
}

/// KiB as MiB with one decimal, or "?" when unknown.
pub fn mib(kib: Option<u64>) -> String {
    match kib {
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
        None => "?".into(),
    }
}

fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or_else(
            || "?".into(),
            |k| format!("{:.1} GiB", k as f64 / 1024.0 / 1024.0),
        )
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}
