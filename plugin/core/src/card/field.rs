//! The fields a caller types, and the rules each must pass.

use super::brand::{brand_of, luhn_ok, Brand};

/// A field the caller types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The card number (PAN): Luhn, a known brand, a length the brand issues.
    CardNumber,
    /// The expiry date as MMYY, not in the past.
    Expiry,
    /// The security code: as many digits as the card's brand uses (3, Amex 4).
    SecurityCode,
    /// Any other numeric field (a numeric postcode, a reference) of `min..=max` digits.
    Numeric {
        /// Fewest digits.
        min: u8,
        /// Most digits.
        max: u8,
    },
}

impl Field {
    /// The name used in progress events.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Field::CardNumber => "card-number",
            Field::Expiry => "expiry",
            Field::SecurityCode => "security-code",
            Field::Numeric { .. } => "numeric",
        }
    }
}

/// Why a field was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The card number's first digits are no known scheme's.
    UnknownBrand,
    /// Too few or too many digits for the field (for a card number: for its brand).
    InvalidLength,
    /// The card number fails the Luhn check.
    InvalidCardNumber,
    /// Not a month and year (MMYY).
    InvalidExpiry,
    /// The expiry month has passed.
    Expired,
    /// The security code has the wrong number of digits for the card.
    InvalidSecurityCode,
    /// The field was not finished in time.
    TimedOut,
}

impl Invalid {
    /// The reason as progress events name it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Invalid::UnknownBrand => "unknown-brand",
            Invalid::InvalidLength => "invalid-length",
            Invalid::InvalidCardNumber => "invalid-card-number",
            Invalid::InvalidExpiry => "invalid-expiry",
            Invalid::Expired => "expired",
            Invalid::InvalidSecurityCode => "invalid-security-code",
            Invalid::TimedOut => "timeout",
        }
    }
}

/// Year and month the host says it is (the plugin has no clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct YearMonth {
    /// Four-digit year.
    pub year: u16,
    /// 1–12.
    pub month: u8,
}

/// Longest card number any scheme issues.
pub const MAX_PAN: usize = 19;

/// Whether `digits` of `field` are complete without an end key: a card number at its brand's
/// longest length, a full MMYY, a security code of the brand's length, a numeric field at
/// its maximum.
#[must_use]
pub fn complete(field: Field, digits: &[u8], brand: Option<Brand>) -> bool {
    match field {
        Field::CardNumber => {
            digits.len() >= MAX_PAN || brand.is_some_and(|b| digits.len() == b.lengths().1)
        }
        Field::Expiry => digits.len() >= 4,
        Field::SecurityCode => digits.len() >= brand.map_or(4, Brand::security_code_len),
        Field::Numeric { max, .. } => digits.len() >= usize::from(max),
    }
}

/// Checks a finished field. `brand` is the card's, once its number was accepted.
pub fn check(
    field: Field,
    digits: &[u8],
    brand: Option<Brand>,
    today: YearMonth,
) -> Result<(), Invalid> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(match field {
            Field::CardNumber => Invalid::InvalidCardNumber,
            Field::Expiry => Invalid::InvalidExpiry,
            Field::SecurityCode => Invalid::InvalidSecurityCode,
            Field::Numeric { .. } => Invalid::InvalidLength,
        });
    }
    match field {
        Field::CardNumber => {
            if !(12..=MAX_PAN).contains(&digits.len()) {
                return Err(Invalid::InvalidLength);
            }
            let b = brand_of(digits).ok_or(Invalid::UnknownBrand)?;
            if !b.issues_length(digits.len()) {
                return Err(Invalid::InvalidLength);
            }
            if !luhn_ok(digits) {
                return Err(Invalid::InvalidCardNumber);
            }
            Ok(())
        }
        Field::Expiry => {
            let [m1, m2, y1, y2] = *digits else {
                return Err(Invalid::InvalidExpiry);
            };
            let n = |a: u8, b: u8| (a - b'0') * 10 + (b - b'0');
            let month = n(m1, m2);
            if !(1..=12).contains(&month) {
                return Err(Invalid::InvalidExpiry);
            }
            let expiry = YearMonth {
                year: 2000 + u16::from(n(y1, y2)),
                month,
            };
            if expiry < today {
                return Err(Invalid::Expired);
            }
            Ok(())
        }
        Field::SecurityCode => {
            let ok = match brand {
                Some(b) => digits.len() == b.security_code_len(),
                None => (3..=4).contains(&digits.len()),
            };
            ok.then_some(()).ok_or(Invalid::InvalidSecurityCode)
        }
        Field::Numeric { min, max } => (usize::from(min)..=usize::from(max))
            .contains(&digits.len())
            .then_some(())
            .ok_or(Invalid::InvalidLength),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEC_2026: YearMonth = YearMonth {
        year: 2026,
        month: 12,
    };

    #[test]
    fn each_field_has_its_rules() {
        let check = |f, d: &str, b| check(f, d.as_bytes(), b, DEC_2026);
        assert_eq!(check(Field::CardNumber, "4111111111111111", None), Ok(()));
        assert_eq!(
            check(Field::CardNumber, "4111111111111112", None),
            Err(Invalid::InvalidCardNumber)
        );
        assert_eq!(
            check(Field::CardNumber, "411111111111111", None),
            Err(Invalid::InvalidLength),
            "Visa issues 13, 16 or 19 digits"
        );
        assert_eq!(
            check(Field::CardNumber, "9999999999999995", None),
            Err(Invalid::UnknownBrand)
        );
        assert_eq!(check(Field::Expiry, "1226", None), Ok(()), "this month");
        assert_eq!(
            check(Field::Expiry, "1126", None),
            Err(Invalid::Expired),
            "last month"
        );
        assert_eq!(
            check(Field::Expiry, "1326", None),
            Err(Invalid::InvalidExpiry)
        );
        assert_eq!(
            check(Field::Expiry, "0031", None),
            Err(Invalid::InvalidExpiry)
        );
        assert_eq!(
            check(Field::Expiry, "126", None),
            Err(Invalid::InvalidExpiry)
        );
        let amex = Some(Brand::Amex);
        assert_eq!(check(Field::SecurityCode, "1234", amex), Ok(()));
        assert_eq!(
            check(Field::SecurityCode, "123", amex),
            Err(Invalid::InvalidSecurityCode)
        );
        let zip = Field::Numeric { min: 5, max: 5 };
        assert_eq!(check(zip, "12345", None), Ok(()));
        assert_eq!(check(zip, "1234", None), Err(Invalid::InvalidLength));
    }

    #[test]
    fn fields_complete_without_the_end_key_at_their_full_length() {
        let visa = Some(Brand::Visa);
        assert!(
            !complete(Field::CardNumber, b"4111111111111111", visa),
            "Visa may run to 19"
        );
        assert!(complete(
            Field::CardNumber,
            b"378282246310005",
            Some(Brand::Amex)
        ));
        assert!(complete(Field::Expiry, b"1229", None));
        assert!(complete(Field::SecurityCode, b"123", visa));
        assert!(!complete(Field::SecurityCode, b"123", Some(Brand::Amex)));
    }
}
