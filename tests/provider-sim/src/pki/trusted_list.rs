//! A test trusted list (ETSI TS 119 612 v5) that names the test CA as a granted CA/QC service,
//! signed enveloped by a separate list-signer certificate, as a supervisory body signs its list.
//! With that signer pinned, `demail_trust::tl` accepts the list and the leaves of
//! [`TestPki::issue_qualified`] become qualified (QESig).

use std::fs;
use std::path::{Path, PathBuf};

use openssl::base64;
use openssl::hash::MessageDigest;
use openssl::x509::X509;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::{TestPki, base_builder, new_key, read, subject, write_cert, write_file, write_key};
use crate::error::PkiError;
use crate::xmlsig;

/// The territory of the test list (ISO 3166 user-assigned: never a real member state).
pub const TEST_TERRITORY: &str = "ZZ";
/// Since when the test CA is granted (any past date after eIDAS applies).
pub const GRANTED_SINCE: &str = "2020-01-01T00:00:00Z";
const CA_QC: &str = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC";
const GRANTED: &str = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted";

/// Files of [`TestPki::trusted_list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTrustedList {
    /// The signed list, `trusted-list.xml`.
    pub xml: PathBuf,
    /// The list signer's certificate to pin (`demailctl tl import FILE --signer PEM`).
    pub signer_cert: PathBuf,
    pub signer_key: PathBuf,
}

impl TestPki {
    /// Writes into `dir` a list-signer key and self-signed certificate (`tl-signer.pem/.key`)
    /// and `trusted-list.xml`: territory `ZZ`, one TSP with the test CA as
    /// `CA/QC`, status granted since [`GRANTED_SINCE`], signed with `xmlsec1`.
    pub fn trusted_list(&self, dir: &Path) -> Result<TestTrustedList, PkiError> {
        fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca = X509::from_pem(&read(&self.ca_cert)?).map_err(PkiError::ossl("reading the CA"))?;
        let ca_der = ca.to_der().map_err(PkiError::ossl("encoding the CA"))?;
        let out = TestTrustedList {
            xml: dir.join("trusted-list.xml"),
            signer_cert: dir.join("tl-signer.pem"),
            signer_key: dir.join("tl-signer.key"),
        };
        let key = new_key()?;
        let name = subject("demail-provider-sim trusted list signer")?;
        let build = || {
            let mut b = base_builder(&name, &key)?;
            b.set_issuer_name(&name)?;
            b.append_extension(BasicConstraints::new().critical().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .non_repudiation()
                    .build()?,
            )?;
            let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
            b.append_extension(ski)?;
            b.sign(&key, MessageDigest::sha256())?;
            Ok(b.build())
        };
        let signer = build().map_err(PkiError::ossl("building the list signer certificate"))?;
        write_cert(&out.signer_cert, &signer)?;
        write_key(&out.signer_key, &key)?;

        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        let unsigned = list_xml(
            &base64::encode_block(&ca_der),
            &fmt(now),
            &fmt(now + Duration::days(180)),
        );
        let signed =
            xmlsig::sign_enveloped(&unsigned, "tl-signature", &out.signer_key, &out.signer_cert)?;
        write_file(&out.xml, signed.as_bytes(), 0o644)?;
        Ok(out)
    }
}

fn list_xml(ca_b64: &str, issued: &str, next_update: &str) -> String {
    let en = |text: &str| format!("<Name xml:lang=\"en\">{}</Name>", xmlsig::escape(text));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#" Id="TrustServiceStatusList-1" TSLTag="http://uri.etsi.org/19612/TSLTag">
<SchemeInformation>
<TSLVersionIdentifier>5</TSLVersionIdentifier>
<TSLSequenceNumber>1</TSLSequenceNumber>
<TSLType>http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric</TSLType>
<SchemeOperatorName>{operator}</SchemeOperatorName>
<SchemeOperatorAddress><ElectronicAddress><URI xml:lang="en">mailto:tl@example.invalid</URI></ElectronicAddress></SchemeOperatorAddress>
<SchemeName>{scheme}</SchemeName>
<SchemeInformationURI><URI xml:lang="en">https://example.invalid/demail-provider-sim/tl</URI></SchemeInformationURI>
<StatusDeterminationApproach>http://uri.etsi.org/TrstSvc/TrustedList/StatusDetn/EUappropriate</StatusDeterminationApproach>
<SchemeTypeCommunityRules><URI xml:lang="en">http://uri.etsi.org/TrstSvc/TrustedList/schemerules/EUcommon</URI></SchemeTypeCommunityRules>
<SchemeTerritory>{TEST_TERRITORY}</SchemeTerritory>
<PolicyOrLegalNotice><TSLLegalNotice xml:lang="en">A list for tests only; it has no legal effect.</TSLLegalNotice></PolicyOrLegalNotice>
<HistoricalInformationPeriod>65535</HistoricalInformationPeriod>
<ListIssueDateTime>{issued}</ListIssueDateTime>
<NextUpdate><dateTime>{next_update}</dateTime></NextUpdate>
</SchemeInformation>
<TrustServiceProviderList>
<TrustServiceProvider>
<TSPInformation>
<TSPName>{tsp}</TSPName>
<TSPAddress><ElectronicAddress><URI xml:lang="en">mailto:tsp@example.invalid</URI></ElectronicAddress></TSPAddress>
<TSPInformationURI><URI xml:lang="en">https://example.invalid/demail-provider-sim</URI></TSPInformationURI>
</TSPInformation>
<TSPServices>
<TSPService>
<ServiceInformation>
<ServiceTypeIdentifier>{CA_QC}</ServiceTypeIdentifier>
<ServiceName>{service}</ServiceName>
<ServiceDigitalIdentity><DigitalId><X509Certificate>{ca_b64}</X509Certificate></DigitalId></ServiceDigitalIdentity>
<ServiceStatus>{GRANTED}</ServiceStatus>
<StatusStartingTime>{GRANTED_SINCE}</StatusStartingTime>
</ServiceInformation>
</TSPService>
</TSPServices>
</TrustServiceProvider>
</TrustServiceProviderList>
{placeholder}</TrustServiceStatusList>
"#,
        operator = en("demail-provider-sim test supervisory body"),
        scheme = en("ZZ: trusted list of the demail-provider-sim test PKI"),
        tsp = en("demail-provider-sim test TSP"),
        service = en("demail-provider-sim test CA"),
        ca_b64 = ca_b64.replace('\n', ""),
        placeholder = xmlsig::SIGNATURE_PLACEHOLDER,
    )
}
