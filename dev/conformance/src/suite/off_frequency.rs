//! Section 3b: the corner where Q.24's frequency and twist clauses meet.

use super::*;

impl Suite {
    /// 3b. Off-frequency twist: every symbol with both tones 1.5 % off (each sign combination)
    /// and the twist at the default (AT&T) limit — the corner where Q.24's frequency and
    /// twist clauses meet — clean and in white noise at 15 dB S/N, µ-law.
    pub fn off_frequency_twist(&mut self) -> Result<()> {
        use tonemask_core::detector::tones::power_of_dbm0;
        let reps = self.reps(2, 1);
        for (label, twist_db, dbm0) in [
            ("normal twist 8 dB", 8.0f32, -10.0f32),
            ("reverse twist 4 dB", -4.0, -14.0),
        ] {
            for snr in [None, Some(15.0f32)] {
                let mut totals = [(0usize, 0usize, 0usize); 2]; // [receiver]: (found, expected, extra)
                for (rd, cd) in [
                    (0.015f32, 0.015f32),
                    (-0.015, -0.015),
                    (0.015, -0.015),
                    (-0.015, 0.015),
                ] {
                    for rep in 0..reps {
                        let mut sig = Signal::new(8000);
                        sig.silence(40.0);
                        for d in ALL16.chars() {
                            sig.burst(&Burst {
                                dbm0,
                                row_dev: rd,
                                col_dev: cd,
                                twist_db,
                                ..Burst::new(d, 60.0, 60.0)
                            });
                        }
                        if let Some(snr) = snr {
                            // S/N against the pair's power, as in section 6.
                            let p = power_of_dbm0(dbm0) + power_of_dbm0(dbm0 - twist_db);
                            sig.seed(rep as u64 + 1)
                                .white_noise((p / 10f32.powf(snr / 10.0)).sqrt());
                        }
                        let (s, tm) = self.run(Channel::Ulaw, &sig, ATT)?;
                        for (t, sc) in totals.iter_mut().zip([s.unwrap_or_default(), tm]) {
                            t.0 += sc.detected;
                            t.1 += sc.expected;
                            t.2 += sc.extra;
                        }
                    }
                }
                let text = |(found, expected, extra): (usize, usize, usize)| {
                    format!(
                        "{:.1} % ({extra} extra)",
                        100.0 * found as f64 / expected.max(1) as f64
                    )
                };
                self.push(
                    "3b off-frequency twist",
                    format!(
                        "both tones ±1.5 % off, {label}, {}, µ-law: detected",
                        snr.map_or("clean".into(), |s| format!("white noise at {s} dB S/N"))
                    ),
                    text(totals[0]),
                    text(totals[1]),
                    "(reported)",
                    true,
                );
            }
        }
        Ok(())
    }
}
