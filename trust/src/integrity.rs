//! `X-de-mail-integrity` and `X-de-mail-signature-certificate` (BSI TR-01201 PVD_IO §3.1.13,
//! §3.1.14, §3.1.21): the provider's DKIM-like hash or signature over the De-Mail metadata
//! and body.
//!
//! Differences from DKIM that shape this code: `c=simple/simple` only, `l=` ignored,
//! `a=<hash>/<sig>` or just `<hash>`, the key comes from the certificate in
//! `X-de-mail-signature-certificate` (never DNS), the *topmost* instance of a signed field
//! counts, and an unsigned message carries in `b=` the header hash that would have been
//! signed. [`sign`] and [`verify`] share one canonicalisation and one tag parser.

mod canon;
mod crypto;
mod header;
mod qualified;
pub(crate) mod tags;

use openssl::base64;
use openssl::pkey::{PKeyRef, Private};
use openssl::x509::{X509, X509NameRef, X509Ref};
use serde::Serialize;

pub use crypto::{HashAlg, SigAlg};
pub use qualified::{QualifiedIntegrityReport, ValidationContext, verify_with};

use crate::report::{Indication, SubIndication};
use header::Message;

pub const INTEGRITY_FIELD: &str = "X-de-mail-integrity";
pub const CERTIFICATE_FIELD: &str = "X-de-mail-signature-certificate";
/// The `q=` value of a signed message.
pub const QUERY_METHOD: &str = "x-header/x-de-mail-signature-certificate";

/// The fields `h=` lists, in the TR's order (PVD_IO §3.1.21).
pub const SIGNED_FIELDS: &[&str] = &[
    "From",
    "Date",
    "Message-ID",
    "Subject",
    "Reply-To",
    "X-de-mail-confirmation-of-dispatch",
    "X-de-mail-confirmation-of-receipt",
    "X-de-mail-confirmation-of-retrieve",
    "X-de-mail-authoritative",
    "X-de-mail-private",
    "X-de-mail-sender",
    "X-de-mail-chosen-recipient",
    "X-de-mail-auth-mechanism",
    "X-de-mail-auth-level",
    "X-de-mail-originator-provider",
    "X-de-mail-message-type",
    "X-de-mail-version",
    "X-de-mail-private-id",
    "X-de-mail-message-id",
    "X-de-mail-account-holder",
];

/// Most names we accept in `h=` (the TR lists 20).
const MAX_SIGNED_FIELDS: usize = 64;
/// Largest base64 certificate field we decode.
const MAX_CERTIFICATE_FIELD: usize = 64 * 1024;
/// Header lines are folded before this many characters (RFC 5322 recommends 78).
const FOLD_AT: usize = 76;

