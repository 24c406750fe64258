//! What an imported trusted list contributes, as stored beside its XML (`<name>.json`).
//! Certificates are kept as base64 DER so the file is self-contained and diffable.

use serde::{Deserialize, Serialize};

/// One verified ETSI TS 119 612 list: its identity, the CA/QC services and, for the EU list
/// of lists (LOTL), the pointers to the national lists with their pinned signers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ListData {
    /// SchemeTerritory (`DE`, `EU`, ...).
    pub territory: String,
    /// True for a list of lists (TSLType `.../EUlistofthelists`).
    pub lotl: bool,
    pub sequence_number: Option<u64>,
    pub issued: Option<String>,
    pub next_update: Option<String>,
    pub operator: String,
    /// SHA-256 (hex) of the XML exactly as imported.
    pub sha256: String,
    /// Subject of the pinned certificate the XML signature verified with.
    pub signed_by: String,
    pub services: Vec<Service>,
    pub pointers: Vec<Pointer>,
}

/// LOTL `OtherTSLPointer`: where a national list lives and which certificates may sign it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pointer {
    pub territory: String,
    pub location: String,
    pub mime_type: Option<String>,
    /// Base64 DER.
    pub signers: Vec<String>,
}

/// A `TSPService` of type CA/QC (or NationalRootCA-QC) with its status history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Service {
    pub provider: String,
    pub name: String,
    pub service_type: String,
    pub certificates: Vec<ServiceCert>,
    /// Newest first: the current status, then the `ServiceHistoryInstance`s.
    pub history: Vec<StatusPeriod>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceCert {
    /// Base64 DER.
    pub der: String,
    pub subject: String,
    /// Subject key identifier (hex), if the certificate has one.
    pub ski: Option<String>,
}

/// The service's status from `start` until the next newer period begins.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusPeriod {
    /// Full status URI (`.../Svcstatus/granted`, `.../undersupervision`, ...).
    pub status: String,
    /// RFC 3339.
    pub start: String,
    pub qualifications: Vec<QualificationRule>,
    /// AdditionalServiceInformation URIs (`.../ForeSignatures`, `.../ForeSeals`, ...).
    pub additional: Vec<String>,
}

/// A `QualificationElement`: qualifiers that apply to certificates matching `criteria`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QualificationRule {
    /// Last path segment of each qualifier URI (`QCWithSSCD`, `QCForESig`, ...).
    pub qualifiers: Vec<String>,
    pub criteria: Criteria,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Assert {
    All,
    AtLeastOne,
    None,
}

/// `CriteriaList`: key usage and policy criteria, nested lists; anything else is recorded in
/// `unsupported` and never matches (an unknown criterion must not widen a qualifier).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Criteria {
    pub assert: Assert,
    /// Each entry one `KeyUsage` element: (bit name, required value).
    pub key_usage: Vec<Vec<(String, bool)>>,
    /// Each entry one `PolicySet`: all of these policy OIDs.
    pub policy_sets: Vec<Vec<String>>,
    pub nested: Vec<Criteria>,
    pub unsupported: Vec<String>,
}
