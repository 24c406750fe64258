//! Outbound De-Mail end to end (issue 3): a real Postfix configured by `demailctl
//! postfix-config --write`, `demail-milter` as a real process, the provider simulator over TLS
//! with the city's client certificate, the evidence store read back with `demailctl`.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::process::Output;
use std::time::Duration;

use demail_e2e::city::{ACCOUNT, CITIZEN, CLERK, INTERN, TENANT};
use demail_e2e::message::{body, contains, field_values, header_fields};
use demail_e2e::{
    City, CityOptions, MilterTap, Postfix, PostfixOptions, SmtpClient, SmtpReply, dot_stuff,
    imaplib_fetch_all, swaks, wait_until,
};
use demail_provider_sim::{Accepted, StoredRecord};

const WAIT: Duration = Duration::from_secs(30);
const KOLLEGIN: &str = "kollegin@example.test";
const KOLLEGIN_PW: &str = "kollegin-pw";

// ----- helpers -----

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The queue id in Postfix's `250 2.0.0 Ok: queued as ID`.
fn queued_as(reply_text: &str) -> Option<String> {
    reply_text
        .split("queued as ")
        .nth(1)
        .map(|id| id.split_whitespace().next().unwrap_or("").to_string())
        .filter(|id| !id.is_empty())
}

/// The reply swaks printed to the command line starting with `command` (`<-`/`<**` lines),
/// as (code, text of all lines joined).
fn swaks_reply(transcript: &str, command: &str) -> Option<(u16, String)> {
    let mut lines = transcript.lines();
    lines.find(|l| {
        l.trim_start_matches(['-', '>', '*', ' '])
            .starts_with(command)
    })?;
    let mut code = None;
    let mut texts = Vec::new();
    for line in lines {
        let Some(rest) = line
            .strip_prefix("<** ")
            .or_else(|| line.strip_prefix("<-  "))
        else {
            break;
        };
        code = rest.get(..3).and_then(|c| c.parse().ok());
        texts.push(rest.get(4..).unwrap_or("").to_string());
        if rest.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    code.map(|c| (c, texts.join(" ")))
}

/// An Outlook-like message from the clerk: quoted-printable UTF-8 body, CRLF line ends.
fn clerk_message(message_id: &str, subject: &str, to: &[&str]) -> Vec<u8> {
    format!(
        "From: Erika Sachbearbeiterin <{CLERK}>\r\n\
         To: {}\r\n\
         Subject: {subject}\r\n\
         Date: Tue, 3 Nov 2026 10:15:00 +0100\r\n\
         Message-ID: <{message_id}>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\
         \r\n\
         Sehr geehrte Frau M=C3=BCller,\r\n\
         \r\n\
         anbei erhalten Sie den Bescheid zu Ihrem Antrag.\r\n\
         .Diese Zeile beginnt mit einem Punkt.\r\n\
         \r\n\
         Mit freundlichen Gr=C3=BC=C3=9Fen\r\n\
         Erika Sachbearbeiterin\r\n",
        to.join(", ")
    )
    .into_bytes()
}

/// What a submission through [`submit`] got back.
struct Submitted {
    rcpt: Vec<SmtpReply>,
    /// The reply to the end of data; None when no recipient was accepted (DATA not sent).
    data: Option<SmtpReply>,
}

/// One whole SMTP transaction with our own client (no TLS, no AUTH: mynetworks).
fn submit(city: &City, from: &str, rcpts: &[&str], message: &[u8]) -> Submitted {
    let (mut c, greeting) = SmtpClient::connect(city.smtp_port(), WAIT).expect("connect");
    assert_eq!(greeting.code, 220, "{greeting}");
    let r = c.command("EHLO clerk-pc.example.test").expect("EHLO");
    assert_eq!(r.code, 250, "EHLO: {r}");
    let r = c.command(&format!("MAIL FROM:<{from}>")).expect("MAIL");
    assert_eq!(r.code, 250, "MAIL: {r}");
    let rcpt: Vec<SmtpReply> = rcpts
        .iter()
        .map(|to| c.command(&format!("RCPT TO:<{to}>")).expect("RCPT"))
        .collect();
    let data = if rcpt.iter().any(|r| r.code == 250) {
        let r = c.command("DATA").expect("DATA");
        assert_eq!(r.code, 354, "DATA: {r}");
        c.send(&dot_stuff(message)).expect("message");
        Some(c.command(".").expect("end of data"))
    } else {
        None
    };
    let _ = c.command("QUIT");
    Submitted { rcpt, data }
}

/// Waits until Postfix's queue is empty.
fn wait_for_empty_queue(pf: &Postfix) {
    wait_until(WAIT, "an empty mail queue", || {
        pf.queue().contains("Mail queue is empty").then_some(())
    });
}

/// The maillog lines about queue id `qid`.
fn log_lines(pf: &Postfix, qid: &str) -> Vec<String> {
    let tag = format!(" {qid}: ");
    pf.log()
        .lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_string)
        .collect()
}

