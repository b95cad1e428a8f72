//! `cargo fuzz run card` (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tonemask_fuzz::card(data));
