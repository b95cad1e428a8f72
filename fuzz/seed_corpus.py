#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets from the recorded test calls.

Needs tshark (to pull the UDP payloads out of testdata/captures). Run from anywhere:
    python3 fuzz/seed_corpus.py
"""
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CAPS = os.path.join(HERE, "..", "testdata", "captures")


def payloads(name, src_port):
    out = subprocess.run(
        ["tshark", "-r", os.path.join(CAPS, name), "-T", "fields", "-e", "udp.srcport", "-e", "udp.payload"],
        check=True, capture_output=True, text=True).stdout
    res = []
    for line in out.splitlines():
        port, _, hexdata = line.partition("\t")
        if port == str(src_port) and hexdata:
            res.append(bytes.fromhex(hexdata.replace(":", "")))
    return res


def rtp(pt, seq, ts, payload, first=0x80, extra=b""):
    return bytes([first, pt]) + struct.pack(">HII", seq, ts, 0x1234) + extra + payload


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


inband = payloads("inband_visa_ipv4.pcapng", 6000)
events = payloads("rfc4733_mastercard_any.pcap", 6000)
event_pkts = [p for p in events if p[1] & 0x7F == 96]
# RED: a redundant telephone-event block (160 ticks back, 4 bytes), then PCMU primary (PT 0).
red_header = struct.pack(">I", (1 << 31) | (96 << 24) | (160 << 10) | 4) + bytes([0])
red = rtp(121, 7, 800, red_header + event_pkts[0][12:16] + inband[5][12:])

# rtp_packet: single packets of every kind, and header edge cases.
for i, p in enumerate([inband[0], inband[40], event_pkts[0], event_pkts[7], events[0], red,
                       rtp(0, 1, 2, b"\xff" * 20, first=0xA0, extra=b"") + b"\x00\x03",
                       rtp(8, 1, 2, b"\xd5" * 8, first=0x92, extra=b"\0\0\0\1\0\0\0\2\xbe\xde\0\1abcd")]):
    write("rtp_packet", f"seed_{i:02}", p)


def stream(cfg, packets):
    return bytes([cfg]) + b"".join(bytes([min(len(p), 255)]) + p[:255] for p in packets)


# rtp_session: the caller's packets of the recorded calls (PCMU), plus RED and events.
write("rtp_session", "inband_visa", stream(0b0001_1000, inband[100:160]))
write("rtp_session", "rfc4733", stream(0b0001_1000, events[:60]))
write("rtp_session", "red", stream(0b0001_1000, [inband[1], red, inband[2]]))

# capture: the first frames of each capture (cut mid-record: a truncated file is valid input).
for name in sorted(os.listdir(CAPS)):
    if name.endswith((".pcap", ".pcapng")):
        with open(os.path.join(CAPS, name), "rb") as f:
            write("capture", name.replace(".", "_"), f.read(5000))
