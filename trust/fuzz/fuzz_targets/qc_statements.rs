//! qcStatements: our own DER parser must return Ok or Err for any input, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = demail_trust::qc::parse(data);
});
