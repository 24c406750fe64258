//! A throw-away PKI for tests and the demo: one CA, a `localhost` server certificate, a client
//! certificate for the city's gateway, and more leaves on demand. RSA-2048 everywhere, because
//! every peer (Postfix, swaks, the openssl CLI) takes it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name};

use crate::error::PkiError;

mod trusted_list;
pub use trusted_list::{GRANTED_SINCE, TEST_TERRITORY, TestTrustedList};

/// Paths of the generated PEM files (certificates `*.pem`, keys `*.key`, mode 0600).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// CN `localhost`, SAN DNS:localhost and IP:127.0.0.1, EKU serverAuth.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// CN `gateway.demail-sim.test`, EKU clientAuth.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// What a leaf certificate is for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertUsage {
    Client,
    Server,
    /// Both serverAuth and clientAuth (e.g. one certificate for a provider's MTA).
    Both,
}

/// A leaf issued by [`TestPki::issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

const VALID_DAYS: u32 = 3650;

impl TestPki {
    /// Creates `dir` if needed and writes `ca`, `server` and `client` certificates and keys.
    pub fn generate(dir: &Path) -> Result<TestPki, PkiError> {
        TestPki::generate_named(dir, "demail-provider-sim test CA")
    }

    /// [`TestPki::generate`] with a CA of common name `ca_cn` (a second PKI beside the first).
    pub fn generate_named(dir: &Path, ca_cn: &str) -> Result<TestPki, PkiError> {
        fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let ca_key = new_key()?;
        let ca = build_ca(&ca_key, ca_cn)?;
        let ca_cert_path = dir.join("ca.pem");
        let ca_key_path = dir.join("ca.key");
        write_cert(&ca_cert_path, &ca)?;
        write_key(&ca_key_path, &ca_key)?;
        let mut pki = TestPki {
            ca_cert: ca_cert_path,
            ca_key: ca_key_path,
            server_cert: PathBuf::new(),
            server_key: PathBuf::new(),
            client_cert: PathBuf::new(),
            client_key: PathBuf::new(),
        };
        let server = pki.issue(
            "server",
            "localhost",
            &["localhost", "127.0.0.1"],
            CertUsage::Server,
        )?;
        let client = pki.issue("client", "gateway.demail-sim.test", &[], CertUsage::Client)?;
        pki.server_cert = server.cert;
        pki.server_key = server.key;
        pki.client_cert = client.cert;
        pki.client_key = client.key;
        Ok(pki)
    }

    /// Issues `NAME.pem` / `NAME.key` beside the CA. Each SAN is an IP address if it parses as
    /// one, an e-mail address if it contains `@`, else a DNS name.
    pub fn issue(
        &self,
        name: &str,
        cn: &str,
        sans: &[&str],
        usage: CertUsage,
    ) -> Result<IssuedCert, PkiError> {
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(PkiError::BadName(name.to_string()));
        }
        let dir = self.ca_cert.parent().unwrap_or(Path::new("."));
        let ca = X509::from_pem(&read(&self.ca_cert)?).map_err(PkiError::ossl("reading the CA"))?;
        let ca_key = PKey::private_key_from_pem(&read(&self.ca_key)?)
            .map_err(PkiError::ossl("reading the CA key"))?;
        let key = new_key()?;
        let cert = build_leaf(&ca, &ca_key, &key, cn, sans, usage)?;
        let issued = IssuedCert {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        write_cert(&issued.cert, &cert)?;
        write_key(&issued.key, &key)?;
        Ok(issued)
    }
}

fn new_key() -> Result<PKey<Private>, PkiError> {
    let rsa = Rsa::generate(2048).map_err(PkiError::ossl("generating an RSA key"))?;
    PKey::from_rsa(rsa).map_err(PkiError::ossl("wrapping the RSA key"))
}

fn subject(cn: &str) -> Result<X509Name, PkiError> {
    let err = PkiError::ossl(format!("building the name CN={cn}"));
    let build = || {
        let mut n = X509Name::builder()?;
        n.append_entry_by_nid(Nid::COUNTRYNAME, "DE")?;
        n.append_entry_by_nid(Nid::ORGANIZATIONNAME, "demail-provider-sim test PKI")?;
        n.append_entry_by_nid(Nid::COMMONNAME, cn)?;
        Ok(n.build())
    };
    build().map_err(err)
}

