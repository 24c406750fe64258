//! Revocation checking behind one trait, so OCSP (AIA responder, with timeout) and CRL files
//! plug in without touching the validation logic, and tests can inject answers.
//!
//! Every checker answers for one (certificate, issuer) pair of a path that reached a trust
//! anchor. No answer is never a pass: a responder that is down, slow or answers something
//! unverifiable gives [`RevocationStatus::Unknown`], which the report shows as
//! INDETERMINATE/TRY_LATER.

mod crl;
mod http;
mod ocsp;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use openssl::asn1::{Asn1GeneralizedTimeRef, Asn1Time, Asn1TimeRef};
use openssl::x509::X509Ref;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

pub use crl::CrlChecker;
pub use ocsp::OcspChecker;

/// What a revocation source knows about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Checking is switched off (the operator's choice; reported, never a failure).
    NotChecked,
    /// Not revoked according to `source` (e.g. "OCSP http://ocsp.example").
    Good { source: String },
    Revoked {
        time: OffsetDateTime,
        reason: Option<String>,
        source: String,
    },
    /// No usable answer (responder down, stale CRL): INDETERMINATE/TRY_LATER, never passed.
    Unknown { reason: String },
}

pub trait RevocationChecker: Send + Sync {
    /// Short name for reports: "off", "ocsp", "crl".
    fn name(&self) -> &'static str;

    /// The status of `cert`, issued by `issuer`, for a signature validated at `at`.
    /// Implementations bound their own cost (timeouts, cache) and never panic on bad answers.
    fn check(&self, cert: &X509Ref, issuer: &X509Ref, at: OffsetDateTime) -> RevocationStatus;
}

/// `revocation = "off"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocationCheck;

impl RevocationChecker for NoRevocationCheck {
    fn name(&self) -> &'static str {
        "off"
    }

    fn check(&self, _: &X509Ref, _: &X509Ref, _: OffsetDateTime) -> RevocationStatus {
        RevocationStatus::NotChecked
    }
}

/// `[trust] revocation` (a local copy of the policy's enum: this crate does not depend on the
/// configuration crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevocationMode {
    /// OCSP at the responder the certificate names; CRL files, if any, when OCSP gives no
    /// answer.
    #[default]
    Ocsp,
    /// Only the configured CRL files.
    Crl,
    Off,
}

impl FromStr for RevocationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ocsp" => Ok(RevocationMode::Ocsp),
            "crl" => Ok(RevocationMode::Crl),
            "off" => Ok(RevocationMode::Off),
            other => Err(format!(
                "revocation {other:?}: expected \"ocsp\", \"crl\" or \"off\""
            )),
        }
    }
}

/// The checker for a configuration. CRL files that cannot be read do not stop the gateway:
/// their problem is named in every answer that would have needed them (use
/// [`CrlChecker::from_files`] to refuse them instead).
pub fn from_settings(
    mode: RevocationMode,
    timeout: Duration,
    crls: &[PathBuf],
) -> Box<dyn RevocationChecker> {
    match mode {
        RevocationMode::Off => Box::new(NoRevocationCheck),
        RevocationMode::Crl => Box::new(CrlChecker::from_files_lenient(crls)),
        RevocationMode::Ocsp if crls.is_empty() => Box::new(OcspChecker::new(timeout)),
        RevocationMode::Ocsp => Box::new(
            OcspChecker::new(timeout).with_crl_fallback(CrlChecker::from_files_lenient(crls)),
        ),
    }
}

/// An ASN.1 time (UTCTime or GeneralizedTime) as `OffsetDateTime`, by its distance from the
/// Unix epoch (OpenSSL does the calendar arithmetic).
pub(crate) fn asn1_time(t: &Asn1TimeRef) -> Option<OffsetDateTime> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    OffsetDateTime::from_unix_timestamp(i64::from(d.days) * 86_400 + i64::from(d.secs)).ok()
}

/// The OCSP API hands out GeneralizedTime, which the safe crate can only print
/// (`Jan  2 03:04:05 2020 GMT`, fractions possible): parsed back from that form.
pub(crate) fn generalized_time(t: &Asn1GeneralizedTimeRef) -> Option<OffsetDateTime> {
    parse_printed_time(&t.to_string())
}

fn parse_printed_time(text: &str) -> Option<OffsetDateTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut words = text.split_whitespace();
    let month_name = words.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)?;
    let day: u8 = words.next()?.parse().ok()?;
    let clock = words.next()?;
    let year: i32 = words.next()?.parse().ok()?;
    if words.next() != Some("GMT") || words.next().is_some() {
        return None;
    }
    let whole = clock.split('.').next()?;
    let mut hms = whole.split(':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
        return None;
    }
    let month = Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(PrimitiveDateTime::new(date, Time::from_hms(h, m, s).ok()?).assume_utc())
}

/// RFC 5280 §5.3.1 CRLReason names (also OCSP's revocationReason).
pub(crate) fn reason_name(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => return None,
    })
}

/// A certificate's name for messages.
pub(crate) fn subject(cert: &X509Ref) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_else(|_| "?".to_string());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1GeneralizedTime;

    #[test]
    fn times_from_openssl() {
        let t = Asn1Time::from_str("20240229235958Z").unwrap();
        assert_eq!(
            asn1_time(&t).unwrap(),
            time::macros::datetime!(2024-02-29 23:59:58 UTC)
        );
        let g = Asn1GeneralizedTime::from_str("20300102030405Z").unwrap();
        assert_eq!(
            generalized_time(&g).unwrap(),
            time::macros::datetime!(2030-01-02 03:04:05 UTC)
        );
        let frac = parse_printed_time("Dec 31 23:59:59.125 1999 GMT").unwrap();
        assert_eq!(frac, time::macros::datetime!(1999-12-31 23:59:59 UTC));
        for bad in [
            "",
            "error",
            "Foo  2 03:04:05 2020 GMT",
            "Jan 32 03:04:05 2020 GMT",
            "Jan  2 03:04 2020 GMT",
            "Jan  2 03:04:05 2020 CET",
        ] {
            assert_eq!(parse_printed_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!("ocsp".parse(), Ok(RevocationMode::Ocsp));
        assert_eq!("crl".parse(), Ok(RevocationMode::Crl));
        assert_eq!("off".parse(), Ok(RevocationMode::Off));
        assert!("OCSP".parse::<RevocationMode>().is_err());
        let t = Duration::from_secs(1);
        assert_eq!(from_settings(RevocationMode::Off, t, &[]).name(), "off");
        assert_eq!(from_settings(RevocationMode::Ocsp, t, &[]).name(), "ocsp");
        assert_eq!(from_settings(RevocationMode::Crl, t, &[]).name(), "crl");
    }
}
