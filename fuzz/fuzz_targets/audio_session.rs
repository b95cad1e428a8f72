//! `cargo fuzz run audio_session` (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tonemask_fuzz::audio_session(data));
