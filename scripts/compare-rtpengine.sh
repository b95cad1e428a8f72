#!/usr/bin/env bash
# tonemask serve side by side with Debian's rtpengine (its own DTMF blocking: `block DTMF`
# with DTMF-security=silence and a 60 ms delay buffer, in-band detection by its spandsp DSP):
# the same ng messages and the same test calls through each node on loopback, measured at
# the agent (dev/conformance/examples/node_compare.rs). Prints one markdown table.
#
#   scripts/compare-rtpengine.sh
#
# Needs the demo built (scripts/demo.sh) and, for the talk-off rows, the talk-off corpus
# (testdata/talkoff/build.sh target/talkoff). Installs rtpengine-daemon when missing; runs it
# in userspace only (--table=-1: no kernel module), in the foreground, never as a service.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/release/tonemask ] && [ -f target/tonemask-plugin.wasm ] || { echo "compare-rtpengine: run scripts/demo.sh first" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v rtpengine >/dev/null; then
    echo "compare-rtpengine: apt-get install rtpengine-daemon"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rtpengine-daemon >/dev/null
fi
cargo build --release -q -p conformance --example node_compare
dir=target/compare
rm -rf "$dir"; mkdir -p "$dir"
talkoff=()
[ -d target/talkoff ] && talkoff=(target/talkoff)
target/release/tonemask keygen --kid cmp --out "$dir/node.key" >/dev/null

rtpengine --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:22240 --foreground --log-stderr \
    --port-min=32000 --port-max=32999 --dtmf-log-dest=127.0.0.1:22249 --log-level=5 \
    --pidfile="$PWD/$dir/rtpengine.pid" 2>"$dir/rtpengine.log" &
rtpe=$!
target/release/tonemask serve --listen-ng 127.0.0.1:22241 --interface 127.0.0.1 \
    --port-min 33000 --port-max 33999 --key "$dir/node.key" --events "$dir/events.jsonl" \
    2>"$dir/serve.log" &
node=$!
trap 'kill $rtpe $node 2>/dev/null || true' EXIT
sleep 1
echo "compare-rtpengine: $(rtpengine --version 2>&1 | head -n 1); tonemask serve (look-ahead 60 ms)"
echo "compare-rtpengine: rtpengine — 3 calls${talkoff:+, then 7 talk-off calls at once (40 s)}"
target/release/examples/node_compare 127.0.0.1:22240 rtpengine --dtmf-log 127.0.0.1:22249 \
    "${talkoff[@]}" >"$dir/rtpengine.jsonl"
echo "compare-rtpengine: tonemask"
target/release/examples/node_compare 127.0.0.1:22241 tonemask --events "$dir/events.jsonl" \
    "${talkoff[@]}" >"$dir/tonemask.jsonl"
target/release/examples/node_compare --table "$dir/tonemask.jsonl" "$dir/rtpengine.jsonl" | tee "$dir/table.md"
echo "compare-rtpengine: JSON lines, logs and the table in $dir/"
