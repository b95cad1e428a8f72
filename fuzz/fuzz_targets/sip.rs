//! `cargo fuzz run sip` (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tonemask_fuzz::sip(data));
