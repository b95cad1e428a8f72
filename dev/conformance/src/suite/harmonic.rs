//! Section 7b: a tone with its own harmonic — off its nominal frequencies, where some
//! receivers still decode it. The row reports what each receiver decodes; the masking rows
//! count whatever either recovers from the masked output.

use super::*;

impl Suite {
    /// 7b. Harmonic pairs: a row tone with its own second harmonic on a column (the shape of a
    /// whistle), at the row deviations where that harmonic still lands within a receiver's
    /// column bandwidth. Such a pair is masked only within the configured twist (see the
    /// detector's `HARMONIC_NEAR`); these cases check that whatever spandsp or tonemask
    /// decodes of it is masked all the same (the masking rows count them).
    pub fn harmonic_pairs(&mut self) -> Result<()> {
        let mut found = [0usize; 2];
        let mut tones = 0;
        // Clean, then in white noise at 12 and 9 dB S/N (near spandsp's 82 % energy share,
        // where the detector's own share limit for harmonic pairs must still cover it).
        for (ch, snr) in Channel::ALL
            .into_iter()
            .flat_map(|ch| [None, Some(12.0f32), Some(9.0)].map(|snr| (ch, snr)))
        {
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
            if let Some(snr) = snr {
                sig.seed(snr as u64 * 31 + 7);
                sig.white_noise((pair_power(-10.0) / 10f32.powf(snr / 10.0)).sqrt());
            }
            let (sp, tm) = self.run(ch, &sig, ATT)?;
            found[0] += sp.map_or(0, |s| s.detected);
            found[1] += tm.detected;
        }
        self.push(
            "7b harmonic pairs",
            format!(
                "a tone and its own 2nd harmonic on a column, row −4…−1.5 %, twist 0–12 dB, clean and in white noise at 12 and 9 dB S/N: digits decoded of {tones} (all channels), and masked"
            ),
            format!("{} decoded", found[0]),
            format!("{} decoded", found[1]),
            "(reported; masking rows: 0 recoverable)",
            true,
        );
        Ok(())
    }
}