/// Every delivery attempt of `qid` went to the gateway on `port`, none bounced. (That it was
/// the `demail` transport shows in the simulator: only that transport has the client
/// certificate the simulator demands.) Returns the attempts.
fn attempts_only_to_the_gateway(pf: &Postfix, qid: &str, port: u16) -> Vec<String> {
    let gateway = format!("localhost[127.0.0.1]:{port}");
    let attempts: Vec<String> = log_lines(pf, qid)
        .into_iter()
        .filter(|l| l.contains(" relay="))
        .collect();
    for line in &attempts {
        let relay = line
            .split(" relay=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or("");
        let to_gateway = relay == gateway
            || (relay == "none" && line.contains(&format!("connect to {gateway}:")));
        assert!(
            to_gateway,
            "an attempt not to the gateway {gateway}: {line}"
        );
        assert!(!line.contains("status=bounced"), "bounced: {line}");
    }
    attempts
}

/// The one message the simulator has, after waiting for it; fails if there are more.
fn the_one_accepted(city: &City) -> Accepted {
    let sim = city.simulator().expect("the simulator runs");
    let got = sim.wait_for(1, WAIT);
    assert_eq!(
        got.len(),
        1,
        "the provider should have exactly one message: {got:#?}\nrejected: {:#?}",
        sim.rejected()
    );
    got.into_iter().next().expect("one")
}

fn json(out: &Output, what: &str) -> serde_json::Value {
    assert!(out.status.success(), "{what} failed:\n{}", text(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{}", text(out)))
}

// ----- 1. the authorised clerk -----

#[test]
fn authorised_clerk_with_a_retrieval_tag_reaches_the_provider_as_recorded() {
    let city = City::start(CityOptions::default());
    // As Outlook writes a subject with an umlaut: one RFC 2047 "Q" encoded-word.
    let subject = "=?utf-8?Q?[Abholbest=C3=A4tigung]_Bescheid_=C3=BCber_Ihren_Antrag?=";
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--ehlo",
        "clerk-pc.example.test",
        "--from",
        CLERK,
        "--to",
        CITIZEN,
        "--header",
        &format!("From: Erika Sachbearbeiterin <{CLERK}>"),
        "--header",
        &format!("Subject: {subject}"),
        "--header",
        "Content-Type: text/plain; charset=\"utf-8\"",
        "--header",
        "Content-Transfer-Encoding: quoted-printable",
        "--body",
        "Sehr geehrter Herr M=C3=BCller,\nanbei Ihr Bescheid.",
    ]);
    let transcript = text(&out);
    assert!(out.status.success(), "swaks:\n{transcript}");
    let qid = queued_as(&transcript).unwrap_or_else(|| panic!("not queued:\n{transcript}"));

    // It arrives at the provider over TLS, presented with the city's client certificate.
    let got = the_one_accepted(&city);
    assert_eq!(got.client_cert_sha256, city.client_cert_sha256());
    let record = StoredRecord::load(&got.json_path).expect("simulator record");
    assert!(record.tls_version.starts_with("TLSv1."), "{record:?}");
    wait_for_empty_queue(city.postfix());
    let attempts = attempts_only_to_the_gateway(city.postfix(), &qid, city.simulator_port());
    assert!(
        attempts.len() == 1 && attempts[0].contains("status=sent"),
        "one delivery: {attempts:#?}"
    );

    // Envelope and From are the tenant's account.
    assert_eq!(got.mail_from, ACCOUNT);
    assert_eq!(got.rcpts, vec![CITIZEN.to_string()]);
    assert_eq!(
        field_values(&got.data, "From"),
        vec![format!("\"{TENANT}\" <{ACCOUNT}>")]
    );
    // The five option fields, each once, exactly: the tag's retrieve plus the account's
    // defaults (dispatch, receipt); the others no.
    for (field, value) in [
        ("X-de-mail-confirmation-of-dispatch", "yes"),
        ("X-de-mail-confirmation-of-receipt", "yes"),
        ("X-de-mail-confirmation-of-retrieve", "yes"),
        ("X-de-mail-authoritative", "no"),
        ("X-de-mail-private", "no"),
    ] {
        assert_eq!(
            field_values(&got.data, field),
            vec![value.to_string()],
            "{field}"
        );
    }
    let x_fields: Vec<String> = header_fields(&got.data)
        .into_iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| n.starts_with("x-de-mail-") || n.starts_with("x-demail-"))
        .collect();
    assert_eq!(
        x_fields.len(),
        6,
        "five options and the private id: {x_fields:?}"
    );
    assert_eq!(
        got.options,
        demail_provider_sim::DeMailOptions {
            dispatch: true,
            receipt: true,
            retrieve: true,
            authoritative: false,
            private: false,
        }
    );
    // The tag is gone, the rest of the subject kept (decoded by the provider's parser).
    assert_eq!(got.subject.as_deref(), Some("Bescheid über Ihren Antrag"));
    assert_eq!(field_values(&got.data, "Subject").len(), 1);
    // A private id, no Received field (internal hosts stay internal), the body as written.
    let private_id = field_values(&got.data, "X-de-mail-private-id");
    assert_eq!(private_id.len(), 1, "one private id");
    let private_id = private_id[0].clone();
    assert!(
        !private_id.is_empty() && private_id.len() <= 1024,
        "{private_id:?}"
    );
    assert_eq!(got.private_id.as_deref(), Some(private_id.as_str()));
    assert!(
        field_values(&got.data, "Received").is_empty(),
        "Received fields left the city:\n{}",
        String::from_utf8_lossy(&got.data)
    );
    assert!(contains(
        body(&got.data),
        b"M=C3=BCller,\r\nanbei Ihr Bescheid."
    ));

    // demailctl show: submitted, with the SHA-256 of exactly what the provider received.
    let out = city.demailctl(&["show", &private_id]);
    let shown = text(&out);
    assert!(out.status.success(), "demailctl show:\n{shown}");
    let sha_line = shown
        .lines()
        .find(|l| l.starts_with("sha256"))
        .unwrap_or_else(|| panic!("no sha256 line:\n{shown}"));
    assert_eq!(
        sha_line.split_whitespace().nth(1),
        Some(got.sha256.as_str())
    );
    assert!(
        shown
            .lines()
            .any(|l| l.contains(CITIZEN) && l.contains("submitted")),
        "{shown}"
    );
    let v = json(
        &city.demailctl(&["show", "--json", &private_id]),
        "show --json",
    );
    let s = &v["submission"];
    assert_eq!(s["content"], got.sha256.as_str());
    assert_eq!(s["private_id"], private_id.as_str());
    assert_eq!(s["account"], ACCOUNT);
    assert_eq!(s["clerk"], CLERK);
    assert_eq!(s["queue_id"], qid.as_str());
    assert_eq!(s["subject"], "Bescheid über Ihren Antrag");
    assert_eq!(
        s["options"],
        serde_json::json!(["dispatch", "receipt", "retrieve"])
    );
    let recipients = v["recipients"].as_array().expect("recipients is a list");
    assert_eq!(recipients.len(), 1, "{v}");
    assert_eq!(recipients[0]["recipient"], CITIZEN);
    assert_eq!(recipients[0]["status"], "submitted");
    assert_eq!(recipients[0]["since"], s["time"]);
    // The stored blob is byte for byte what arrived (as an admin gets it out of the store).
    let sha256 = s["content"].as_str().expect("content digest");
    let cat = city.demailctl(&["evidence", "cat", sha256]);
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    let blob = cat.stdout;
    assert!(
        blob == got.data,
        "recorded and received bytes differ:\n--- recorded ---\n{}\n--- received ---\n{}",
        String::from_utf8_lossy(&blob),
        String::from_utf8_lossy(&got.data)
    );

    // demailctl status lists the row (table and JSON).
    let out = city.demailctl(&["status"]);
    let status = text(&out);
    assert!(out.status.success(), "demailctl status:\n{status}");
    let rows: Vec<&str> = status.lines().filter(|l| l.contains(&private_id)).collect();
    assert_eq!(rows.len(), 1, "{status}");
    assert!(
        rows[0].contains(CITIZEN) && rows[0].contains("submitted"),
        "{status}"
    );
    let v = json(&city.demailctl(&["status", "--json"]), "status --json");
    let list = v.as_array().expect("status --json is a list");
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["submission"]["private_id"], private_id.as_str());
    assert_eq!(list[0]["recipients"][0]["status"], "submitted");
}

