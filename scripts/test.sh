#!/usr/bin/env bash
# Every test: formatting, clippy, unit and integration tests (the real component in wasmtime,
# spandsp as an independent check of the masked output, the conformance goals on the talk-off
# corpus), then the replay of all test calls and the conformance table.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== building the plugin components (full, and audio-only)"
cargo xtask plugin
cargo xtask plugin --audio-only
echo "== clippy (host crates, then the component for wasm32)"
cargo clippy --release --workspace --all-targets -- -D warnings
if ls "$(rustc --print target-libdir --target wasm32-unknown-unknown)"/libstd-*.rlib >/dev/null 2>&1; then
    cargo clippy --release -p tonemask-component --target wasm32-unknown-unknown -- -D warnings
    cargo clippy --release -p tonemask-component --target wasm32-unknown-unknown --no-default-features -- -D warnings
else
    echo "(no rustup wasm32 std: the plugin builds with Debian's rustc-web; component clippy skipped)"
fi
echo "== talk-off corpus (speech and music from Debian packages)"
testdata/talkoff/build.sh target/talkoff
echo "== tests"
cargo test --release --workspace
echo "== replay of testdata/calls and testdata/captures"
./target/release/tonemask replay testdata/calls testdata/captures --report-dir target/replay
echo "== conformance table (tonemask plugin vs spandsp)"
cargo run --release -q -p conformance -- --talkoff target/talkoff
