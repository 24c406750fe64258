//! The hash and signature algorithms of TR-01201 PVD_IO §3.1.21, done by OpenSSL.

use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{HasPublic, Id, PKeyRef, Private};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use serde::Serialize;

/// Hash algorithms in the TR's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

/// Signature algorithms in the TR's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SigAlg {
    /// RSASSA-PKCS1-v1_5.
    #[serde(rename = "rsa")]
    Rsa,
    /// RSASSA-PSS, MGF1 with the same hash, salt as long as the hash (RFC 4056).
    #[serde(rename = "rsassa-pss")]
    RsassaPss,
    /// ECDSA; the signature value is the DER `ECDSA-Sig-Value` (as in CMS and X.509).
    #[serde(rename = "ec-dsa")]
    EcDsa,
}

impl HashAlg {
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    pub fn from_name(s: &str) -> Option<HashAlg> {
        [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
            .into_iter()
            .find(|h| h.name() == s)
    }

    pub fn digest(self) -> MessageDigest {
        match self {
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
            HashAlg::Sha512 => MessageDigest::sha512(),
        }
    }

    pub fn hash(self, data: &[u8]) -> Result<Vec<u8>, String> {
        hash(self.digest(), data)
            .map(|d| d.to_vec())
            .map_err(|e| crate::openssl_reasons(&e))
    }
}

impl SigAlg {
    pub fn name(self) -> &'static str {
        match self {
            SigAlg::Rsa => "rsa",
            SigAlg::RsassaPss => "rsassa-pss",
            SigAlg::EcDsa => "ec-dsa",
        }
    }

    pub fn from_name(s: &str) -> Option<SigAlg> {
        [SigAlg::Rsa, SigAlg::RsassaPss, SigAlg::EcDsa]
            .into_iter()
            .find(|a| a.name() == s)
    }

    /// `None` if the key fits this algorithm, else what kind of key it would need.
    pub fn key_mismatch<T: HasPublic>(self, key: &PKeyRef<T>) -> Option<&'static str> {
        let ok = match self {
            SigAlg::Rsa | SigAlg::RsassaPss => key.id() == Id::RSA,
            SigAlg::EcDsa => key.id() == Id::EC,
        };
        (!ok).then_some(match self {
            SigAlg::EcDsa => "an EC key",
            _ => "an RSA key",
        })
    }
}

pub fn sign(
    data: &[u8],
    key: &PKeyRef<Private>,
    hash: HashAlg,
    alg: SigAlg,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut signer = Signer::new(hash.digest(), key)?;
    if alg == SigAlg::RsassaPss {
        signer.set_rsa_padding(Padding::PKCS1_PSS)?;
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
        signer.set_rsa_mgf1_md(hash.digest())?;
    }
    signer.update(data)?;
    signer.sign_to_vec()
}

/// `Ok(false)` for a wrong signature; `Err` when OpenSSL cannot even try.
pub fn verify<T: HasPublic>(
    data: &[u8],
    signature: &[u8],
    key: &PKeyRef<T>,
    hash: HashAlg,
    alg: SigAlg,
) -> Result<bool, String> {
    let run = || -> Result<bool, openssl::error::ErrorStack> {
        let mut v = Verifier::new(hash.digest(), key)?;
        if alg == SigAlg::RsassaPss {
            v.set_rsa_padding(Padding::PKCS1_PSS)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            v.set_rsa_mgf1_md(hash.digest())?;
        }
        v.update(data)?;
        // OpenSSL reports a malformed signature value as an error; for us it is just wrong.
        Ok(v.verify(signature).unwrap_or(false))
    };
    run().map_err(|e| crate::openssl_reasons(&e))
}
