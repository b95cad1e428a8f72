#!/usr/bin/env python3
"""Whistled melodies for the talk-off corpus (no Debian package ships whistling).

    whistle.py SEED SECONDS OUT.wav      (16 kHz mono 16-bit; deterministic per seed)

A whistle is nearly one sine: pitch 600-3000 Hz, notes of 0.1-0.9 s joined by 20-80 ms
glides or short breaths, 4-7 Hz vibrato of 0.3-2 %, a second harmonic 6-30 dB down (strong
on some whistlers) and a third 10 dB below that, and breath noise 25-40 dB down. Some notes sit
exactly on a DTMF tone or on half a column tone (668, 738.5, 816.5 Hz: 4 % below a row tone,
with the second harmonic on the column), which is the hard case for a receiver: one tone and
its harmonic looking like a pair.
"""
import math
import random
import struct
import sys
import wave

RATE = 16000
DTMF = [697, 770, 852, 941, 1209, 1336, 1477, 1633]
HALF_COLUMNS = [f / 2 for f in (1209, 1336, 1477, 1633)]


def main() -> None:
    seed, seconds, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    harmonic = 10 ** (-rng.uniform(6, 30) / 20)
    breath = 10 ** (-rng.uniform(25, 40) / 20)
    total = int(seconds * RATE)
    out = []
    phase = 0.0
    f = rng.uniform(900, 1800)
    while len(out) < total:
        r = rng.random()
        if r < 0.08:
            target = rng.choice(DTMF)
        elif r < 0.25:
            target = rng.choice(HALF_COLUMNS) * rng.uniform(0.99, 1.01)
        else:
            target = math.exp(rng.uniform(math.log(600), math.log(3000)))
        glide = int(rng.uniform(0.02, 0.08) * RATE)
        hold = int(rng.uniform(0.1, 0.9) * RATE)
        vib_rate, vib_depth = rng.uniform(4, 7), rng.uniform(0.003, 0.02)
        amp = rng.uniform(0.3, 0.9)
        start = f
        for n in range(glide + hold):
            if n < glide:
                x = n / glide
                freq = start + (target - start) * (0.5 - 0.5 * math.cos(math.pi * x))
            else:
                t = (n - glide) / RATE
                freq = target * (1 + vib_depth * math.sin(2 * math.pi * vib_rate * t))
            phase += 2 * math.pi * freq / RATE
            env = min(1.0, n / 80, (glide + hold - n) / 80)
            s = amp * env * (
                math.sin(phase) + harmonic * (math.sin(2 * phase) + 0.3 * math.sin(3 * phase))
            )
            out.append(s + breath * rng.gauss(0, 1))
        f = target
        if rng.random() < 0.3:  # a breath between phrases
            out.extend(breath * rng.gauss(0, 1) for _ in range(int(rng.uniform(0.1, 0.5) * RATE)))
    peak = max(abs(v) for v in out) or 1.0
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", int(v / peak * 30000)) for v in out[:total]))


if __name__ == "__main__":
    main()
