//! ETSI TS 119 612 XML to [`ListData`]. Elements are matched by local name inside the
//! expected parent, so v4 (2015) and v5 lists read alike.

use openssl::x509::X509;
use roxmltree::{Document, Node, ParsingOptions};

use super::model::{
    Assert, Criteria, ListData, Pointer, QualificationRule, Service, ServiceCert, StatusPeriod,
};
use crate::TrustError;

/// Service types whose certificates issue qualified certificates (or are their roots).
pub const CA_QC: &str = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC";
pub const NATIONAL_ROOT_CA_QC: &str = "http://uri.etsi.org/TrstSvc/Svctype/NationalRootCA-QC";
const LOTL_TYPE_SUFFIX: &str = "EUlistofthelists";
/// Nested CriteriaLists deeper than this are refused (hostile input).
const MAX_CRITERIA_DEPTH: usize = 8;

pub fn err(name: &str, what: impl std::fmt::Display) -> TrustError {
    TrustError::Input(format!("trusted list {name}: {what}"))
}

/// Parses without DTD support (roxmltree refuses a DOCTYPE by default): no entity tricks.
pub fn document<'a>(xml: &'a str, name: &str) -> Result<Document<'a>, TrustError> {
    let options = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(xml, options).map_err(|e| err(name, format!("not XML: {e}")))
}

fn child<'a, 'i>(node: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == local)
}

fn children<'a, 'i: 'a>(node: Node<'a, 'i>, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == local)
}

fn path<'a, 'i>(node: Node<'a, 'i>, locals: &[&str]) -> Option<Node<'a, 'i>> {
    locals.iter().try_fold(node, |n, l| child(n, l))
}

