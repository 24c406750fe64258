//! The memory figures: a freshly started demail-milter with many SMTP connections held open
//! in DATA at once, and with one big message.

use std::thread;
use std::time::Duration;

use demail_e2e::City;
use demail_e2e::SmtpClient;
use demail_e2e::city::{CITIZEN, CLERK};

use crate::stream::{self, Kind, Stream, Variant};

/// Longer than Postfix's milter timeouts (30 s): a connection the milter does not serve ends
/// with Postfix's answer, not with ours.
const REPLY_TIMEOUT: Duration = Duration::from_secs(45);

pub struct Concurrent {
    /// Connections that reached DATA (354) and were held there.
    pub in_data: usize,
    /// The first failure of those that did not, if any.
    pub first_failure: Option<String>,
    /// The fresh milter's VmRSS before, its VmRSS and VmHWM with the connections open, KiB.
    pub idle_kib: Option<u64>,
    pub rss_kib: Option<u64>,
    pub peak_kib: Option<u64>,
}

/// Restarts the milter, opens `n` SMTP connections to its smtpd at once, takes each through
/// MAIL, RCPT and DATA with a header and a line of body sent, then reads the milter's memory
/// while all are held there. The connections are then dropped (Postfix aborts the
/// transactions; nothing is queued).
pub fn concurrent(city: &mut City, n: usize) -> Concurrent {
    city.stop_milter();
    let idle_kib = city.start_milter().rss_kib();
    let port = city.smtp_port();
    let handles: Vec<_> = (0..n)
        .map(|i| thread::spawn(move || into_data(port, i).map_err(|e| format!("#{i}: {e}"))))
        .collect();
    let mut held = Vec::new();
    let mut first_failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(client)) => held.push(client),
            Ok(Err(e)) => {
                first_failure.get_or_insert(e);
            }
            Err(_) => {
                first_failure.get_or_insert("a connection thread panicked".into());
            }
        }
    }
    // Let the milter finish what the last connections made it do.
    thread::sleep(Duration::from_millis(500));
    let milter = city.milter().expect("the milter runs");
    let figures = Concurrent {
        in_data: held.len(),
        first_failure,
        idle_kib,
        rss_kib: milter.rss_kib(),
        peak_kib: milter.peak_rss_kib(),
    };
    drop(held);
    figures
}

fn into_data(port: u16, i: usize) -> Result<SmtpClient, String> {
    let (mut c, greeting) = SmtpClient::connect(port, REPLY_TIMEOUT).map_err(|e| e.to_string())?;
    let expect = |reply: std::io::Result<demail_e2e::SmtpReply>, code: u16, step: &str| match reply
    {
        Ok(r) if r.code == code => Ok(()),
        Ok(r) => Err(format!("{step}: {r}")),
        Err(e) => Err(format!("{step}: {e}")),
    };
    expect(Ok(greeting), 220, "greeting")?;
    expect(c.command("EHLO clerk-pc.example.test"), 250, "EHLO")?;
    expect(c.command(&format!("MAIL FROM:<{CLERK}>")), 250, "MAIL")?;
    expect(c.command(&format!("RCPT TO:<{CITIZEN}>")), 250, "RCPT")?;
    expect(c.command("DATA"), 354, "DATA")?;
    let start = format!(
        "From: <{CLERK}>\r\nTo: <{CITIZEN}>\r\nSubject: bench concurrent {i}\r\n\r\n{}\r\n",
        "x".repeat(998)
    );
    c.send(start.as_bytes()).map_err(|e| format!("data: {e}"))?;
    Ok(c)
}

/// A fresh milter takes one message of `mib` MiB: its VmRSS before and VmHWM after, KiB, and
/// the seconds it took.
pub fn big_message(city: &mut City, mib: u64) -> (Option<u64>, Option<u64>, f64) {
    city.stop_milter();
    let idle = city.start_milter().rss_kib();
    let big = Stream {
        kind: Kind::DeMail,
        messages: 1,
        size: mib << 20,
        sessions: 1,
    };
    let milter = city.milter().map(|m| m.pid());
    let port = city.smtp_port();
    let rate = stream::run(city, &big, port, Variant::DemailMilter, milter).mails_per_second;
    let peak = city.milter().and_then(|m| m.peak_rss_kib());
    (idle, peak, 1.0 / rate)
}
