//! A CMS signature file: DER/BER reader, SignedData and attribute parsing, and everything
//! validation does with what it finds (OpenSSL included).
#![no_main]

use std::sync::OnceLock;

use demail_trust::{Verifier, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| Verifier::new(Vec::new(), VerifyOptions::default()).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let _ = verifier().verify_file(data, "fuzz.p7m", None);
    if data.len() > 8 {
        let (sig, content) = data.split_at(data.len() / 2);
        let _ = verifier().verify_file(sig, "fuzz.p7s", Some((content, "doc")));
    }
});
