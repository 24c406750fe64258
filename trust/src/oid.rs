//! Object identifiers we act on, in dotted form, with the names reports show.

// CMS content types (RFC 5652, RFC 5083, RFC 3274).
pub const DATA: &str = "1.2.840.113549.1.7.1";
pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
pub const ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
pub const COMPRESSED_DATA: &str = "1.2.840.113549.1.9.16.1.9";
pub const AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";

// Signed attributes (RFC 5652 §11, RFC 2634, RFC 5035).
pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
pub const SIGNING_CERTIFICATE: &str = "1.2.840.113549.1.9.16.2.12";
pub const SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";

// Certificate extensions (RFC 5280, RFC 3739).
pub const SUBJECT_KEY_IDENTIFIER: &str = "2.5.29.14";
pub const KEY_USAGE: &str = "2.5.29.15";
pub const QC_STATEMENTS: &str = "1.3.6.1.5.5.7.1.3";

// qcStatements (ETSI EN 319 412-5, RFC 3739).
pub const QC_COMPLIANCE: &str = "0.4.0.1862.1.1";
pub const QC_LIMIT_VALUE: &str = "0.4.0.1862.1.2";
pub const QC_RETENTION_PERIOD: &str = "0.4.0.1862.1.3";
pub const QC_SSCD: &str = "0.4.0.1862.1.4";
pub const QC_PDS: &str = "0.4.0.1862.1.5";
pub const QC_TYPE: &str = "0.4.0.1862.1.6";
pub const QC_TYPE_ESIGN: &str = "0.4.0.1862.1.6.1";
pub const QC_TYPE_ESEAL: &str = "0.4.0.1862.1.6.2";
pub const QC_TYPE_WEB: &str = "0.4.0.1862.1.6.3";
pub const QC_CC_LEGISLATION: &str = "0.4.0.1862.1.7";
pub const QCS_PKIX_SYNTAX_V1: &str = "1.3.6.1.5.5.7.11.1";
pub const QCS_PKIX_SYNTAX_V2: &str = "1.3.6.1.5.5.7.11.2";

// Digest algorithms.
pub const MD2: &str = "1.2.840.113549.2.2";
pub const MD4: &str = "1.2.840.113549.2.4";
pub const MD5: &str = "1.2.840.113549.2.5";
pub const SHA1: &str = "1.3.14.3.2.26";
pub const RIPEMD160: &str = "1.3.36.3.2.1";
pub const SHA224: &str = "2.16.840.1.101.3.4.2.4";
pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
pub const SHA512_224: &str = "2.16.840.1.101.3.4.2.5";
pub const SHA512_256: &str = "2.16.840.1.101.3.4.2.6";
pub const SHA3_224: &str = "2.16.840.1.101.3.4.2.7";
pub const SHA3_256: &str = "2.16.840.1.101.3.4.2.8";
pub const SHA3_384: &str = "2.16.840.1.101.3.4.2.9";
pub const SHA3_512: &str = "2.16.840.1.101.3.4.2.10";

