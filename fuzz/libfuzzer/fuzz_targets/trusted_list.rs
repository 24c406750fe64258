#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| demail_fuzz::trusted_list(data));
