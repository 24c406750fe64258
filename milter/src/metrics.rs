//! The milter's counters: fixed label sets indexed by enums, so counting a message is a few
//! relaxed atomic adds. Rendered in the Prometheus text format at a scrape.

use std::time::Duration;

use demail_daemon::metrics::{Counter, Exposition, Histogram, Render, Type};
use demail_evidence::ConfirmationKind;
use demail_trust::Indication;

use crate::message::Kind;

/// How a message ended, as the MTA was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Rejected,
    Tempfailed,
    /// Accepted and stored as evidence, not delivered (evidence-only confirmations).
    Discarded,
    /// The client gave up (RSET, QUIT, lost connection) before the end of the message.
    Aborted,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Accepted,
        Outcome::Rejected,
        Outcome::Tempfailed,
        Outcome::Discarded,
        Outcome::Aborted,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Tempfailed => "tempfailed",
            Outcome::Discarded => "discarded",
            Outcome::Aborted => "aborted",
        }
    }
}

/// The `kind` label of a message.
pub fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::DeMail => "demail_outbound",
        Kind::Poststelle => "poststelle",
        Kind::Provider => "provider_inbound",
        Kind::Ordinary => "ordinary",
        Kind::Undecided => "undecided",
    }
}

const KINDS: [Kind; 5] = [
    Kind::DeMail,
    Kind::Poststelle,
    Kind::Provider,
    Kind::Ordinary,
    Kind::Undecided,
];