// Signature and key algorithms.
pub const RSA: &str = "1.2.840.113549.1.1.1";
pub const MD2_RSA: &str = "1.2.840.113549.1.1.2";
pub const MD5_RSA: &str = "1.2.840.113549.1.1.4";
pub const SHA1_RSA: &str = "1.2.840.113549.1.1.5";
pub const MGF1: &str = "1.2.840.113549.1.1.8";
pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
pub const SHA256_RSA: &str = "1.2.840.113549.1.1.11";
pub const SHA384_RSA: &str = "1.2.840.113549.1.1.12";
pub const SHA512_RSA: &str = "1.2.840.113549.1.1.13";
pub const SHA224_RSA: &str = "1.2.840.113549.1.1.14";
pub const SHA1_RSA_OIW: &str = "1.3.14.3.2.29";
pub const SHA3_224_RSA: &str = "2.16.840.1.101.3.4.3.13";
pub const SHA3_256_RSA: &str = "2.16.840.1.101.3.4.3.14";
pub const SHA3_384_RSA: &str = "2.16.840.1.101.3.4.3.15";
pub const SHA3_512_RSA: &str = "2.16.840.1.101.3.4.3.16";
pub const DSA: &str = "1.2.840.10040.4.1";
pub const DSA_SHA1: &str = "1.2.840.10040.4.3";
pub const DSA_SHA224: &str = "2.16.840.1.101.3.4.3.1";
pub const DSA_SHA256: &str = "2.16.840.1.101.3.4.3.2";
pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub const ECDSA_SHA1: &str = "1.2.840.10045.4.1";
pub const ECDSA_SHA224: &str = "1.2.840.10045.4.3.1";
pub const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
pub const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
pub const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
pub const ECDSA_SHA3_224: &str = "2.16.840.1.101.3.4.3.9";
pub const ECDSA_SHA3_256: &str = "2.16.840.1.101.3.4.3.10";
pub const ECDSA_SHA3_384: &str = "2.16.840.1.101.3.4.3.11";
pub const ECDSA_SHA3_512: &str = "2.16.840.1.101.3.4.3.12";
pub const ED25519: &str = "1.3.101.112";
pub const ED448: &str = "1.3.101.113";

/// A short name for reports; unknown OIDs are shown dotted.
pub fn name(oid: &str) -> String {
    let known = match oid {
        MD2 => "md2",
        MD4 => "md4",
        MD5 => "md5",
        SHA1 => "sha1",
        RIPEMD160 => "ripemd160",
        SHA224 => "sha224",
        SHA256 => "sha256",
        SHA384 => "sha384",
        SHA512 => "sha512",
        SHA512_224 => "sha512-224",
        SHA512_256 => "sha512-256",
        SHA3_224 => "sha3-224",
        SHA3_256 => "sha3-256",
        SHA3_384 => "sha3-384",
        SHA3_512 => "sha3-512",
        RSA => "rsaEncryption",
        MD2_RSA => "md2WithRSAEncryption",
        MD5_RSA => "md5WithRSAEncryption",
        SHA1_RSA | SHA1_RSA_OIW => "sha1WithRSAEncryption",
        RSASSA_PSS => "rsassa-pss",
        SHA224_RSA => "sha224WithRSAEncryption",
        SHA256_RSA => "sha256WithRSAEncryption",
        SHA384_RSA => "sha384WithRSAEncryption",
        SHA512_RSA => "sha512WithRSAEncryption",
        SHA3_224_RSA => "sha3-224WithRSAEncryption",
        SHA3_256_RSA => "sha3-256WithRSAEncryption",
        SHA3_384_RSA => "sha3-384WithRSAEncryption",
        SHA3_512_RSA => "sha3-512WithRSAEncryption",
        DSA => "dsa",
        DSA_SHA1 => "dsaWithSHA1",
        DSA_SHA224 => "dsaWithSHA224",
        DSA_SHA256 => "dsaWithSHA256",
        EC_PUBLIC_KEY => "ecPublicKey",
        ECDSA_SHA1 => "ecdsaWithSHA1",
        ECDSA_SHA224 => "ecdsaWithSHA224",
        ECDSA_SHA256 => "ecdsaWithSHA256",
        ECDSA_SHA384 => "ecdsaWithSHA384",
        ECDSA_SHA512 => "ecdsaWithSHA512",
        ECDSA_SHA3_224 => "ecdsaWithSHA3-224",
        ECDSA_SHA3_256 => "ecdsaWithSHA3-256",
        ECDSA_SHA3_384 => "ecdsaWithSHA3-384",
        ECDSA_SHA3_512 => "ecdsaWithSHA3-512",
        ED25519 => "ed25519",
        ED448 => "ed448",
        DATA => "data",
        SIGNED_DATA => "signedData",
        ENVELOPED_DATA => "envelopedData",
        COMPRESSED_DATA => "compressedData",
        AUTH_ENVELOPED_DATA => "authEnvelopedData",
        _ => return oid.to_string(),
    };
    known.to_string()
}
