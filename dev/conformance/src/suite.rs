//! The suite, numbered like the receiver test programs (spandsp's `dtmf_rx_tests`, the Mitel
//! and Bellcore tapes): decode check, recognition bandwidth, twist, dynamic range, guard time,
//! noise, dial tone, talk-off — each through every channel — and masking quality.

use crate::receivers::{score, Found, Receiver, Score, Spandsp, Tonemask, TwistDb};
use crate::signal::{pair_power, Burst, Channel, Signal};
use anyhow::Result;
use serde::Serialize;
use tonemask_core::Twist;

/// The 16 symbols in keypad order.
pub const ALL16: &str = "123A456B789C*0#D";
/// Default twist limits.
pub const ATT: TwistDb = (8.0, 4.0);
/// The administrations' twist presets, by name.
pub const TWIST_PRESETS: [(&str, Twist); 5] = [
    ("Q.24 AT&T", Twist::ATT),
    ("ETSI", Twist::ETSI),
    ("NTT", Twist::NTT),
    ("Australia", Twist::AUSTRALIA),
    ("Brazil", Twist::BRAZIL),
];

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Test number and name.
    pub section: String,
    /// What is measured.
    pub measure: String,
    /// spandsp's result ("n/a" where it cannot take the channel).
    pub spandsp: String,
    /// tonemask's result.
    pub tonemask: String,
    /// What tonemask must reach.
    pub goal: String,
    /// Whether tonemask reached it.
    pub pass: bool,
}

/// Suite settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Fewer repetitions and coarser sweeps (for tests).
    pub quick: bool,
    /// Detect with the native core instead of the plugin (masking still uses the plugin).
    pub native: bool,
}

/// Both receivers and the report being built.
pub struct Suite {
    tm: Tonemask,
    sp: Spandsp,
    settings: Settings,
    /// Rows so far.
    pub rows: Vec<Row>,
    /// Masking measurements so far.
    pub masking: Masking,
    /// Set while running noise cases below 6 dB S/N.
    deep_noise: bool,
}

/// Masking quality, accumulated over every masked case.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Masking {
    /// Cases masked.
    pub cases: usize,
    /// Tones in them.
    pub tones: usize,
    /// Digits spandsp found in the masked output (8 kHz channels).
    pub spandsp_recovered: usize,
    /// Digits tonemask found in the masked output.
    pub tonemask_recovered: usize,
    /// Longest run of tone samples left unchanged inside any tone that spandsp or tonemask
    /// recognised in the original, ms (all cases but noise below 6 dB S/N).
    pub longest_residual_ms: f32,
    /// The same for noise cases below 6 dB S/N, where tones fade in and out of the noise.
    pub longest_residual_deep_noise_ms: f32,
    /// Samples outside the tones.
    pub outside: u64,
    /// Of those, samples the masker changed.
    pub outside_altered: u64,
}

fn fmt_pct(s: &Score) -> String {
    format!("{:.1} % ({} extra)", s.percent(), s.extra)
}

impl Suite {
    /// A suite over the plugin.
    #[must_use]
    pub fn new(tm: Tonemask, settings: Settings) -> Suite {
        Suite {
            tm,
            sp: Spandsp::default(),
            settings,
            rows: Vec::new(),
            masking: Masking::default(),
            deep_noise: false,
        }
    }

    fn reps(&self, full: usize, quick: usize) -> usize {
        if self.settings.quick {
            quick
        } else {
            full
        }
    }

    /// Scores both receivers on a signal (spandsp's is `None` where it cannot take the
    /// channel), and masks it with tonemask's defaults for the masking measurements.
    fn run(&mut self, ch: Channel, sig: &Signal, twist: TwistDb) -> Result<(Option<Score>, Score)> {
        let pcm = sig.pcm();
        let sp = if self.sp.supports(ch) {
            Some(score(
                &sig.truth,
                &self.sp.detect(ch, &pcm, twist)?,
                sig.rate,
            ))
        } else {
            None
        };
        let found = if self.settings.native {
            crate::receivers::TonemaskNative.detect(ch, &pcm, twist)?
        } else {
            self.tm.detect(ch, &pcm, twist)?
        };
        let tm = score(&sig.truth, &found, sig.rate);
        let mut recognised = vec![false; sig.truth.len()];
        for &i in sp.iter().flat_map(|s| &s.matched).chain(&tm.matched) {
            recognised[i] = true;
        }
        self.mask(ch, sig, &recognised)?;
        Ok((sp, tm))
    }

