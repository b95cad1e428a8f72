//! Section 9: masking quality — what is left of the tones, and what else was altered.

use super::*;

impl Suite {
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
