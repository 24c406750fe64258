//! Entry points for the fuzz targets in `fuzz/` into parsers this crate keeps private. Not an
//! API: hidden from the documentation and free to change with the targets.

use std::ops::Range;

use crate::TrustError;
use crate::tl::model::ListData;

/// A certificate: OpenSSL's parse and ours, then every field validation reads.
pub fn certificate(der: &[u8]) {
    let Ok(cert) = crate::cert::Cert::from_der(der) else {
        return;
    };
    let _ = cert.summary();
    let _ = cert.key_usage();
    let _ = cert.qc_statements();
    let _ = cert.emails();
    let _ = cert.key_info();
    let _ = cert.display_name();
    let _ = cert.issuer_line();
    for e in &cert.extensions {
        let _ = cert.extension(&e.oid);
    }
}

/// A CMS blob: ContentInfo, SignedData with its signers' signed attributes, and the SignedData
/// rebuilt for OpenSSL, which must parse again to the same signers. Returns whether it was
/// SignedData.
pub fn cms(data: &[u8]) -> bool {
    let _ = crate::cms::content_type(data);
    let _ = crate::cms::parse_content_info(data);
    let Ok(sd) = crate::cms::parse_signed_data(data) else {
        return false;
    };
    for s in &sd.signers {
        if let Some(attrs) = &s.signed_attrs {
            let _ = crate::attrs::typed(attrs);
        }
    }
    for c in &sd.certificates {
        certificate(c);
    }
    for index in (0..sd.signers.len()).map(Some).chain([None]) {
        let rebuilt = sd.for_openssl(index).expect("signer index in range");
        let again = crate::cms::parse_signed_data(&rebuilt)
            .unwrap_or_else(|e| panic!("SignedData rebuilt for OpenSSL does not parse: {e}"));
        let expected: Vec<&[u8]> = match index {
            Some(i) => vec![sd.signers[i].raw],
            None => sd.signers.iter().map(|s| s.raw).collect(),
        };
        let got: Vec<&[u8]> = again.signers.iter().map(|s| s.raw).collect();
        assert_eq!(got, expected, "rebuilt SignedData changed its signers");
        assert_eq!(
            again.econtent, sd.econtent,
            "rebuilt SignedData changed its content"
        );
        assert!(again.certificates.is_empty());
    }
    true
}

/// The tag list of `X-de-mail-integrity`: each tag's name, value and where the value is.
pub fn integrity_tags(value: &[u8]) -> Result<Vec<(String, String, Range<usize>)>, String> {
    crate::integrity::tags::parse(value).map(|tags| {
        tags.into_iter()
            .map(|t| (t.name, t.value, t.range))
            .collect()
    })
}

/// A trusted list's XML as `demailctl tl import` reads it once the signature verified, and
/// the signature's structure check run before that.
pub fn trusted_list(xml: &[u8]) -> Result<ListData, TrustError> {
    let _ = crate::tl::xmlsig::precheck(xml);
    let text = std::str::from_utf8(xml).map_err(|e| TrustError::Input(e.to_string()))?;
    crate::tl::parse::parse(text, "fuzz", String::new(), String::new())
}

/// A stored list as the verifier loads it (certificates decoded, histories read).
pub fn load_lists(list: ListData) -> Result<(), TrustError> {
    crate::tl::TrustedLists::from_lists(vec![list]).map(|_| ())
}
