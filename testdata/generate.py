#!/usr/bin/env python3
"""Generates tonemask's test calls and G.711 reference tables. Deterministic; its outputs are
committed, so tests never need the tools it uses.

Needs: python3 (stdlib only), espeak-ng and sox (Debian: apt-get install espeak-ng sox).
Run from anywhere:  python3 testdata/generate.py   (only the card-capture calls: ... captures)

Calls (testdata/calls/NAME.wav + NAME.json manifest):
  * DTMF digit strings at several levels (-3 ... -30 dBm0 per tone), test card numbers (never
    real PANs), 10 digits/s, twist, white noise;
  * speech from a real TTS (espeak-ng, English, German, French) with no DTMF: must give no digit;
  * speech followed by a typed test card number with human timing;
  * card captures: the caller types card, expiry and code with corrections (`*`), an invalid
    card then a valid one; the manifest's `card_capture` says when the agent starts the
    capture and which card the processor must open;
  * u-law and A-law copies made by sox (an independent G.711 implementation).
G.711 tables (testdata/g711/): decoding of all 256 codes (sox, checked against Python's
audioop) and encoding of all 65 536 16-bit values (audioop), for u-law and A-law.
Needs Python <= 3.12 for audioop.
"""
import json, math, os, random, struct, subprocess, sys, tempfile, wave

HERE = os.path.dirname(os.path.abspath(__file__))
CALLS = os.path.join(HERE, "calls")
G711 = os.path.join(HERE, "g711")
RATE = 8000
# Peak amplitude of a 0 dBm0 sine in 16-bit linear (a full-scale sine is +3.14 dBm0).
DBM0 = 32767 / 10 ** (3.14 / 20)
ROWS = [697, 770, 852, 941]
COLS = [1209, 1336, 1477, 1633]
KEYS = ["123A", "456B", "789C", "*0#D"]


def tone_of(d):
    for r, row in enumerate(KEYS):
        if d in row:
            return ROWS[r], COLS[row.index(d)]
    raise ValueError(d)