    /// Masks a signal with tonemask's defaults and measures what is left.
    fn mask(&mut self, ch: Channel, sig: &Signal, recognised: &[bool]) -> Result<()> {
        let input = crate::signal::through(ch, &sig.pcm()).1;
        let masked = self.tm.mask(ch, &sig.pcm())?;
        let m = &mut self.masking;
        m.cases += 1;
        m.tones += sig.truth.len();
        if ch.rate() == 8000 {
            m.spandsp_recovered += spandsp_ref::digits(&masked).len();
        }
        let plain = if ch.rate() == 16000 {
            Channel::Pcm16k
        } else {
            Channel::Pcm8
        };
        let again: Vec<Found> = self.tm.detect(plain, &masked, ATT)?;
        self.masking.tonemask_recovered += again.len();
        let m = &mut self.masking;
        let mut inside = vec![false; input.len()];
        for (t, &recognised) in sig.truth.iter().zip(recognised) {
            let mut run = 0usize;
            for i in t.start..t.end.min(input.len()) {
                inside[i] = true;
                // A sample carries tone if it is above the codec's idle values (A-law silence is
                // ±8). Fragments count for tones some receiver recognised in the original.
                if recognised && input[i].unsigned_abs() > 64 && masked[i] == input[i] {
                    run += 1;
                    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
                        eprintln!(
                            "  residual: {} digit {} tone {}..{} sample {i} run {run}",
                            ch.name(),
                            t.digit,
                            t.start,
                            t.end
                        );
                    }
                    let ms = run as f32 * 1000.0 / sig.rate as f32;
                    let slot = if self.deep_noise {
                        &mut m.longest_residual_deep_noise_ms
                    } else {
                        &mut m.longest_residual_ms
                    };
                    *slot = slot.max(ms);
                } else {
                    run = 0;
                }
            }
        }
        for ((a, b), inside) in input.iter().zip(&masked).zip(&inside) {
            if !inside {
                m.outside += 1;
                m.outside_altered += u64::from(a != b);
            }
        }
        Ok(())
    }

    fn push(
        &mut self,
        section: &str,
        measure: String,
        sp: String,
        tm: String,
        goal: &str,
        pass: bool,
    ) {
        self.rows.push(Row {
            section: section.into(),
            measure,
            spandsp: sp,
            tonemask: tm,
            goal: goal.into(),
            pass,
        });
    }

    /// 1. Decode check: every symbol, many repetitions, at several levels, every channel.
    pub fn decode_check(&mut self) -> Result<()> {
        let reps = self.reps(10, 2);
        let mut latency = (Score::default(), Score::default());
        for ch in Channel::ALL {
            let (mut sp, mut tm) = (Score::default(), Score::default());
            for level in [-4.0, -10.0, -20.0, -30.0] {
                let mut sig = Signal::new(ch.rate());
                sig.silence(40.0);
                for _ in 0..reps {
                    for d in ALL16.chars() {
                        sig.burst(&Burst {
                            dbm0: level,
                            ..Burst::new(d, 50.0, 50.0)
                        });
                    }
                }
                let (s, t) = self.run(ch, &sig, ATT)?;
                if let Some(s) = s {
                    sp.add(&s);
                }
                tm.add(&t);
            }
            if ch == Channel::Pcm8 {
                latency = (sp.clone(), tm.clone());
            }
            let sp_text = if self.sp.supports(ch) {
                fmt_pct(&sp)
            } else {
                "n/a".into()
            };
            let pass = tm.all();
            self.push(
                "1 decode check",
                format!(
                    "16 symbols × {reps} at −4/−10/−20/−30 dBm0, 50/50 ms, {}",
                    ch.name()
                ),
                sp_text,
                fmt_pct(&tm),
                "100 %, no extra",
                pass,
            );
        }
        let med = |s: &Score| median(&s.latency_ms);
        self.push(
            "1 decode check",
            "onset → digit reported, median (PCM 8k)".into(),
            format!("{:.1} ms", med(&latency.0)),
            format!("{:.1} ms", med(&latency.1)),
            "≤ 30 ms",
            med(&latency.1) <= 30.0,
        );
        Ok(())
    }

    /// 2. Recognition bandwidth: each tone swept in 0.1 % steps.
    pub fn bandwidth(&mut self) -> Result<()> {
        let step = if self.settings.quick { 0.5 } else { 0.1 };
        let steps = (5.0f32 / step).round() as i32;
        for ch in Channel::ALL {
            let mut worst: [Option<Window>; 2] = [None, None];
            // Row tones with column 1336 Hz, column tones with row 770 Hz, then both at once.
            let cases: Vec<(String, char, f32, f32)> = (0..4)
                .map(|r| {
                    (
                        format!("{} Hz", tonemask_core::detector::tones::ROW_HZ[r]),
                        ['2', '5', '8', '0'][r],
                        1.0,
                        0.0,
                    )
                })
                .chain((0..4).map(|c| {
                    (
                        format!("{} Hz", tonemask_core::detector::tones::COL_HZ[c]),
                        ['4', '5', '6', 'B'][c],
                        0.0,
                        1.0,
                    )
                }))
                .chain(std::iter::once((
                    "both tones of 5".to_string(),
                    '5',
                    1.0,
                    1.0,
                )))
                .collect();
            for (label, digit, rw, cw) in cases {
                let mut sweep = Vec::new();
                for k in -steps..=steps {
                    let dev = k as f32 * step / 100.0;
                    let mut sig = Signal::new(ch.rate());
                    sig.silence(40.0);
                    for _ in 0..3 {
                        sig.burst(&Burst {
                            row_dev: dev * rw,
                            col_dev: dev * cw,
                            ..Burst::new(digit, 60.0, 60.0)
                        });
                    }
                    let (s, t) = self.run(ch, &sig, ATT)?;
                    sweep.push((k as f32 * step, s, t));
                }
                let sp = self
                    .sp
                    .supports(ch)
                    .then(|| Window::of(&sweep, |x| x.1.clone().unwrap_or_default()));
                let tm = Window::of(&sweep, |x| x.2.clone());
                if ch == Channel::Pcm8 {
                    self.push(
                        "2 bandwidth",
                        format!("{label}: operates / any response (%)"),
                        sp.map_or("n/a".into(), |w| w.text()),
                        tm.text(),
                        "operates ±1.5, none beyond ±3.5",
                        tm.meets(),
                    );
                }
                for (slot, w) in worst.iter_mut().zip([sp, Some(tm)]) {
                    if let Some(w) = w {
                        *slot = Some(slot.map_or(w, |o: Window| o.worse(w)));
                    }
                }
            }
            let tm = worst[1].unwrap_or_default();
            self.push(
                "2 bandwidth",
                format!(
                    "worst over all tones, {}: operates / any response (%)",
                    ch.name()
                ),
                worst[0].map_or("n/a".into(), |w| w.text()),
                tm.text(),
                "operates ±1.5, none beyond ±3.5",
                tm.meets(),
            );
        }
        Ok(())
    }

    /// 3. Twist: per administration preset, both directions.
    pub fn twist(&mut self) -> Result<()> {
        let step = if self.settings.quick { 1.0 } else { 0.5 };
        for (name, t) in TWIST_PRESETS {
            let limits = (t.normal_db, t.reverse_db);
            let mut res = [[0.0f32; 2]; 2]; // [receiver][direction]: largest twist always accepted
            let mut over = [[false; 2]; 2]; // any acceptance at limit + 1 dB
            for (dir, sign, limit) in [(0usize, 1.0f32, t.normal_db), (1, -1.0, t.reverse_db)] {
                let mut k = 0.0f32;
                let mut alive = [true, true];
                while k <= 16.0 {
                    let mut sig = Signal::new(8000);
                    sig.silence(40.0);
                    for d in ALL16.chars() {
                        sig.burst(&Burst {
                            twist_db: sign * k,
                            // The stronger tone at −10 dBm0 either way.
                            dbm0: if sign < 0.0 { -10.0 - k } else { -10.0 },
                            ..Burst::new(d, 60.0, 60.0)
                        });
                    }
                    let (s, tm) = self.run(Channel::Pcm8, &sig, limits)?;
                    for (i, sc) in [s.unwrap_or_default(), tm].iter().enumerate() {
                        if alive[i] && sc.all() {
                            res[i][dir] = k;
                        } else {
                            alive[i] = false;
                        }
                        if (k - (limit + 1.0)).abs() < 1e-3 && !sc.none() {
                            over[i][dir] = true;
                        }
                    }
                    k += step;
                }
            }
            let text = |i: usize| format!("{:.1} / {:.1} dB", res[i][0], res[i][1]);
            let pass =
                res[1][0] >= t.normal_db && res[1][1] >= t.reverse_db && !over[1][0] && !over[1][1];
            self.push(
                "3 twist",
                format!(
                    "{name} ({:.0}/{:.0} dB): largest normal / reverse always accepted",
                    t.normal_db, t.reverse_db
                ),
                text(0),
                text(1),
                "all 16 symbols at the limit, none at limit + 1 dB",
                pass,
            );
        }
        Ok(())
    }

    /// 4. Dynamic range: 0 dBm0 down to −60 dBm0 per tone.
    pub fn dynamic_range(&mut self) -> Result<()> {
        for ch in Channel::ALL {
            let mut lowest = [0.0f32; 2];
            let mut alive = [true, true];
            let mut below55 = [false; 2];
            let mut level = 0.0f32;
            while level >= -60.0 {
                let mut sig = Signal::new(ch.rate());
                sig.silence(40.0);
                for d in "1594D".chars() {
                    sig.burst(&Burst {
                        dbm0: level,
                        ..Burst::new(d, 60.0, 60.0)
                    });
                }
                let (s, t) = self.run(ch, &sig, ATT)?;
                for (i, sc) in [s.unwrap_or_default(), t].iter().enumerate() {
                    if alive[i] && sc.all() {
                        lowest[i] = level;
                    } else {
                        alive[i] = false;
                    }
                    if level <= -55.0 && !sc.none() {
                        below55[i] = true;
                    }
                }
                level -= if self.settings.quick { 5.0 } else { 1.0 };
            }
            let text = |i: usize| {
                format!(
                    "0 … {:.0} dBm0{}",
                    lowest[i],
                    if below55[i] {
                        ", responds ≤ −55"
                    } else {
                        ""
                    }
                )
            };
            self.push(
                "4 dynamic range",
                format!("levels always detected (per tone), {}", ch.name()),
                if self.sp.supports(ch) {
                    text(0)
                } else {
                    "n/a".into()
                },
                text(1),
                "0 … ≤ −40 dBm0, nothing ≤ −55",
                lowest[1] <= -40.0 && !below55[1],
            );
        }
        Ok(())
    }

    /// 5. Guard time: tone length, pause length, dropouts, signalling speed.
    pub fn guard_time(&mut self) -> Result<()> {
        // Tone durations.
        let [sp, tm] = self.threshold_sweep(
            10,
            |ms, sig| {
                sig.burst(&Burst::new('8', ms as f32, 80.0));
            },
            Score::all,
            Score::none,
        )?;
        let text = |(never, always): (u32, Option<u32>)| {
            format!(
                "never ≤ {never} ms, always ≥ {} ms",
                always.map_or("–".into(), |v| v.to_string())
            )
        };
        self.push(
            "5 guard time",
            "tone length: never / always detected".into(),
            text(sp),
            text(tm),
            "never ≤ 20 ms, always ≥ 40 ms",
            tm.0 >= 20 && tm.1.is_some_and(|v| v <= 40),
        );

        // Pauses between two presses of the same key.
        let [sp, tm] = self.threshold_sweep(
            0,
            |p, sig| {
                sig.burst(&Burst::new('5', 60.0, p as f32));
                sig.burst(&Burst::new('5', 60.0, 80.0));
            },
            Score::all,
            |sc| sc.detected == 1 && sc.extra == 0,
        )?;
        let text = |(bridged, separate): (u32, Option<u32>)| {
            format!(
                "bridged ≤ {bridged} ms, separate ≥ {} ms",
                separate.map_or("–".into(), |v| v.to_string())
            )
        };
        self.push(
            "5 guard time",
            "pause: dropout bridged / digits separated".into(),
            text(sp),
            text(tm),
            "bridged ≤ 10 ms, separate ≥ 40 ms",
            tm.0 >= 10 && tm.1.is_some_and(|v| v <= 40),
        );

        // 10 digits per second.
        for ch in Channel::ALL {
            let mut sig = Signal::new(ch.rate());
            sig.silence(40.0);
            for i in 0..self.reps(100, 32) {
                sig.burst(&Burst::new(ALL16.as_bytes()[i % 16] as char, 50.0, 43.0));
            }
            let (s, t) = self.run(ch, &sig, ATT)?;
            let pass = t.all();
            self.push(
                "5 guard time",
                format!("10 digits/s (50 ms on, 43 ms off), {}", ch.name()),
                s.map_or("n/a".into(), |s| fmt_pct(&s)),
                fmt_pct(&t),
                "100 %, no extra",
                pass,
            );
        }
        Ok(())
    }

    /// Sweeps a duration from `from` to 60 ms (8 kHz PCM, 8 alignments each): `add(ms, sig)`
    /// appends the case after a 40 ms lead-in. For each receiver, returns the last duration at
    /// which `low` held at every alignment (before `high` took over for good), and the duration
    /// from which `high` holds at every alignment up to 60 ms.
    fn threshold_sweep(
        &mut self,
        from: u32,
        add: impl Fn(u32, &mut Signal),
        high: impl Fn(&Score) -> bool,
        low: impl Fn(&Score) -> bool,
    ) -> Result<[(u32, Option<u32>); 2]> {
        let mut result = [(0u32, None::<u32>); 2];
        let mut ms = from;
        while ms <= 60 {
            let (mut all_high, mut all_low) = ([true; 2], [true; 2]);
            for off in (0..8).map(|i| i * 7) {
                let mut sig = Signal::new(8000);
                sig.silence_samples(320 + off);
                add(ms, &mut sig);
                let (s, t) = self.run(Channel::Pcm8, &sig, ATT)?;
                for (i, sc) in [s.unwrap_or_default(), t].iter().enumerate() {
                    all_high[i] &= high(sc);
                    all_low[i] &= low(sc);
                }
            }
            for (i, (last_low, first_high)) in result.iter_mut().enumerate() {
                if !all_high[i] {
                    *first_high = None;
                } else if first_high.is_none() {
                    *first_high = Some(ms);
                }
                if all_low[i] && first_high.is_none() {
                    *last_low = ms;
                }
            }
            ms += if self.settings.quick { 5 } else { 1 };
        }
        Ok(result)
    }

    /// 6. Noise: white and pink, S/N 30 → 3 dB, many bursts per level.
    pub fn noise(&mut self) -> Result<()> {
        let bursts = self.reps(500, 64);
        for pink in [false, true] {
            for ch in Channel::ALL {
                let mut lowest = [None::<i32>; 2];
                let mut alive = [true, true];
                let mut curve = Vec::new();
                let mut snr = 30;
                while snr >= 3 {
                    let mut sig = Signal::new(ch.rate());
                    sig.seed(snr as u64 * 7919 + u64::from(pink));
                    sig.silence(40.0);
                    for i in 0..bursts {
                        sig.burst(&Burst::new(ALL16.as_bytes()[i % 16] as char, 50.0, 50.0));
                    }
                    let rms = (pair_power(-10.0) / 10f32.powf(snr as f32 / 10.0)).sqrt();
                    if pink {
                        sig.pink_noise(rms);
                    } else {
                        sig.white_noise(rms);
                    }
                    self.deep_noise = snr < 6;
                    let (s, t) = self.run(ch, &sig, ATT)?;
                    self.deep_noise = false;
                    for (i, sc) in [s.clone().unwrap_or_default(), t.clone()]
                        .iter()
                        .enumerate()
                    {
                        if alive[i] && sc.percent() >= 99.0 && sc.extra == 0 {
                            lowest[i] = Some(snr);
                        } else {
                            alive[i] = false;
                        }
                    }
                    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
                        eprintln!(
                            "  {} {} S/N {snr}: tonemask {:.2} % {} extra",
                            if pink { "pink" } else { "white" },
                            ch.name(),
                            t.percent(),
                            t.extra
                        );
                    }
                    curve.push((snr, s.map(|s| s.percent()), t.percent(), t.extra));
                    snr -= if self.settings.quick { 3 } else { 1 };
                }
                let text = |i: usize| lowest[i].map_or("> 30 dB".into(), |v| format!("{v} dB"));
                let kind = if pink { "pink" } else { "white" };
                let goal = if pink { "(reported)" } else { "≤ 6 dB" };
                let pass = pink || lowest[1].is_some_and(|v| v <= 6);
                self.push(
                    "6 noise",
                    format!("{kind} noise, {bursts} bursts/level: lowest S/N with ≥ 99 % and no extra, {}", ch.name()),
                    if self.sp.supports(ch) { text(0) } else { "n/a".into() },
                    text(1),
                    goal,
                    pass,
                );
            }
        }
        Ok(())
    }

    /// 7. Dial tone (350 + 440 Hz) under the digits.
    pub fn dial_tone(&mut self) -> Result<()> {
        // spandsp's dial-tone filter is off by default; a host expecting dial tone turns it on.
        self.sp.filter_dialtone = true;
        for ch in Channel::ALL {
            let mut sig = Signal::new(ch.rate());
            sig.silence(40.0);
            for _ in 0..self.reps(10, 2) {
                for d in ALL16.chars() {
                    sig.burst(&Burst::new(d, 50.0, 50.0));
                }
            }
            sig.dial_tone(-16.0);
            let (s, t) = self.run(ch, &sig, ATT)?;
            let pass = t.all();
            self.push(
                "7 dial tone",
                format!(
                    "16 × {} at −10 dBm0 over 350+440 Hz at −16 dBm0 each (spandsp: dial-tone filter on), {}",
                    self.reps(10, 2),
                    ch.name()
                ),
                s.map_or("n/a".into(), |s| fmt_pct(&s)),
                fmt_pct(&t),
                "100 %, no extra",
                pass,
            );
        }
        self.sp.filter_dialtone = false;
        Ok(())
    }

    /// 7b. Harmonic pairs: a row tone with its own second harmonic on a column (the shape of a
    /// whistle), at the row deviations where that harmonic still lands within a receiver's
    /// column bandwidth. Such a pair is masked only within the configured twist (see the
    /// detector's `HARMONIC_NEAR`); these cases check that whatever spandsp or tonemask
    /// decodes of it is masked all the same (the masking rows count them).
    pub fn harmonic_pairs(&mut self) -> Result<()> {
        let mut found = [0usize; 2];
        let mut tones = 0;
        for ch in Channel::ALL {
            let mut sig = Signal::new(ch.rate());
            sig.silence(40.0);
            // (digit, row frequency, column frequency): the column tone is 2 × the row tone.
            for (d, row, col) in [
                ('2', 697.0f32, 1336.0f32),
                ('6', 770.0, 1477.0),
                ('C', 852.0, 1633.0),
            ] {
                for row_dev in [-0.04f32, -0.035, -0.03, -0.025, -0.02, -0.015] {
                    for twist_db in [0.0f32, 3.0, 6.0, 8.0, 9.0, 10.0, 12.0] {
                        let f = row * (1.0 + row_dev);
                        sig.burst(&Burst {
                            row_dev,
                            col_dev: 2.0 * f / col - 1.0,
                            twist_db,
                            // Pauses longer than the scorer's 200 ms: a report is never
                            // credited to the tone before.
                            ..Burst::new(d, 60.0, 300.0)
                        });
                        tones += 1;
                    }
                }
            }
            let (sp, tm) = self.run(ch, &sig, ATT)?;
            found[0] += sp.map_or(0, |s| s.detected);
            found[1] += tm.detected;
        }
        self.push(
            "7b harmonic pairs",
            format!(
                "a tone and its own 2nd harmonic on a column, row −4…−1.5 %, twist 0–12 dB: digits decoded of {tones} (all channels), and masked"
            ),
            format!("{} decoded", found[0]),
            format!("{} decoded", found[1]),
            "(reported; masking rows: 0 recoverable)",
            true,
        );
        Ok(())
    }

    /// 8. Talk-off: speech, whistling and music without DTMF, through every channel.
    ///
    /// Per channel: false digits beside spandsp's. Per category (the file name's first part,
    /// see `testdata/talkoff/build.sh`), over all channels: the spans the masker altered per
    /// hour and the share of audio altered — masking nobody should hear.
    pub fn talk_off(&mut self, corpus: &[crate::TalkoffFile]) -> Result<()> {
        let mut cats: std::collections::BTreeMap<String, Altered> = Default::default();
        for ch in Channel::ALL {
            let files: Vec<_> = corpus.iter().filter(|f| f.1 == ch.rate()).collect();
            let seconds: f64 = files
                .iter()
                .map(|f| f.2.len() as f64 / f64::from(f.1))
                .sum();
            let mut false_digits = [0usize; 2];
            let mut offenders = Vec::new();
            for (name, rate, pcm) in files.iter().copied() {
                let sp = if self.sp.supports(ch) {
                    self.sp.detect(ch, pcm, ATT)?.len()
                } else {
                    0
                };
                let tm = self.tm.detect(ch, pcm, ATT)?.len();
                false_digits[0] += sp;
                false_digits[1] += tm;
                if tm > 0 {
                    offenders.push(format!("{name}: {tm}"));
                }
                let input = crate::signal::through(ch, pcm).1;
                let masked = self.tm.mask(ch, pcm)?;
                let cat = cats.entry(category(name).to_string()).or_default();
                cat.add(&input, &masked, *rate);
                cat.false_digits[0] += sp;
                cat.false_digits[1] += tm;
            }
            let per_hour = |n: usize| {
                if seconds > 0.0 {
                    n as f64 * 3600.0 / seconds
                } else {
                    0.0
                }
            };
            let text = |n: usize| format!("{n} ({:.1}/h)", per_hour(n));
            let supported = self.sp.supports(ch);
            self.push(
                "8 talk-off",
                format!(
                    "false digits in {:.1} h of speech, whistling and music ({} files), {}",
                    seconds / 3600.0,
                    files.len(),
                    ch.name()
                ),
                if supported {
                    text(false_digits[0])
                } else {
                    "n/a".into()
                },
                text(false_digits[1]),
                "0, never more than spandsp",
                false_digits[1] == 0 && seconds >= 36_000.0,
            );
            if !offenders.is_empty() {
                eprintln!(
                    "talk-off ({}): tonemask false digits in {}",
                    ch.name(),
                    offenders.join(", ")
                );
            }
        }
        for (name, c) in &cats {
            let (goal, limit) = match name.as_str() {
                "music" | "whistle" => ("≤ 5 spans/h", 5.0),
                _ => ("≤ 2 spans/h", 2.0),
            };
            let per_hour = c.spans as f64 * 3600.0 / c.seconds.max(1.0);
            self.push(
                "8 talk-off",
                format!(
                    "{}: spans the masker altered, per hour (audio altered; false digits), {:.1} h × 4 channels",
                    describe(name),
                    c.seconds / 4.0 / 3600.0
                ),
                format!("(no masker; {} false digits at 8 kHz)", c.false_digits[0]),
                format!(
                    "{per_hour:.1}/h ({:.3} %; {} false digits)",
                    100.0 * c.altered as f64 / c.samples.max(1) as f64,
                    c.false_digits[1]
                ),
                goal,
                per_hour <= limit,
            );
        }
        Ok(())
    }

    /// 9. Masking quality over every masked case.
    pub fn masking_rows(&mut self) {
        let m = self.masking.clone();
        self.push(
            "9 masking",
            format!(
                "digits recoverable from tonemask's masked output ({} cases, {} tones)",
                m.cases, m.tones
            ),
            format!("{} found by spandsp", m.spandsp_recovered),
            format!("{} found by tonemask", m.tonemask_recovered),
            "0",
            m.spandsp_recovered == 0 && m.tonemask_recovered == 0,
        );
        self.push(
            "9 masking",
            format!(
                "longest tone fragment left unmasked (default {} ms look-ahead), all cases but noise below 6 dB S/N",
                tonemask_core::DEFAULT_LOOKAHEAD_MS
            ),
            "(no masker)".into(),
            format!("{:.3} ms", m.longest_residual_ms),
            "0 ms",
            m.longest_residual_ms == 0.0,
        );
        self.push(
            "9 masking",
            "longest tone fragment left unmasked, white/pink noise at 3–5 dB S/N (spandsp: 99 % needs 10 dB white, 13 dB pink)".into(),
            "(no masker)".into(),
            format!("{:.3} ms", m.longest_residual_deep_noise_ms),
            "0 ms",
            m.longest_residual_deep_noise_ms == 0.0,
        );
        let share = if m.outside == 0 {
            0.0
        } else {
            100.0 * m.outside_altered as f64 / m.outside as f64
        };
        self.push(
            "9 masking",
            "share of non-DTMF audio altered".into(),
            "(no masker)".into(),
            format!("{share:.3} %"),
            "(reported)",
            true,
        );
    }
}

