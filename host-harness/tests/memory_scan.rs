//! Data minimisation, proved on the plugin itself: the instance's linear memory is read
//! after a card capture completes, is cancelled or times out, and no captured digit string
//! is found in it. The memory is host memory (a `MemoryCreator`), so the test reads exactly
//! what the sandboxed plugin holds — no probe inside the plugin. As a control, the same scan
//! finds the digits while the caller is still typing them.
//!
//! What it catches: a copy of the card kept anywhere in the instance once the capture is over
//! (a leaked clone of the card number fails it). What it cannot catch on its own: a buffer
//! freed without zeroizing — the plugin's allocator hands freed buffers out again within the
//! same call, so even a build with every `zeroize` removed passes; the zeroizing is reviewed
//! in `plugin/core/src/card` and its buffers are sized never to reallocate.

mod common;

use common::*;
use std::sync::{Arc, Mutex};
use tonemask_harness::wav::Wav;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, LinearMemory, MemoryCreator, MemoryType, Store};

/// Bindings of the plugin's world, for a store this test configures itself.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({ world: "plugin", path: "../wit" });
}

use bindings::exports::tonemask::plugin::types::CaptureValue;
use bindings::exports::tonemask::plugin::types::{
    CallSettings, CaptureField, CaptureRequest, Codec, Config as SessionConfig, DigitVisibility,
    MaskMode, SigningKey, Twist,
};
use bindings::Plugin;

/// Largest linear memory the test gives an instance (the harness's own limit).
const CAPACITY: usize = 64 << 20;

/// A linear memory allocated once at its largest size, so it never moves.
struct Fixed {
    bytes: Box<[u8]>,
    size: usize,
}

// SAFETY: the allocation is zero-filled, never moves or shrinks while wasmtime owns it, and
// growth only moves `size` within it.
unsafe impl LinearMemory for Fixed {
    fn byte_size(&self) -> usize {
        self.size
    }
    fn byte_capacity(&self) -> usize {
        self.bytes.len()
    }
    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.bytes.len() {
            return Err(wasmtime::Error::msg("beyond the test's capacity"));
        }
        self.size = new_size;
        Ok(())
    }
    fn as_ptr(&self) -> *mut u8 {
        self.bytes.as_ptr().cast_mut()
    }
}

/// Hands out [`Fixed`] memories and remembers where each lives.
#[derive(Default)]
struct Creator {
    /// Base address of every memory created (the instance has one).
    bases: Mutex<Vec<usize>>,
}

// SAFETY: memories are zero-filled, large enough for any size wasmtime asks (or refused),
// with no reservation or guard region expected (the engine is configured for none).
unsafe impl MemoryCreator for Creator {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved: Option<usize>,
        guard: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        if minimum > CAPACITY || reserved.is_some_and(|r| r > CAPACITY) || guard != 0 {
            return Err(format!("unexpected memory: {minimum} bytes, guard {guard}"));
        }
        let m = Fixed {
            bytes: vec![0u8; CAPACITY].into_boxed_slice(),
            size: minimum,
        };
        self.bases.lock().unwrap().push(m.bytes.as_ptr() as usize);
        Ok(Box::new(m))
    }
}

struct Probe {
    store: Store<()>,
    plugin: Plugin,
    creator: Arc<Creator>,
}

impl Probe {
    fn new() -> Probe {
        let creator = Arc::new(Creator::default());
        let mut config = Config::new();
        config
            .with_host_memory(creator.clone())
            .memory_reservation(0)
            .memory_guard_size(0)
            .memory_reservation_for_growth(0)
            .memory_may_move(false)
            .memory_init_cow(false);
        let engine = Engine::new(&config).unwrap();
        let component = Component::from_file(&engine, plugin_path()).unwrap();
        let mut store = Store::new(&engine, ());
        let plugin = Plugin::instantiate(&mut store, &component, &Linker::new(&engine)).unwrap();
        Probe {
            store,
            plugin,
            creator,
        }
    }

    /// Whether `needle` is anywhere in the instance's linear memory now.
    fn memory_holds(&self, needle: &[u8]) -> bool {
        self.creator.bases.lock().unwrap().iter().any(|&base| {
            // SAFETY: the memory is alive (owned by `self.store`), the plugin is not running
            // (no call is in progress), and only its current size is read.
            let bytes = unsafe { std::slice::from_raw_parts(base as *const u8, CAPACITY) };
            bytes.windows(needle.len()).any(|w| w == needle)
        })
    }
}

const PAN: &[u8] = b"4111111111111111";

fn request(fields: Vec<CaptureField>, attempts: u8, timeout_ms: u64) -> CaptureRequest {
    CaptureRequest {
        id: "scan".into(),
        fields,
        end_key: '#',
        clear_key: '*',
        field_timeout_ms: timeout_ms,
        max_attempts: attempts,
        year: 2026,
        month: 12,
        processor_kid: "proc".into(),
        processor_key: tonemask_core::card::seal::keypair(&[4; 32]).1.to_vec(),
        entropy: vec![0x5C; 32],
        token_key: Some(vec![0x3A; 32]),
    }
}