class Call:
    def __init__(self):
        self.samples = []
        self.tones = []

    def ms(self):
        return len(self.samples) * 1000 / RATE

    def silence(self, ms):
        self.samples += [0.0] * round(ms * RATE / 1000)

    def digit(self, d, ms, dbm0, twist_db=0.0):
        fr, fc = tone_of(d)
        ar, ac = DBM0 * 10 ** (dbm0 / 20), DBM0 * 10 ** ((dbm0 - twist_db) / 20)
        start = len(self.samples)
        n = round(ms * RATE / 1000)
        self.samples += [ar * math.sin(2 * math.pi * fr * i / RATE) + ac * math.sin(2 * math.pi * fc * i / RATE) for i in range(n)]
        self.tones.append({"digit": d, "start_ms": start * 1000 // RATE, "end_ms": (start + n) * 1000 // RATE})

    def digits(self, s, on_ms, off_ms, dbm0, twist_db=0.0):
        for d in s:
            self.digit(d, on_ms, dbm0, twist_db)
            self.silence(off_ms)

    def speech(self, path):
        with wave.open(path) as w:
            assert w.getframerate() == RATE and w.getsampwidth() == 2 and w.getnchannels() == 1
            raw = w.readframes(w.getnframes())
        self.samples += [float(v) for v in struct.unpack("<%dh" % (len(raw) // 2), raw)]

    def add_noise(self, snr_db, dbm0, seed):
        # S/N relative to one digit's two tones at dbm0 each.
        signal = 2 * (DBM0 * 10 ** (dbm0 / 20)) ** 2 / 2
        sigma = math.sqrt(signal / 10 ** (snr_db / 10))
        rng = random.Random(seed)
        self.samples = [s + rng.gauss(0.0, sigma) for s in self.samples]

    def write(self, name, digits, description):
        pcm = [max(-32768, min(32767, round(v))) for v in self.samples]
        path = os.path.join(CALLS, name + ".wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(struct.pack("<%dh" % len(pcm), *pcm))
        manifest(name, name + ".wav", digits, description, self.tones)
        return path


def manifest(name, audio, digits, description, tones):
    with open(os.path.join(CALLS, name + ".json"), "w") as f:
        json.dump({"audio": audio, "digits": digits, "description": description, "tones": tones}, f, indent=1)
        f.write("\n")


def sox(*args):
    subprocess.run(["sox", "-D", *args], check=True)


def g711_copy(name, src_name, law, digits, description, tones):
    enc = {"ulaw": "u-law", "alaw": "a-law"}[law]
    sox(os.path.join(CALLS, src_name + ".wav"), "-e", enc, "-b", "8", os.path.join(CALLS, name + ".wav"))
    manifest(name, name + ".wav", digits, description + f" ({law}, converted by sox)", tones)


def tts(text, voice, tmp):
    raw = os.path.join(tmp, "tts.wav")
    out = os.path.join(tmp, "tts8k.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "155", "-w", raw, text], check=True)
    sox(raw, "-r", str(RATE), "-b", "16", "-c", "1", out, "norm", "-6")
    return out


SPEECH = {
    "en": "Thank you for calling. To pay your bill, please have your card ready. "
          "I will now transfer you to the secure payment line. The amount due is one hundred "
          "and forty two dollars and fifty cents. Please enter the number when you hear the tone.",
    "de": "Vielen Dank für Ihren Anruf. Bitte halten Sie Ihre Karte bereit. Der offene Betrag "
          "beträgt zweiundvierzig Euro. Geben Sie jetzt bitte die Kartennummer ein.",
    "fr": "Merci de votre appel. Veuillez préparer votre carte bancaire. Le montant dû est de "
          "quarante deux euros. Veuillez saisir le numéro de votre carte maintenant.",
}


def g711_tables():
    """Decoding tables from sox, encoding tables from Python's audioop (the CCITT/Sun code that
    truncates 16-bit input to 14/13 bits as G.711 and G.191 do; sox instead rounds, which moves
    508 of the 65 536 µ-law decision points by one LSB). The two decoders must agree."""
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # Python <= 3.12
    lin_bytes = struct.pack("<65536h", *range(-32768, 32768))
    with tempfile.TemporaryDirectory() as tmp:
        for law, enc in [("ulaw", "u-law"), ("alaw", "a-law")]:
            codes = os.path.join(tmp, "codes.raw")
            with open(codes, "wb") as f:
                f.write(bytes(range(256)))
            dec = os.path.join(G711, f"{law}_decode.s16le")
            sox("-t", "raw", "-r", "8000", "-e", enc, "-b", "8", "-c", "1", codes,
                "-t", "raw", "-e", "signed", "-b", "16", "-L", dec)
            back = audioop.ulaw2lin(bytes(range(256)), 2) if law == "ulaw" else audioop.alaw2lin(bytes(range(256)), 2)
            assert back == open(dec, "rb").read(), f"sox and audioop disagree on {law} decoding"
            ref = audioop.lin2ulaw(lin_bytes, 2) if law == "ulaw" else audioop.lin2alaw(lin_bytes, 2)
            with open(os.path.join(G711, f"{law}_encode.u8"), "wb") as f:
                f.write(ref)
            print(f"g711: {law}: decoders of sox and audioop agree on all 256 codes; encoder table from audioop")


def typed(c, rng, keys):
    """Keys pressed with human timing: uneven tones, levels, twist and pauses; a space is a
    longer pause (the caller reading the card)."""
    for d in keys:
        if d == " ":
            c.silence(rng.randint(600, 1400))
            continue
        c.digit(d, rng.randint(70, 160), rng.uniform(-16, -6), twist_db=rng.uniform(0, 3))
        c.silence(rng.randint(120, 450))


# Card captures: the agent starts a capture at `at_ms`, then the caller types each field with
# mistakes and corrections. `card` is what the processor must open (PAN;MMYY;CODE).
CAPTURES = [
    ("capture_card_corrected", "a slip after five digits cleared with *, the card ended with #, expiry and code",
     "41119* 4111111111111111# 0829 737", "4111111111111111;0829;737"),
    ("capture_invalid_then_valid", "a card failing the Luhn check, then another card (16 digits, no #), expiry and code",
     "4111111111111112# 5555555555554444 1230 123", "5555555555554444;1230;123"),
]


def capture_calls():
    with tempfile.TemporaryDirectory() as tmp:
        for name, what, keys, card in CAPTURES:
            rng = random.Random(name)
            c = Call(); c.silence(200)
            c.speech(tts("I will start the secure payment now. Please type your card number, then the hash key.", "en-us", tmp))
            at_ms = round(c.ms()) + 300
            c.silence(900)
            typed(c, rng, keys)
            c.speech(tts("Thank you, that went through.", "en-us", tmp)); c.silence(200)
            digits = keys.replace(" ", "")
            c.write(name, digits, f"English TTS agent, then a card capture: {what}")
            path = os.path.join(CALLS, name + ".json")
            m = json.load(open(path))
            m["card_capture"] = {"at_ms": at_ms, "card": card}
            with open(path, "w") as f:
                json.dump(m, f, indent=1)
                f.write("\n")


def main():
    if sys.argv[1:] == ["captures"]:
        # Only the card-capture calls (the others stay as they are).
        return capture_calls()
    os.makedirs(CALLS, exist_ok=True)
    os.makedirs(G711, exist_ok=True)
    g711_tables()
    for f in os.listdir(CALLS):
        os.remove(os.path.join(CALLS, f))

    c = Call(); c.silence(300); c.digits("123A456B789C*0#D", 60, 60, -10); c.silence(200)
    c.write("all16_-10dbm0", "123A456B789C*0#D", "all 16 symbols, 60 ms on / 60 ms off, -10 dBm0 per tone")

    cards = [("visa", "4111111111111111", -3), ("mastercard", "5555555555554444", -20), ("amex", "378282246310005", -30)]
    for brand, pan, level in cards:
        c = Call(); c.silence(400); c.digits(pan, 80, 120, level); c.silence(300)
        c.write(f"card_{brand}_{level}dbm0", pan, f"test card number ({brand}), 80/120 ms, {level} dBm0 per tone")

    c = Call(); c.silence(200); c.digits("0123456789", 50, 43, -12); c.silence(200)
    c.write("fast_10cps", "0123456789", "10 digits per second: 50 ms tones, 43 ms pauses (Q.24 signalling speed)")

    c = Call(); c.silence(200); c.digits("2580", 70, 70, -8, twist_db=6.0); c.digits("*#", 70, 70, -8, twist_db=-3.0); c.silence(200)
    c.write("twist_6db_normal_3db_reverse", "2580*#", "2580 with the high tone 6 dB weaker, *# with it 3 dB stronger")

    c = Call(); c.silence(300); c.digits("4012888888881881", 70, 90, -15); c.silence(300); c.add_noise(18, -15, 1)
    c.write("card_noise_18db", "4012888888881881", "test card number at -15 dBm0 in white noise, S/N 18 dB")

    with tempfile.TemporaryDirectory() as tmp:
        for lang in ["en", "de", "fr"]:
            c = Call(); c.silence(100); c.speech(tts(SPEECH[lang], lang, tmp)); c.silence(100)
            c.write(f"speech_only_{lang}", "", f"espeak-ng speech ({lang}), no DTMF: must give no digit")

        # Speech, then a card number typed with human timing, then more speech.
        rng = random.Random(4242)
        c = Call(); c.silence(200); c.speech(tts(SPEECH["en"], "en-us", tmp)); c.silence(700)
        pan = "5105105105105100"
        for d in pan:
            c.digit(d, rng.randint(70, 160), rng.uniform(-14, -6), twist_db=rng.uniform(0, 3))
            c.silence(rng.randint(120, 450))
        c.speech(tts("Thank you. Your payment is being processed.", "en-us", tmp)); c.silence(200)
        c.write("speech_then_card", pan, "English TTS speech, then a test card typed with human timing, then speech")

    for src, digits in [("all16_-10dbm0", "123A456B789C*0#D"), ("card_visa_-3dbm0", "4111111111111111"), ("speech_then_card", "5105105105105100")]:
        m = json.load(open(os.path.join(CALLS, src + ".json")))
        for law in ["ulaw", "alaw"]:
            g711_copy(f"{src}_{law}", src, law, digits, m["description"], m["tones"])
    capture_calls()
    print("testdata: wrote", len(os.listdir(CALLS)) // 2, "calls to", CALLS)


if __name__ == "__main__":
    sys.exit(main())
