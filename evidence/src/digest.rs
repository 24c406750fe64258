//! SHA-256 digests: content addresses of blobs and links of the hash chain.

use std::fmt;
use std::str::FromStr;

use openssl::sha::Sha256;

/// SHA-256, lower-case hex in Display.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest: `prev_hash` of the first event.
    pub const ZERO: Digest = Digest([0; 32]);

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn of(bytes: &[u8]) -> Digest {
        Digest(openssl::sha::sha256(bytes))
    }

    /// From a SQLite BLOB column; anything but 32 bytes is corruption, reported with `what`.
    pub(crate) fn from_slice(bytes: &[u8], what: &str) -> crate::Result<Digest> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            crate::Error::Corrupt(format!(
                "{what}: {} bytes where a SHA-256 digest (32) belongs",
                bytes.len()
            ))
        })?;
        Ok(Digest(arr))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 digest ({reason}): {input:?}")]
pub struct ParseDigestError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    /// Exactly 64 hex digits, either case.
    fn from_str(s: &str) -> Result<Digest, ParseDigestError> {
        let err = |reason| ParseDigestError {
            input: s.chars().take(80).collect(),
            reason,
        };
        if s.len() != 64 {
            return Err(err("expected 64 hex digits"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err("not hexadecimal"))?;
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&self.hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(de)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental SHA-256 for streams (blobs, files being verified).
pub(crate) struct Hasher(Sha256);

impl Hasher {
    pub(crate) fn new() -> Hasher {
        Hasher(Sha256::new())
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub(crate) fn finish(self) -> Digest {
        Digest(self.0.finish())
    }
}

/// The key that makes a retried submission one record: the envelope (sender, SASL login,
/// recipients in sorted order) and the message bytes as received. The same bytes sent again to
/// other (Bcc) recipients, from another sender or under another login are another submission.
pub struct OriginKey(Sha256);

impl OriginKey {
    pub fn new<S: AsRef<str>>(sender: &str, login: Option<&str>, recipients: &[S]) -> OriginKey {
        let mut h = Sha256::new();
        // Length-prefixed parts: no choice of addresses can collide with another envelope.
        let mut part = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        part(b"demail origin v2");
        part(sender.as_bytes());
        part(login.unwrap_or("").as_bytes());
        let mut rcpts: Vec<&str> = recipients.iter().map(AsRef::as_ref).collect();
        rcpts.sort_unstable();
        rcpts.dedup();
        part(&(rcpts.len() as u64).to_be_bytes());
        for r in rcpts {
            part(r.as_bytes());
        }
        OriginKey(h)
    }

    /// The message bytes as received, in order (header section, then body chunks).
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> Digest {
        Digest(self.0.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_part_of_the_origin_key() {
        let key = |sender: &str, login: Option<&str>, rcpts: &[&str]| {
            let mut k = OriginKey::new(sender, login, rcpts);
            k.update(b"Subject: x\r\n\r\nbody");
            k.finish()
        };
        let base = key("a@x", None, &["b@y", "c@y"]);
        // Same envelope in another order: the same key.
        assert_eq!(base, key("a@x", None, &["c@y", "b@y"]));
        for other in [
            key("a@x", None, &["b@y"]),
            key("a@x", None, &["b@y", "c@y", "d@y"]),
            key("z@x", None, &["b@y", "c@y"]),
            key("a@x", Some("clerk"), &["b@y", "c@y"]),
            // Parts cannot run into each other.
            key("a@xb@y", None, &["c@y"]),
        ] {
            assert_ne!(other, base);
        }
    }

    #[test]
    fn known_vector_and_hex_round_trip() {
        // FIPS 180-2 example "abc".
        let d = Digest::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(d.hex(), hex);
        assert_eq!(d.to_string(), hex);
        assert_eq!(hex.parse::<Digest>().unwrap(), d);
        assert_eq!(hex.to_uppercase().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut h = Hasher::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), Digest::of(b"abc"));
    }

    #[test]
    fn rejects_bad_hex() {
        assert_eq!(
            "abc".parse::<Digest>().unwrap_err().reason,
            "expected 64 hex digits"
        );
        let z = "z".repeat(64);
        assert_eq!(z.parse::<Digest>().unwrap_err().reason, "not hexadecimal");
        // 64 bytes but multi-byte characters: must not panic on a char boundary.
        let s = "ä".repeat(32);
        assert!(s.parse::<Digest>().is_err());
    }

    #[test]
    fn serde_is_hex_string() {
        let d = Digest::of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{}\"", d.hex()));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"00\"").is_err());
    }
}
