#!/usr/bin/env bash
# Throughput of the plugin inside wasmtime on a long call: builds a one-hour recording from the
# committed test calls (speech with a typed card number, repeated), then times `tonemask detect`
# and `tonemask mask` on it — as WAV, and as a pcap of 20 ms PCMU RTP packets through the
# plugin's RTP path — and spandsp's dtmf_rx (native C, the detector inside FreeSWITCH and
# rtpengine) on the same hour, in one run. Prints audio-seconds per CPU-second (each command's
# start-up, measured on a 0.1 s file, subtracted; the best of RUNS runs), each plugin figure
# as a multiple of spandsp's (issue 14's table) — the RTP path also without its files (the
# packets through the session in memory, examples/rtp_in_memory.rs) —, the plugin's size and
# the memory a session takes in one instance. Needs sox and python3.
# Usage: scripts/bench.sh [MINUTES] [RUNS]   (defaults 60 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
runs=${2:-3}
command -v sox >/dev/null || { echo "bench: needs sox (apt-get install sox)" >&2; exit 1; }
[ -x target/release/tonemask ] && [ -f target/tonemask-plugin.wasm ] || { echo "bench: run scripts/demo.sh first" >&2; exit 1; }
cargo build --release -q -p spandsp-ref -p tonemask-harness --example sessions_per_instance --example rtp_in_memory
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
tiny="$dir/tiny.wav"
sox "$long" "$tiny" trim 0 0.1
tiny_ulaw="$dir/tiny_ulaw.wav"
sox "$dir/long_${minutes}min_ulaw.wav" "$tiny_ulaw" trim 0 0.1
# CPU seconds (user + system, to the millisecond) of a command: the least of $runs runs.
cpu() {
    local best="" t TIMEFORMAT="%3U %3S"
    for _ in $(seq "$runs"); do
        t=$( { time "$@" > "$dir/out.txt" 2> "$dir/err.txt"; } 2>&1 ) || { cat "$dir/err.txt" >&2; return 1; }
        best=$(awk -v t="$t" -v b="$best" 'BEGIN { split(t, x, " "); c = x[1] + x[2];
            print (b == "" || c < b) ? c : b }')
    done
    echo "$best"
}
T=target/release/tonemask
K=(--key "$dir/bench.key")
printf '%-34s %9s %9s %12s %10s\n' "" "CPU s" "start-up" "audio-s/CPU-s" "× spandsp"
# One row: label, start-up command (on the tiny file) -- the command on the hour.
declare -A rate
row() {
    local label=$1 key=$2; shift 2
    local start=() ; while [ "$1" != -- ]; do start+=("$1"); shift; done; shift
    local c0 c1
    c0=$(cpu "${start[@]}"); c1=$(cpu "$@")
    rate[$key]=$(awk -v a="$secs" -v c="$c1" -v s="$c0" 'BEGIN { d = c - s; if (d < 0.001) d = 0.001; printf "%.0f", a / d }')
    awk -v l="$label" -v c="$c1" -v s="$c0" -v r="${rate[$key]}" -v ref="${rate[spandsp]:-}" 'BEGIN {
        x = (ref == "") ? "" : sprintf("%.2f ×", r / ref);
        printf "%-34s %9.3f %9.3f %12d %10s\n", l, c, s, r, x }'
}
row "spandsp dtmf_rx (native C)" spandsp target/release/spandsp-ref "$tiny" -- target/release/spandsp-ref "$long"
row "detect (16-bit PCM)" detect $T detect "$tiny" -- $T detect "$long"
row "detect (PCMU WAV)" detect_ulaw $T detect "$tiny_ulaw" -- $T detect "$dir/long_${minutes}min_ulaw.wav"
row "detect + mask silence (16-bit PCM)" mask $T mask "$tiny" "$dir/masked_tiny.wav" "${K[@]}" -- $T mask "$long" "$dir/masked.wav" "${K[@]}"
row "detect + mask tone (PCMU WAV)" mask_ulaw $T mask "$tiny_ulaw" "$dir/masked_tiny.wav" "${K[@]}" --mode tone -- $T mask "$dir/long_${minutes}min_ulaw.wav" "$dir/masked_ulaw.wav" "${K[@]}" --mode tone
row "RTP path (PCMU capture, mask)" rtp $T mask "$tiny" "$dir/masked_tiny.wav" "${K[@]}" -- $T mask "$pcap" "$dir/masked.pcap" "${K[@]}"
# The same packets through the plugin's RTP session without the pcap files (read, parsed and
# written in the row above), one crossing per packet as a relay sends them (the row above sends
# 256 frames a crossing): the loop's time on its own, best of $runs (wall clock of one thread).
mem=$(target/release/examples/rtp_in_memory "$pcap" "$runs" | awk '{print $1}')
awk -v a="$secs" -v c="$mem" -v ref="${rate[spandsp]}" 'BEGIN { r = a / c;
    printf "%-34s %9.3f %9s %12d %10s\n", "RTP path, packets in memory", c, "(loop)", r, sprintf("%.2f ×", r / ref) }'
echo "bench: digit events per run: $(grep -c '"digit"' "$dir/masked.events.jsonl") (expected $(( reps * 16 )))"
echo "bench: plugin $(stat -c %s target/tonemask-plugin.wasm) bytes"
TIMEFORMAT="%R s wall, %U s user"
echo "bench: start-up to the first frame, compiled plugin cached: $( { time $T detect "$tiny" >/dev/null 2>&1; } 2>&1 )"
target/release/examples/sessions_per_instance