fn text(node: Option<Node<'_, '_>>) -> Option<String> {
    node.and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The English `Name` of a multilingual name list, else the first.
fn name_of(node: Option<Node<'_, '_>>) -> String {
    let Some(node) = node else {
        return String::new();
    };
    let names: Vec<Node> = children(node, "Name").collect();
    let en = names
        .iter()
        .find(|n| n.attribute(("http://www.w3.org/XML/1998/namespace", "lang")) == Some("en"));
    text(en.or(names.first()).copied()).unwrap_or_default()
}

/// Parses a list whose XML signature has already been verified.
pub fn parse(
    xml: &str,
    name: &str,
    sha256: String,
    signed_by: String,
) -> Result<ListData, TrustError> {
    let doc = document(xml, name)?;
    let root = doc.root_element();
    if root.tag_name().name() != "TrustServiceStatusList" {
        return Err(err(name, "the root element is not TrustServiceStatusList"));
    }
    let scheme =
        child(root, "SchemeInformation").ok_or_else(|| err(name, "no SchemeInformation"))?;
    let territory =
        text(child(scheme, "SchemeTerritory")).ok_or_else(|| err(name, "no SchemeTerritory"))?;
    let tsl_type = text(child(scheme, "TSLType")).unwrap_or_default();
    let sequence_number = match text(child(scheme, "TSLSequenceNumber")) {
        Some(s) => Some(
            s.parse()
                .map_err(|_| err(name, format!("TSLSequenceNumber {s:?} is not a number")))?,
        ),
        None => None,
    };
    let pointers = match child(scheme, "PointersToOtherTSL") {
        Some(p) => children(p, "OtherTSLPointer")
            .map(|p| pointer(p, name))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let mut services = Vec::new();
    if let Some(list) = child(root, "TrustServiceProviderList") {
        for tsp in children(list, "TrustServiceProvider") {
            let provider = name_of(path(tsp, &["TSPInformation", "TSPName"]));
            let Some(svcs) = child(tsp, "TSPServices") else {
                continue;
            };
            for svc in children(svcs, "TSPService") {
                if let Some(s) = service(svc, &provider, name)? {
                    services.push(s);
                }
            }
        }
    }
    Ok(ListData {
        territory,
        lotl: tsl_type.ends_with(LOTL_TYPE_SUFFIX),
        sequence_number,
        issued: text(child(scheme, "ListIssueDateTime")),
        next_update: text(path(scheme, &["NextUpdate", "dateTime"])),
        operator: name_of(child(scheme, "SchemeOperatorName")),
        sha256,
        signed_by,
        services,
        pointers,
    })
}

fn pointer(p: Node<'_, '_>, name: &str) -> Result<Pointer, TrustError> {
    let mut territory = String::new();
    let mut mime_type = None;
    if let Some(info) = path(p, &["AdditionalInformation"]) {
        for other in children(info, "OtherInformation") {
            for c in other.children().filter(|c| c.is_element()) {
                match c.tag_name().name() {
                    "SchemeTerritory" => territory = text(Some(c)).unwrap_or_default(),
                    "MimeType" => mime_type = text(Some(c)),
                    _ => {}
                }
            }
        }
    }
    let mut signers = Vec::new();
    if let Some(ids) = child(p, "ServiceDigitalIdentities") {
        for id in children(ids, "ServiceDigitalIdentity") {
            for cert in certificates(id, name)? {
                signers.push(cert.der);
            }
        }
    }
    Ok(Pointer {
        territory,
        location: text(child(p, "TSLLocation")).unwrap_or_default(),
        mime_type,
        signers,
    })
}

/// The `X509Certificate`s of a `ServiceDigitalIdentity`; each must be a certificate OpenSSL
/// reads (a broken one is an error: the list's issuer signed it, so it is not noise).
fn certificates(identity: Node<'_, '_>, name: &str) -> Result<Vec<ServiceCert>, TrustError> {
    let mut out = Vec::new();
    for id in children(identity, "DigitalId") {
        let Some(b64) = text(child(id, "X509Certificate")) else {
            continue;
        };
        let compact: String = b64.split_whitespace().collect();
        let der = openssl::base64::decode_block(&compact)
            .map_err(|e| err(name, format!("X509Certificate is not base64: {e}")))?;
        let x509 = X509::from_der(&der).map_err(|e| {
            err(
                name,
                format!("X509Certificate line {}: {e}", identity_line(id)),
            )
        })?;
        out.push(ServiceCert {
            der: compact,
            subject: super::subject_line(&x509),
            ski: x509.subject_key_id().map(|k| hex(k.as_slice())),
        });
    }
    Ok(out)
}

fn identity_line(n: Node<'_, '_>) -> u32 {
    n.document().text_pos_at(n.range().start).row
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn service(svc: Node<'_, '_>, provider: &str, name: &str) -> Result<Option<Service>, TrustError> {
    let info = child(svc, "ServiceInformation").ok_or_else(|| {
        err(
            name,
            format!(
                "TSPService at line {} without ServiceInformation",
                identity_line(svc)
            ),
        )
    })?;
    let service_type = text(child(info, "ServiceTypeIdentifier")).unwrap_or_default();
    if service_type != CA_QC && service_type != NATIONAL_ROOT_CA_QC {
        return Ok(None);
    }
    let certificates = match child(info, "ServiceDigitalIdentity") {
        Some(id) => certificates(id, name)?,
        None => Vec::new(),
    };
    let mut history = vec![period(info, name)?];
    if let Some(h) = child(svc, "ServiceHistory") {
        for instance in children(h, "ServiceHistoryInstance") {
            history.push(period(instance, name)?);
        }
    }
    // Newest first, whatever order the list uses.
    history.sort_by(|a, b| b.start.cmp(&a.start));
    Ok(Some(Service {
        provider: provider.to_string(),
        name: name_of(child(info, "ServiceName")),
        service_type,
        certificates,
        history,
    }))
}

fn period(node: Node<'_, '_>, name: &str) -> Result<StatusPeriod, TrustError> {
    let line = identity_line(node);
    let status = text(child(node, "ServiceStatus"))
        .ok_or_else(|| err(name, format!("line {line}: no ServiceStatus")))?;
    let start = text(child(node, "StatusStartingTime"))
        .ok_or_else(|| err(name, format!("line {line}: no StatusStartingTime")))?;
    let start = super::parse_time(&start)
        .map(super::format_utc)
        .ok_or_else(|| {
            err(
                name,
                format!("line {line}: StatusStartingTime {start:?} is not a dateTime"),
            )
        })?;
    let mut qualifications = Vec::new();
    let mut additional = Vec::new();
    if let Some(exts) = child(node, "ServiceInformationExtensions") {
        for ext in children(exts, "Extension") {
            for c in ext.children().filter(|c| c.is_element()) {
                match c.tag_name().name() {
                    "Qualifications" => {
                        for q in children(c, "QualificationElement") {
                            qualifications.push(rule(q, name)?);
                        }
                    }
                    "AdditionalServiceInformation" => {
                        additional.extend(text(child(c, "URI")));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(StatusPeriod {
        status,
        start,
        qualifications,
        additional,
    })
}

fn rule(q: Node<'_, '_>, name: &str) -> Result<QualificationRule, TrustError> {
    let qualifiers = child(q, "Qualifiers")
        .map(|qs| {
            children(qs, "Qualifier")
                .filter_map(|x| x.attribute("uri"))
                .map(|u| u.trim().rsplit('/').next().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let list = child(q, "CriteriaList").ok_or_else(|| {
        err(
            name,
            format!(
                "line {}: QualificationElement without CriteriaList",
                identity_line(q)
            ),
        )
    })?;
    Ok(QualificationRule {
        qualifiers,
        criteria: criteria(list, name, 0)?,
    })
}

fn criteria(list: Node<'_, '_>, name: &str, depth: usize) -> Result<Criteria, TrustError> {
    let line = identity_line(list);
    if depth > MAX_CRITERIA_DEPTH {
        return Err(err(
            name,
            format!("line {line}: CriteriaList nested too deep"),
        ));
    }
    let assert = match list.attribute("assert").unwrap_or("all") {
        "all" => Assert::All,
        "atLeastOne" => Assert::AtLeastOne,
        "none" => Assert::None,
        other => {
            return Err(err(
                name,
                format!("line {line}: CriteriaList assert={other:?}"),
            ));
        }
    };
    let mut c = Criteria {
        assert,
        key_usage: Vec::new(),
        policy_sets: Vec::new(),
        nested: Vec::new(),
        unsupported: Vec::new(),
    };
    for e in list.children().filter(|e| e.is_element()) {
        match e.tag_name().name() {
            "KeyUsage" => {
                let bits = children(e, "KeyUsageBit")
                    .map(|b| {
                        let bit = b.attribute("name").unwrap_or_default().to_string();
                        match text(Some(b)).as_deref() {
                            Some("true") | Some("1") => Ok((bit, true)),
                            Some("false") | Some("0") => Ok((bit, false)),
                            v => Err(err(
                                name,
                                format!("line {}: KeyUsageBit {bit} = {v:?}", identity_line(b)),
                            )),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                c.key_usage.push(bits);
            }
            "PolicySet" => {
                let oids = children(e, "PolicyIdentifier")
                    .filter_map(|p| text(child(p, "Identifier")))
                    .map(|oid| oid.trim_start_matches("urn:oid:").to_string())
                    .collect();
                c.policy_sets.push(oids);
            }
            "CriteriaList" => c.nested.push(criteria(e, name, depth + 1)?),
            "Description" => {}
            other => c.unsupported.push(other.to_string()),
        }
    }
    Ok(c)
}
