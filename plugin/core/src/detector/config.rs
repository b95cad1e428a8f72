//! Detector tuning: twist limits per administration, validated on creation.

use crate::error::ConfigError;

/// Largest twist (either direction) accepted in a configuration, in dB.
const MAX_TWIST_DB: f32 = 20.0;

/// Twist limits: how much weaker one tone of the pair may be than the other.
///
/// *Normal* twist is the high-group (column) tone weaker than the low-group (row) tone, the
/// usual case on a real line; *reverse* twist is the opposite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Twist {
    /// Largest accepted normal twist (column weaker), in dB.
    pub normal_db: f32,
    /// Largest accepted reverse twist (row weaker), in dB.
    pub reverse_db: f32,
}

impl Twist {
    /// Q.24 AT&T column: 8 dB normal, 4 dB reverse (the default).
    pub const ATT: Twist = Twist {
        normal_db: 8.0,
        reverse_db: 4.0,
    };
    /// ETSI ES 201 235: 6 dB both ways.
    pub const ETSI: Twist = Twist {
        normal_db: 6.0,
        reverse_db: 6.0,
    };
    /// NTT: 5 dB both ways.
    pub const NTT: Twist = Twist {
        normal_db: 5.0,
        reverse_db: 5.0,
    };
    /// Australia: 10 dB both ways.
    pub const AUSTRALIA: Twist = Twist {
        normal_db: 10.0,
        reverse_db: 10.0,
    };
    /// Brazil: 9 dB both ways.
    pub const BRAZIL: Twist = Twist {
        normal_db: 9.0,
        reverse_db: 9.0,
    };

    /// Checks that both limits are finite and within 0..=20 dB.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("twist.normal_db", self.normal_db),
            ("twist.reverse_db", self.reverse_db),
        ] {
            if !(0.0..=MAX_TWIST_DB).contains(&v) {
                return Err(ConfigError::OutOfRange {
                    field: name,
                    allowed: "0 to 20 dB",
                });
            }
        }
        Ok(())
    }
}

impl Default for Twist {
    fn default() -> Self {
        Twist::ATT
    }
}

/// Detector configuration.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct DetectorConfig {
    /// Twist limits.
    pub twist: Twist,
}
