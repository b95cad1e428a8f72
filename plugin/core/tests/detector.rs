//! Detector behaviour against the Q.24 receiver requirements (synthetic tones).

mod common;

use common::*;
use tonemask_core::detector::{detect_all, Detector, DetectorConfig, Transition, Twist};

fn digits(samples: &[i16], cfg: &DetectorConfig) -> String {
    detect_all(8000, cfg, samples)
        .into_iter()
        .filter_map(|t| match t {
            Transition::Ended { digit, .. } => Some(digit.to_char()),
            _ => None,
        })
        .collect()
}

fn one(t: Tone) -> String {
    let mut b = Vec::new();
    push_silence(&mut b, 8000.0, 37.0);
    push_tone(&mut b, 8000.0, &t);
    push_silence(&mut b, 8000.0, 100.0);
    digits(&to_i16(&b), &DetectorConfig::default())
}

#[test]
fn decodes_all_sixteen_symbols_in_order() {
    let all = "123A456B789C*0#D";
    let s = sequence(all, 20.0, 50.0, 50.0, -4.0);
    assert_eq!(digits(&s, &DetectorConfig::default()), all);
}

#[test]
fn operates_from_minus_3_to_minus_40_dbm0() {
    for level in [-3.0, -10.0, -20.0, -30.0, -40.0] {
        let s = sequence("159D", 20.0, 50.0, 50.0, level);
        assert_eq!(
            digits(&s, &DetectorConfig::default()),
            "159D",
            "at {level} dBm0"
        );
    }
}

#[test]
fn ignores_tones_at_minus_55_dbm0() {
    let s = sequence("159D", 20.0, 100.0, 50.0, -55.0);
    assert_eq!(digits(&s, &DetectorConfig::default()), "");
}

#[test]
fn operates_within_1_5_percent_on_either_tone() {
    for d in "147*2580369#ABCD".chars() {
        for (rd, cd) in [
            (0.015, 0.0),
            (-0.015, 0.0),
            (0.0, 0.015),
            (0.0, -0.015),
            (0.015, -0.015),
            (-0.015, 0.015),
        ] {
            assert_eq!(
                one(Tone {
                    row_dev: rd,
                    col_dev: cd,
                    ..Tone::new(d, 50.0)
                }),
                d.to_string(),
                "{d} {rd} {cd}"
            );
        }
    }
}

#[test]
fn refuses_tones_beyond_3_5_percent() {
    for d in "147*2580369#ABCD".chars() {
        for (rd, cd) in [
            (0.035, 0.0),
            (-0.035, 0.0),
            (0.0, 0.035),
            (0.0, -0.035),
            (0.035, 0.035),
            (-0.035, -0.035),
        ] {
            assert_eq!(
                one(Tone {
                    row_dev: rd,
                    col_dev: cd,
                    ..Tone::new(d, 60.0)
                }),
                "",
                "{d} {rd} {cd}"
            );
        }
    }
}

#[test]
fn twist_limits_are_8_db_normal_and_4_db_reverse() {
    for d in "1D5".chars() {
        assert_eq!(
            one(Tone {
                twist_db: 7.5,
                ..Tone::new(d, 60.0)
            }),
            d.to_string()
        );
        assert_eq!(
            one(Tone {
                twist_db: 9.0,
                ..Tone::new(d, 60.0)
            }),
            ""
        );
        assert_eq!(
            one(Tone {
                twist_db: -3.5,
                ..Tone::new(d, 60.0)
            }),
            d.to_string()
        );
        assert_eq!(
            one(Tone {
                twist_db: -5.0,
                ..Tone::new(d, 60.0)
            }),
            ""
        );
    }
}