/// Runs the committed capture call through a fresh instance, starting `req` at the
/// manifest's time; `stop` ends the run early (after a frame, given the capture events so
/// far). Returns the instance, the session and the capture events' names.
fn run(
    req: CaptureRequest,
    mut stop: impl FnMut(&[String]) -> bool,
) -> (Probe, wasmtime::component::ResourceAny, Vec<String>) {
    let m = tonemask_harness::replay::load_manifest(&calls().join("capture_card_corrected.json"))
        .unwrap();
    let at_ms = m.card_capture.unwrap().at_ms;
    let wav =
        Wav::parse(&std::fs::read(calls().join("capture_card_corrected.wav")).unwrap()).unwrap();
    let mut p = Probe::new();
    let masking = p.plugin.tonemask_plugin_masking().session();
    let config = SessionConfig {
        settings: CallSettings {
            call_id: "scan-call".into(),
            lookahead_ms: 60,
            mask_mode: MaskMode::Silence,
            twist: Twist::Att,
            key: Some(SigningKey {
                kid: "k1".into(),
                secret: vec![7; 32],
                session: vec![1; 16],
            }),
            digits: DigitVisibility::Clear,
        },
        codec: Codec::L16,
        sample_rate: 8000,
        aligned: true,
    };
    let s = masking.call_create(&mut p.store, &config).unwrap().unwrap();
    let mut names = Vec::new();
    let mut started = false;
    for (i, frame) in wav.pcm16().chunks(160).enumerate() {
        if !started && i as u64 * 20 >= at_ms {
            masking
                .call_start_capture(&mut p.store, s, &req)
                .unwrap()
                .unwrap();
            started = true;
        }
        masking
            .call_process_samples(&mut p.store, s, frame)
            .unwrap()
            .unwrap();
        names.extend(event_names(&mut p.store, &p.plugin, s));
        if stop(&names) {
            break;
        }
    }
    (p, s, names)
}

/// The names of the capture events since the last call.
fn event_names(
    store: &mut Store<()>,
    plugin: &Plugin,
    s: wasmtime::component::ResourceAny,
) -> Vec<String> {
    let masking = plugin.tonemask_plugin_masking().session();
    masking
        .call_drain_captures(store, s)
        .unwrap()
        .into_iter()
        .filter_map(|c| match c.items.first() {
            Some((_, CaptureValue::Text(e))) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn card_fields() -> Vec<CaptureField> {
    vec![
        CaptureField::CardNumber,
        CaptureField::Expiry,
        CaptureField::SecurityCode,
    ]
}

fn digits_typed(names: &[String]) -> usize {
    names.iter().filter(|e| *e == "digits").count()
}

/// Digit strings of the test card that must not be found once a capture is over: windows
/// of the card number at several offsets (the allocator writes its free-list links over the
/// first bytes of a freed buffer, so a leftover shows in its tail), and the sealed plaintext.
const LEFTOVERS: [&[u8]; 5] = [
    b"41111111",
    b"11111111",
    b"1111111111",
    b"0829737",
    b";0829;",
];

fn assert_clean(p: &Probe, when: &str) {
    for needle in LEFTOVERS {
        assert!(
            !p.memory_holds(needle),
            "{} left in the plugin memory after {when}",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn no_captured_digit_is_left_in_the_plugin_memory_after_completion_cancel_or_timeout() {
    // Control: mid-card (the slip and 10 digits of the card), the digits typed so far are in
    // the plugin, and the scan sees them.
    let (p, _, names) = run(request(card_fields(), 3, 30_000), |n| digits_typed(n) >= 15);
    assert!(digits_typed(&names) >= 15, "{names:?}");
    assert!(
        p.memory_holds(&PAN[..10]),
        "the scan must find the digits being typed"
    );

    // Completed: the card was sealed and nothing of it is left.
    let (p, _, names) = run(request(card_fields(), 3, 30_000), |n| {
        n.last().is_some_and(|e| e == "completed")
    });
    assert_eq!(
        names.last().map(String::as_str),
        Some("completed"),
        "{names:?}"
    );
    assert_clean(&p, "completion");

    // Cancelled by the agent mid-card.
    let (mut p, s, _) = run(request(card_fields(), 3, 30_000), |n| digits_typed(n) >= 15);
    let masking = p.plugin.tonemask_plugin_masking().session();
    assert!(masking.call_cancel_capture(&mut p.store, s).unwrap());
    assert_eq!(event_names(&mut p.store, &p.plugin, s), ["cancelled"]);
    assert_clean(&p, "cancellation");

    // Timed out mid-card: the card number's 9 s run out after about 12 of its digits, and
    // with one attempt the capture fails.
    let (p, _, names) = run(request(card_fields(), 1, 9_000), |n| {
        n.last().is_some_and(|e| e == "failed")
    });
    assert!(digits_typed(&names) >= 10, "{names:?}");
    assert_eq!(names[names.len() - 2..], ["invalid", "failed"], "{names:?}");
    assert_clean(&p, "a time-out");
}