// ----- 2. an unauthorised sender -----

#[test]
fn unauthorised_sender_is_refused_at_rcpt_and_nothing_is_recorded() {
    let city = City::start(CityOptions::default());
    let out = swaks(&[
        "--server",
        &city.smtp_server(),
        "--from",
        INTERN,
        "--to",
        CITIZEN,
        "--header",
        "Subject: Bescheid",
    ]);
    let transcript = text(&out);
    assert!(!out.status.success(), "swaks should fail:\n{transcript}");
    let (code, reply) = swaks_reply(&transcript, &format!("RCPT TO:<{CITIZEN}>"))
        .unwrap_or_else(|| panic!("no reply to RCPT:\n{transcript}"));
    assert_eq!(code, 550, "{transcript}");
    assert!(reply.starts_with("5.7.1 "), "{reply}");
    assert!(
        reply.contains(&format!(
            "Sie sind nicht berechtigt, von der Adresse {INTERN} De-Mail zu versenden"
        )),
        "German text: {reply}"
    );
    assert!(
        reply.contains(&format!(
            "You are not authorised to send De-Mail from the address {INTERN}"
        )),
        "English text: {reply}"
    );
    // German first, then English.
    assert!(reply.find("Sie sind") < reply.find("You are"), "{reply}");
    assert!(
        !transcript.contains("354"),
        "DATA was never reached:\n{transcript}"
    );

    // Nothing queued, nothing sent, nothing recorded.
    let pf = city.postfix();
    assert!(pf.queue().contains("Mail queue is empty"), "{}", pf.queue());
    let log = pf.log();
    assert!(
        log.contains("NOQUEUE: milter-reject: RCPT"),
        "refused by the milter at RCPT:\n{log}"
    );
    assert!(
        !log.contains(" client=localhost") && !log.contains("postfix/qmgr["),
        "a queue file was made:\n{log}"
    );
    assert!(city.simulator().expect("runs").accepted().is_empty());
    assert!(city.submissions().is_empty(), "{:#?}", city.submissions());
    let out = city.demailctl(&["status"]);
    let status = text(&out);
    if out.status.success() {
        assert!(status.contains("no De-Mail recorded"), "{status}");
    } else {
        // The milter opens the store on first use: no De-Mail, no database yet.
        assert!(status.contains("does not exist yet"), "{status}");
    }
}