/// Common fields: random serial, valid from a day ago (clock skew) for ten years.
fn base_builder(
    subject: &X509Name,
    key: &PKey<Private>,
) -> Result<X509Builder, openssl::error::ErrorStack> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(subject)?;
    b.set_pubkey(key)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let not_before = Asn1Time::from_unix(now - 86_400)?;
    let not_after = Asn1Time::days_from_now(VALID_DAYS)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    Ok(b)
}

fn build_ca(key: &PKey<Private>, cn: &str) -> Result<X509, PkiError> {
    let name = subject(cn)?;
    let build = || {
        let mut b = base_builder(&name, key)?;
        b.set_issuer_name(&name)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(key, MessageDigest::sha256())?;
        Ok(b.build())
    };
    build().map_err(PkiError::ossl("building the CA certificate"))
}

fn build_leaf(
    ca: &X509,
    ca_key: &PKey<Private>,
    key: &PKey<Private>,
    cn: &str,
    sans: &[&str],
    usage: CertUsage,
) -> Result<X509, PkiError> {
    let name = subject(cn)?;
    let mut san = SubjectAlternativeName::new();
    for s in sans {
        if s.parse::<IpAddr>().is_ok() {
            san.ip(s);
        } else if s.contains('@') {
            san.email(s);
        } else if !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic()) {
            san.dns(s);
        } else {
            return Err(PkiError::BadSan(s.to_string()));
        }
    }
    let build = || {
        let mut b = base_builder(&name, key)?;
        b.set_issuer_name(ca.subject_name())?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        let mut eku = ExtendedKeyUsage::new();
        match usage {
            CertUsage::Client => eku.client_auth(),
            CertUsage::Server => eku.server_auth(),
            CertUsage::Both => eku.server_auth().client_auth(),
        };
        b.append_extension(eku.build()?)?;
        if !sans.is_empty() {
            let ext = san.build(&b.x509v3_context(Some(ca), None))?;
            b.append_extension(ext)?;
        }
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(ca), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(ca), None))?;
        b.append_extension(aki)?;
        b.sign(ca_key, MessageDigest::sha256())?;
        Ok(b.build())
    };
    build().map_err(PkiError::ossl(format!("issuing the certificate for {cn}")))
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_cert(path: &Path, cert: &X509) -> Result<(), PkiError> {
    let pem = cert
        .to_pem()
        .map_err(PkiError::ossl("encoding a certificate"))?;
    write_file(path, &pem, 0o644)
}

fn write_key(path: &Path, key: &PKey<Private>) -> Result<(), PkiError> {
    let pem = key
        .private_key_to_pem_pkcs8()
        .map_err(PkiError::ossl("encoding a key"))?;
    write_file(path, &pem, 0o600)
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)
}

/// qcStatements (ETSI EN 319 412-5) of a qualified certificate for electronic signatures on a
/// QSCD: `SEQUENCE { {QcCompliance}, {QcSSCD}, {QcType, SEQUENCE {esign}} }`, written out in
/// DER because the openssl crate has no builder for this extension.
const QC_STATEMENTS_ESIGN_QSCD: &[u8] = &[
    0x30, 0x29, // QCStatements
    0x30, 0x08, 0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x01, // QcCompliance 0.4.0.1862.1.1
    0x30, 0x08, 0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x04, // QcSSCD 0.4.0.1862.1.4
    0x30, 0x13, 0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x06, // QcType 0.4.0.1862.1.6
    0x30, 0x09, 0x06, 0x07, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x06, 0x01, // esign .6.1
];

