#!/usr/bin/env bash
# Throughput of the plugin inside wasmtime on a long call: builds a one-hour recording from the
# committed test calls (speech with a typed card number, repeated), then times `tonemask detect`
# and `tonemask mask` on it — as WAV, and as a pcap of 20 ms PCMU RTP packets through the
# plugin's RTP path — and prints audio-seconds per CPU-second. Needs sox and python3.
# Usage: scripts/bench.sh [MINUTES]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
command -v sox >/dev/null || { echo "bench: needs sox (apt-get install sox)" >&2; exit 1; }
[ -x target/release/tonemask ] && [ -f target/tonemask-plugin.wasm ] || { echo "bench: run scripts/demo.sh first" >&2; exit 1; }
dir=target/bench
mkdir -p "$dir"
src=testdata/calls/speech_then_card.wav
reps=$(( minutes * 60 * 10 / 263 + 1 ))   # the source call is 26.3 s
long="$dir/long_${minutes}min.wav"
if [ ! -f "$long" ]; then
    echo "bench: building $long ($reps copies of $src)"
    args=(); for _ in $(seq "$reps"); do args+=("$src"); done
    sox "${args[@]}" "$long"
    sox "$long" -e u-law -b 8 "$dir/long_${minutes}min_ulaw.wav"
fi
pcap="$dir/long_${minutes}min.pcap"
if [ ! -f "$pcap" ]; then
    echo "bench: building $pcap (PCMU RTP, 20 ms packets, Ethernet/IPv4/UDP)"
    python3 - "$dir/long_${minutes}min_ulaw.wav" "$pcap" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
i = b.find(b"data"); n = struct.unpack("<I", b[i + 4:i + 8])[0]; data = b[i + 8:i + 8 + n]
out = open(sys.argv[2], "wb")
out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
eth = b"\x00" * 12 + b"\x08\x00"
for k in range(len(data) // 160):
    rtp = struct.pack(">BBHII", 0x80, 0, k & 0xFFFF, 160 * k & 0xFFFFFFFF, 0x1234) + data[160 * k:160 * k + 160]
    udp = struct.pack(">HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    frame = eth + ip + udp
    t = k * 20000
    out.write(struct.pack("<IIII", t // 1000000, t % 1000000, len(frame), len(frame)) + frame)
PY
fi
[ -f "$dir/bench.key" ] || target/release/tonemask keygen --kid bench --out "$dir/bench.key"
secs=$(soxi -D "$long")
measure() {
    local label=$1; shift
    local TIMEFORMAT="%U %S %R" t
    t=$( { time "$@" > "$dir/out.txt" 2> "$dir/err.txt"; } 2>&1 )
    awk -v l="$label" -v a="$secs" -v t="$t" 'BEGIN { split(t, x, " "); cpu = x[1] + x[2];
        printf "%-28s %8.1f s audio  %6.2f s CPU  %6.2f s wall  %9.0f audio-s per CPU-s\n", l, a, cpu, x[3], a / cpu }'
}
measure "detect (16-bit PCM)" target/release/tonemask detect "$long"
measure "detect (µ-law)" target/release/tonemask detect "$dir/long_${minutes}min_ulaw.wav"
measure "mask silence (16-bit PCM)" target/release/tonemask mask "$long" "$dir/masked.wav" --key "$dir/bench.key"
measure "mask tone (µ-law)" target/release/tonemask mask "$dir/long_${minutes}min_ulaw.wav" "$dir/masked_ulaw.wav" --key "$dir/bench.key" --mode tone
measure "mask capture (PCMU RTP)" target/release/tonemask mask "$pcap" "$dir/masked.pcap" --key "$dir/bench.key"
echo "bench: digit events per run: $(grep -c '"digit"' "$dir/masked.events.jsonl") (expected $(( reps * 16 )))"
