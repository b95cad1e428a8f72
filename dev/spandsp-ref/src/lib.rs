//! spandsp's DTMF receiver as an independent reference detector.
//!
//! Used by tests to check that tonemask's masked output holds no digit that *another*
//! detector could recover, and by the conformance suite (`dev/conformance`) as the comparison
//! point. spandsp is the receiver inside FreeSWITCH and rtpengine. Dev-only: the product never
//! links it.

use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
struct DtmfRx {
    _private: [u8; 0],
}

type ToneReport = extern "C" fn(user: *mut c_void, code: c_int, level: c_int, delay: c_int);

extern "C" {
    fn dtmf_rx_init(s: *mut DtmfRx, cb: *const c_void, user: *mut c_void) -> *mut DtmfRx;
    fn dtmf_rx(s: *mut DtmfRx, amp: *const i16, samples: c_int) -> c_int;
    fn dtmf_rx_get(s: *mut DtmfRx, digits: *mut c_char, max: c_int) -> usize;
    fn dtmf_rx_free(s: *mut DtmfRx) -> c_int;
    fn dtmf_rx_parms(
        s: *mut DtmfRx,
        filter_dialtone: c_int,
        twist: c_int,
        reverse_twist: c_int,
        threshold: c_int,
    );
    fn dtmf_rx_set_realtime_callback(s: *mut DtmfRx, cb: ToneReport, user: *mut c_void);
}

/// spandsp receiver parameters (`dtmf_rx_parms`); `None` keeps spandsp's default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Params {
    /// Dial-tone filter on/off.
    pub filter_dialtone: Option<bool>,
    /// Normal twist, dB.
    pub twist_db: Option<i32>,
    /// Reverse twist, dB.
    pub reverse_twist_db: Option<i32>,
}

/// A digit as spandsp reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The digit.
    pub digit: char,
    /// Sample position at which the realtime callback reported its start (to within the
    /// feeding granularity, 8 samples).
    pub reported_at: u64,
}

struct Collect {
    position: u64,
    hits: Vec<Hit>,
}

extern "C" fn on_tone(user: *mut c_void, code: c_int, _level: c_int, _delay: c_int) {
    // SAFETY: `user` is the `Collect` passed in `detect`, alive for the whole call.
    let c = unsafe { &mut *(user as *mut Collect) };
    if code != 0 {
        c.hits.push(Hit {
            digit: code as u8 as char,
            reported_at: c.position,
        });
    }
}

/// Digits spandsp finds in 8 kHz linear audio, with when each start was reported.
#[must_use]
pub fn detect(samples: &[i16], params: Params) -> Vec<Hit> {
    let mut collect = Collect {
        position: 0,
        hits: Vec::new(),
    };
    // SAFETY: dtmf_rx_init(NULL, NULL, NULL) allocates a receiver; the callback's user pointer
    // is `collect`, which outlives the receiver (freed below); slices passed are valid.
    unsafe {
        let s = dtmf_rx_init(std::ptr::null_mut(), std::ptr::null(), std::ptr::null_mut());
        assert!(!s.is_null(), "dtmf_rx_init failed");
        let p = |v: Option<i32>| v.unwrap_or(-1);
        dtmf_rx_parms(
            s,
            params.filter_dialtone.map_or(-1, i32::from),
            p(params.twist_db),
            p(params.reverse_twist_db),
            -99,
        );
        dtmf_rx_set_realtime_callback(s, on_tone, (&raw mut collect).cast());
        for chunk in samples.chunks(8) {
            dtmf_rx(s, chunk.as_ptr(), chunk.len() as c_int);
            collect.position += chunk.len() as u64;
        }
        // Drain the digit buffer so it never fills (its contents equal the callback's).
        let mut buf = [0 as c_char; 129];
        while dtmf_rx_get(s, buf.as_mut_ptr(), 128) > 0 {}
        dtmf_rx_free(s);
    }
    collect.hits
}

/// Digits spandsp finds in 8 kHz linear audio (default parameters).
#[must_use]
pub fn digits(samples: &[i16]) -> String {
    detect(samples, Params::default())
        .iter()
        .map(|h| h.digit)
        .collect()
}