// ----- 3. the provider is down -----

#[test]
fn with_the_provider_down_the_de_mail_waits_and_leaves_once_when_it_is_back() {
    let mut city = City::start(CityOptions {
        simulator: false,
        ..CityOptions::default()
    });
    let port = city.simulator_port();
    let msg = clerk_message("down-1@example.test", "Anhoerung 2026/3", &[CITIZEN]);
    let sent = submit(&city, CLERK, &[CITIZEN], &msg);
    let end = sent.data.expect("DATA sent");
    assert_eq!(end.code, 250, "{end}");
    let qid = queued_as(&end.text()).unwrap_or_else(|| panic!("no queue id: {end}"));

    let pf = city.postfix();
    wait_until(WAIT, "two deferred delivery attempts", || {
        let n = log_lines(pf, &qid)
            .iter()
            .filter(|l| l.contains("status=deferred"))
            .count();
        (n >= 2).then_some(())
    });
    let queue = pf.queue();
    assert!(queue.contains(&qid) && queue.contains(CITIZEN), "{queue}");
    attempts_only_to_the_gateway(pf, &qid, port);
    // Recorded once at submission, before the provider is reachable.
    assert_eq!(city.submissions().len(), 1);

    city.start_simulator();
    city.postfix().flush();
    let got = the_one_accepted(&city);
    wait_for_empty_queue(city.postfix());
    let attempts = attempts_only_to_the_gateway(city.postfix(), &qid, port);
    assert!(
        attempts.last().is_some_and(|l| l.contains("status=sent")),
        "{attempts:#?}"
    );
    let log = city.postfix().log();
    assert!(!log.contains("status=bounced"), "{log}");
    // No bounce or delay notice was made (it would be a new message from <>).
    assert!(!log.contains("from=<>"), "{log}");
    for bad in ["Host or domain name not found", "example.de-mail.de["] {
        assert!(!log.contains(bad), "{bad:?} in the maillog:\n{log}");
    }

    let subs = city.submissions();
    assert_eq!(subs.len(), 1, "exactly one record: {subs:#?}");
    assert_eq!(subs[0].content.hex(), got.sha256);
    assert_eq!(Some(subs[0].private_id.clone()), got.private_id);
    // The provider still has only this one message once the queue is empty.
    assert_eq!(city.simulator().expect("runs").accepted().len(), 1);
}