/// A signature algorithm pair, e.g. `sha256/rsa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alg {
    pub hash: HashAlg,
    pub sig: SigAlg,
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.hash.name(), self.sig.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("cannot sign: the message is malformed: {0}")]
    Message(String),
    #[error("cannot sign: the message has no From field, which {INTEGRITY_FIELD} must cover")]
    NoFrom,
    #[error("cannot sign: the certificate's public key is not the signing key's")]
    KeyMismatch,
    #[error("cannot sign with {alg}: it needs {needs}")]
    KeyType { alg: Alg, needs: &'static str },
    #[error("OpenSSL failed while {doing}: {reason}")]
    Crypto { doing: &'static str, reason: String },
}

pub type Result<T> = std::result::Result<T, IntegrityError>;

fn crypto(doing: &'static str) -> impl Fn(openssl::error::ErrorStack) -> IntegrityError {
    move |e| IntegrityError::Crypto {
        doing,
        reason: crate::openssl_reasons(&e),
    }
}

/// Signs `message` (CRLF or LF line ends; the result has CRLF throughout): prepends
/// `X-de-mail-integrity` (signing the present fields of [`SIGNED_FIELDS`] and the body) and
/// `X-de-mail-signature-certificate` with `cert`.
pub fn sign(message: &[u8], key: &PKeyRef<Private>, cert: &X509Ref, alg: Alg) -> Result<Vec<u8>> {
    if let Some(needs) = alg.sig.key_mismatch(key) {
        return Err(IntegrityError::KeyType { alg, needs });
    }
    let cert_key = cert
        .public_key()
        .map_err(crypto("reading the certificate's key"))?;
    if !cert_key.public_eq(key) {
        return Err(IntegrityError::KeyMismatch);
    }
    let der = cert.to_der().map_err(crypto("encoding the certificate"))?;
    let mut cert_field = Folder::new(CERTIFICATE_FIELD);
    cert_field.push_joined_chunks(&base64::encode_block(&der));
    seal(
        message,
        alg.hash,
        &alg.to_string(),
        Some(&cert_field.finish()),
        |data| crypto::sign(data, key, alg.hash, alg.sig).map_err(crypto("signing")),
    )
}

/// Adds an unsigned `X-de-mail-integrity` (`a=<hash>`): `b=` holds the header hash, so
/// changes are detectable but anyone can recompute it (PVD_IO §3.1.21, parameter b).
pub fn hash_only(message: &[u8], hash: HashAlg) -> Result<Vec<u8>> {
    seal(message, hash, hash.name(), None, |data| {
        hash.hash(data).map_err(|reason| IntegrityError::Crypto {
            doing: "hashing",
            reason,
        })
    })
}

/// The common part of [`sign`] and [`hash_only`]; `b` turns the header input into b=.
fn seal(
    message: &[u8],
    hash: HashAlg,
    a: &str,
    cert_field: Option<&str>,
    b: impl Fn(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let data = header::to_crlf(message);
    let msg = header::parse(&data).map_err(IntegrityError::Message)?;
    let names: Vec<String> = SIGNED_FIELDS
        .iter()
        .filter(|n| msg.topmost(n).is_some())
        .map(|n| n.to_string())
        .collect();
    if msg.topmost("From").is_none() {
        return Err(IntegrityError::NoFrom);
    }
    let bh = hash
        .hash(&canon::body(msg.body))
        .map_err(|reason| IntegrityError::Crypto {
            doing: "hashing the body",
            reason,
        })?;

    let mut field = Folder::new(INTEGRITY_FIELD);
    field.push("v=1;");
    field.push(&format!("a={a};"));
    field.push("c=simple/simple;");
    if cert_field.is_some() {
        field.push(&format!("q={QUERY_METHOD};"));
    }
    let mut h = String::from("h=");
    for (i, name) in names.iter().enumerate() {
        let sep = if i + 1 < names.len() { ":" } else { ";" };
        h.push_str(name);
        h.push_str(sep);
        field.push_h_part(&h);
        h.clear();
    }
    field.push("bh=");
    field.push_joined_chunks(&base64::encode_block(&bh));
    field.push_joined(";");
    field.push("b=");
    // Everything after "b=" is the b= value that §3.7 empties, so the input is final here.
    let input = canon::header_input(&msg, &names, field.text.as_bytes());
    let value = b(&input)?;
    field.push_joined_chunks(&base64::encode_block(&value));

    let mut out = Vec::with_capacity(data.len() + 4096);
    out.extend_from_slice(field.finish().as_bytes());
    if let Some(c) = cert_field {
        out.extend_from_slice(c.as_bytes());
    }
    out.extend_from_slice(&data);
    Ok(out)
}

/// Builds a folded header field.
struct Folder {
    text: String,
    line: usize,
    /// The h= list is being written: its parts join without a space.
    in_h: bool,
}

impl Folder {
    fn new(name: &str) -> Folder {
        Folder {
            text: format!("{name}:"),
            line: name.len() + 1,
            in_h: false,
        }
    }

    /// A new tag, separated by a space or a fold.
    fn push(&mut self, token: &str) {
        self.in_h = false;
        if self.line + 1 + token.len() > FOLD_AT {
            self.text.push_str("\r\n ");
        } else {
            self.text.push(' ');
        }
        self.text.push_str(token);
        self.line = self.current_line_len();
    }

    /// Continues the current token, folding only if the line would be too long.
    fn push_joined(&mut self, token: &str) {
        if self.line + token.len() > FOLD_AT {
            self.text.push_str("\r\n ");
        }
        self.text.push_str(token);
        self.line = self.current_line_len();
    }

    fn push_h_part(&mut self, part: &str) {
        if self.in_h {
            self.push_joined(part);
        } else {
            self.push(part);
            self.in_h = true;
        }
    }

    fn push_joined_chunks(&mut self, value: &str) {
        for chunk in value.as_bytes().chunks(64) {
            // base64 is ASCII, so every chunk is valid UTF-8.
            self.push_joined(&String::from_utf8_lossy(chunk));
        }
    }

    fn current_line_len(&self) -> usize {
        self.text.rsplit("\r\n").next().map_or(0, str::len)
    }

    fn finish(mut self) -> String {
        self.text.push_str("\r\n");
        self.text
    }
}

/// How a message's integrity field checked out, in EN 319 102-1 terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrityReport {
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    /// What failed, in words (for logs and the clerk).
    pub reason: Option<String>,
    /// A signature (`a=<hash>/<sig>`), not just a hash: only then is the origin proven.
    pub signed: bool,
    /// The `a=` value, e.g. `sha256/rsa`.
    pub algorithm: Option<String>,
    /// The `h=` names as listed.
    pub signed_fields: Vec<String>,
    /// The field value unfolded (what confirmations quote as `Hash`).
    pub integrity_value: Option<String>,
    /// The signer's certificate (DER), for the caller's chain and qualification check.
    #[serde(skip)]
    pub signer_certificate: Option<Vec<u8>>,
    pub signer_subject: Option<String>,
}

impl IntegrityReport {
    fn new() -> IntegrityReport {
        IntegrityReport {
            indication: Indication::TotalPassed,
            sub_indication: None,
            reason: None,
            signed: false,
            algorithm: None,
            signed_fields: Vec::new(),
            integrity_value: None,
            signer_certificate: None,
            signer_subject: None,
        }
    }

    fn fail(mut self, sub: SubIndication, reason: impl Into<String>) -> IntegrityReport {
        self.indication = sub.indication();
        self.sub_indication = Some(sub);
        self.reason = Some(reason.into());
        self
    }

    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

/// Checks the topmost `X-de-mail-integrity` of `message` (CRLF or LF line ends): tag syntax
/// (FORMAT_FAILURE), body and header hash (HASH_FAILURE), signature with the key of the
/// certificate in `X-de-mail-signature-certificate` (SIG_CRYPTO_FAILURE). The certificate
/// itself is not validated here: see [`verify_with`].
pub fn verify(message: &[u8]) -> IntegrityReport {
    let data = header::to_crlf(message);
    let report = IntegrityReport::new();
    let msg = match header::parse(&data) {
        Ok(m) => m,
        Err(e) => return report.fail(SubIndication::FormatFailure, e),
    };
    check(&msg, report)
}

/// What the tags say, validated.
struct Params {
    hash: HashAlg,
    sig: Option<SigAlg>,
    names: Vec<String>,
    bh: Vec<u8>,
    b: Vec<u8>,
    b_range: std::ops::Range<usize>,
}

fn check(msg: &Message<'_>, mut report: IntegrityReport) -> IntegrityReport {
    use SubIndication::*;
    let Some(field) = msg.topmost(INTEGRITY_FIELD) else {
        report.indication = Indication::NoSignatureFound;
        report.reason = Some(format!("no {INTEGRITY_FIELD} field"));
        return report;
    };
    let value = field.value();
    report.integrity_value = Some(unfold(value));
    let params = match tags::parse(value).and_then(|t| params(&t, &mut report)) {
        Ok(p) => p,
        Err(e) => return report.fail(FormatFailure, format!("{INTEGRITY_FIELD}: {e}")),
    };
    // The signer is reported even when the hash fails: who signed what was tampered with
    // belongs in the evidence.
    let cert = params.sig.map(|_| signer_certificate(msg));
    if let Some(Ok(c)) = &cert {
        report.signer_subject = Some(name_line(c.subject_name()));
        report.signer_certificate = c.to_der().ok();
    }
    let hashed = |data: &[u8]| params.hash.hash(data);
    match hashed(&canon::body(msg.body)) {
        Ok(bh) if bh == params.bh => {}
        Ok(_) => return report.fail(HashFailure, "the body hash (bh=) does not match the body"),
        Err(e) => return report.fail(FormatFailure, e),
    }
    let input = canon::header_input(
        msg,
        &params.names,
        &canon::strip_b(field, params.b_range.clone()),
    );
    let (Some(sig), Some(cert)) = (params.sig, cert) else {
        return match hashed(&input) {
            Ok(h) if h == params.b => report,
            Ok(_) => report.fail(
                HashFailure,
                "the header hash (b=) does not match the signed fields",
            ),
            Err(e) => report.fail(FormatFailure, e),
        };
    };
    let cert = match cert {
        Ok(c) => c,
        Err((sub, e)) => return report.fail(sub, e),
    };
    let key = match cert.public_key() {
        Ok(k) => k,
        Err(e) => {
            return report.fail(
                FormatFailure,
                format!(
                    "{CERTIFICATE_FIELD}: unusable public key: {}",
                    crate::openssl_reasons(&e)
                ),
            );
        }
    };
    if let Some(needs) = sig.key_mismatch(&key) {
        return report.fail(
            SigCryptoFailure,
            format!("a={} needs {needs} in the certificate", sig.name()),
        );
    }
    match crypto::verify(&input, &params.b, &key, params.hash, sig) {
        Ok(true) => report,
        Ok(false) => report.fail(
            SigCryptoFailure,
            "the signature (b=) does not verify: a signed field was changed or the key is not the signer's",
        ),
        Err(e) => report.fail(SigCryptoFailure, e),
    }
}

fn params(t: &[tags::Tag], report: &mut IntegrityReport) -> std::result::Result<Params, String> {
    let need = |name: &str| tags::get(t, name).ok_or_else(|| format!("tag {name}= is missing"));
    if need("v")?.value != "1" {
        return Err(format!("v={} is not 1", need("v")?.value));
    }
    let a = &need("a")?.value;
    let (hash, sig) = match a.split_once('/') {
        Some((h, s)) => (h, Some(s)),
        None => (a.as_str(), None),
    };
    let hash = HashAlg::from_name(hash).ok_or_else(|| format!("a={a}: unknown hash"))?;
    let sig = match sig {
        Some(s) => Some(
            SigAlg::from_name(s).ok_or_else(|| format!("a={a}: unknown signature algorithm"))?,
        ),
        None => None,
    };
    report.algorithm = Some(a.clone());
    report.signed = sig.is_some();
    if let Some(c) = tags::get(t, "c")
        && c.value != "simple/simple"
        && c.value != "simple"
    {
        return Err(format!("c={} is not simple/simple", c.value));
    }
    if sig.is_some() {
        let q = need("q")?;
        if !q.value.eq_ignore_ascii_case(QUERY_METHOD) {
            return Err(format!("q={} is not {QUERY_METHOD}", q.value));
        }
    }
    let h = need("h")?.compact();
    let names: Vec<String> = h.split(':').map(str::to_string).collect();
    if names.len() > MAX_SIGNED_FIELDS {
        return Err(format!("h= lists more than {MAX_SIGNED_FIELDS} fields"));
    }
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() || !n.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
            return Err(format!("h= has an invalid field name {n:?}"));
        }
        if names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
            return Err(format!("h= lists {n} twice"));
        }
    }
    if !names.iter().any(|n| n.eq_ignore_ascii_case("From")) {
        return Err("h= does not include From".to_string());
    }
    report.signed_fields = names.clone();
    let b64 = |name: &str| -> std::result::Result<Vec<u8>, String> {
        let v = need(name)?.compact();
        match crate::transfer::base64(v.as_bytes()) {
            Some(d) if !d.is_empty() => Ok(d),
            _ => Err(format!("{name}= is not base64")),
        }
    };
    Ok(Params {
        hash,
        sig,
        names,
        bh: b64("bh")?,
        b: b64("b")?,
        b_range: need("b")?.range.clone(),
    })
}