/// What the masker altered in one talk-off category.
#[derive(Clone, Debug, Default)]
struct Altered {
    seconds: f64,
    samples: u64,
    altered: u64,
    spans: usize,
    /// spandsp's and tonemask's false digits.
    false_digits: [usize; 2],
}

impl Altered {
    /// Counts the samples `masked` changed and the spans they form (changes less than 20 ms
    /// apart are one span: a masked span may keep a sample that happens to equal the fill).
    fn add(&mut self, input: &[i16], masked: &[i16], rate: u32) {
        self.seconds += input.len() as f64 / f64::from(rate);
        self.samples += input.len() as u64;
        let gap = rate as usize / 50;
        let mut last: Option<usize> = None;
        for (i, (a, b)) in input.iter().zip(masked).enumerate() {
            if a != b {
                self.altered += 1;
                if last.is_none_or(|l| i - l > gap) {
                    self.spans += 1;
                }
                last = Some(i);
            }
        }
    }
}

/// A talk-off file's category: its name up to the first `_`.
fn category(name: &str) -> &str {
    name.split('_').next().unwrap_or(name)
}

/// What a category holds, for the table.
fn describe(category: &str) -> &str {
    match category {
        "real" => "real human speech (IVR prompts, 7 voices, 5 languages; letters in 20)",
        "tts" => "synthetic speech (espeak-ng, 45 languages; flite)",
        "high" => "high-pitched voices (cartoon, sung, child-like)",
        "mix" => "speech over music",
        "whistle" => "whistling (synthesised)",
        "music" => "music (orchestral, game, music on hold)",
        other => other,
    }
}

