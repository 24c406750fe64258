//! Cryptographic constraints: which algorithms and key sizes we accept.
//!
//! A fixed policy in the spirit of BSI TR-02102-1 and the DSS default policy, applied whatever
//! the signing time (we have no proof of an earlier existence): hashes of the SHA-2 and SHA-3
//! families; RSA (PKCS#1 v1.5 or PSS) with at least 2048 bits, ECDSA with at least 256 bits,
//! EdDSA. Refused: MD2/MD4/MD5, SHA-1 and RIPEMD-160 (collisions), DSA, and anything unknown.
//! A refusal gives INDETERMINATE/CRYPTO_CONSTRAINTS_FAILURE, as in EN 319 102-1.

use crate::cert::Cert;
use crate::cms::AlgorithmId;
use crate::der::{Reader, tag};
use crate::oid;

pub const MIN_RSA_BITS: u32 = 2048;
pub const MIN_EC_BITS: u32 = 256;

/// Why a digest algorithm is refused, if it is.
pub fn digest_problem(digest_oid: &str) -> Option<String> {
    match digest_oid {
        oid::SHA224
        | oid::SHA256
        | oid::SHA384
        | oid::SHA512
        | oid::SHA512_224
        | oid::SHA512_256
        | oid::SHA3_224
        | oid::SHA3_256
        | oid::SHA3_384
        | oid::SHA3_512 => None,
        oid::MD2 | oid::MD4 | oid::MD5 | oid::SHA1 | oid::RIPEMD160 => Some(format!(
            "digest algorithm {} is no longer acceptable (collision attacks)",
            oid::name(digest_oid)
        )),
        other => Some(format!("unknown digest algorithm {other}")),
    }
}

/// Why a signature algorithm is refused, if it is. `digest_oid` is the SignerInfo's digest
/// algorithm, which is what a bare `rsaEncryption` signs with.
pub fn signature_problem(alg: &AlgorithmId<'_>, digest_oid: Option<&str>) -> Option<String> {
    let hash = match alg.oid.as_str() {
        oid::RSA => digest_oid,
        oid::SHA224_RSA | oid::ECDSA_SHA224 => Some(oid::SHA224),
        oid::SHA256_RSA | oid::ECDSA_SHA256 => Some(oid::SHA256),
        oid::SHA384_RSA | oid::ECDSA_SHA384 => Some(oid::SHA384),
        oid::SHA512_RSA | oid::ECDSA_SHA512 => Some(oid::SHA512),
        oid::SHA3_224_RSA | oid::ECDSA_SHA3_224 => Some(oid::SHA3_224),
        oid::SHA3_256_RSA | oid::ECDSA_SHA3_256 => Some(oid::SHA3_256),
        oid::SHA3_384_RSA | oid::ECDSA_SHA3_384 => Some(oid::SHA3_384),
        oid::SHA3_512_RSA | oid::ECDSA_SHA3_512 => Some(oid::SHA3_512),
        oid::MD2_RSA => Some(oid::MD2),
        oid::MD5_RSA => Some(oid::MD5),
        oid::SHA1_RSA | oid::SHA1_RSA_OIW | oid::ECDSA_SHA1 => Some(oid::SHA1),
        oid::ED25519 | oid::ED448 => return None,
        oid::RSASSA_PSS => return pss_problem(alg),
        oid::DSA | oid::DSA_SHA1 | oid::DSA_SHA224 | oid::DSA_SHA256 => {
            return Some(format!(
                "signature algorithm {} (DSA) is no longer accepted",
                oid::name(&alg.oid)
            ));
        }
        other => return Some(format!("unknown signature algorithm {other}")),
    };
    hash.and_then(digest_problem)
        .map(|p| format!("{}: {p}", oid::name(&alg.oid)))
}

/// RSASSA-PSS-params: both the message hash and the MGF1 hash default to SHA-1 (RFC 4055).
fn pss_problem(alg: &AlgorithmId<'_>) -> Option<String> {
    let mut hash = oid::SHA1.to_string();
    let mut mgf_hash = oid::SHA1.to_string();
    if let Some(params) = &alg.params {
        let parsed = (|| -> crate::der::Result<()> {
            let mut r: Reader<'_> = params.children()?;
            if let Some(h) = r.optional(tag::ctx(0))? {
                hash = AlgorithmId::parse(&h.children()?.read()?)?.oid;
            }
            if let Some(m) = r.optional(tag::ctx(1))? {
                let mgf = AlgorithmId::parse(&m.children()?.read()?)?;
                if mgf.oid != oid::MGF1 {
                    mgf_hash = mgf.oid;
                } else if let Some(p) = mgf.params {
                    mgf_hash = AlgorithmId::parse(&p)?.oid;
                }
            }
            Ok(())
        })();
        if let Err(e) = parsed {
            return Some(format!("malformed RSASSA-PSS parameters: {e}"));
        }
    }
    digest_problem(&hash)
        .or_else(|| digest_problem(&mgf_hash))
        .map(|p| format!("rsassa-pss: {p}"))
}

/// Why a certificate's public key is refused, if it is.
pub fn key_problem(cert: &Cert) -> Option<String> {
    let who = cert.display_name();
    match cert.key_info() {
        None => Some(format!("the public key of {who:?} cannot be used")),
        Some(("RSA" | "RSA-PSS", bits)) if bits < MIN_RSA_BITS => Some(format!(
            "the RSA key of {who:?} has {bits} bits, at least {MIN_RSA_BITS} are required"
        )),
        Some(("EC", bits)) if bits < MIN_EC_BITS => Some(format!(
            "the EC key of {who:?} has {bits} bits, at least {MIN_EC_BITS} are required"
        )),
        Some(("DSA", _)) => Some(format!("the key of {who:?} is DSA, no longer accepted")),
        Some(("unknown", _)) => Some(format!("the key type of {who:?} is unknown")),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alg(oid: &str) -> AlgorithmId<'static> {
        AlgorithmId {
            oid: oid.to_string(),
            params: None,
        }
    }

    #[test]
    fn weak_and_strong() {
        assert!(digest_problem(oid::SHA256).is_none());
        assert!(digest_problem(oid::SHA1).unwrap().contains("sha1"));
        assert!(digest_problem("1.2.3").unwrap().contains("unknown"));
        assert!(signature_problem(&alg(oid::SHA256_RSA), None).is_none());
        assert!(signature_problem(&alg(oid::RSA), Some(oid::SHA512)).is_none());
        assert!(signature_problem(&alg(oid::RSA), Some(oid::SHA1)).is_some());
        assert!(signature_problem(&alg(oid::SHA1_RSA), None).is_some());
        assert!(
            signature_problem(&alg(oid::DSA_SHA256), None)
                .unwrap()
                .contains("DSA")
        );
        assert!(signature_problem(&alg(oid::ED25519), None).is_none());
        // PSS without parameters means SHA-1.
        assert!(signature_problem(&alg(oid::RSASSA_PSS), None).is_some());
    }
}
