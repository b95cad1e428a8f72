//! Section 7c: short tones off their nominal frequencies, where receivers still decode some.
//! The row reports what each receiver decodes; the masking rows count whatever either
//! recovers from the masked output.

use super::*;

impl Suite {
    /// 7c. Short off-spec tones: 26–46 ms, one tone 2.5–3.5 % off (the rest of the suite's
    /// off-spec tones last 60 ms): spandsp decodes some of them from two blocks, so the
    /// masker must start on them just as early. Lead silences vary the block alignment.
    pub fn short_off_spec(&mut self) -> Result<()> {
        let mut found = [0usize; 2];
        let mut tones = 0;
        for ch in Channel::ALL {
            for (k, dev) in [-0.035f32, -0.03, -0.025, 0.025, 0.03, 0.035]
                .into_iter()
                .enumerate()
            {
                for (n, ms) in [26.0f32, 30.0, 34.0, 38.0, 42.0, 46.0]
                    .into_iter()
                    .enumerate()
                {
                    let mut sig = Signal::new(ch.rate());
                    sig.silence(40.0 + ((k * 6 + n) % 7) as f32 * 0.9);
                    for (i, d) in ALL16.chars().enumerate() {
                        let (row_dev, col_dev) = if i % 2 == 0 { (dev, 0.0) } else { (0.0, dev) };
                        sig.burst(&Burst {
                            row_dev,
                            col_dev,
                            ..Burst::new(d, ms, 250.0)
                        });
                        tones += 1;
                    }
                    let (sp, tm) = self.run(ch, &sig, ATT)?;
                    found[0] += sp.map_or(0, |s| s.detected);
                    found[1] += tm.detected;
                }
            }
        }
        self.push(
            "7c short off-spec",
            format!(
                "26–46 ms, one tone 2.5–3.5 % off: digits decoded of {tones} (all channels), and masked"
            ),
            format!("{} decoded", found[0]),
            format!("{} decoded", found[1]),
            "(reported; masking rows: 0 recoverable)",
            true,
        );
        Ok(())
    }
}
