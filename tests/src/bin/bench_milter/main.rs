//! `bench-milter`: Postfix throughput with demail-milter, with a null milter (the milter
//! protocol's floor), with OpenDKIM verifying (the peer) and without any milter (the limit),
//! side by side in one run, for a stream of De-Mails and one of ordinary inbound mail; the
//! CPU each milter and Postfix spend per message; demail-milter's memory with many connections
//! and with one big message. See bench/README.md; run it with bench/milter-throughput.
//!
//! One Postfix (configured by `demailctl postfix-config`) gets one smtpd listener per variant,
//! differing only in `smtpd_milters`. Every message is put on hold by a header check, so
//! delivery does not compete for the CPU. The time is from starting smtp-source until it exits,
//! i.e. until the last message was accepted. Nothing here asserts a time.

mod args;
mod machine;
mod memory;
mod peers;
mod report;
mod stream;

use std::time::Duration;

use demail_e2e::{City, CityOptions, PostfixOptions, free_port};

use args::Args;
use peers::Peers;
use report::Figures;
use stream::{Kind, Stream, Variant};

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

    let peers = Peers::start();
    let bare_port = free_port();
    let null_port = free_port();
    let opendkim_port = free_port();
    let listener = |port: u16, milters: &str| {
        format!("127.0.0.1:{port} inet n - n - - smtpd\n  -o smtpd_milters={milters}")
    };
    let mut city = City::start(CityOptions {
        simulator: false,
        // Room for the big message; Postfix's limit follows.
        max_message_size: (args.big_mib + 8) << 20,
        postfix: PostfixOptions {
            main_cf: vec![
                // Hold everything: the measurement is submission, not delivery.
                ("header_checks".into(), "regexp:{dir}/bench_hold".into()),
                // Inflow control would pace smtpd by qmgr, which never sees held mail.
                ("in_flow_delay".into(), "0".into()),
                // One smtpd per connection: room for the concurrent connections.
                (
                    "default_process_limit".into(),
                    (args.concurrent + 50).to_string(),
                ),
            ],
            master_cf: vec![
                listener(bare_port, ""),
                listener(null_port, &peers.null_addr.listen()),
                listener(opendkim_port, &peers.opendkim_addr.listen()),
            ],
            extra_files: vec![("bench_hold".into(), b"/^Subject: bench/ HOLD\n".to_vec())],
            // Accept mail for the city's own domain (the ordinary stream). Nothing listens
            // there, and nothing is ever delivered: all mail is held.
            lmtp_port: Some(free_port()),
        },
        dir: args.city_dir.clone(),
        ..CityOptions::default()
    });
    for port in [bare_port, null_port, opendkim_port] {
        if let Err(e) = demail_e2e::wait_for_port(port, Duration::from_secs(30)) {
            panic!("the benchmark's smtpd on port {port}: {e}");
        }
    }

    machine::print_header(&args);
    let port = |v: Variant| match v {
        Variant::DemailMilter => city.smtp_port(),
        Variant::NullMilter => null_port,
        Variant::OpenDkim => opendkim_port,
        Variant::Bare => bare_port,
    };
    let milter_pid = |v: Variant| match v {
        Variant::DemailMilter => city.milter().map(|m| m.pid()),
        Variant::NullMilter => Some(peers.null.pid()),
        Variant::OpenDkim => Some(peers.opendkim.pid()),
        Variant::Bare => None,
    };
    let stream = |kind: Kind, messages: usize| Stream {
        kind,
        messages,
        size: args.size,
        sessions: args.sessions,
    };
    let kinds = [Kind::DeMail, Kind::Ordinary];

    if args.warmup > 0 {
        for kind in kinds {
            for v in Variant::ALL {
                stream::run(&city, &stream(kind, args.warmup), port(v), v, milter_pid(v));
            }
        }
        println!("warm-up: {} messages per stream and variant", args.warmup);
    }

    let mut figures = Figures::default();
    for round in 1..=args.rounds {
        for kind in kinds {
            // Rotate which variant goes first, so none always meets the same disk cache.
            let mut order = Variant::ALL;
            order.rotate_left((round - 1) % Variant::ALL.len());
            for v in order {
                let m = stream::run(
                    &city,
                    &stream(kind, args.messages),
                    port(v),
                    v,
                    milter_pid(v),
                );
                report::print_run(round, kind, v, &m);
                figures.add(kind, v, &m);
            }
        }
    }
    let milter = city.milter().expect("the milter runs");
    let stream_peak = milter.peak_rss_kib();
    println!();
    figures.print_and_emit(args.rounds);
    println!(
        "load average at the end  {}",
        demail_e2e::machine::load_average()
    );

    println!();
    let conc = memory::concurrent(&mut city, args.concurrent);
    let big = memory::big_message(&mut city, args.big_mib);
    report::memory(stream_peak, args.concurrent, &conc, args.big_mib, big);
    drop(city);
    drop(peers);
}
