//! A whole mail: MIME walking, transfer decoding, signature discovery and validation.
#![no_main]

use std::sync::OnceLock;

use demail_trust::{Verifier, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| Verifier::new(Vec::new(), VerifyOptions::default()).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let report = verifier().verify_mail(data);
    for s in &report.signatures {
        let _ = s.header_value();
    }
});
