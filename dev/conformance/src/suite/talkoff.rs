//! Section 8: talk-off — the masker and the detector on speech and music with no DTMF.

use super::*;

impl Suite {
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
        self.talk_off_categories(&cats);
        Ok(())
    }

    /// The per-category rows of section 8: spans the masker altered per hour, against the
    /// category's goal.
    fn talk_off_categories(&mut self, cats: &std::collections::BTreeMap<String, Altered>) {
        for (name, c) in cats {
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