// ----- 4. the milter dies in the middle of a transaction -----

#[test]
fn milter_killed_during_the_body_tempfails_and_the_retry_makes_one_record() {
    let mut city = City::start(CityOptions::default());
    let msg = clerk_message(
        "kill-body@example.test",
        "[Eingangsbestaetigung] Widerspruch",
        &[CITIZEN],
    );
    let data = dot_stuff(&msg);
    let half = data.len() / 2;

    let (mut c, _) = SmtpClient::connect(city.smtp_port(), WAIT).expect("connect");
    assert_eq!(
        c.command("EHLO clerk-pc.example.test").expect("EHLO").code,
        250
    );
    assert_eq!(
        c.command(&format!("MAIL FROM:<{CLERK}>"))
            .expect("MAIL")
            .code,
        250
    );
    assert_eq!(
        c.command(&format!("RCPT TO:<{CITIZEN}>"))
            .expect("RCPT")
            .code,
        250
    );
    assert_eq!(c.command("DATA").expect("DATA").code, 354);
    c.send(&data[..half]).expect("first half");
    city.kill_milter();
    c.send(&data[half..]).expect("second half");
    let end = c.command(".").expect("reply to the end of data");
    assert!(
        (400..500).contains(&end.code),
        "Postfix must tempfail without its milter: {end}"
    );
    let _ = c.command("QUIT");
    assert!(city.postfix().queue().contains("Mail queue is empty"));
    assert!(city.submissions().is_empty(), "{:#?}", city.submissions());

    // The client retries once the milter is back: accepted, sent once, recorded once.
    city.start_milter();
    let retry = submit(&city, CLERK, &[CITIZEN], &msg);
    let end = retry.data.expect("DATA sent");
    assert_eq!(end.code, 250, "{end}");
    let got = the_one_accepted(&city);
    wait_for_empty_queue(city.postfix());
    let subs = city.submissions();
    assert_eq!(subs.len(), 1, "{subs:#?}");
    assert_eq!(subs[0].content.hex(), got.sha256);
    assert_eq!(city.simulator().expect("runs").accepted().len(), 1);
}

