//! Sections 1–7: detection — decode check, recognition bandwidth, twist, dynamic range,
//! guard time, noise, dial tone.

use super::*;

impl Suite {
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
            for (label, digit, rw, cw) in bandwidth_cases() {
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
}

/// The bandwidth sweep's cases: (label, digit, row weight, column weight) — each row tone with
/// column 1336 Hz, each column tone with row 770 Hz, then both tones of '5' at once.
fn bandwidth_cases() -> Vec<(String, char, f32, f32)> {
    use tonemask_core::detector::tones::{COL_HZ, ROW_HZ};
    let rows = (0..4).map(|r| {
        (
            format!("{} Hz", ROW_HZ[r]),
            ['2', '5', '8', '0'][r],
            1.0,
            0.0,
        )
    });
    let cols = (0..4).map(|c| {
        (
            format!("{} Hz", COL_HZ[c]),
            ['4', '5', '6', 'B'][c],
            0.0,
            1.0,
        )
    });
    rows.chain(cols)
        .chain(std::iter::once((
            "both tones of 5".to_string(),
            '5',
            1.0,
            1.0,
        )))
        .collect()
}
