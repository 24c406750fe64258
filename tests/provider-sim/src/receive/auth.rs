//! SASL PLAIN (RFC 4616) and LOGIN decoding, and the credential comparison.

use openssl::base64;
use openssl::hash::{MessageDigest, hash};
use openssl::memcmp;

/// Why an AUTH exchange failed; the reply to send.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AuthError(pub &'static str);

const BAD_BASE64: AuthError = AuthError("501 5.5.2 Cannot decode the response (base64)");

/// Decodes a base64 client response into text (`=` is the empty response).
pub(crate) fn decode_text(b64: &str) -> Result<String, AuthError> {
    if b64 == "=" {
        return Ok(String::new());
    }
    let bytes = base64::decode_block(b64).map_err(|_| BAD_BASE64)?;
    String::from_utf8(bytes).map_err(|_| AuthError("501 5.5.2 Response is not UTF-8"))
}

/// PLAIN: `authzid NUL authcid NUL passwd`. Returns (authcid, passwd); an authzid other than
/// empty or the authcid itself is refused (no proxy authorisation here).
pub(crate) fn decode_plain(b64: &str) -> Result<(String, String), AuthError> {
    let text = decode_text(b64)?;
    let mut parts = text.split('\0');
    let (Some(authz), Some(authc), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError("501 5.5.2 Malformed PLAIN response"));
    };
    if !authz.is_empty() && authz != authc {
        return Err(AuthError(
            "535 5.7.8 Authentication credentials invalid (authorisation identity not allowed)",
        ));
    }
    Ok((authc.to_string(), pass.to_string()))
}

/// Compares user and password without an early exit on the first differing byte.
pub(crate) fn credentials_match(
    (user, pass): (&str, &str),
    (want_user, want_pass): (&str, &str),
) -> bool {
    let digest = |a: &str, b: &str| {
        let mut joined = Vec::with_capacity(a.len() + b.len() + 1);
        joined.extend_from_slice(a.as_bytes());
        joined.push(0);
        joined.extend_from_slice(b.as_bytes());
        hash(MessageDigest::sha256(), &joined).ok()
    };
    match (digest(user, pass), digest(want_user, want_pass)) {
        (Some(a), Some(b)) => memcmp::eq(&a, &b),
        _ => false,
    }
}

pub(crate) fn encode(text: &str) -> String {
    base64::encode_block(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let b64 = encode("\0gw\0secret");
        assert_eq!(decode_plain(&b64), Ok(("gw".into(), "secret".into())));
        let b64 = encode("gw\0gw\0secret");
        assert_eq!(decode_plain(&b64), Ok(("gw".into(), "secret".into())));
        assert!(decode_plain(&encode("admin\0gw\0secret")).is_err());
        assert!(decode_plain(&encode("gw secret")).is_err());
        assert!(decode_plain("!!!").is_err());
        assert_eq!(decode_text("="), Ok(String::new()));
    }

    #[test]
    fn compare() {
        assert!(credentials_match(("gw", "pw"), ("gw", "pw")));
        assert!(!credentials_match(("gw", "pw"), ("gw", "pW")));
        assert!(!credentials_match(("g", "wpw"), ("gw", "pw")));
    }
}
