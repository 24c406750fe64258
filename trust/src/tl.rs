//! ETSI TS 119 612 trusted lists: import (XML signature checked against pinned signers),
//! storage as JSON beside the raw XML, and the qualification decision for the verifier.
//!
//! A list contributes only after its signature verified with a pinned certificate:
//! `--signer`, `[trust] list_signers`, or for a national list the certificates an imported
//! EU list of lists (LOTL) names for its territory. The CA/QC service certificates of the
//! imported lists are trust anchors ([`TrustedLists::anchors`]), as in DSS.

mod decide;
pub mod model;
pub(crate) mod parse;
pub mod xmlsig;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::x509::X509;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::TrustError;
use crate::cert::Cert;
use crate::qualify::{CertQualification, QualificationSource};
pub use decide::{EIDAS, is_granted};
use model::ListData;

/// Lists larger than this are refused (the German list of 2015 is 2 MB, the LOTL 0.4 MB).
pub const MAX_LIST_BYTES: usize = 32 << 20;

/// The verified lists in force for a verifier. Cheap to clone.
#[derive(Clone, Default)]
pub struct TrustedLists {
    lists: Vec<Arc<ListData>>,
    services: Arc<Vec<IndexedService>>,
}

/// A CA/QC service certificate with its parsed history, for matching chains quickly.
struct IndexedService {
    cert: X509,
    subject_der: Vec<u8>,
    key_der: Vec<u8>,
    qualifying: bool,
    history: Vec<decide::Period>,
}

impl std::fmt::Debug for TrustedLists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedLists")
            .field(
                "lists",
                &self.lists.iter().map(|l| &l.territory).collect::<Vec<_>>(),
            )
            .field("services", &self.services.len())
            .finish()
    }
}

