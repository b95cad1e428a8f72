//! `cargo fuzz run rtp_session` (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tonemask_fuzz::rtp_session(data));
