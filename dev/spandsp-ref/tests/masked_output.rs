//! The independent check: spandsp finds every digit in the test calls, and none in what
//! `tonemask mask` makes of them — for every mask mode that replaces tones.

use std::path::PathBuf;
use tonemask_harness::keys::KeyRing;
use tonemask_harness::plugin::{Limits, MaskMode, Plugin};
use tonemask_harness::replay::{manifests, Manifest};
use tonemask_harness::run::{run, Options};
use tonemask_harness::wav::Wav;

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
        let wav =
            Wav::parse(&std::fs::read(m.parent().unwrap().join(&manifest.audio)).unwrap()).unwrap();
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
                    mode,
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
        let wav =
            Wav::parse(&std::fs::read(m.parent().unwrap().join(&manifest.audio)).unwrap()).unwrap();
        let mut inst = plugin.instantiate().unwrap();
        let out = run(
            &mut inst,
            &wav,
            &Options {
                mode: MaskMode::Off,
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
