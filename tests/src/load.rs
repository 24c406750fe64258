//! A clerk's mail client under load: De-Mails with fixed bytes (so a retry repeats the first
//! attempt exactly) submitted over SMTP, each retried after a temporary failure.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use crate::City;
use crate::city::{CITIZEN, CLERK};
use crate::message::field_values;
use crate::{SmtpClient, dot_stuff};

const WAIT: Duration = Duration::from_secs(60);

/// A clerk's De-Mail as a mail client writes it: with Date and Message-ID `<id@example.test>`,
/// so that Postfix adds neither and a retry has the bytes of the first attempt.
pub fn message(id: &str) -> Vec<u8> {
    format!(
        "Date: Thu, 03 Dec 2026 10:00:00 +0100\r\nFrom: {CLERK}\r\nTo: {CITIZEN}\r\n\
         Subject: Bescheid {id}\r\nMessage-ID: <{id}@example.test>\r\n\r\n\
         Sehr geehrte Damen und Herren,\r\nanbei Ihr Bescheid.\r\n"
    )
    .into_bytes()
}

/// How one SMTP submission from [`CLERK`] to [`CITIZEN`] ended: `Ok` on 250 after the data,
/// `Err(code)` on a refusal (`Err(0)` when the connection failed).
pub fn submit(port: u16, msg: &[u8]) -> Result<(), u16> {
    let (mut c, greeting) = SmtpClient::connect(port, WAIT).map_err(|_| 0u16)?;
    if greeting.code != 220 {
        return Err(greeting.code);
    }
    let mut step = |line: &str, want: u16| -> Result<(), u16> {
        let r = c.command(line).map_err(|_| 0u16)?;
        if r.code == want { Ok(()) } else { Err(r.code) }
    };
    step("EHLO clerk-pc.example.test", 250)?;
    step(&format!("MAIL FROM:<{CLERK}>"), 250)?;
    step(&format!("RCPT TO:<{CITIZEN}>"), 250)?;
    step("DATA", 354)?;
    c.send(&dot_stuff(msg)).map_err(|_| 0u16)?;
    let end = c.command(".").map_err(|_| 0u16)?;
    let _ = c.command("QUIT");
    if end.code == 250 {
        Ok(())
    } else {
        Err(end.code)
    }
}

/// Submits until accepted, as a client's outbox retries a temporary failure: first to
/// `ports[first % len]`, each retry to the next port (one port: the same node again; several:
/// a balancer's other node). A permanent refusal fails the test. Returns the temporary
/// failures seen.
pub fn submit_until_accepted(ports: &[u16], first: usize, msg: &[u8], deadline: Instant) -> usize {
    let mut tempfails = 0;
    let mut next = first;
    loop {
        match submit(ports[next % ports.len()], msg) {
            Ok(()) => return tempfails,
            Err(code) if code == 0 || (400..500).contains(&code) => {
                tempfails += 1;
                assert!(
                    Instant::now() < deadline,
                    "still not accepted after {tempfails} temporary failures (last {code})"
                );
                next += 1;
                thread::sleep(Duration::from_millis(200));
            }
            Err(code) => panic!("permanent refusal {code}"),
        }
    }
}

/// The Message-IDs the city's provider received (waiting for `n` messages), with how often
/// each came.
pub fn received_ids(city: &City, n: usize) -> BTreeMap<String, usize> {
    let sim = city.simulator().expect("simulator");
    let mut ids = BTreeMap::new();
    for m in sim.wait_for(n, WAIT) {
        for id in field_values(&m.data, "Message-ID") {
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    ids
}