/// The certificate from the topmost `X-de-mail-signature-certificate`.
fn signer_certificate(msg: &Message<'_>) -> std::result::Result<X509, (SubIndication, String)> {
    let field = msg.topmost(CERTIFICATE_FIELD).ok_or_else(|| {
        (
            SubIndication::NoSigningCertificateFound,
            format!("signed, but no {CERTIFICATE_FIELD} field"),
        )
    })?;
    let value = field.value();
    if value.len() > MAX_CERTIFICATE_FIELD {
        return Err((
            SubIndication::FormatFailure,
            format!("{CERTIFICATE_FIELD} longer than {MAX_CERTIFICATE_FIELD} bytes"),
        ));
    }
    let der = crate::transfer::base64(value).ok_or_else(|| {
        (
            SubIndication::FormatFailure,
            format!("{CERTIFICATE_FIELD} is not base64"),
        )
    })?;
    X509::from_der(&der).map_err(|e| {
        (
            SubIndication::FormatFailure,
            format!(
                "{CERTIFICATE_FIELD} is no X.509 certificate: {}",
                crate::openssl_reasons(&e)
            ),
        )
    })
}

/// The field value without folds and surrounding white space.
fn unfold(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    text.replace("\r\n", "").trim().to_string()
}

/// `CN=..., O=..., C=...` (most specific first, as mail clients show it).
fn name_line(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?").to_string();
            let value = e
                .data()
                .to_string()
                .unwrap_or_else(|_| String::from_utf8_lossy(e.data().as_slice()).into_owned());
            format!("{key}={value}")
        })
        .collect();
    parts.reverse();
    parts.join(", ")
}
