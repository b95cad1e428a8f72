//! The `card` target: a card capture inside a call's reporter, driven step by step.

use tonemask_core::{Key, Verifier};

/// A card capture driven by the input: the first byte picks how digits leave outside the
/// capture (clear, hidden, sealed); then each pair of bytes is one step — a key press after
/// a pause, time passing, a field asked again, a cancel (or a new capture when none runs).
/// Invariants: no capture record shows more of a field than the card's last four digits,
/// and every signed line verifies, in order, without a gap, the numbering closed whole.
pub fn card(data: &[u8]) {
    use tonemask_core::report::Reporter;
    use tonemask_core::{DigitVisibility, Signer};
    let Some((&first, steps)) = data.split_first() else {
        return;
    };
    let processor = card_processor();
    let visibility = match first % 3 {
        0 => DigitVisibility::Clear,
        1 => DigitVisibility::Hidden,
        _ => DigitVisibility::Sealed {
            processor: processor.clone(),
            entropy: zeroize::Zeroizing::new([7; 32]),
        },
    };
    let Ok(key) = Key::new("k1", &[0x42; 32]) else {
        return;
    };
    let Ok(signer) = Signer::new(key.clone(), [1; 16]) else {
        return;
    };
    let mut r = Reporter::new("call".into(), Some(signer), visibility);
    let mut run = CardRun {
        now: 0,
        captures: 0,
        lines: r.start_record().map(String::from).into_iter().collect(),
        processor,
    };
    let _ = r.start_capture(run.request(), 0);
    for step in steps.chunks(2) {
        run.step(&mut r, step[0], step.get(1).copied().unwrap_or(0));
        run.collect(&mut r);
    }
    r.finish();
    run.collect(&mut r);
    run.lines.extend(r.end_record().map(String::from));
    let mut v = Verifier::new(vec![key]);
    for l in &run.lines {
        let ok = v.verify(l).expect("every line verifies");
        assert_eq!(ok.gap, None, "in order, without a gap");
        assert!(!ok.broken_chain, "each line links to the one before");
    }
    assert!(v.finish().is_empty(), "the numbering is closed whole");
}

/// The processor key the `card` target seals to.
fn card_processor() -> tonemask_core::card::ProcessorKey {
    tonemask_core::card::ProcessorKey {
        kid: "proc".into(),
        public: tonemask_core::card::seal::keypair(&[9; 32]).1,
    }
}

/// The `card` target's state between steps.
struct CardRun {
    now: u64,
    captures: u64,
    lines: Vec<String>,
    processor: tonemask_core::card::ProcessorKey,
}

impl CardRun {
    fn request(&self) -> tonemask_core::card::CaptureRequest {
        use tonemask_core::card::{CaptureConfig, CaptureRequest, YearMonth};
        CaptureRequest {
            id: format!("cap-{}", self.captures),
            config: CaptureConfig {
                field_timeout_ms: 5_000,
                ..CaptureConfig::card(YearMonth {
                    year: 2026,
                    month: 12,
                })
            },
            processor: self.processor.clone(),
            entropy: [3; 32],
            token_key: None,
        }
    }

    /// One step: a press after `arg`·4 ms (ops 0–4), `arg`·100 ms passing (5), a field asked
    /// again (6), a cancel or, when none runs, a new capture (7).
    fn step(&mut self, r: &mut tonemask_core::report::Reporter, op: u8, arg: u8) {
        use tonemask_core::card::Field;
        use tonemask_core::report::Press;
        use tonemask_core::{Digit, Source};
        match op % 8 {
            0..=4 => {
                self.now += u64::from(arg) * 4;
                let keys = b"0123456789*#ABCD";
                if let Some(digit) = Digit::from_char(char::from(keys[usize::from(arg % 16)])) {
                    let press = Press {
                        digit,
                        start_ms: self.now,
                        end_ms: self.now + 60,
                        detected_ms: self.now + 30,
                        source: Source::Inband,
                        leaked_samples: 0,
                    };
                    self.lines.extend(r.report(press).and_then(|e| e.line));
                }
            }
            5 => {
                self.now += u64::from(arg) * 100;
                r.tick(self.now);
            }
            6 if arg >= 128 => {
                // A key on the agent's leg.
                r.agent_key(self.now);
            }
            6 => {
                let field = [Field::CardNumber, Field::Expiry, Field::SecurityCode];
                r.rerequest(field[usize::from(arg % 3)], self.now);
            }
            _ => {
                if !r.cancel_capture() {
                    self.captures += 1;
                    let _ = r.start_capture(self.request(), self.now);
                }
            }
        }
    }

    /// Takes the capture records out, checking that none shows field digits beyond the last
    /// four (the sealed card, its encapsulated key and token are hex, not digits).
    fn collect(&mut self, r: &mut tonemask_core::report::Reporter) {
        while let Some(c) = r.poll_capture() {
            for (name, item) in &c.record.items {
                if let tonemask_core::Item::Text(t) = item {
                    let digits = t.bytes().filter(u8::is_ascii_digit).count();
                    let hex = matches!(*name, "enc" | "sealed" | "token");
                    assert!(hex || digits <= 4, "{name}={t} shows field digits");
                    assert!(*name == "last4" || hex || digits == 0, "{name}={t}");
                }
            }
            self.lines.extend(c.line);
        }
    }
}
