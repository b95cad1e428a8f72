#!/usr/bin/env bash
# Builds the talk-off corpus: over an hour of real speech and real music with no DTMF in it,
# from Debian packages, as 8 kHz mono 16-bit WAVs. Deterministic for a given set of package
# versions. Not committed (≈ 70 MB); the conformance suite and its tests read it.
#
#   testdata/talkoff/build.sh [OUTDIR]        (default target/talkoff)
#
# Each file is written twice: OUTDIR/NAME.wav at 8 kHz and OUTDIR/16k/NAME.wav at 16 kHz (both
# resampled from the source, for the narrowband and the wideband talk-off runs).
#
# Speech: espeak-ng (English, German, Italian, Spanish, French; male and female variants) and
# flite (four English voices: kal16, awb, rms, slt) reading fortune-cookie files and licence
# texts. Music: the soundtracks of extremetuxracer and lincity-ng (Ogg Vorbis, via sox).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/talkoff}
pkgs=(espeak-ng flite sox libsox-fmt-all fortunes fortunes-de fortunes-it fortunes-es extremetuxracer-data lincity-ng-data)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "talkoff: installing ${missing[*]}"
    sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    sudo_ apt-get update -qq
    sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
mkdir -p "$out/16k"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# First N characters of a text source, fortune separators and blank runs removed.
text() { sed -e 's/^%$//' "$@" | tr -s ' \n' ' ' | head -c "$chars" || true; }
# convert SOURCE NAME: both rates, peak-normalised to −3 dBFS.
convert() {
    sox -D "$1" -r 8000 -c 1 -b 16 "$out/$2.wav" norm -3
    sox -D "$1" -r 16000 -c 1 -b 16 "$out/16k/$2.wav" norm -3
    echo "talkoff: $2.wav"
}
done_() { [ -f "$out/$1.wav" ] && [ -f "$out/16k/$1.wav" ]; }

chars=6000   # ≈ 6–7 minutes of speech per segment
speak() { # name voice file...
    local name=$1 voice=$2; shift 2
    done_ "$name" && return
    text "$@" > "$tmp/t.txt"
    espeak-ng -v "$voice" -s 165 -f "$tmp/t.txt" -w "$tmp/s.wav"
    convert "$tmp/s.wav" "$name"
}
flite_() { # name voice file...
    local name=$1 voice=$2; shift 2
    done_ "$name" && return
    text "$@" > "$tmp/t.txt"
    flite -voice "$voice" -f "$tmp/t.txt" -o "$tmp/s.wav"
    convert "$tmp/s.wav" "$name"
}
F=/usr/share/games/fortunes
speak speech_en_m en+m3 "$F/literature" "$F/wisdom"
speak speech_en_f en-us+f3 "$F/people" "$F/politics"
speak speech_de_m de "$F/de/anekdoten.u8" "$F/de/bahnhof.u8"
speak speech_de_f de+f2 "$F/de/gedichte.u8" "$F/de/kinderzitate.u8"
speak speech_it it "$F/it/italia.u8" "$F/it/definizioni.u8"
speak speech_es es "$F/es/refranes.fortunes.u8" "$F/es/sabiduria.fortunes.u8"
speak speech_fr fr /usr/share/common-licenses/GPL-3
flite_ speech_flite_kal kal16 "$F/science" "$F/love"
flite_ speech_flite_awb awb "$F/education" "$F/food"
flite_ speech_flite_rms rms "$F/linux" "$F/computers"
flite_ speech_flite_slt slt "$F/medicine" "$F/pets"

for f in /usr/share/games/etr/music/*.ogg /usr/share/games/lincity-ng/music/default/*.ogg; do
    name=music_$(basename "$f" .ogg | tr -c 'A-Za-z0-9_\n-' '_')
    done_ "$name" && continue
    convert "$f" "$name"
done
total=$(for w in "$out"/*.wav; do soxi -D "$w"; done | awk '{ s += $1 } END { printf "%.1f", s / 60 }')
echo "talkoff: $(ls "$out"/*.wav | wc -l) files, $total minutes in $out (and the same at 16 kHz in $out/16k)"