impl TestPki {
    /// Issues `NAME.pem` / `NAME.key`: a test *qualified* signing certificate (qcStatements
    /// QcCompliance, QcSSCD, QcType esign; keyUsage nonRepudiation + digitalSignature), as a
    /// De-Mail provider signs `X-de-mail-integrity` and confirmations with. Qualified only for
    /// a verifier whose trusted list names this test CA as CA/QC.
    pub fn issue_qualified(&self, name: &str, cn: &str) -> Result<IssuedCert, PkiError> {
        use openssl::asn1::{Asn1Object, Asn1OctetString};
        use openssl::x509::X509Extension;

        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(PkiError::BadName(name.to_string()));
        }
        let dir = self.ca_cert.parent().unwrap_or(Path::new("."));
        let ca = X509::from_pem(&read(&self.ca_cert)?).map_err(PkiError::ossl("reading the CA"))?;
        let ca_key = PKey::private_key_from_pem(&read(&self.ca_key)?)
            .map_err(PkiError::ossl("reading the CA key"))?;
        let key = new_key()?;
        let name_obj = subject(cn)?;
        let build = || {
            let mut b = base_builder(&name_obj, &key)?;
            b.set_issuer_name(ca.subject_name())?;
            b.append_extension(BasicConstraints::new().critical().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .non_repudiation()
                    .digital_signature()
                    .build()?,
            )?;
            let qc_oid = Asn1Object::from_str("1.3.6.1.5.5.7.1.3")?;
            let qc_value = Asn1OctetString::new_from_bytes(QC_STATEMENTS_ESIGN_QSCD)?;
            b.append_extension(X509Extension::new_from_der(&qc_oid, false, &qc_value)?)?;
            let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&ca), None))?;
            b.append_extension(ski)?;
            let aki = AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(Some(&ca), None))?;
            b.append_extension(aki)?;
            b.sign(&ca_key, MessageDigest::sha256())?;
            Ok(b.build())
        };
        let cert = build().map_err(PkiError::ossl(format!(
            "issuing the qualified certificate for {cn}"
        )))?;
        let issued = IssuedCert {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        write_cert(&issued.cert, &cert)?;
        write_key(&issued.key, &key)?;
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509StoreContext, X509VerifyResult};

    fn verify(ca: &Path, leaf: &Path) -> bool {
        let ca = X509::from_pem(&fs::read(ca).expect("ca")).expect("ca pem");
        let leaf = X509::from_pem(&fs::read(leaf).expect("leaf")).expect("leaf pem");
        let mut store = X509StoreBuilder::new().expect("store");
        store.add_cert(ca).expect("add");
        let store = store.build();
        let chain = Stack::new().expect("stack");
        let mut ctx = X509StoreContext::new().expect("ctx");
        ctx.init(&store, &leaf, &chain, |c| {
            Ok(c.verify_cert()? && c.error() == X509VerifyResult::OK)
        })
        .expect("verify runs")
    }

    #[test]
    fn generated_leaves_chain_to_the_ca_and_carry_the_sans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::generate(dir.path()).expect("generate");
        assert!(verify(&pki.ca_cert, &pki.server_cert));
        assert!(verify(&pki.ca_cert, &pki.client_cert));

        let server = X509::from_pem(&fs::read(&pki.server_cert).expect("read")).expect("pem");
        let sans = server.subject_alt_names().expect("SAN present");
        let dns: Vec<_> = sans.iter().filter_map(|g| g.dnsname()).collect();
        let ips: Vec<_> = sans.iter().filter_map(|g| g.ipaddress()).collect();
        assert_eq!(dns, ["localhost"]);
        assert_eq!(ips, [&[127u8, 0, 0, 1][..]]);

        let mode = fs::metadata(&pki.client_key).expect("meta");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );

        // A second PKI's leaves must not verify against the first CA.
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = TestPki::generate(other_dir.path()).expect("generate");
        assert!(!verify(&pki.ca_cert, &other.client_cert));
    }

    #[test]
    fn issue_extra_leaf_and_reject_bad_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::generate(dir.path()).expect("generate");
        let leaf = pki
            .issue(
                "mx",
                "mx.provider.test",
                &["mx.provider.test", "::1", "pm@provider.test"],
                CertUsage::Both,
            )
            .expect("issue");
        assert_eq!(leaf.cert, dir.path().join("mx.pem"));
        assert!(verify(&pki.ca_cert, &leaf.cert));
        let cert = X509::from_pem(&fs::read(&leaf.cert).expect("read")).expect("pem");
        let sans = cert.subject_alt_names().expect("SAN");
        assert_eq!(
            sans.iter().filter_map(|g| g.email()).collect::<Vec<_>>(),
            ["pm@provider.test"]
        );

        assert!(matches!(
            pki.issue("../evil", "x", &[], CertUsage::Client),
            Err(PkiError::BadName(_))
        ));
        assert!(matches!(
            pki.issue("ok", "x", &["bad name"], CertUsage::Client),
            Err(PkiError::BadSan(_))
        ));
    }
}