/// Q.24: the limit itself must operate. Every symbol at exactly each preset's normal and
/// reverse limit (the stronger tone at −10 dBm0) is reported; 1 dB past it, none is.
#[test]
fn every_symbol_at_exactly_each_presets_twist_limit_is_reported() {
    for twist in [
        Twist::ATT,
        Twist::ETSI,
        Twist::NTT,
        Twist::AUSTRALIA,
        Twist::BRAZIL,
    ] {
        let cfg = DetectorConfig { twist };
        for (sign, limit) in [(1.0f32, twist.normal_db), (-1.0, twist.reverse_db)] {
            for (extra, expect_all) in [(0.0f32, true), (1.0, false)] {
                let mut b = Vec::new();
                push_silence(&mut b, 8000.0, 37.0);
                for d in "123A456B789C*0#D".chars() {
                    let k = limit + extra;
                    push_tone(
                        &mut b,
                        8000.0,
                        &Tone {
                            twist_db: sign * k,
                            dbm0: if sign < 0.0 { -10.0 - k } else { -10.0 },
                            ..Tone::new(d, 60.0)
                        },
                    );
                    push_silence(&mut b, 8000.0, 60.0);
                }
                let got = digits(&to_i16(&b), &cfg);
                if expect_all {
                    assert_eq!(got, "123A456B789C*0#D", "{twist:?} {sign:+} at the limit");
                } else {
                    assert_eq!(got, "", "{twist:?} {sign:+} 1 dB past the limit");
                }
            }
        }
    }
}

/// Where the twist and frequency clauses meet (twist near the limit, both tones over 1 % off),
/// a pair must last longer before it is a digit: for a moment, two notes of music look like
/// that. The same pair held for 60 ms is reported, and so is a 32 ms pair off only one way.
#[test]
fn a_pair_at_both_the_twist_and_the_frequency_limit_needs_a_longer_tone() {
    let run = |ms: f32, dev: f32, twist_db: f32, offset: usize| {
        let mut b = Vec::new();
        push_silence(&mut b, 8000.0, 20.0 + offset as f32 / 8.0);
        push_tone(
            &mut b,
            8000.0,
            &Tone {
                row_dev: dev,
                col_dev: -dev,
                twist_db,
                ..Tone::new('4', ms)
            },
        );
        push_silence(&mut b, 8000.0, 80.0);
        digits(&to_i16(&b), &DetectorConfig::default())
    };
    for offset in (0..51).step_by(5) {
        assert_eq!(
            run(32.0, 0.013, 7.5, offset),
            "",
            "corner, 32 ms, offset {offset}"
        );
        assert_eq!(
            run(60.0, 0.013, 7.5, offset),
            "4",
            "corner, 60 ms, offset {offset}"
        );
        assert_eq!(
            run(32.0, 0.0, 7.5, offset),
            "4",
            "twist only, 32 ms, offset {offset}"
        );
        assert_eq!(
            run(32.0, 0.013, 0.0, offset),
            "4",
            "frequency only, 32 ms, offset {offset}"
        );
    }
}

fn masked_spans(samples: &[i16]) -> usize {
    detect_all(8000, &DetectorConfig::default(), samples)
        .into_iter()
        .filter(|t| matches!(t, Transition::MaskUntil { .. }))
        .count()
}

/// A whistle: one tone and its second harmonic, the harmonic on a column (683 Hz, 2 % below
/// 697 Hz, and 1366 Hz). Within the configured twist it is masked (spandsp decodes such pairs
/// at 6 dB, and at 3 % off with no twist); 10 dB down, as a whistle's harmonic often is, it is
/// not — while two independent tones as far off and as unequal still are (a receiver
/// configured for 10 dB decodes them).
#[test]
fn a_tone_and_its_own_harmonic_is_masked_only_within_the_configured_twist() {
    let pair = |row_dev: f32, col_dev: f32, twist_db: f32| {
        let mut b = Vec::new();
        push_silence(&mut b, 8000.0, 37.0);
        push_tone(
            &mut b,
            8000.0,
            &Tone {
                row_dev,
                col_dev,
                twist_db,
                ..Tone::new('2', 60.0)
            },
        );
        push_silence(&mut b, 8000.0, 100.0);
        masked_spans(&to_i16(&b))
    };
    let harmonic = |row_dev: f32| 2.0 * 697.0 * (1.0 + row_dev) / 1336.0 - 1.0;
    assert_eq!(
        pair(-0.02, harmonic(-0.02), 6.0),
        1,
        "harmonic within 8 dB: masked"
    );
    assert_eq!(
        pair(-0.03, harmonic(-0.03), 0.0),
        1,
        "3 % off, level: masked"
    );
    let harmonic = harmonic(-0.03);
    assert_eq!(
        pair(-0.03, harmonic, 10.0),
        0,
        "harmonic 10 dB down: not masked"
    );
    assert_eq!(pair(-0.03, 0.0, 10.0), 1, "two tones 10 dB apart: masked");
}

