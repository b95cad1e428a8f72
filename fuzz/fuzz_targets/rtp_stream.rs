//! `cargo fuzz run rtp_stream` (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tonemask_fuzz::rtp_stream(data));
