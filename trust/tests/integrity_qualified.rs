//! `verify_with`: the signer certificate of `X-de-mail-integrity` validated against trust
//! anchors and a trusted list, using the provider simulator's qualified test certificate.

use demail_provider_sim::pki::TestPki;
use demail_trust::integrity::{self, Alg, HashAlg, SigAlg, ValidationContext};
use demail_trust::{
    CertQualification, CertType, Indication, QcType, Qualification, QualificationSource,
    SubIndication,
};
use openssl::pkey::PKey;
use openssl::x509::X509;
use time::{Duration, OffsetDateTime};

const MAIL: &[u8] = b"From: Abholbestaetigung@provider.example\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
Subject: *Abholbestaetigung* Bescheid\r\n\
X-de-mail-message-type: confirmation of retrieve\r\n\
\r\n\
body\r\n";

struct Fixture {
    _dir: tempfile::TempDir,
    ca: X509,
    signed: Vec<u8>,
    leaf: X509,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path()).unwrap();
    let issued = pki.issue_qualified("qes", "Provider QES").unwrap();
    let leaf = X509::from_pem(&std::fs::read(&issued.cert).unwrap()).unwrap();
    let key = PKey::private_key_from_pem(&std::fs::read(&issued.key).unwrap()).unwrap();
    let ca = X509::from_pem(&std::fs::read(&pki.ca_cert).unwrap()).unwrap();
    let alg = Alg {
        hash: HashAlg::Sha256,
        sig: SigAlg::RsassaPss,
    };
    let signed = integrity::sign(MAIL, &key, &leaf, alg).unwrap();
    Fixture {
        _dir: dir,
        ca,
        signed,
        leaf,
    }
}

/// A trusted list that names exactly one CA as CA/QC granted (QCWithQSCD, for e-signatures).
struct ListedCa(Vec<u8>);

impl QualificationSource for ListedCa {
    fn certificate_qualification(
        &self,
        chain: &[X509],
        _: OffsetDateTime,
    ) -> Option<CertQualification> {
        let issuer = chain.get(1)?.to_der().ok()?;
        (issuer == self.0).then_some(CertQualification {
            qualified: true,
            qscd: true,
            cert_type: CertType::ESig,
        })
    }
}

#[test]
fn qualified_test_certificate_is_read_by_our_qc_parser() {
    let f = fixture();
    let r = integrity::verify_with(&f.signed, &ValidationContext::new(vec![f.ca.clone()]));
    let qc = r.certificate_claim.expect("qcStatements");
    assert!(qc.compliance, "QcCompliance");
    assert!(qc.sscd, "QcSSCD");
    assert_eq!(qc.types, vec![QcType::Esign]);
    assert!(qc.other.is_empty() && qc.legislation.is_empty());
    // The certificate is the one in the field, DER, for the caller to keep as evidence.
    assert_eq!(
        r.integrity.signer_certificate,
        Some(f.leaf.to_der().unwrap())
    );
}

#[test]
fn chain_and_qualification() {
    let f = fixture();
    // Anchored, no trusted list: the signature passes, the qualification is N/A (DSS).
    let r = integrity::verify_with(&f.signed, &ValidationContext::new(vec![f.ca.clone()]));
    assert_eq!(
        (r.indication, r.sub_indication),
        (Indication::TotalPassed, None)
    );
    assert_eq!(r.qualification, Qualification::NotApplicable);
    assert!(!r.is_qes());
    // The trusted list names the CA: QESig.
    let mut ctx = ValidationContext::new(vec![f.ca.clone()]);
    ctx.qualification = Box::new(ListedCa(f.ca.to_der().unwrap()));
    let r = integrity::verify_with(&f.signed, &ctx);
    assert_eq!(r.qualification, Qualification::QeSig);
    assert!(r.is_qes());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["qualification"], "QESig");
    assert_eq!(json["indication"], "TOTAL_PASSED");
    // Not anchored: no chain, INDETERMINATE.
    let r = integrity::verify_with(&f.signed, &ValidationContext::new(Vec::new()));
    assert_eq!(
        (r.indication, r.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::NoCertificateChainFound)
        )
    );
    // Validated after the certificate expired (ten years): EXPIRED.
    ctx.at = Some(OffsetDateTime::now_utc() + Duration::days(4000));
    let r = integrity::verify_with(&f.signed, &ctx);
    assert_eq!(r.sub_indication, Some(SubIndication::Expired));
    assert_eq!(r.qualification, Qualification::IndeterminateQeSig);
}

#[test]
fn integrity_failures_win_and_hash_only_is_no_signature() {
    let f = fixture();
    let mut ctx = ValidationContext::new(vec![f.ca.clone()]);
    ctx.qualification = Box::new(ListedCa(f.ca.to_der().unwrap()));
    let mut tampered = f.signed.clone();
    let n = tampered.len();
    tampered[n - 3] ^= 1; // in "body"
    let r = integrity::verify_with(&tampered, &ctx);
    assert_eq!(
        (r.indication, r.sub_indication),
        (Indication::TotalFailed, Some(SubIndication::HashFailure))
    );
    assert_eq!(r.qualification, Qualification::NotAdesQcQscd);
    let hashed = integrity::hash_only(MAIL, HashAlg::Sha256).unwrap();
    let r = integrity::verify_with(&hashed, &ctx);
    assert_eq!(r.integrity.indication, Indication::TotalPassed);
    assert_eq!(
        (r.indication, r.sub_indication),
        (
            Indication::Indeterminate,
            Some(SubIndication::NoSigningCertificateFound)
        )
    );
    assert_eq!(r.qualification, Qualification::NotApplicable);
}