/// A voice's partial gliding through a key's row tone, outside the strict region (from 4.8 %
/// to 2.2 % below 697 Hz, 0.6 % per 6.4 ms window, over a steady 1336 Hz): the looser
/// receivers' region holds it for ≈ 28 ms, but a key's tones do not move — so it is not
/// masked, while a row tone held still 3 % low for as long is (spandsp decodes such tones).
#[test]
fn a_pair_that_glides_is_not_masked_while_one_held_still_is() {
    let pair = |start_dev: f32, dev_per_s: f32, ms: f32| {
        let mut b = Vec::new();
        push_silence(&mut b, 8000.0, 37.0);
        let a = tonemask_core::detector::tones::amplitude_of_dbm0(-10.0);
        let (mut pr, mut pc) = (0.0f32, 0.0f32);
        for i in 0..(ms * 8.0) as usize {
            let row = 697.0 * (1.0 + start_dev + dev_per_s * i as f32 / 8000.0);
            pr += 2.0 * std::f32::consts::PI * row / 8000.0;
            pc += 2.0 * std::f32::consts::PI * 1336.0 / 8000.0;
            b.push(a * (pr.sin() + pc.sin()));
        }
        push_silence(&mut b, 8000.0, 100.0);
        masked_spans(&to_i16(&b))
    };
    let per_window = 0.006 / (51.0 / 8000.0);
    assert_eq!(pair(-0.048, per_window, 28.0), 0, "gliding: not masked");
    assert_eq!(pair(-0.03, 0.0, 28.0), 1, "held still: masked");
}

/// Two notes, one swelling through the other's level (a row tone 2.5 % low at −10 dBm0, and
/// 1336 Hz rising from −26 to −2 dBm0 over 40 ms, ≈ 3.8 dB per 6.4 ms window): the looser
/// receivers' twist limits hold it for ≈ 30 ms, but a key's two tones keep their level ratio
/// — so it is not masked, while the same pair held at any level it passes through is.
#[test]
fn a_pair_whose_twist_sweeps_is_not_masked_while_one_held_is() {
    let pair = |from_dbm0: f32, to_dbm0: f32| {
        let mut b = Vec::new();
        push_silence(&mut b, 8000.0, 37.0);
        let amp = tonemask_core::detector::tones::amplitude_of_dbm0;
        let n = 40 * 8;
        let (wr, wc) = (697.0 * 0.975, 1336.0);
        for i in 0..n {
            let t = i as f32 / 8000.0;
            let col_dbm0 = from_dbm0 + (to_dbm0 - from_dbm0) * i as f32 / n as f32;
            let tau = 2.0 * std::f32::consts::PI;
            b.push(amp(-10.0) * (tau * wr * t).sin() + amp(col_dbm0) * (tau * wc * t).sin());
        }
        push_silence(&mut b, 8000.0, 100.0);
        masked_spans(&to_i16(&b))
    };
    assert_eq!(pair(-26.0, -2.0), 0, "swelling: not masked");
    for held in [-20.0, -14.0, -10.0, -6.0] {
        assert_eq!(pair(held, held), 1, "held at {held} dBm0: masked");
    }
}

#[test]
fn twist_limits_follow_configuration() {
    let cfg = DetectorConfig { twist: Twist::ETSI };
    let mut b = Vec::new();
    push_tone(
        &mut b,
        8000.0,
        &Tone {
            twist_db: -5.5,
            ..Tone::new('5', 60.0)
        },
    );
    push_silence(&mut b, 8000.0, 100.0);
    assert_eq!(digits(&to_i16(&b), &cfg), "5");
    assert_eq!(digits(&to_i16(&b), &DetectorConfig::default()), "");
}

