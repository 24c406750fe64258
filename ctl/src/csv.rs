//! `demailctl status --csv`: one row per recipient, for the poststelle's spreadsheet.
//!
//! RFC 4180: comma-separated, every field in double quotes (quotes inside doubled), CRLF
//! after every record, a header row. UTF-8 with a byte order mark: Excel reads a CSV file
//! without one in the Windows code page (Müller becomes MÃ¼ller), with one as UTF-8;
//! LibreOffice Calc recognises the mark too and preselects UTF-8 in its import dialog.
//! Times are German civil time (CET/CEST, the calendar the VwZG deadline counts in) as
//! `YYYY-MM-DD HH:MM:SS`, which both read as a date and time.

use std::io::{self, Write};

use demail_evidence::{Outstanding, RecipientStatus, Status, Submission, german_time, outstanding};

use crate::report::status_label;

const BOM: &[u8] = "\u{feff}".as_bytes();

const HEADER: [&str; 12] = [
    "private_id",
    "message_id",
    "tenant",
    "account",
    "clerk",
    "recipient",
    "subject",
    "submitted",
    "status",
    "last_confirmation",
    "deemed_served_at_end_of",
    "outstanding",
];

/// One field. Untrusted text (subjects and addresses come from clerks, citizens and the
/// provider) cannot break the record: it is always quoted, so commas, quotes and line breaks
/// stay inside the field. Formula injection: Excel and LibreOffice evaluate a field that
/// starts with `=`, `+`, `-` or `@` (some also after a leading tab or CR) as a formula, even
/// from a CSV file, so a subject like `=HYPERLINK(...)` would run in the poststelle's
/// spreadsheet. Such a field gets a leading apostrophe (OWASP's advice): shown as text, the
/// original still readable after it.
fn field(out: &mut impl Write, value: &str) -> io::Result<()> {
    let neutral = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        "'"
    } else {
        ""
    };
    write!(out, "\"{neutral}{}\"", value.replace('"', "\"\""))
}

fn record(out: &mut impl Write, fields: &[&str]) -> io::Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        field(out, f)?;
    }
    out.write_all(b"\r\n")
}

fn local(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    german_time(t).format(&f).unwrap_or_default()
}

fn outstanding_names(s: &Submission, r: &RecipientStatus) -> String {
    outstanding(&s.options, r)
        .into_iter()
        .map(|o| match o {
            Outstanding::Dispatch => "dispatch",
            Outstanding::Receipt => "receipt",
            Outstanding::Retrieve => "retrieve",
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn write_status(
    out: &mut impl Write,
    rows: &[(Submission, Vec<RecipientStatus>)],
) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    out.write_all(BOM)?;
    record(&mut out, &HEADER)?;
    for (s, statuses) in rows {
        for r in statuses {
            let confirmed = match r.status {
                Status::Submitted => String::new(),
                _ => local(r.since),
            };
            let deadline = r.deemed_served_deadline.map(local).unwrap_or_default();
            record(
                &mut out,
                &[
                    &s.private_id,
                    &s.message_id,
                    &s.tenant,
                    &s.account,
                    &s.clerk,
                    &r.recipient,
                    &s.subject,
                    &local(s.time),
                    &status_label(r),
                    &confirmed,
                    &deadline,
                    &outstanding_names(s, r),
                ],
            )?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(v: &str) -> String {
        let mut out = Vec::new();
        field(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(cell("Bescheid"), "\"Bescheid\"");
        assert_eq!(cell("Ä, \"Ö\"\r\nÜ"), "\"Ä, \"\"Ö\"\"\r\nÜ\"");
        for f in ["=1+1", "+49 30", "-2", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(cell(f), format!("\"'{f}\""), "{f:?}");
        }
        assert_eq!(cell("a=1"), "\"a=1\"");
        assert_eq!(cell(""), "\"\"");
    }
}
