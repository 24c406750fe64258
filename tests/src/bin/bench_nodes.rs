//! bench-nodes: the milter's De-Mail throughput with its evidence on SQLite and on PostgreSQL,
//! and two gateway nodes against one on the same PostgreSQL store, side by side in one run
//! (see bench/README.md, "nodes"). Every De-Mail is recorded by a milter and then held by
//! Postfix: the figure is submission with evidence, not delivery.

use std::path::PathBuf;
use std::thread;
use std::time::Instant;

use demail_e2e::city::Node;
use demail_e2e::load::submit;
use demail_e2e::postgres::GATEWAY;
use demail_e2e::result_lines::record;
use demail_e2e::{City, CityOptions, PgServer, PostfixOptions};
use demail_evidence::{Location, Store};

const USAGE: &str = "\
Usage: bench-nodes [--messages N] [--sessions N] [--rounds N]

  --messages N  De-Mails per run and variant (default 600)
  --sessions N  parallel SMTP clients; with two nodes half go to each (default 16)
  --rounds N    rounds, the variants' order rotating; medians are reported (default 3)

Needs root (Postfix; PostgreSQL runs as the postgres user). bench/nodes builds the release
binaries first.";

struct Args {
    messages: usize,
    sessions: usize,
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        messages: 600,
        sessions: 16,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<usize, String> {
            let v = it.next().ok_or(format!("{flag} needs a number"))?;
            match v.parse() {
                Ok(0) | Err(_) => Err(format!("{flag}: {v:?} is not a count >= 1")),
                Ok(n) => Ok(n),
            }
        };
        match flag.as_str() {
            "--messages" => a.messages = value()?,
            "--sessions" => a.sessions = value()?,
            "--rounds" => a.rounds = value()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Sqlite,
    Postgres,
    TwoNodes,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Sqlite, Variant::Postgres, Variant::TwoNodes];

    fn name(self) -> &'static str {
        match self {
            Variant::Sqlite => "De-Mail, evidence on SQLite, one node",
            Variant::Postgres => "De-Mail, evidence on PostgreSQL, one node",
            Variant::TwoNodes => "De-Mail, evidence on PostgreSQL, two nodes",
        }
    }
}

/// Postfix holds every bench De-Mail after the milter recorded it.
fn held() -> PostfixOptions {
    PostfixOptions {
        main_cf: vec![
            ("header_checks".into(), "regexp:{dir}/bench_hold".into()),
            ("in_flow_delay".into(), "0".into()),
            ("default_process_limit".into(), "200".into()),
        ],
        extra_files: vec![(
            "bench_hold".into(),
            b"/^Subject: Bescheid bench/ HOLD\n".to_vec(),
        )],
        lmtp_port: Some(demail_e2e::free_port()),
        ..PostfixOptions::default()
    }
}

fn message(id: &str) -> Vec<u8> {
    demail_e2e::load::message(&format!("bench {id}"))
}

/// Sends `n` De-Mails over `sessions` clients spread over `ports`; mails per second.
fn run(ports: &[u16], sessions: usize, n: usize, tag: &str) -> f64 {
    let started = Instant::now();
    let clients: Vec<_> = (0..sessions)
        .map(|s| {
            let port = ports[s % ports.len()];
            let tag = tag.to_string();
            let share = n / sessions + usize::from(s < n % sessions);
            thread::spawn(move || {
                for i in 0..share {
                    let msg = message(&format!("{tag}-{s}-{i}"));
                    if let Err(code) = submit(port, &msg) {
                        panic!("bench-nodes: {tag}: a De-Mail refused with {code}");
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-nodes: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let pg = PgServer::start();
    let db = pg.create_database();
    let owner = Location::parse(
        &pg.owner_url(&db),
        std::path::Path::new("/"),
        Some(pg.owner_password_file()),
    )
    .expect("owner location");
    let spool: PathBuf = pg.dir.join("migrate-spool");
    Store::migrate(&owner, &spool, &[GATEWAY.to_string()]).expect("migrate");

    let sqlite = City::start(CityOptions {
        simulator: false,
        postfix: held(),
        ..CityOptions::default()
    });
    let postgres = City::start(CityOptions {
        simulator: false,
        postfix: held(),
        evidence_postgres: Some((pg.gateway_url(&db), pg.gateway_password_file())),
        ..CityOptions::default()
    });
    let second: Node = postgres.start_node();
    let ports = |v: Variant| match v {
        Variant::Sqlite => vec![sqlite.smtp_port()],
        Variant::Postgres => vec![postgres.smtp_port()],
        Variant::TwoNodes => vec![postgres.smtp_port(), second.smtp_port()],
    };
    println!(
        "machine: {}, {} CPUs, {} RAM, load {}",
        demail_e2e::machine::cpu_model(),
        thread::available_parallelism().map_or(0, |n| n.get()),
        demail_e2e::machine::mem_total(),
        demail_e2e::machine::load_average()
    );
    println!(
        "{} De-Mails per run, {} SMTP clients, {} rounds; PostgreSQL on loopback with TLS",
        args.messages, args.sessions, args.rounds
    );
    // Warm-up: the connections, the prepared statements and the page cache.
    for v in Variant::ALL {
        run(
            &ports(v),
            args.sessions,
            args.sessions * 4,
            &format!("warm-{v:?}"),
        );
    }
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); Variant::ALL.len()];
    for round in 0..args.rounds {
        let mut order = Variant::ALL;
        order.rotate_left(round % Variant::ALL.len());
        for v in order {
            let rate = run(
                &ports(v),
                args.sessions,
                args.messages,
                &format!("r{round}-{v:?}"),
            );
            println!("round {}  {:<45} {rate:8.1} mails/s", round + 1, v.name());
            figures[v as usize].push(rate);
        }
    }
    let [s, p, two] = [0, 1, 2].map(|i| median(figures[i].clone()));
    println!();
    for (v, rate) in Variant::ALL.iter().zip([s, p, two]) {
        println!("median  {:<45} {rate:8.1} mails/s", v.name());
        record("postgres", v.name(), rate, "mails/s", None);
    }
    println!("PostgreSQL / SQLite, one node        {:.2}x", p / s);
    println!("two nodes / one node, PostgreSQL     {:.2}x", two / p);
    record(
        "postgres",
        "PostgreSQL vs SQLite, one node",
        p / s,
        "x",
        None,
    );
    record(
        "postgres",
        "two nodes vs one, PostgreSQL",
        two / p,
        "x",
        None,
    );
    let store = postgres.evidence().expect("the shared store");
    let report = store.verify_chain().expect("verify");
    println!(
        "shared chain after the run: {} events, intact: {}",
        report.events,
        report.is_intact()
    );
    assert!(report.is_intact(), "the shared chain verifies");
}