#[test]
fn detects_40_ms_tones_and_rejects_20_ms_at_any_alignment() {
    for offset in 0..51 {
        let mut b = Vec::new();
        push_silence(&mut b, 8000.0, 20.0 + offset as f32 / 8.0);
        push_tone(&mut b, 8000.0, &Tone::new('8', 40.0));
        push_silence(&mut b, 8000.0, 60.0);
        push_tone(&mut b, 8000.0, &Tone::new('3', 20.0));
        push_silence(&mut b, 8000.0, 60.0);
        assert_eq!(
            digits(&to_i16(&b), &DetectorConfig::default()),
            "8",
            "offset {offset}"
        );
    }
}

#[test]
fn ten_digits_per_second_with_40_ms_pauses() {
    let s = sequence("4111111111111111", 10.0, 53.0, 40.0, -10.0);
    assert_eq!(digits(&s, &DetectorConfig::default()), "4111111111111111");
}

#[test]
fn bridges_a_10_ms_dropout() {
    for offset in 0..51 {
        let mut b = Vec::new();
        push_silence(&mut b, 8000.0, 20.0 + offset as f32 / 8.0);
        push_tone(&mut b, 8000.0, &Tone::new('7', 50.0));
        push_silence(&mut b, 8000.0, 10.0);
        push_tone(&mut b, 8000.0, &Tone::new('7', 50.0));
        push_silence(&mut b, 8000.0, 60.0);
        assert_eq!(
            digits(&to_i16(&b), &DetectorConfig::default()),
            "7",
            "offset {offset}"
        );
    }
}

#[test]
fn reported_edges_cover_the_tone() {
    let mut worst = 0;
    for offset in 0..51 {
        let lead = 30.0 + offset as f32 / 8.0;
        let mut b = Vec::new();
        push_silence(&mut b, 8000.0, lead);
        push_tone(&mut b, 8000.0, &Tone::new('9', 70.0));
        push_silence(&mut b, 8000.0, 80.0);
        let on = (lead * 8.0).round() as u64;
        let off = on + 560;
        let t = detect_all(8000, &DetectorConfig::default(), &to_i16(&b));
        let Some(&Transition::Ended { start, end, .. }) =
            t.iter().find(|t| matches!(t, Transition::Ended { .. }))
        else {
            panic!("no digit at offset {offset}");
        };
        // Covers the tone to within 5 ms (Q.24's residual-fragment bound; in practice a few
        // samples at < −26 dB), and reaches at most two half-blocks beyond it.
        assert!(
            start <= on + 40 && start + 102 >= on,
            "start {start} vs onset {on}"
        );
        assert!(
            end + 40 >= off && end <= off + 102,
            "end {end} vs offset {off}"
        );
        worst = worst
            .max(start.saturating_sub(on))
            .max(off.saturating_sub(end));
    }
    assert!(
        worst <= 8,
        "up to {worst} tone samples outside the reported window"
    );
}

#[test]
fn detects_digits_in_white_noise_at_12_db_snr() {
    let s = sequence("0123456789", 50.0, 60.0, 60.0, -10.0);
    // S/N relative to the pair's total power (two tones at −10 dBm0 each).
    let pair_power = 2.0 * tonemask_core::detector::tones::power_of_dbm0(-10.0);
    let rms = (pair_power / 10f32.powf(1.2)).sqrt();
    let n = noise(s.len(), rms, 7);
    let mixed: Vec<f32> = s.iter().zip(n).map(|(&a, b)| f32::from(a) + b).collect();
    assert_eq!(
        digits(&to_i16(&mixed), &DetectorConfig::default()),
        "0123456789"
    );
}

#[test]
fn noise_alone_gives_no_digit() {
    let n = noise(8000 * 30, 3000.0, 11);
    assert_eq!(digits(&to_i16(&n), &DetectorConfig::default()), "");
}

