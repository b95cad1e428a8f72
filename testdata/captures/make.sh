#!/usr/bin/env bash
# Records the test calls in this directory: real SIP calls on loopback between two SIPp
# instances (Debian package sip-tester) — a caller that sends DTMF in-band (a WAV with tones,
# streamed as PCMU) or as RFC 4733 telephone-events (SIPp's play_dtmf), and an agent that
# answers and speaks — captured with tshark on the loopback or "any" interface.
#
# Needs root (capturing) and: apt-get install sip-tester tshark espeak-ng sox
# Usage: testdata/captures/make.sh [NAME...]   (rewrites the named captures, or all of them;
# manifests are hand-written)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
calls="$here/../calls"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tool in sipp tshark espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make.sh: $tool is missing (apt-get install sip-tester tshark espeak-ng sox)" >&2; exit 1; }
done

# The agent's voice: a short English sentence, 8 kHz µ-law.
espeak-ng -v en-us -s 150 -w "$work/agent.raw.wav" \
  "Thank you. Please type your card number on the keypad, followed by the hash key."
# SIPp 3.6 streams a file's bytes as they are, header included: give it raw µ-law.
sox "$work/agent.raw.wav" -r 8000 -c 1 -e u-law -t raw "$work/agent.wav"
sox "$calls/card_visa_-3dbm0_ulaw.wav" -t raw "$work/visa.wav"
sox "$calls/speech_then_card_ulaw.wav" -t raw "$work/speech_card.wav"
sox "$calls/capture_card_corrected.wav" -e u-law -t raw "$work/capture_card.wav"

# record NAME IP IFACE FORMAT MEDIA HOLD_MS [AGENT_WAV]
# (SIPp binds audio on -mp and video on -mp + 2: the two sides' ports must not overlap.)
record() {
  local name=$1 ip=$2 iface=$3 format=$4 media=$5 hold=$6 agent_wav=${7:-agent.wav}
  local out="$here/$name.$format"
  sed "s|AGENT_WAV|$agent_wav|" "$here/sipp/agent.xml" > "$work/agent.xml"
  sed -e "s|<exec MEDIA/>|<exec $media/>|" -e "s|HOLD|$hold|" "$here/sipp/caller.xml" > "$work/caller.xml"
  local host=$ip
  [[ $ip == *:* ]] && host="[$ip]"
  rm -f "$out"
  tshark -q -i "$iface" -F "$format" -w "$work/cap" \
    -f "udp and (portrange 5060-5070 or portrange 6000-6013)" 2>"$work/tshark.log" &
  local tshark_pid=$!
  sleep 2
  (cd "$work" && timeout 120 sipp -sf agent.xml -i "$ip" -p 5070 -mi "$ip" -mp 6010 -m 1 \
      -trace_err -nostdin >"$work/agent.log" 2>&1) &
  local agent_pid=$!
  sleep 1
  (cd "$work" && timeout 120 sipp "$host:5070" -sf caller.xml -i "$ip" -p 5060 -mi "$ip" -mp 6000 \
      -s agent -m 1 -trace_err -nostdin >"$work/caller.log" 2>&1) \
    || { echo "make.sh: $name: the caller failed"; cat "$work/caller.log"; exit 1; }
  wait "$agent_pid" || { echo "make.sh: $name: the agent failed"; cat "$work/agent.log"; exit 1; }
  sleep 1
  kill -INT "$tshark_pid"; wait "$tshark_pid" || true
  mv "$work/cap" "$out"
  echo "make.sh: $name.$format: $(tshark -r "$out" 2>/dev/null | wc -l) packets"
}

wanted=("$@")
want() { [ ${#wanted[@]} -eq 0 ] || [[ " ${wanted[*]} " == *" $1 "* ]]; }

want inband_visa_ipv4 && record inband_visa_ipv4 127.0.0.1 lo pcapng 'rtp_stream="visa.wav,1,0"' 4500
want rfc4733_mastercard_any && record rfc4733_mastercard_any 127.0.0.1 any pcap 'play_dtmf="5454545454545454,90"' 6000
want inband_speech_card_ipv6 && record inband_speech_card_ipv6 ::1 lo pcap 'rtp_stream="speech_card.wav,1,0"' 27000
# The agent side plays card tones towards the caller (tone injection); the caller only talks.
want agent_injects_tones_ipv4 && record agent_injects_tones_ipv4 127.0.0.1 lo pcap 'rtp_stream="agent.wav,1,0"' 5000 visa.wav
# Card captures: the caller types card (a slip cleared with *), expiry and code — in-band with
# human timing (capture_card_corrected.wav), and as RFC 4733 telephone-events.
want capture_inband_ipv4 && record capture_inband_ipv4 127.0.0.1 lo pcap 'rtp_stream="capture_card.wav,1,0"' 24500
want capture_rfc4733_ipv4 && record capture_rfc4733_ipv4 127.0.0.1 lo pcap 'play_dtmf="41119*4111111111111111#0829737,120"' 9000
true