fn kind_index(kind: Kind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

/// Who verified signatures: the provider's seal on inbound De-Mail, or a poststelle's QES.
#[derive(Debug, Clone, Copy)]
pub enum Verifier {
    Provider,
    Poststelle,
}

const VERIFIERS: [(Verifier, &str); 2] = [
    (Verifier::Provider, "provider_inbound"),
    (Verifier::Poststelle, "poststelle"),
];

const INDICATIONS: [Indication; 4] = [
    Indication::TotalPassed,
    Indication::TotalFailed,
    Indication::Indeterminate,
    Indication::NoSignatureFound,
];

const CONFIRMATIONS: [&str; 4] = ["dispatch", "receipt", "retrieve", "notification"];

fn confirmation_index(kind: &ConfirmationKind) -> usize {
    match kind {
        ConfirmationKind::Dispatch => 0,
        ConfirmationKind::Receipt => 1,
        ConfirmationKind::Retrieve => 2,
        ConfirmationKind::Notification(_) => 3,
    }
}

/// What the evidence store was asked to write.
#[derive(Debug, Clone, Copy)]
pub enum Record {
    Submission,
    QesCheck,
    Confirmation,
}

const RECORDS: [&str; 3] = ["submission", "qes_check", "confirmation"];

#[derive(Default)]
pub struct Metrics {
    messages: [[Counter; Outcome::ALL.len()]; KINDS.len()],
    verifications: [[Counter; INDICATIONS.len()]; VERIFIERS.len()],
    confirmations: [[Counter; 2]; CONFIRMATIONS.len()],
    end_of_message: [Histogram; KINDS.len()],
    evidence_write: [Histogram; RECORDS.len()],
}

impl Metrics {
    pub fn message(&self, kind: Kind, outcome: Outcome) {
        let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
        self.messages[kind_index(kind)][o].inc();
    }

    pub fn verification(&self, by: Verifier, indication: Indication) {
        if let Some(i) = INDICATIONS.iter().position(|x| *x == indication) {
            self.verifications[by as usize][i].inc();
        }
    }

    pub fn confirmation(&self, kind: &ConfirmationKind, matched: bool) {
        self.confirmations[confirmation_index(kind)][usize::from(matched)].inc();
    }

    /// The milter's own work at end of message (verification, evidence, header changes).
    pub fn end_of_message(&self, kind: Kind, took: Duration) {
        self.end_of_message[kind_index(kind)].observe(took);
    }

    pub fn evidence_write(&self, record: Record, took: Duration) {
        self.evidence_write[record as usize].observe(took);
    }
}

impl Render for Metrics {
    fn render(&self, out: &mut Exposition) {
        let name = "demail_milter_messages_total";
        out.family(name, Type::Counter, "Messages by kind and how they ended.");
        for (k, row) in KINDS.iter().zip(&self.messages) {
            for (o, c) in Outcome::ALL.iter().zip(row) {
                let labels = [("kind", kind_label(*k)), ("outcome", o.label())];
                out.sample(name, &labels, c.get());
            }
        }
        let name = "demail_verifications_total";
        out.family(
            name,
            Type::Counter,
            "Signature verifications by verifier (provider seal or poststelle QES) and indication.",
        );
        for ((_, by), row) in VERIFIERS.iter().zip(&self.verifications) {
            for (i, c) in INDICATIONS.iter().zip(row) {
                let indication = i.to_string();
                out.sample(name, &[("kind", by), ("indication", &indication)], c.get());
            }
        }
        let name = "demail_confirmations_total";
        out.family(
            name,
            Type::Counter,
            "Provider confirmations and notifications recorded, by kind and whether they matched a sent De-Mail.",
        );
        for (kind, row) in CONFIRMATIONS.iter().zip(&self.confirmations) {
            for (matched, c) in ["false", "true"].iter().zip(row) {
                out.sample(name, &[("kind", kind), ("matched", matched)], c.get());
            }
        }
        let name = "demail_milter_message_duration_seconds";
        out.family(
            name,
            Type::Histogram,
            "The milter's work at end of message (verification, evidence, header changes), by kind.",
        );
        for (k, h) in KINDS.iter().zip(&self.end_of_message) {
            out.histogram(name, &[("kind", kind_label(*k))], h);
        }
        let name = "demail_evidence_write_seconds";
        out.family(
            name,
            Type::Histogram,
            "Writing a record and its blobs to the evidence store, durable (fsynced), by record.",
        );
        for (r, h) in RECORDS.iter().zip(&self.evidence_write) {
            out.histogram(name, &[("record", r)], h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(m: &Metrics) -> String {
        let mut out = Exposition::default();
        m.render(&mut out);
        out.into_text()
    }

    #[test]
    fn every_label_combination_is_shown_and_counts_land_where_they_belong() {
        let m = Metrics::default();
        m.message(Kind::DeMail, Outcome::Accepted);
        m.message(Kind::DeMail, Outcome::Accepted);
        m.message(Kind::Ordinary, Outcome::Aborted);
        m.verification(Verifier::Poststelle, Indication::TotalFailed);
        m.confirmation(&ConfirmationKind::Notification("x".into()), false);
        m.confirmation(&ConfirmationKind::Retrieve, true);
        m.end_of_message(Kind::Provider, Duration::from_millis(20));
        m.evidence_write(Record::QesCheck, Duration::from_millis(2));
        let text = scrape(&m);
        for line in [
            "demail_milter_messages_total{kind=\"demail_outbound\",outcome=\"accepted\"} 2",
            "demail_milter_messages_total{kind=\"ordinary\",outcome=\"aborted\"} 1",
            "demail_milter_messages_total{kind=\"poststelle\",outcome=\"tempfailed\"} 0",
            "demail_verifications_total{kind=\"poststelle\",indication=\"TOTAL_FAILED\"} 1",
            "demail_verifications_total{kind=\"provider_inbound\",indication=\"TOTAL_PASSED\"} 0",
            "demail_confirmations_total{kind=\"notification\",matched=\"false\"} 1",
            "demail_confirmations_total{kind=\"retrieve\",matched=\"true\"} 1",
            "demail_milter_message_duration_seconds_count{kind=\"provider_inbound\"} 1",
            "demail_evidence_write_seconds_bucket{record=\"qes_check\",le=\"0.0025\"} 1",
            "# TYPE demail_evidence_write_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("demail_milter_messages_total{"))
                .count(),
            25
        );
    }
}