/// Five digits between silences, each longer and weaker than the one before (−8 to
/// −32 dBm0), at `rate`.
fn five_digits(rate: u32) -> Vec<f32> {
    let mut b = Vec::new();
    push_silence(&mut b, rate as f32, 13.0);
    for (i, d) in "1593#".chars().enumerate() {
        let mut t = Tone::new(d, 45.0 + 10.0 * i as f32);
        t.dbm0 = -8.0 - 6.0 * i as f32;
        push_tone(&mut b, rate as f32, &t);
        push_silence(&mut b, rate as f32, 41.0 + 7.0 * i as f32);
    }
    b
}

/// Push sizes, cycled: a sample at a time, odd sizes that split half-blocks, 20 and 40 ms
/// frames, a second at once (whole half-blocks are filtered side by side), half-block-ish.
const PIECES: [&[usize]; 6] = [
    &[1],
    &[7, 50, 103, 1],
    &[160],
    &[320],
    &[8000],
    &[51, 52, 204],
];

/// The transitions of a detector at `rate` fed `len` units in pieces of `sizes` (cycled),
/// each piece by `push`.
fn transitions_in_pieces(
    rate: u32,
    len: usize,
    sizes: &[usize],
    mut push: impl FnMut(&mut Detector, std::ops::Range<usize>),
) -> Vec<Transition> {
    let mut det = Detector::new(rate, &DetectorConfig::default(), 480);
    let (mut at, mut i) = (0, 0);
    while at < len {
        let n = sizes[i % sizes.len()].min(len - at);
        push(&mut det, at..at + n);
        at += n;
        i += 1;
    }
    det.finish();
    std::iter::from_fn(|| det.poll()).collect()
}

fn ended(transitions: &[Transition]) -> usize {
    transitions
        .iter()
        .filter(|t| matches!(t, Transition::Ended { .. }))
        .count()
}

/// However the audio is cut into pushes, the detector reports exactly the same transitions,
/// at 8 and 16 kHz.
#[test]
fn transitions_do_not_depend_on_how_the_audio_is_pushed() {
    for rate in [8000u32, 16000] {
        let s = to_i16(&five_digits(rate));
        let run =
            |sizes: &[usize]| transitions_in_pieces(rate, s.len(), sizes, |d, r| d.push(&s[r]));
        let whole = run(&[s.len()]);
        assert_eq!(ended(&whole), 5, "{whole:?}");
        for sizes in PIECES {
            assert_eq!(run(sizes), whole, "{rate} Hz, pushes of {sizes:?}");
        }
    }
}

/// G.711 codes pushed as they are ([`Detector::push_codes`]: each code's value read from a
/// table as the filters go) give exactly the transitions of the same codes decoded and pushed
/// as samples, however they are cut, for both laws at 8 and 16 kHz.
#[test]
fn codes_give_exactly_what_their_decoded_samples_give() {
    use tonemask_core::g711::{self, Law};
    for rate in [8000u32, 16000] {
        let b = five_digits(rate);
        let noisy: Vec<f32> = b
            .iter()
            .zip(noise(b.len(), 60.0, 5))
            .map(|(s, n)| s + n)
            .collect();
        let s = to_i16(&noisy);
        type Encode = fn(i16) -> u8;
        type Decode = fn(u8) -> i16;
        let laws: [(Law, Encode, Decode); 2] = [
            (Law::Mu, g711::linear_to_ulaw, g711::ulaw_to_linear),
            (Law::A, g711::linear_to_alaw, g711::alaw_to_linear),
        ];
        for (law, encode, decode) in laws {
            let codes: Vec<u8> = s.iter().map(|&v| encode(v)).collect();
            let decoded: Vec<i16> = codes.iter().map(|&c| decode(c)).collect();
            let want = transitions_in_pieces(rate, s.len(), &[160], |d, r| d.push(&decoded[r]));
            assert_eq!(ended(&want), 5, "{law:?} at {rate} Hz: {want:?}");
            for sizes in PIECES {
                let got = transitions_in_pieces(rate, s.len(), sizes, |d, r| {
                    d.push_codes(&codes[r], law);
                });
                assert_eq!(got, want, "{law:?} at {rate} Hz, pushes of {sizes:?}");
            }
        }
    }
}