/// Where a receiver operates in a deviation sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    /// Lowest deviation (%) from which up to 0 every burst is detected.
    pub operate_lo: f32,
    /// Highest deviation (%) up to which from 0 every burst is detected.
    pub operate_hi: f32,
    /// Lowest deviation with any response.
    pub any_lo: f32,
    /// Highest deviation with any response.
    pub any_hi: f32,
}

impl Window {
    fn of<T>(sweep: &[(f32, T, Score)], pick: impl Fn(&(f32, T, Score)) -> Score) -> Window
    where
        T: Clone,
    {
        let zero = sweep.iter().position(|x| x.0.abs() < 1e-4).unwrap_or(0);
        let full = |i: usize| pick(&sweep[i]).all();
        let mut lo = zero;
        while lo > 0 && full(lo - 1) {
            lo -= 1;
        }
        let mut hi = zero;
        while hi + 1 < sweep.len() && full(hi + 1) {
            hi += 1;
        }
        let any: Vec<f32> = sweep
            .iter()
            .filter(|x| !pick(x).none())
            .map(|x| x.0)
            .collect();
        Window {
            operate_lo: sweep[lo].0,
            operate_hi: sweep[hi].0,
            any_lo: any.iter().copied().fold(0.0, f32::min),
            any_hi: any.iter().copied().fold(0.0, f32::max),
        }
    }

    fn worse(self, o: Window) -> Window {
        Window {
            operate_lo: self.operate_lo.max(o.operate_lo),
            operate_hi: self.operate_hi.min(o.operate_hi),
            any_lo: self.any_lo.min(o.any_lo),
            any_hi: self.any_hi.max(o.any_hi),
        }
    }

    fn meets(&self) -> bool {
        self.operate_lo <= -1.5 && self.operate_hi >= 1.5 && self.any_lo > -3.5 && self.any_hi < 3.5
    }

    fn text(&self) -> String {
        format!(
            "{:+.1}…{:+.1} / {:+.1}…{:+.1}",
            self.operate_lo, self.operate_hi, self.any_lo, self.any_hi
        )
    }
}

fn median(v: &[f32]) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    s[s.len() / 2]
}
