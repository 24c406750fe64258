#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| demail_fuzz::der(data));
