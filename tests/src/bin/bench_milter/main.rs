//! `bench-milter`: Postfix throughput with and without demail-milter, side by side in one run,
//! and the milter's peak memory. See bench/README.md; run it with bench/milter-throughput.
//!
//! One Postfix (configured by `demailctl postfix-config`) gets two smtpd listeners that differ
//! only in `smtpd_milters`. The same smtp-source stream (De-Mail recipients, from the
//! authorised clerk, so the milter does its full work including the fsynced evidence) goes to
//! each in turn, alternating, several rounds; every message is put on hold by a header check,
//! so delivery does not compete for the CPU. The time is from starting smtp-source until it
//! exits, i.e. until the last message was accepted. Nothing here asserts a time.

mod args;
mod machine;
mod stream;

use std::time::Duration;

use demail_e2e::city::{CITIZEN, CLERK};
use demail_e2e::{City, CityOptions, PostfixOptions, free_port};

use args::Args;
use stream::{Stream, Variant};

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-milter: {e}\n\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    if let Err(e) = stream::check_tools() {
        eprintln!("bench-milter: {e}");
        std::process::exit(1);
    }

    let plain_port = free_port();
    let city = City::start(CityOptions {
        simulator: false,
        // Room for the big message; Postfix's limit follows.
        max_message_size: (args.big_mib + 8) << 20,
        postfix: PostfixOptions {
            main_cf: vec![
                // Hold everything: the measurement is submission, not delivery.
                ("header_checks".into(), "regexp:{dir}/bench_hold".into()),
                // Inflow control would pace smtpd by qmgr, which never sees held mail.
                ("in_flow_delay".into(), "0".into()),
            ],
            master_cf: vec![format!(
                "127.0.0.1:{plain_port} inet n - n - - smtpd\n  -o smtpd_milters="
            )],
            extra_files: vec![("bench_hold".into(), b"/^Subject: bench/ HOLD\n".to_vec())],
            ..PostfixOptions::default()
        },
        dir: args.city_dir.clone(),
        ..CityOptions::default()
    });
    if let Err(e) = demail_e2e::wait_for_port(plain_port, Duration::from_secs(30)) {
        panic!("the smtpd without milter: {e}");
    }

    machine::print_header(&args);
    let stream = Stream {
        messages: args.messages,
        size: args.size,
        sessions: args.sessions,
        from: CLERK,
        to: CITIZEN,
    };
    let ports = |v: Variant| match v {
        Variant::WithMilter => city.smtp_port(),
        Variant::WithoutMilter => plain_port,
    };

    if args.warmup > 0 {
        for v in [Variant::WithMilter, Variant::WithoutMilter] {
            let warm = Stream {
                messages: args.warmup,
                ..stream
            };
            stream::run(&city, &warm, ports(v), v);
        }
        println!("warm-up: {} messages each way", args.warmup);
    }

    let mut with = Vec::new();
    let mut without = Vec::new();
    let mut cpu = Vec::new();
    for round in 1..=args.rounds {
        // Alternate which goes first, so neither always meets a fuller disk cache.
        let order = if round % 2 == 1 {
            [Variant::WithMilter, Variant::WithoutMilter]
        } else {
            [Variant::WithoutMilter, Variant::WithMilter]
        };
        for v in order {
            let m = stream::run(&city, &stream, ports(v), v);
            let rate = m.mails_per_second;
            match m.milter_cpu_per_mail {
                Some(c) => {
                    println!(
                        "round {round}  {:<15} {rate:>8.1} mails/s   milter CPU {:>6} us/mail",
                        v.name(),
                        c.as_micros()
                    );
                    cpu.push(c.as_secs_f64() * 1e6);
                }
                None => println!("round {round}  {:<15} {rate:>8.1} mails/s", v.name()),
            }
            match v {
                Variant::WithMilter => with.push(rate),
                Variant::WithoutMilter => without.push(rate),
            }
        }
    }
    let (mw, mo) = (median(&mut with), median(&mut without));
    println!();
    println!("median with milter      {mw:>8.1} mails/s");
    println!("median without milter   {mo:>8.1} mails/s");
    println!("ratio with/without      {:>8.3} (target >= 0.95)", mw / mo);
    println!(
        "milter CPU per mail     {:>8.0} us (median)",
        median(&mut cpu)
    );
    let milter = city.milter().expect("the milter runs");
    println!(
        "milter peak RSS over the stream runs   {}",
        machine::mib(milter.peak_rss_kib())
    );
    println!("load average at the end {}", machine::load_average());

    big_message(city, &args);
}

/// A fresh milter process takes one big message; its peak RSS is the figure.
fn big_message(mut city: City, args: &Args) {
    city.stop_milter();
    let idle = city.start_milter().peak_rss_kib();
    let big = Stream {
        messages: 1,
        size: args.big_mib << 20,
        sessions: 1,
        from: CLERK,
        to: CITIZEN,
    };
    let port = city.smtp_port();
    let rate = stream::run(&city, &big, port, Variant::WithMilter).mails_per_second;
    let milter = city.milter().expect("the milter runs");
    println!(
        "milter peak RSS, fresh process          {} before, {} after one {} MiB message ({:.1} s, target < 64 MiB)",
        machine::mib(idle),
        machine::mib(milter.peak_rss_kib()),
        args.big_mib,
        1.0 / rate
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
