//! `bench-imap-proxy`: the IMAP proxy against Dovecot directly, side by side in one run. See
//! bench/README.md; run it with bench/imap-proxy.
//!
//! 1. Pass-through: N sessions (one user each), each looping SELECT INBOX, FETCH 1:* (FLAGS),
//!    UID FETCH n (BODY.PEEK[]) and IDLE/DONE for a fixed time, directly to Dovecot and through
//!    the proxy, alternating, several rounds; loops per second and their ratio. Twice: over
//!    implicit TLS (Dovecot's own IMAPS vs. the proxy's, Dovecot behind it in plaintext on
//!    loopback, as a city runs it) and in plaintext on both.
//! 2. A big folder: SELECT plus `UID FETCH 1:* (UID FLAGS)` on the clerk's virtual
//!    Versandbestätigungen folder of M confirmations (recorded straight into the evidence store
//!    with the demail_evidence API, trusted and matched to one De-Mail of the clerk) vs. a real
//!    Dovecot folder of M messages (MULTIAPPEND); milliseconds and their ratio.
//! 3. Memory: K more users log in through the proxy over TLS and stay, every second one in
//!    IDLE, the rest with INBOX selected; the proxy's RSS before and with them, and per session.
//!
//! Nothing here asserts a time. With `BENCH_RESULTS` set, the figures are also appended there
//! as result lines (sections "proxy" and "memory", see bench/README.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demail_e2e::city::{ACCOUNT, CITIZEN, CLERK, TENANT};
use demail_e2e::result_lines::{Target, record};
use demail_e2e::{City, CityOptions, ImapClient};
use demail_evidence::{ConfirmationKind, Digest, NewConfirmation, NewSubmission, Store};
use time::OffsetDateTime;

const USAGE: &str = "\
Usage: bench-imap-proxy [--sessions N] [--seconds S] [--rounds N] [--messages N]
                        [--folder-size N] [--idle-sessions N] [--city-dir DIR]

  --sessions N     parallel pass-through sessions, one user each (default 20)
  --seconds S      length of one pass-through run (default 10)
  --rounds N       runs each way, alternating; medians are reported (default 3)
  --messages N     messages in each session user's INBOX (default 50)
  --folder-size N  confirmations in the virtual folder and messages in the Dovecot folder
                   (default 100000)
  --idle-sessions N  sessions held open through the proxy for its memory figure, every second
                   one in IDLE; 0 skips it (default 1000)
  --city-dir DIR   the city's files (evidence store, proxy state) here (default: a new
                   directory in /dev/shm when it exists, so filling the store costs no fsync)

