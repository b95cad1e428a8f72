//! Twist at the limit: every symbol at exactly each preset's normal and reverse limit (and 1 dB
//! past it), the stronger tone at −4, −10 and −20 dBm0, every channel, through the native core. A tuning aid; the table's
//! twist rows come from the plugin.
//!
//! `cargo run --release -p conformance --example twist_native`

use conformance::receivers::{Receiver, TonemaskNative};
use conformance::signal::{Burst, Channel, Signal};

fn main() -> anyhow::Result<()> {
    for (name, t) in conformance::suite::TWIST_PRESETS {
        for (dir, sign, limit) in [
            ("normal", 1.0f32, t.normal_db),
            ("reverse", -1.0, t.reverse_db),
        ] {
            for extra in [0.0f32, 1.0] {
                let mut line = String::new();
                for ch in [Channel::Pcm8, Channel::Ulaw, Channel::Alaw, Channel::Pcm16k] {
                    let mut found = 0;
                    let mut total = 0;
                    for dbm0 in [-4.0f32, -10.0, -20.0] {
                        let mut sig = Signal::new(ch.rate());
                        sig.silence(40.0);
                        for d in "123A456B789C*0#D".chars() {
                            sig.burst(&Burst {
                                twist_db: sign * (limit + extra),
                                // The stronger tone at `dbm0`.
                                dbm0: if sign < 0.0 {
                                    dbm0 - limit - extra
                                } else {
                                    dbm0
                                },
                                ..Burst::new(d, 60.0, 60.0)
                            });
                        }
                        let got =
                            TonemaskNative.detect(ch, &sig.pcm(), (t.normal_db, t.reverse_db))?;
                        found += got.len().min(16);
                        if got.len() < 16 && std::env::var_os("VERBOSE").is_some() {
                            let s: String = got.iter().map(|f| f.digit).collect();
                            eprintln!("  {name} {dir} {} {dbm0} dBm0: found {s}", ch.name());
                        }
                        total += 16;
                    }
                    line.push_str(&format!(" {}: {found}/{total}", ch.name()));
                }
                println!("{name:<10} {dir:<8} limit{:+.0} dB:{line}", extra);
            }
        }
    }
    Ok(())
}
