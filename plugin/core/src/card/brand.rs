//! Card brands from the issuer identification number (the first digits of the card number),
//! the card-number lengths each brand issues and the length of its security code, and the
//! Luhn check digit (ISO/IEC 7812-1).
//!
//! Ranges are the schemes' published ones; where two overlap the longer prefix wins (a
//! UnionPay range inside Discover's 622126–622925, Maestro's 6759 inside nothing else, …).

use core::fmt;

/// A card scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Brand {
    /// Visa: 4.
    Visa,
    /// Mastercard: 51–55 and the 2-series 2221–2720.
    Mastercard,
    /// American Express: 34, 37 (a four-digit security code).
    Amex,
    /// Discover: 6011, 622126–622925, 644–649, 65.
    Discover,
    /// JCB: 3528–3589.
    Jcb,
    /// Diners Club: 300–305, 3095, 36, 38–39.
    Diners,
    /// UnionPay: 62, 81.
    UnionPay,
    /// Maestro: 5018, 5020, 5038, 5893, 6304, 6759, 6761–6763.
    Maestro,
}

impl Brand {
    /// The card-number lengths the brand issues (inclusive range).
    #[must_use]
    pub fn lengths(self) -> (usize, usize) {
        match self {
            Brand::Visa => (13, 19),
            Brand::Mastercard => (16, 16),
            Brand::Amex => (15, 15),
            Brand::Diners => (14, 19),
            Brand::Maestro => (12, 19),
            Brand::Discover | Brand::Jcb | Brand::UnionPay => (16, 19),
        }
    }

    /// Whether a card number of `len` digits is one the brand issues (Visa: 13, 16 or 19).
    #[must_use]
    pub fn issues_length(self, len: usize) -> bool {
        let (min, max) = self.lengths();
        (min..=max).contains(&len) && (self != Brand::Visa || matches!(len, 13 | 16 | 19))
    }

    /// Digits of the security code (CVV2, CVC2, CID).
    #[must_use]
    pub fn security_code_len(self) -> usize {
        match self {
            Brand::Amex => 4,
            _ => 3,
        }
    }

    /// The name used in progress events.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Brand::Visa => "visa",
            Brand::Mastercard => "mastercard",
            Brand::Amex => "amex",
            Brand::Discover => "discover",
            Brand::Jcb => "jcb",
            Brand::Diners => "diners",
            Brand::UnionPay => "unionpay",
            Brand::Maestro => "maestro",
        }
    }
}

impl fmt::Display for Brand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// IIN ranges: (first, last, digits compared, brand).
const RANGES: [(u32, u32, u32, Brand); 22] = [
    (4, 4, 1, Brand::Visa),
    (51, 55, 2, Brand::Mastercard),
    (2221, 2720, 4, Brand::Mastercard),
    (34, 34, 2, Brand::Amex),
    (37, 37, 2, Brand::Amex),
    (6011, 6011, 4, Brand::Discover),
    (622_126, 622_925, 6, Brand::Discover),
    (644, 649, 3, Brand::Discover),
    (65, 65, 2, Brand::Discover),
    (3528, 3589, 4, Brand::Jcb),
    (300, 305, 3, Brand::Diners),
    (3095, 3095, 4, Brand::Diners),
    (36, 36, 2, Brand::Diners),
    (38, 39, 2, Brand::Diners),
    (62, 62, 2, Brand::UnionPay),
    (81, 81, 2, Brand::UnionPay),
    (5018, 5018, 4, Brand::Maestro),
    (5020, 5020, 4, Brand::Maestro),
    (5038, 5038, 4, Brand::Maestro),
    (5893, 5893, 4, Brand::Maestro),
    (6304, 6304, 4, Brand::Maestro),
    (6759, 6763, 4, Brand::Maestro),
];

/// The brand of a card number whose first digits are `digits` (ASCII), once at least six are
/// known; the longest matching prefix decides. `None`: too short, or no known range.
#[must_use]
pub fn brand_of(digits: &[u8]) -> Option<Brand> {
    if digits.len() < 6 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let prefix = |n: u32| {
        digits[..n as usize]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    RANGES
        .iter()
        .filter(|&&(lo, hi, n, _)| (lo..=hi).contains(&prefix(n)))
        .max_by_key(|&&(_, _, n, _)| n)
        .map(|&(_, _, _, b)| b)
}

/// Whether `digits` (ASCII) pass the Luhn check.
#[must_use]
pub fn luhn_ok(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 {
                let d2 = v * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published test card numbers of each scheme (never real cards).
    const TEST_PANS: [(&str, Brand); 10] = [
        ("4111111111111111", Brand::Visa),
        ("4222222222222", Brand::Visa),
        ("5555555555554444", Brand::Mastercard),
        ("2223003122003222", Brand::Mastercard),
        ("378282246310005", Brand::Amex),
        ("6011111111111117", Brand::Discover),
        ("3530111333300000", Brand::Jcb),
        ("36227206271667", Brand::Diners),
        ("6200000000000005", Brand::UnionPay),
        ("6759649826438453", Brand::Maestro),
    ];

    #[test]
    fn test_cards_of_every_scheme_have_their_brand_a_valid_length_and_pass_luhn() {
        for (pan, brand) in TEST_PANS {
            assert_eq!(brand_of(pan.as_bytes()), Some(brand), "{pan}");
            assert!(brand.issues_length(pan.len()), "{pan}");
            assert!(luhn_ok(pan.as_bytes()), "{pan}");
        }
    }

    #[test]
    fn luhn_catches_a_changed_digit_and_a_swap() {
        assert!(!luhn_ok(b"4111111111111112"));
        assert!(!luhn_ok(b"4111111111111121"));
        assert!(!luhn_ok(b""));
        assert!(!luhn_ok(b"41x1"));
    }

    #[test]
    fn the_longest_prefix_decides_and_short_or_unknown_numbers_have_no_brand() {
        assert_eq!(brand_of(b"622126"), Some(Brand::Discover));
        assert_eq!(brand_of(b"622000"), Some(Brand::UnionPay));
        assert_eq!(brand_of(b"222100"), Some(Brand::Mastercard));
        assert_eq!(brand_of(b"272099"), Some(Brand::Mastercard));
        assert_eq!(brand_of(b"272100"), None);
        assert_eq!(brand_of(b"411"), None, "fewer than six digits");
        assert_eq!(brand_of(b"999999"), None);
        assert_eq!(Brand::Amex.security_code_len(), 4);
        assert!(!Brand::Visa.issues_length(15));
    }
}
