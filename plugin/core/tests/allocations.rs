//! No allocation per packet: once its buffers have grown, an RTP session forwards audio
//! packets — noise, and a key press masked from its first sample — and RTCP without touching
//! the allocator (the host reuses one `Datagrams`). Events allocate (their text), packets not.

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use tonemask_core::rtp::Datagrams;
use tonemask_core::{AudioType, Codec, EventType, MaskMode, RtpConfig, RtpSession};

/// Counts allocations made on threads that asked for it ([`count_this_thread`]): the test
/// harness's own thread allocates now and then while the test runs (a stray count failed the
/// test about once in ten runs).
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations are counted (no destructor, no lazy allocation: safe
    /// to read inside the allocator).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Counts the calling thread's allocations from now on.
fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// One more allocation, if this thread is counted.
fn count() {
    if COUNTED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on unchanged to the system allocator, which upholds the
// `GlobalAlloc` contract; counting touches no memory the allocator hands out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees for `layout` are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `dealloc`; `new_size` is checked by the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn audio_and_rtcp_packets_are_forwarded_without_allocating_once_warm() {
    count_this_thread();
    let config = RtpConfig {
        telephone_event: Some(EventType {
            pt: 96,
            clock: 8000,
        }),
        ..RtpConfig::new(
            "call-alloc",
            AudioType {
                pt: 0,
                codec: Codec::Pcmu,
                rate: 8000,
            },
        )
    };
    for mode in [MaskMode::Silence, MaskMode::Noise] {
        let mut cfg = config.clone();
        cfg.settings.mask_mode = mode;
        let mut s = RtpSession::new(cfg).unwrap();
        // 10 s of noise at -30 dBm0-ish, then a press that starts (and stays on) at the end.
        let mut b = noise(80_000, 300.0, 7);
        push_tone(&mut b, 8000.0, &Tone::new('5', 400.0));
        let pcm = to_i16(&b);
        let packets: Vec<Vec<u8>> = pcm
            .chunks(160)
            .enumerate()
            .map(|(i, c)| {
                let ulaw: Vec<u8> = c
                    .iter()
                    .map(|&v| tonemask_core::g711::linear_to_ulaw(v))
                    .collect();
                rtp(0, i as u16, 160 * i as u32, &ulaw)
            })
            .collect();
        let rtcp = [0x80u8, 200, 0, 6, 0x12, 0x34, 0x56, 0x78];
        let mut out = Datagrams::new();
        let warm = 100;
        let mut forwarded = 0;
        let mut counted = 0;
        for (i, p) in packets.iter().enumerate() {
            if i == warm {
                counted = ALLOCATIONS.load(Ordering::Relaxed);
            }
            s.push(20 * i as u64, p, &mut out).unwrap();
            if i % 50 == 0 {
                s.push(20 * i as u64, &rtcp, &mut out).unwrap();
            }
            forwarded += out.len();
            out.clear();
        }
        let during = ALLOCATIONS.load(Ordering::Relaxed) - counted;
        assert!(forwarded > packets.len() - 5, "{mode:?}: packets forwarded");
        assert_eq!(
            during,
            0,
            "{mode:?}: {during} allocations over {} packets",
            packets.len() - warm
        );
        assert!(s.poll_event().is_none(), "the press is still on");
    }
}