impl TrustedLists {
    /// What `demailctl tl import` stored in `dir` (every `*.json`); a missing or empty
    /// directory gives an empty set.
    pub fn load(dir: &Path) -> Result<TrustedLists, TrustError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TrustedLists::default());
            }
            Err(e) => return Err(TrustError::Input(format!("{}: {e}", dir.display()))),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut lists = Vec::new();
        for p in paths {
            let data = std::fs::read(&p)
                .map_err(|e| TrustError::Input(format!("{}: {e}", p.display())))?;
            let list: ListData = serde_json::from_slice(&data).map_err(|e| {
                TrustError::Input(format!("{}: not a stored trusted list: {e}", p.display()))
            })?;
            lists.push(list);
        }
        TrustedLists::from_lists(lists)
    }

    /// One list from its XML, its signature verified against `signers` (pinned certificates).
    pub fn from_xml_verified(xml: &[u8], signers: &[X509]) -> Result<TrustedLists, TrustError> {
        TrustedLists::from_lists(vec![verify_and_parse(xml, "(given XML)", signers)?])
    }

    pub(crate) fn from_lists(lists: Vec<ListData>) -> Result<TrustedLists, TrustError> {
        let mut services = Vec::new();
        for list in &lists {
            for s in &list.services {
                let history = s
                    .history
                    .iter()
                    .map(|p| {
                        Ok(decide::Period {
                            start: parse_time(&p.start).ok_or_else(|| {
                                TrustError::Input(format!(
                                    "trusted list {}: bad start {:?}",
                                    list.territory, p.start
                                ))
                            })?,
                            status: p.status.clone(),
                            rules: p.qualifications.clone(),
                            additional: p.additional.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, TrustError>>()?;
                for c in &s.certificates {
                    let cert = x509_from_b64(&c.der).map_err(|e| {
                        TrustError::Input(format!(
                            "trusted list {}: service {}: {e}",
                            list.territory, s.name
                        ))
                    })?;
                    let subject_der = cert.subject_name().to_der().unwrap_or_default();
                    let key_der = cert
                        .public_key()
                        .and_then(|k| k.public_key_to_der())
                        .unwrap_or_default();
                    services.push(IndexedService {
                        cert,
                        subject_der,
                        key_der,
                        qualifying: s.service_type == parse::CA_QC,
                        history: history.clone(),
                    });
                }
            }
        }
        Ok(TrustedLists {
            lists: lists.into_iter().map(Arc::new).collect(),
            services: Arc::new(services),
        })
    }

    /// Both sets together (a `--tl` list for one run beside the imported ones).
    pub fn merged(&self, other: &TrustedLists) -> Result<TrustedLists, TrustError> {
        let lists = self
            .lists
            .iter()
            .chain(other.lists.iter())
            .map(|l| ListData::clone(l))
            .collect();
        TrustedLists::from_lists(lists)
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    pub fn lists(&self) -> impl Iterator<Item = &ListData> {
        self.lists.iter().map(|l| l.as_ref())
    }

    /// The service certificates (CA/QC and NationalRootCA-QC) as trust anchors.
    pub fn anchors(&self) -> Vec<X509> {
        let mut out: Vec<X509> = Vec::new();
        for s in self.services.iter() {
            let der = s.cert.to_der().unwrap_or_default();
            if !out.iter().any(|o| o.to_der().is_ok_and(|d| d == der)) {
                out.push(s.cert.clone());
            }
        }
        out
    }

    /// The signer certificates the imported LOTLs name for `territory`'s list.
    pub fn pointer_signers(&self, territory: &str) -> Vec<X509> {
        self.lists
            .iter()
            .filter(|l| l.lotl)
            .flat_map(|l| l.pointers.iter())
            .filter(|p| p.territory.eq_ignore_ascii_case(territory))
            .flat_map(|p| p.signers.iter())
            .filter_map(|b64| x509_from_b64(b64).ok())
            .collect()
    }
}

/// Verifies `xml` against `signers` (plus, for a national list, the certificates `known`'s
/// LOTLs name for its territory) and stores it in `dir` as `<name>.xml` and `<name>.json`,
/// replacing an earlier import of the same list. Returns what was stored.
pub fn import(
    dir: &Path,
    xml: &[u8],
    source_name: &str,
    signers: &[X509],
    known: &TrustedLists,
) -> Result<ListData, TrustError> {
    let mut pinned = signers.to_vec();
    if let Some(territory) = peek_territory(xml, source_name)? {
        pinned.extend(known.pointer_signers(&territory));
    }
    let list = verify_and_parse(xml, source_name, &pinned)?;
    let stem = if list.lotl {
        format!("lotl-{}", list.territory)
    } else {
        format!("tl-{}", list.territory)
    };
    if stem.contains(['/', '\\', '.']) || list.territory.is_empty() {
        return Err(parse::err(
            source_name,
            format!("unusable SchemeTerritory {:?}", list.territory),
        ));
    }
    let io = |e: std::io::Error| TrustError::Input(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let json = serde_json::to_vec_pretty(&list).map_err(|e| TrustError::Input(e.to_string()))?;
    // XML first: a JSON file (what load() reads) never stands without the list it came from.
    write_atomic(&dir.join(format!("{stem}.xml")), xml).map_err(io)?;
    write_atomic(&dir.join(format!("{stem}.json")), &json).map_err(io)?;
    Ok(list)
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// The SchemeTerritory before verification, only to find the LOTL's pinned signers for it.
fn peek_territory(xml: &[u8], name: &str) -> Result<Option<String>, TrustError> {
    let text = std::str::from_utf8(xml).map_err(|e| parse::err(name, format!("not UTF-8: {e}")))?;
    let doc = parse::document(text, name)?;
    Ok(doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "SchemeTerritory")
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string()))
}

fn verify_and_parse(xml: &[u8], name: &str, signers: &[X509]) -> Result<ListData, TrustError> {
    if xml.len() > MAX_LIST_BYTES {
        return Err(parse::err(
            name,
            format!("larger than {MAX_LIST_BYTES} bytes"),
        ));
    }
    let signer = xmlsig::verify(xml, name, signers)?;
    let text = std::str::from_utf8(xml).map_err(|e| parse::err(name, format!("not UTF-8: {e}")))?;
    let sha = parse::hex(&openssl::sha::sha256(xml));
    parse::parse(text, name, sha, subject_line(&signer))
}

impl QualificationSource for TrustedLists {
    fn certificate_qualification(
        &self,
        chain: &[X509],
        signing_time: OffsetDateTime,
    ) -> Option<CertQualification> {
        let leaf = Cert::from_x509(chain.first()?).ok()?;
        // The nearest CA in the path that a CA/QC service lists decides.
        for ca in chain.iter().skip(1) {
            let subject = ca.subject_name().to_der().ok()?;
            let key = ca.public_key().and_then(|k| k.public_key_to_der()).ok()?;
            let histories: Vec<&decide::History> = self
                .services
                .iter()
                .filter(|s| s.qualifying && s.subject_der == subject && s.key_der == key)
                .map(|s| s.history.as_slice())
                .collect();
            if !histories.is_empty() {
                return Some(decide::decide(&histories, &leaf, ca, signing_time));
            }
        }
        None
    }
}

fn x509_from_b64(b64: &str) -> Result<X509, String> {
    let der =
        openssl::base64::decode_block(b64).map_err(|e| format!("certificate not base64: {e}"))?;
    X509::from_der(&der).map_err(|e| format!("certificate unreadable: {e}"))
}

pub(crate) fn subject_line(cert: &X509) -> String {
    Cert::from_x509(cert).map_or_else(
        |_| format!("{:?}", cert.subject_name()),
        |c| c.subject_line(),
    )
}

/// xsd:dateTime as the lists write it (RFC 3339, `Z` or an offset).
pub(crate) fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339).ok()
}

pub(crate) fn format_utc(t: OffsetDateTime) -> String {
    crate::format_time(t.to_offset(UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_lists_are_shareable() {
        fn shareable<T: Clone + Send + Sync>() {}
        shareable::<TrustedLists>();
    }

    #[test]
    fn missing_dir_is_empty() {
        let tl = TrustedLists::load(Path::new("/nonexistent/demail-trust-test")).unwrap();
        assert!(tl.is_empty());
        assert!(tl.anchors().is_empty());
    }
}