Needs root (the test city's Postfix and Dovecot). Build release binaries first:
bench/imap-proxy does all of it.";

const PW: &str = "bench-pw";
const BIG: &str = "Gross";
const VIRTUAL: &str = "De-Mail/Versandbest&AOQ-tigungen";

struct Args {
    sessions: usize,
    seconds: f64,
    rounds: usize,
    messages: usize,
    folder_size: usize,
    idle_sessions: usize,
    city_dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        sessions: 20,
        seconds: 10.0,
        rounds: 3,
        messages: 50,
        folder_size: 100_000,
        idle_sessions: 1000,
        city_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<String, String> {
            it.next().ok_or_else(|| format!("{name} needs a value"))
        };
        let num = |name: &str, v: String| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}: {v:?} is not a positive whole number"))
        };
        match flag.as_str() {
            "--sessions" => a.sessions = num("--sessions", value("--sessions")?)?,
            "--seconds" => {
                let v = value("--seconds")?;
                a.seconds = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0)
                    .ok_or(format!("--seconds: {v:?} is not a positive number"))?;
            }
            "--rounds" => a.rounds = num("--rounds", value("--rounds")?)?,
            "--messages" => a.messages = num("--messages", value("--messages")?)?,
            "--folder-size" => a.folder_size = num("--folder-size", value("--folder-size")?)?,
            "--idle-sessions" => {
                let v = value("--idle-sessions")?;
                a.idle_sessions = v
                    .parse()
                    .map_err(|_| format!("--idle-sessions: {v:?} is not a whole number"))?;
            }
            "--city-dir" => a.city_dir = Some(value("--city-dir")?.into()),
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-imap-proxy: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let (dir, remove_dir) = match &args.city_dir {
        Some(d) => (d.clone(), false),
        None => {
            let base = if std::path::Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            };
            (
                base.join(format!("bench-imap-proxy-{}", std::process::id())),
                true,
            )
        }
    };
    print_header(&args, &dir);
    // Raised before the city starts: the proxy and Dovecot inherit it.
    raise_fd_limit(args.idle_sessions + args.sessions);

    let started = Instant::now();
    fill_evidence(&dir, args.folder_size);
    println!(
        "evidence      {} trusted Versandbestätigungen for {CLERK} recorded in {:.1} s",
        args.folder_size,
        started.elapsed().as_secs_f64()
    );

    let users: Vec<String> = (1..=args.sessions)
        .map(|i| format!("bench{i:03}@example.test"))
        .collect();
    let mut dovecot_users: Vec<(String, String)> =
        users.iter().map(|u| (u.clone(), PW.to_string())).collect();
    dovecot_users.push((CLERK.to_string(), PW.to_string()));
    let idle_users: Vec<String> = (1..=args.idle_sessions)
        .map(|i| format!("idle{i:04}@example.test"))
        .collect();
    dovecot_users.extend(idle_users.iter().map(|u| (u.clone(), PW.to_string())));
    let connections = args.sessions + args.idle_sessions;
    let city = City::start(CityOptions {
        dovecot_users,
        imap_proxy: true,
        dovecot_tls: true,
        // One address opens every session.
        proxy_toml: format!("max_connections_per_ip = {}\n", (connections * 2).max(100)),
        // One imap process per session; Dovecot's defaults stop at 100 processes and at
        // 1000 clients of its log and auth services.
        dovecot_conf: format!(
            "default_process_limit = {}\ndefault_client_limit = {}\n",
            connections + 100,
            connections * 4 + 1000
        ),
        simulator: false,
        milter: false,
        dir: Some(dir.clone()),
        ..CityOptions::default()
    });
    let direct = city.imap_port().expect("Dovecot");
    let proxy = city.proxy().expect("proxy").ports.imap;

    let started = Instant::now();
    for u in &users {
        seed_inbox(direct, u, args.messages);
    }
    seed_big_folder(direct, args.folder_size);
    println!(
        "dovecot       {} users x {} messages of 4 KiB, {CLERK}'s {BIG:?} with {} messages, seeded in {:.1} s",
        users.len(),
        args.messages,
        args.folder_size,
        started.elapsed().as_secs_f64()
    );
    println!();

    // 1. Pass-through, once over TLS (as clerks connect: Dovecot's own IMAPS, or the proxy's
    //    IMAPS with Dovecot behind it in plaintext on loopback) and once in plaintext on both
    //    (no TLS anywhere: the proxy's extra hop with nothing to hide it).
    let ca = city.pki().ca_cert.clone();
    let imaps_direct = city.dovecot_imaps_port().expect("Dovecot IMAPS");
    let imaps_proxy = city.proxy().expect("proxy").ports.imaps;
    let mut ratios = Vec::new();
    for (transport, direct_way, proxy_way) in [
        (
            "TLS (implicit, port 993 style)",
            Way::Tls(imaps_direct, ca.clone()),
            Way::Tls(imaps_proxy, ca.clone()),
        ),
        (
            "plaintext on loopback",
            Way::Plain(direct),
            Way::Plain(proxy),
        ),
    ] {
        println!(
            "pass-through, {transport}: {} sessions x {:.0} s of SELECT / FETCH 1:* (FLAGS) / UID FETCH n (BODY.PEEK[]) / IDLE+DONE",
            args.sessions, args.seconds
        );
        let mut via_proxy = Vec::new();
        let mut via_dovecot = Vec::new();
        for round in 0..args.rounds {
            let order = if round % 2 == 0 {
                [("dovecot", &direct_way), ("proxy", &proxy_way)]
            } else {
                [("proxy", &proxy_way), ("dovecot", &direct_way)]
            };
            for (name, way) in order {
                let rate = pass_through(way, &users, args.messages, args.seconds);
                println!("  round {}  {name:8} {rate:9.1} loops/s", round + 1);
                if name == "proxy" {
                    via_proxy.push(rate);
                } else {
                    via_dovecot.push(rate);
                }
            }
        }
        let (p, d) = (median(&mut via_proxy), median(&mut via_dovecot));
        ratios.push((transport, d, p));
        println!();
    }
    let rss = city.proxy().and_then(|p| p.rss_kib());
    println!(
        "| pass-through, loops/s (median of {}) | Dovecot directly | through the proxy | ratio |",
        args.rounds
    );
    println!("|---|---|---|---|");
    for (i, (transport, d, p)) in ratios.iter().enumerate() {
        // The target is for the way clients connect (TLS); plaintext is the worst case, shown.
        let target = (i == 0).then(|| Target::at_least(0.9));
        let verdict = target.map_or(String::new(), |t| {
            let met = if t.met(p / d) { "met" } else { "not met" };
            format!(" (target {}: {met})", t.text("ratio"))
        });
        let what = format!("pass-through, {transport}");
        record(
            "proxy",
            &format!("{what}, proxy / Dovecot"),
            p / d,
            "ratio",
            target,
        );
        record(
            "proxy",
            &format!("{what}, Dovecot directly"),
            *d,
            "loops/s",
            None,
        );
        record(
            "proxy",
            &format!("{what}, through the proxy"),
            *p,
            "loops/s",
            None,
        );
        println!(
            "| {transport} | {d:.1} | {p:.1} | **{:.3}**{verdict} |",
            p / d
        );
    }
    println!(
        "proxy RSS after the runs: {}",
        rss.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );
    if let Some(k) = rss {
        record(
            "memory",
            &format!(
                "proxy RSS after the pass-through runs ({} confirmations loaded)",
                args.folder_size
            ),
            k as f64 / 1024.0,
            "MiB",
            None,
        );
    }
    println!();

    // 3. Memory with many idle sessions, as clerks' clients leave them open all day.
    if args.idle_sessions > 0 {
        idle_sessions(&city, &Way::Tls(imaps_proxy, ca.clone()), &idle_users);
    }

    // 2. The big folder. The first opening of each builds its index / UID state: warm-up.
    println!(
        "big folder: SELECT + UID FETCH 1:* (UID FLAGS), {} messages",
        args.folder_size
    );
    for (name, port, folder) in [("dovecot", direct, BIG), ("proxy", proxy, VIRTUAL)] {
        let (ms, n) = open_folder(port, folder);
        println!("  warm-up  {name:8} {ms:9.1} ms ({n} FETCH lines)");
    }
    let mut virt = Vec::new();
    let mut real = Vec::new();
    for round in 0..args.rounds.max(3) {
        for (name, port, folder) in [("dovecot", direct, BIG), ("proxy", proxy, VIRTUAL)] {
            let (ms, n) = open_folder(port, folder);
            println!(
                "  round {}  {name:8} {ms:9.1} ms ({n} FETCH lines)",
                round + 1
            );
            if n != args.folder_size {
                println!(
                    "  WARNING: {name} listed {n} of {} messages",
                    args.folder_size
                );
            }
            if name == "proxy" {
                virt.push(ms);
            } else {
                real.push(ms);
            }
        }
    }
    let (v, r) = (median(&mut virt), median(&mut real));
    println!();
    println!(
        "| {} messages: SELECT + UID FETCH 1:* (UID FLAGS) | ms (median) |",
        args.folder_size
    );
    println!("|---|---|");
    println!("| Dovecot folder | {r:.1} |");
    println!("| proxy's virtual folder | {v:.1} |");
    let target = Target::at_most(1.0);
    println!(
        "| **proxy / Dovecot time** | **{:.3}** (target <= 1.0: {}) |",
        v / r,
        if target.met(v / r) { "met" } else { "not met" }
    );
    let what = format!(
        "{} messages, SELECT + UID FETCH 1:* (UID FLAGS)",
        args.folder_size
    );
    record(
        "proxy",
        &format!("{what}, virtual folder / Dovecot folder time"),
        v / r,
        "ratio",
        Some(target),
    );
    record("proxy", &format!("{what}, Dovecot folder"), r, "ms", None);
    record(
        "proxy",
        &format!("{what}, proxy's virtual folder"),
        v,
        "ms",
        None,
    );
    println!(
        "proxy RSS at the end: {}",
        city.proxy()
            .and_then(|p| p.rss_kib())
            .map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );
    drop(city);
    if remove_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn print_header(args: &Args, dir: &std::path::Path) {
    let cmd = |p: &str, a: &[&str]| {
        std::process::Command::new(p)
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    println!("bench-imap-proxy: demail-imap-proxy vs. Dovecot directly");
    println!(
        "date          {}",
        cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    println!("kernel        {}", cmd("uname", &["-sr"]));
    println!(
        "cpu           {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "load average  {} (other work on the machine adds noise to both variants)",
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    println!("dovecot       {}", cmd("dovecot", &["--version"]));
    println!(
        "build         {}",
        if cfg!(debug_assertions) {
            "debug (numbers are not meaningful)"
        } else {
            "release"
        }
    );
    println!(
        "runs          {} sessions, {} s each, {} rounds; folder of {}",
        args.sessions, args.seconds, args.rounds, args.folder_size
    );
    println!("idle sessions {} (memory)", args.idle_sessions);
    println!("city dir      {}", dir.display());
}

/// One De-Mail of the clerk and `n` trusted Versandbestätigungen matched to it, recorded as
/// the milter would (blobs first), before the proxy starts.
fn fill_evidence(dir: &std::path::Path, n: usize) {
    let ev = dir.join("evidence");
    std::fs::create_dir_all(&ev).unwrap_or_else(|e| panic!("{}: {e}", ev.display()));
    let store = Store::open(&ev.join("evidence.sqlite"), &ev.join("blobs"))
        .unwrap_or_else(|e| panic!("evidence store in {}: {e}", ev.display()));
    let now = OffsetDateTime::now_utc();
    let message = format!(
        "From: {ACCOUNT}\r\nTo: {CITIZEN}\r\nSubject: Massenbescheid\r\n\
         Message-ID: <bench-1@example.test>\r\n\r\nSehr geehrte Damen und Herren.\r\n"
    );
    let content = store.put_blob(message.as_bytes()).expect("blob");
    let sub = NewSubmission {
        private_id: "bench-1.stadt-testhausen".into(),
        origin_key: Digest::of(message.as_bytes()),
        tenant: TENANT.into(),
        account: ACCOUNT.into(),
        clerk: CLERK.into(),
        sasl_login: None,
        recipients: vec![CITIZEN.into()],
        subject: "Massenbescheid".into(),
        message_id: "<bench-1@example.test>".into(),
        queue_id: "BENCH1".into(),
        options: vec!["dispatch".into()],
        content,
        size: message.len() as u64,
        time: now,
    };
    store.record_submission(&sub).expect("submission");
    for i in 0..n {
        let raw = format!(
            "From: Versandbestaetigung@provider.de-mail.de\r\nTo: {ACCOUNT}\r\n\
             Subject: Versandbestaetigung {i}\r\nMessage-ID: <conf-{i}@provider.de-mail.de>\r\n\
             X-de-mail-private-id: {}\r\n\r\nVersandbestaetigung {i}\r\n",
            sub.private_id
        );
        let c = NewConfirmation {
            kind: ConfirmationKind::Dispatch,
            private_id: Some(sub.private_id.clone()),
            recipient: CITIZEN.into(),
            provider_message_id: Some(format!("<conf-{i}@provider.de-mail.de>")),
            raw: store.put_blob(raw.as_bytes()).expect("blob"),
            xml: None,
            pdf: None,
            report: serde_json::json!({"verification": {"indication": "TOTAL_PASSED"}}),
            indication: "TOTAL_PASSED".into(),
            stated_time: Some(now),
            trusted: true,
        };
        store.record_confirmation(&c).expect("confirmation");
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit when `sessions` connections may not fit:
/// this process holds one socket per session, the proxy two.
fn raise_fd_limit(sessions: usize) {
    let need = (2 * sessions + 200) as libc::rlim_t;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            panic!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if lim.rlim_cur >= need {
            println!(
                "open files    limit {} (enough for {sessions} sessions)",
                lim.rlim_cur
            );
            return;
        }
        if lim.rlim_max < need {
            panic!(
                "open files: the hard limit {} is below the {need} that {sessions} sessions need \
                 (raise it, or pass a smaller --idle-sessions)",
                lim.rlim_max
            );
        }
        let old = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            panic!("setrlimit: {}", std::io::Error::last_os_error());
        }
        println!(
            "open files    limit raised from {old} to {} for {sessions} sessions (the proxy and \
             Dovecot inherit it)",
            lim.rlim_cur
        );
    }
}

/// Opens one session per user through the proxy, logs in, selects INBOX and leaves every
/// second one in IDLE; reports the proxy's RSS before and with them. Every session must
/// still answer afterwards, so a session that died cannot pass for a cheap one.
fn idle_sessions(city: &City, way: &Way, users: &[String]) {
    let rss = || {
        city.proxy()
            .and_then(|p| p.rss_kib())
            .expect("the proxy's RSS")
    };
    let before = rss();
    let started = Instant::now();
    let mut open: Vec<(ImapClient, Option<String>)> = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let mut c = login_via(way, u);
        ok(&c.run_raw(b"SELECT INBOX"));
        let idle = (i % 2 == 0).then(|| {
            let tag = c.next_tag();
            c.send_raw(format!("{tag} IDLE\r\n").as_bytes());
            let cont = c.read_response();
            assert!(cont.starts_with(b"+"), "{u}: {:?}", cont.escape_ascii());
            tag
        });
        open.push((c, idle));
    }
    let opened = started.elapsed().as_secs_f64();
    // Let the proxy settle (buffers of the logins freed) before reading its RSS.
    std::thread::sleep(Duration::from_secs(2));
    let with = rss();
    let n = users.len();
    let per_session = with.saturating_sub(before) as f64 / n as f64;
    for (c, idle) in &mut open {
        match idle {
            Some(tag) => {
                c.send_raw(b"DONE\r\n");
                ok(&c.until_tagged(tag));
            }
            None => ok(&c.run_raw(b"NOOP")),
        }
    }
    drop(open);
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "idle sessions: {n} logged in over TLS through the proxy in {opened:.1} s, {} in IDLE; \
         proxy RSS {:.1} MiB before, {:.1} MiB with them: {per_session:.1} KiB per session",
        n.div_ceil(2),
        mib(before),
        mib(with)
    );
    println!();
    let n = n.to_string();
    record(
        "memory",
        &format!("proxy RSS with {n} idle sessions"),
        mib(with),
        "MiB",
        None,
    );
    record(
        "memory",
        &format!("proxy RSS per idle session ({n} sessions, half in IDLE, over TLS)"),
        per_session,
        "KiB",
        None,
    );
    record(
        "memory",
        &format!("proxy RSS before the {n} idle sessions"),
        mib(before),
        "MiB",
        None,
    );
}

/// How a bench client reaches a server.
enum Way {
    Plain(u16),
    Tls(u16, PathBuf),
}

fn login(port: u16, user: &str) -> ImapClient {
    login_via(&Way::Plain(port), user)
}

fn login_via(way: &Way, user: &str) -> ImapClient {
    let mut c = match way {
        Way::Plain(port) => ImapClient::plain(*port),
        Way::Tls(port, ca) => ImapClient::tls(*port, ca),
    };
    c.set_read_timeout(Duration::from_secs(120));
    let r = c.run(&format!("LOGIN {user} {PW}"));
    assert!(r.last().unwrap().contains(" OK"), "{user}: {r:?}");
    c
}

fn ok(r: &[Vec<u8>]) {
    let last = String::from_utf8_lossy(r.last().expect("a response"));
    assert!(last.contains(" OK"), "{last}");
}

fn seed_inbox(port: u16, user: &str, n: usize) {
    let mut c = login(port, user);
    let body = "Aktenzeichen 4711 / Vorgang in Bearbeitung.\r\n".repeat(90);
    for i in 0..n {
        let msg = format!(
            "From: kollege@example.test\r\nTo: {user}\r\nSubject: Vorgang {i}\r\n\
             Message-ID: <v{i}.{user}>\r\n\r\n{body}"
        );
        let tag = c.next_tag();
        c.send_raw(format!("{tag} APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
        ok(&c.until_tagged(&tag));
    }
}

/// `n` small messages in the clerk's folder [`BIG`], by MULTIAPPEND in batches.
fn seed_big_folder(port: u16, n: usize) {
    let mut c = login(port, CLERK);
    ok(&c.run_raw(format!("CREATE {BIG}").as_bytes()));
    let mut i = 0;
    while i < n {
        let tag = c.next_tag();
        let mut cmd = format!("{tag} APPEND {BIG}").into_bytes();
        for _ in 0..2000.min(n - i) {
            let msg = format!(
                "From: Versandbestaetigung@provider.de-mail.de\r\nTo: {ACCOUNT}\r\n\
                 Subject: Versandbestaetigung {i}\r\nMessage-ID: <big-{i}@provider.de-mail.de>\r\n\
                 \r\nVersandbestaetigung {i}\r\n"
            );
            cmd.extend_from_slice(format!(" {{{}+}}\r\n", msg.len()).as_bytes());
            cmd.extend_from_slice(msg.as_bytes());
            i += 1;
        }
        cmd.extend_from_slice(b"\r\n");
        c.send_raw(&cmd);
        ok(&c.until_tagged(&tag));
    }
}

/// Every user's session loops for `seconds`; returns loops per second over all sessions.
fn pass_through(way: &Way, users: &[String], messages: usize, seconds: f64) -> f64 {
    let loops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients: Vec<ImapClient> = users.iter().map(|u| login_via(way, u)).collect();
    let started = Instant::now();
    let threads: Vec<_> = clients
        .drain(..)
        .enumerate()
        .map(|(t, mut c)| {
            let loops = Arc::clone(&loops);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut k = t;
                while !stop.load(Ordering::Relaxed) {
                    ok(&c.run_raw(b"SELECT INBOX"));
                    ok(&c.run_raw(b"FETCH 1:* (FLAGS)"));
                    k = k % messages + 1;
                    ok(&c.run_raw(format!("UID FETCH {k} (BODY.PEEK[])").as_bytes()));
                    let tag = c.next_tag();
                    c.send_raw(format!("{tag} IDLE\r\n").as_bytes());
                    let cont = c.read_response();
                    assert!(cont.starts_with(b"+"), "{:?}", cont.escape_ascii());
                    c.send_raw(b"DONE\r\n");
                    ok(&c.until_tagged(&tag));
                    loops.fetch_add(1, Ordering::Relaxed);
                }
                c.run("LOGOUT");
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let n = loops.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in threads {
        t.join().expect("session thread");
    }
    n as f64 / elapsed
}

/// A new session: LOGIN (not timed), then SELECT + UID FETCH 1:* (UID FLAGS) timed; returns
/// the milliseconds and how many FETCH lines came.
fn open_folder(port: u16, folder: &str) -> (f64, usize) {
    let mut c = login(port, CLERK);
    let started = Instant::now();
    ok(&c.run_raw(format!("SELECT \"{folder}\"").as_bytes()));
    let r = c.run_raw(b"UID FETCH 1:* (UID FLAGS)");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    ok(&r);
    c.run("LOGOUT");
    (ms, r.len() - 1)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}
