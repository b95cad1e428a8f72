//! spandsp's DTMF receiver as an independent reference detector.
//!
//! Used by tests (and later by the conformance comparison) to check that tonemask's masked
//! output holds no digit that *another* detector could recover. spandsp is the receiver inside
//! FreeSWITCH and rtpengine. Its default parameters are used unless stated.

use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
struct DtmfRx {
    _private: [u8; 0],
}

extern "C" {
    fn dtmf_rx_init(s: *mut DtmfRx, cb: *const c_void, user: *mut c_void) -> *mut DtmfRx;
    fn dtmf_rx(s: *mut DtmfRx, amp: *const i16, samples: c_int) -> c_int;
    fn dtmf_rx_get(s: *mut DtmfRx, digits: *mut c_char, max: c_int) -> usize;
    fn dtmf_rx_free(s: *mut DtmfRx) -> c_int;
}

/// Digits spandsp finds in 8 kHz linear audio (default parameters).
#[must_use]
pub fn digits(samples: &[i16]) -> String {
    let mut found = String::new();
    // SAFETY: dtmf_rx_init(NULL, NULL, NULL) allocates a receiver that collects digits into
    // its own buffer; we feed it valid slices, read the buffer with a bounded size before it
    // can overflow (128 digits per 8000-sample chunk is far above any possible rate), and
    // free it once.
    unsafe {
        let s = dtmf_rx_init(std::ptr::null_mut(), std::ptr::null(), std::ptr::null_mut());
        assert!(!s.is_null(), "dtmf_rx_init failed");
        let mut buf = [0 as c_char; 129];
        for chunk in samples.chunks(8000) {
            dtmf_rx(s, chunk.as_ptr(), chunk.len() as c_int);
            let n = dtmf_rx_get(s, buf.as_mut_ptr(), 128);
            found.extend(buf[..n].iter().map(|&c| c as u8 as char));
        }
        dtmf_rx_free(s);
    }
    found
}
