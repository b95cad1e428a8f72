//! The independent check: spandsp finds every digit in the test calls, and none in what
//! `tonemask mask` makes of them — for every mask mode that replaces tones.

use std::path::PathBuf;
use tonemask_harness::keys::KeyRing;
use tonemask_harness::plugin::{default_settings, CallSettings, Limits, MaskMode, Plugin};
use tonemask_harness::replay::{manifests, Manifest};
use tonemask_harness::run::{run, Options};
use tonemask_harness::wav::Wav;

/// The default settings with mask mode `mode`.
fn settings(mode: MaskMode) -> CallSettings {
    CallSettings {
        mask_mode: mode,
        ..default_settings("spandsp-check")
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plugin() -> Plugin {
    let p = std::env::var_os("TONEMASK_PLUGIN")
        .map_or_else(|| root().join("target/tonemask-plugin.wasm"), PathBuf::from);
    Plugin::load(&p, Limits::default())
        .expect("plugin component (build it with `cargo xtask plugin`)")
}

#[test]
fn spandsp_finds_no_digit_in_masked_test_calls() {
    let plugin = plugin();
    let keys = KeyRing::ephemeral().unwrap();
    let mut checked = 0;
    for m in manifests(&[root().join("testdata/calls")]).unwrap() {
        let manifest: Manifest = tonemask_harness::replay::load_manifest(&m).unwrap();
        let wav = Wav::parse(
            &std::fs::read(m.parent().unwrap().join(manifest.audio.as_ref().unwrap())).unwrap(),
        )
        .unwrap();
        // The reference must see the digits in the original, or its silence proves nothing.
        assert_eq!(
            spandsp_ref::digits(&wav.linear()),
            manifest.digits,
            "spandsp on {}",
            m.display()
        );
        for mode in [MaskMode::Silence, MaskMode::Tone, MaskMode::Noise] {
            let mut inst = plugin.instantiate().unwrap();
            let out = run(
                &mut inst,
                &wav,
                &Options {
                    settings: settings(mode),
                    ..Options::default()
                },
                Some(&keys),
                |_| {},
            )
            .unwrap();
            let found = spandsp_ref::digits(&out.masked.linear());
            assert_eq!(
                found,
                "",
                "spandsp recovered digits from {} masked with {mode:?}",
                m.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} masked files checked");
}

/// Control: the same path with masking off hands spandsp every digit, so its silence above
/// comes from the masking and not from the plugin path mangling audio.
#[test]
fn with_masking_off_spandsp_finds_every_digit_in_plugin_output() {
    let plugin = plugin();
    for name in [
        "card_visa_-3dbm0",
        "speech_then_card_ulaw",
        "all16_-10dbm0_alaw",
    ] {
        let m = root().join(format!("testdata/calls/{name}.json"));
        let manifest = tonemask_harness::replay::load_manifest(&m).unwrap();
        let wav = Wav::parse(
            &std::fs::read(m.parent().unwrap().join(manifest.audio.as_ref().unwrap())).unwrap(),
        )
        .unwrap();
        let mut inst = plugin.instantiate().unwrap();
        let out = run(
            &mut inst,
            &wav,
            &Options {
                settings: settings(MaskMode::Off),
                ..Options::default()
            },
            None,
            |_| {},
        )
        .unwrap();
        assert_eq!(out.masked, wav, "off mode must pass audio unchanged");
        assert_eq!(spandsp_ref::digits(&out.masked.linear()), manifest.digits);
    }
}

/// The caller→agent audio of a capture (port 6000 → 6010 in `testdata/captures`), decoded
/// from its PCMU packets in timestamp order.
fn caller_audio(frames: &[tonemask_harness::capture::Frame]) -> Vec<i16> {
    let mut packets: Vec<(u32, Vec<u8>)> = frames
        .iter()
        .filter_map(|f| {
            let d = f.datagram()?;
            let p = tonemask_core::rtp::packet::Packet::parse(d.payload).ok()?;
            (d.src.port() == 6000 && p.payload_type() == 0)
                .then(|| (p.timestamp(), p.payload().to_vec()))
        })
        .collect();
    packets.sort_by_key(|p| p.0);
    packets
        .iter()
        .flat_map(|p| p.1.iter().map(|&b| tonemask_core::g711::ulaw_to_linear(b)))
        .collect()
}

/// The recorded SIP calls: spandsp hears the card in the caller's RTP, and nothing once
/// `tonemask` has masked the capture (the RFC 4733 call is checked in the harness tests:
/// its caller stream carries no audio).
#[test]
fn spandsp_finds_no_digit_in_masked_captures() {
    use tonemask_harness::capture::Capture;
    use tonemask_harness::packets::{run_capture, CaptureOptions};
    let plugin = plugin();
    let keys = KeyRing::ephemeral().unwrap();
    for (name, digits) in [
        ("inband_visa_ipv4.pcapng", "4111111111111111"),
        ("inband_speech_card_ipv6.pcap", "5105105105105100"),
    ] {
        let bytes = std::fs::read(root().join("testdata/captures").join(name)).unwrap();
        let cap = Capture::parse(&bytes).unwrap();
        assert_eq!(spandsp_ref::digits(&caller_audio(&cap.frames)), digits);
        for mode in [MaskMode::Silence, MaskMode::Tone, MaskMode::Noise] {
            let opts = CaptureOptions {
                settings: settings(mode),
                ..CaptureOptions::default()
            };
            let out = run_capture(&plugin, &cap, &opts, Some(&keys)).unwrap();
            assert_eq!(out.caller_digits(), digits);
            let masked = caller_audio(&out.masked);
            assert_eq!(masked.len(), caller_audio(&cap.frames).len());
            assert_eq!(
                spandsp_ref::digits(&masked),
                "",
                "{name} masked with {mode:?}"
            );
        }
    }
}
