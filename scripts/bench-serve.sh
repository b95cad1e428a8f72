#!/usr/bin/env bash
# Load on `tonemask serve`: for each number of concurrent calls (default 25 50 100 200), a
# run of SECONDS (default 10) of 20 ms PCMU calls on loopback — media both ways, each call on
# its own phase within the 20 ms and its callee half a period from its caller (MEDIA=one-way:
# caller → callee only) — every tenth with key presses, through one node
# (host-harness/examples/serve_load.rs plays proxy, callers and callees).
# Prints per step: packets lost, forwarding delay p50/p99/max (the 60 ms look-ahead
# included), the node's CPU share and the calls one CPU core would carry at that rate.
# Usage: scripts/bench-serve.sh [SECONDS] [CALLS...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}; shift || true
steps=("${@:-25 50 100 200}")
[ -x target/release/tonemask ] && [ -f target/tonemask-plugin.wasm ] || { echo "bench-serve: run scripts/demo.sh first" >&2; exit 1; }
cargo build --release -q -p tonemask-harness --example serve_load
dir=target/bench/serve
rm -rf "$dir"; mkdir -p "$dir"
target/release/tonemask keygen --kid bench --out "$dir/bench.key" >/dev/null
ng=127.0.0.1:22230
target/release/tonemask serve --listen-ng "$ng" --interface 127.0.0.1 --port-min 20000 --port-max 29999 \
    --key "$dir/bench.key" --events "$dir/events.jsonl" --idle-s 60 2>"$dir/serve.log" &
node=$!
trap 'kill $node 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "ng on" "$dir/serve.log" && break; sleep 0.1; done
echo "bench-serve: $(nproc) cores; node pid $node; ${seconds} s per step"
for n in ${steps[*]}; do
    target/release/examples/serve_load "$ng" "$node" "$n" "$seconds" "${MEDIA:-both}"
done
kill -TERM $node; wait $node || true
echo "bench-serve: $(grep -c -E '"(digit|press)"' "$dir/events.jsonl" || true) signed press records; node log in $dir/serve.log"
