//! What the figures were measured on, printed before them.

use demail_e2e::machine::{command, cpu_model, load_average, mem_total};

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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}
