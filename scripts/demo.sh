#!/usr/bin/env bash
# The main job on a fresh machine: set up, build the plugin component and the `tonemask` host,
# replay every test call through the plugin inside wasmtime, then mask one call and verify
# its signed digit events.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== building the plugin component (target/tonemask-plugin.wasm)"
cargo xtask plugin
echo "== building the tonemask host (target/release/tonemask)"
cargo build --release -p tonemask-harness
echo "== replaying the test calls in testdata/calls and testdata/captures"
./target/release/tonemask replay testdata/calls testdata/captures --report-dir target/replay
echo "== masking one call and verifying its events"
mkdir -p target/demo
[ -f target/demo/demo.key ] || ./target/release/tonemask keygen --kid demo --out target/demo/demo.key
./target/release/tonemask mask testdata/calls/speech_then_card.wav target/demo/speech_then_card.masked.wav --key target/demo/demo.key
./target/release/tonemask verify target/demo/speech_then_card.masked.events.jsonl --key target/demo/demo.key | tail -n 1
echo "== done: listen to target/demo/speech_then_card.masked.wav; reports in target/replay/"