#[test]
fn milter_killed_after_recording_tempfails_and_the_retry_reuses_the_record() {
    // Postfix talks to the milter through the tap, which withholds the milter's answer to
    // the end of the message: the only way to stop the milter, deterministically, after it
    // stored the evidence and before Postfix heard "accept".
    let tap = MilterTap::new();
    let mut city = City::start(CityOptions {
        postfix: PostfixOptions {
            main_cf: vec![(
                "smtpd_milters".into(),
                format!("inet:127.0.0.1:{}", tap.port()),
            )],
            ..PostfixOptions::default()
        },
        milter_tcp: true,
        ..CityOptions::default()
    });
    tap.forward_to(city.milter_port());
    let msg = clerk_message("kill-eom@example.test", "[persoenlich] Ladung", &[CITIZEN]);

    tap.hold_answers(true);
    let (mut c, _) = SmtpClient::connect(city.smtp_port(), WAIT).expect("connect");
    assert_eq!(
        c.command("EHLO clerk-pc.example.test").expect("EHLO").code,
        250
    );
    assert_eq!(
        c.command(&format!("MAIL FROM:<{CLERK}>"))
            .expect("MAIL")
            .code,
        250
    );
    assert_eq!(
        c.command(&format!("RCPT TO:<{CITIZEN}>"))
            .expect("RCPT")
            .code,
        250
    );
    assert_eq!(c.command("DATA").expect("DATA").code, 354);
    c.send(&dot_stuff(&msg)).expect("message");
    c.send(b".\r\n").expect("end of data");
    tap.wait_for_held_answer(WAIT);
    let first = city.submissions();
    assert_eq!(
        first.len(),
        1,
        "the milter answers only after recording: {first:#?}"
    );
    city.kill_milter();
    let end = c.read_reply().expect("reply to the end of data");
    assert!(
        (400..500).contains(&end.code),
        "Postfix must tempfail when the milter dies before answering: {end}"
    );
    let _ = c.command("QUIT");
    assert!(city.postfix().queue().contains("Mail queue is empty"));
    assert!(city.simulator().expect("runs").accepted().is_empty());

    tap.hold_answers(false);
    city.start_milter();
    let retry = submit(&city, CLERK, &[CITIZEN], &msg);
    let end = retry.data.expect("DATA sent");
    assert_eq!(end.code, 250, "{end}");
    let got = the_one_accepted(&city);
    wait_for_empty_queue(city.postfix());

    let subs = city.submissions();
    assert_eq!(
        subs.len(),
        1,
        "the retry must reuse the record of the attempt Postfix never completed: {subs:#?}"
    );
    assert_eq!(Some(subs[0].private_id.clone()), got.private_id);
    assert_eq!(subs[0].private_id, first[0].private_id);
    assert_eq!(subs[0].content.hex(), got.sha256, "the record is what left");
    assert_eq!(city.simulator().expect("runs").accepted().len(), 1);
}

// ----- 5. mixed recipients; ordinary mail -----

