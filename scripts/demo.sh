#!/usr/bin/env bash
# The main job on a fresh machine: set up, build the plugin component and the `tonemask` host,
# replay every test call through the plugin inside wasmtime, mask one call and verify its
# signed digit events, then run a card capture and open the sealed card as the processor.
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
echo "== a card capture: what the agent sees, then the sealed card opened by the processor"
T=./target/release/tonemask
[ -f target/demo/processor.key ] || $T keygen --processor --kid demo-processor --out target/demo/processor.key
call=testdata/calls/capture_card_corrected
at_ms=$(sed -n 's/.*"at_ms": *\([0-9]*\).*/\1/p' "$call.json")
$T capture "$call.wav" --at "$((at_ms / 1000)).$(printf '%03d' $((at_ms % 1000)))" --today 2026-12 \
    --processor-key target/demo/processor.key.pub --key target/demo/demo.key --events target/demo/capture.jsonl
$T open target/demo/capture.jsonl --processor-private target/demo/processor.key --key target/demo/demo.key
echo "== done: listen to target/demo/speech_then_card.masked.wav; reports in target/replay/"