#[test]
fn mixed_recipients_are_refused_and_ordinary_mail_reaches_dovecot_unchanged() {
    let city = City::start(CityOptions {
        dovecot_users: vec![(KOLLEGIN.into(), KOLLEGIN_PW.into())],
        ..CityOptions::default()
    });
    let imap = city.imap_port().expect("Dovecot runs");
    let closed_network = |reply: &SmtpReply| {
        let t = reply.text();
        reply.code == 550
            && t.starts_with("5.7.1 ")
            && t.contains("De-Mail ist ein geschlossenes Netz")
            && t.contains("De-Mail is a closed network")
            && t.find("geschlossenes") < t.find("closed network")
    };

    // De-Mail first: the ordinary recipient is refused at RCPT with the explanation; what the
    // client then sends goes to the De-Mail recipient alone, as De-Mail.
    let msg = clerk_message("mixed-1@example.test", "Bescheid", &[CITIZEN, KOLLEGIN]);
    let sent = submit(&city, CLERK, &[CITIZEN, KOLLEGIN], &msg);
    assert_eq!(sent.rcpt[0].code, 250, "{}", sent.rcpt[0]);
    assert!(closed_network(&sent.rcpt[1]), "{}", sent.rcpt[1]);
    assert_eq!(sent.data.as_ref().map(|r| r.code), Some(250));
    let got = the_one_accepted(&city);
    assert_eq!(got.rcpts, vec![CITIZEN.to_string()]);

    // Ordinary first: the De-Mail recipient is refused; the ordinary mail is delivered as is.
    let msg2 = clerk_message("mixed-2@example.test", "Rueckfrage", &[KOLLEGIN, CITIZEN]);
    let sent = submit(&city, CLERK, &[KOLLEGIN, CITIZEN], &msg2);
    assert_eq!(sent.rcpt[0].code, 250, "{}", sent.rcpt[0]);
    assert!(closed_network(&sent.rcpt[1]), "{}", sent.rcpt[1]);
    assert_eq!(sent.data.as_ref().map(|r| r.code), Some(250));

    // Plain ordinary mail, with a tag-like subject and an X-DeMail-Options field that mean
    // nothing outside De-Mail: delivered byte for byte.
    let msg3 = clerk_message(
        "ordinary-3@example.test",
        "[Abholbestaetigung] Kantine",
        &[KOLLEGIN],
    );
    let msg3 = [b"X-DeMail-Options: retrieve\r\n".as_slice(), &msg3].concat();
    let sent = submit(&city, CLERK, &[KOLLEGIN], &msg3);
    assert_eq!(sent.rcpt[0].code, 250);
    assert_eq!(sent.data.as_ref().map(|r| r.code), Some(250));

    let fetched = wait_until(WAIT, "two messages in the colleague's INBOX", || {
        let m = imaplib_fetch_all(imap, KOLLEGIN, KOLLEGIN_PW);
        (m.len() >= 2).then_some(m)
    });
    assert_eq!(fetched.len(), 2, "only the two ordinary mails");
    for (fetched, sent) in fetched.iter().zip([&msg2, &msg3]) {
        assert!(
            fetched.ends_with(sent),
            "not delivered unchanged:\n--- sent ---\n{}\n--- fetched ---\n{}",
            String::from_utf8_lossy(sent),
            String::from_utf8_lossy(fetched)
        );
        // Only trace fields were added in front (Return-Path, Delivered-To, Received).
        let added = &fetched[..fetched.len() - sent.len()];
        for (name, _) in header_fields(added) {
            assert!(
                ["Return-Path", "Delivered-To", "Received"].contains(&name.as_str()),
                "{name} added to ordinary mail"
            );
        }
    }
    // The De-Mail is the only thing the provider got and the only record.
    wait_for_empty_queue(city.postfix());
    assert_eq!(city.simulator().expect("runs").accepted().len(), 1);
    let subs = city.submissions();
    assert_eq!(subs.len(), 1, "{subs:#?}");
    assert_eq!(subs[0].recipients, vec![CITIZEN.to_string()]);
}

/// Outlook sends a message with Bcc as separate transactions with the same bytes: each Bcc
/// recipient gets a De-Mail of its own, recorded for it; only the same envelope again is a
/// retry.
#[test]
fn the_same_bytes_to_a_bcc_recipient_are_a_de_mail_of_their_own() {
    let city = City::start(CityOptions::default());
    let neighbour = "nachbarin@example.de-mail.de";
    let msg = clerk_message("bcc-1@example.test", "Einladung", &[CITIZEN]);
    for rcpts in [&[CITIZEN][..], &[neighbour][..], &[CITIZEN][..]] {
        let sent = submit(&city, CLERK, rcpts, &msg);
        let end = sent.data.expect("DATA sent");
        assert_eq!(end.code, 250, "{end}");
    }
    let sim = city.simulator().expect("runs");
    let got = sim.wait_for(3, WAIT);
    assert_eq!(got.len(), 3, "{:?}", sim.rejected());
    let subs = city.submissions();
    assert_eq!(subs.len(), 2, "one record per envelope: {subs:#?}");
    let to = |r: &str| {
        subs.iter()
            .find(|s| s.recipients == [r.to_string()])
            .unwrap_or_else(|| panic!("no record for {r}: {subs:#?}"))
    };
    assert_ne!(to(CITIZEN).private_id, to(neighbour).private_id);
    // What the provider got carries each record's private id; the repeat reuses the first.
    let ids: Vec<String> = got
        .iter()
        .map(|a| a.private_id.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        ids.iter().filter(|i| **i == to(CITIZEN).private_id).count(),
        2,
        "{ids:?}"
    );
    assert_eq!(
        ids.iter()
            .filter(|i| **i == to(neighbour).private_id)
            .count(),
        1,
        "{ids:?}"
    );
}
