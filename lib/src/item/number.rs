//! DynamoDB numbers: exact decimals with up to 38 significant digits.
//!
//! A [`Number`] is stored normalised as a sign, a string of significant digits without leading or
//! trailing zeros, and an exponent `e` such that the value is `±0.DIGITS × 10^e`. Every numeric
//! value therefore has exactly one representation, so derived equality and hashing are numeric.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Most significant digits a number may carry (DynamoDB's limit).
pub const MAX_SIGNIFICANT_DIGITS: usize = 38;
/// Smallest exponent `e` of a non-zero number written `0.DIGITS × 10^e` (magnitude ≥ 1E-130).
pub const MIN_EXPONENT: i16 = -129;
/// Largest exponent `e` of a non-zero number written `0.DIGITS × 10^e` (magnitude < 1E+126).
pub const MAX_EXPONENT: i16 = 126;

/// Exponents written in the input are clamped to this magnitude while parsing; anything that
/// large is out of range anyway, and clamping keeps the arithmetic free of overflow.
const EXPONENT_CLAMP: i64 = 1_000_000_000;

/// Why a string is not a valid DynamoDB number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// The text is not a decimal number (empty, NaN, Infinity, stray characters…).
    #[error("A value provided cannot be converted into a number: {0:?}")]
    NotANumber(String),
    /// More than 38 significant digits.
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooManyDigits,
    /// Magnitude of 1E+126 or more.
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    Overflow,
    /// Non-zero magnitude below 1E-130.
    #[error(
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    )]
    Underflow,
}

/// An exact DynamoDB decimal number.
///
/// Invariants: `digits` holds ASCII digits with no leading or trailing `'0'`; it is empty only
/// for zero, which is never negative and has exponent 0; otherwise
/// `1 ≤ digits.len() ≤ 38` and `MIN_EXPONENT ≤ exponent ≤ MAX_EXPONENT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    digits: String,
    exponent: i16,
}

impl Number {
    /// The number zero.
    pub fn zero() -> Number {
        Number {
            negative: false,
            digits: String::new(),
            exponent: 0,
        }
    }

    /// Parses DynamoDB's string form: optional `+`/`-`, digits with an optional `.` fraction (at
    /// least one digit in all), and an optional exponent `e`/`E` with optional sign and digits.
    /// No whitespace is accepted. `"1.0"`, `"01"`, `"1e0"` and `"10E-1"` all parse to the same
    /// number; `"-0"` is zero.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let not_a_number = || NumberError::NotANumber(text.to_owned());
        let bytes = text.as_bytes();
        let mut at = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                at = 1;
                true
            }
            Some(b'+') => {
                at = 1;
                false
            }
            _ => false,
        };
        let int_start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let int_digits = &bytes[int_start..at];
        let mut frac_digits: &[u8] = &[];
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            let frac_start = at;
            while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            frac_digits = &bytes[frac_start..at];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(not_a_number());
        }
        let mut written_exponent: i64 = 0;
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            let exponent_negative = match bytes.get(at) {
                Some(b'-') => {
                    at += 1;
                    true
                }
                Some(b'+') => {
                    at += 1;
                    false
                }
                _ => false,
            };
            let exp_start = at;
            while let Some(digit) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
                written_exponent =
                    (written_exponent * 10 + i64::from(digit - b'0')).min(EXPONENT_CLAMP);
                at += 1;
            }
            if at == exp_start {
                return Err(not_a_number());
            }
            if exponent_negative {
                written_exponent = -written_exponent;
            }
        }
        if at != bytes.len() {
            return Err(not_a_number());
        }

        let all_digits = || int_digits.iter().chain(frac_digits.iter()).copied();
        let total = int_digits.len() + frac_digits.len();
        let leading_zeros = all_digits().take_while(|&d| d == b'0').count();
        if leading_zeros == total {
            return Ok(Number::zero());
        }
        let trailing_zeros = all_digits().rev().take_while(|&d| d == b'0').count();
        let significant = total - leading_zeros - trailing_zeros;
        if significant > MAX_SIGNIFICANT_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        // Input lengths are far below i64::MAX, so these conversions and sums cannot overflow.
        let exponent = i64::try_from(int_digits.len()).unwrap_or(i64::MAX / 4)
            - i64::try_from(leading_zeros).unwrap_or(i64::MAX / 4)
            + written_exponent;
        if exponent > i64::from(MAX_EXPONENT) {
            return Err(NumberError::Overflow);
        }
        if exponent < i64::from(MIN_EXPONENT) {
            return Err(NumberError::Underflow);
        }
        let digits: String = all_digits()
            .skip(leading_zeros)
            .take(significant)
            .map(char::from)
            .collect();
        Ok(Number {
            negative,
            digits,
            exponent: i16::try_from(exponent).map_err(|_| NumberError::Overflow)?,
        })
    }

    /// Builds a number from its normalised parts, checking every invariant. `digits` must be
    /// ASCII digits without leading or trailing zeros (empty for zero, in which case `negative`
    /// must be false and `exponent` 0).
    pub(crate) fn from_parts(
        negative: bool,
        digits: String,
        exponent: i16,
    ) -> Result<Number, NumberError> {
        if digits.is_empty() {
            if negative || exponent != 0 {
                return Err(NumberError::NotANumber(String::from("non-canonical zero")));
            }
            return Ok(Number::zero());
        }
        let well_formed = digits.bytes().all(|d| d.is_ascii_digit())
            && !digits.starts_with('0')
            && !digits.ends_with('0');
        if !well_formed {
            return Err(NumberError::NotANumber(digits));
        }
        if digits.len() > MAX_SIGNIFICANT_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        if exponent > MAX_EXPONENT {
            return Err(NumberError::Overflow);
        }
        if exponent < MIN_EXPONENT {
            return Err(NumberError::Underflow);
        }
        Ok(Number {
            negative,
            digits,
            exponent,
        })
    }

    /// True for zero (including a parsed `-0`).
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// True for numbers below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The significant digits as ASCII, without leading or trailing zeros (empty for zero).
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The exponent `e` such that the value is `±0.DIGITS × 10^e` (0 for zero).
    pub fn exponent(&self) -> i16 {
        self.exponent
    }

    /// Compares magnitudes of two non-zero numbers.
    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        self.exponent
            .cmp(&other.exponent)
            // Digit strings have no trailing zeros, so bytewise order (shorter prefix first) is
            // the order of the fractions 0.DIGITS.
            .then_with(|| self.digits.as_bytes().cmp(other.digits.as_bytes()))
    }

    /// -1, 0 or 1 by sign, for ordering.
    fn sign_class(&self) -> i8 {
        if self.is_zero() {
            0
        } else if self.negative {
            -1
        } else {
            1
        }
    }
}

impl Default for Number {
    fn default() -> Self {
        Number::zero()
    }
}

impl Ord for Number {
    /// Numeric order.
    fn cmp(&self, other: &Number) -> Ordering {
        match self.sign_class().cmp(&other.sign_class()) {
            Ordering::Equal => match self.sign_class() {
                0 => Ordering::Equal,
                1 => self.cmp_magnitude(other),
                _ => other.cmp_magnitude(self),
            },
            unequal => unequal,
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Number {
    type Err = NumberError;

    fn from_str(text: &str) -> Result<Number, NumberError> {
        Number::parse(text)
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Number {
        let magnitude = value.unsigned_abs().to_string();
        let trimmed = magnitude.trim_end_matches('0');
        if trimmed.is_empty() {
            return Number::zero();
        }
        Number {
            negative: value < 0,
            digits: trimmed.to_owned(),
            // At most 20 digits, so the cast is lossless.
            exponent: magnitude.len() as i16,
        }
    }
}

/// Plain notation is used while it needs at most this many zeros between the decimal point and
/// the first significant digit (so 0.000001 is plain, 1E-7 is not).
const MAX_PLAIN_LEADING_FRACTION_ZEROS: i16 = 5;
/// Plain notation is used for values below 10^this (integers of up to 38 digits).
const MAX_PLAIN_INTEGER_DIGITS: i16 = 38;

impl fmt::Display for Number {
    /// The canonical text form:
    /// - zero is `0`;
    /// - numbers in `[1E-6, 1E+38)` in magnitude are written plainly, without exponent, without
    ///   leading zeros (except a single `0` before the point) and without trailing zeros:
    ///   `123`, `-1.5`, `0.000001`, `100000`;
    /// - other numbers use scientific notation with one digit before the point and a signed
    ///   exponent: `1E+38`, `-1.2345E-7`, `9.9E+125`.
    ///
    /// Parsing the output gives the same number back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut text = String::with_capacity(self.digits.len() + 48);
        if self.negative {
            text.push('-');
        }
        let e = self.exponent;
        let digit_count = self.digits.len();
        if (1..=MAX_PLAIN_INTEGER_DIGITS).contains(&e) {
            // `e` is positive and at most 38 here, so the conversion is lossless.
            let integer_len = e as usize;
            if integer_len >= digit_count {
                text.push_str(&self.digits);
                text.extend(std::iter::repeat_n('0', integer_len - digit_count));
            } else {
                text.push_str(&self.digits[..integer_len]);
                text.push('.');
                text.push_str(&self.digits[integer_len..]);
            }
        } else if (-MAX_PLAIN_LEADING_FRACTION_ZEROS..=0).contains(&e) {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', usize::from(e.unsigned_abs())));
            text.push_str(&self.digits);
        } else {
            text.push_str(&self.digits[..1]);
            if digit_count > 1 {
                text.push('.');
                text.push_str(&self.digits[1..]);
            }
            let scientific = e - 1;
            text.push('E');
            text.push(if scientific < 0 { '-' } else { '+' });
            text.push_str(&scientific.unsigned_abs().to_string());
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn spellings_of_one_are_equal() {
        for text in [
            "1", "1.0", "01", "1e0", "10E-1", "+1", "0.1e1", "1.", "100e-2",
        ] {
            assert_eq!(n(text), n("1"), "{text}");
            assert_eq!(n(text).to_string(), "1");
        }
    }

    #[test]
    fn negative_zero_is_zero() {
        assert_eq!(n("-0"), Number::zero());
        assert_eq!(n("-0.000e5"), Number::zero());
        assert!(!n("-0").is_negative());
        assert_eq!(n("-0").to_string(), "0");
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            " 1",
            "1 ",
            "NaN",
            "Infinity",
            "-Infinity",
            "inf",
            "1e",
            "e5",
            ".",
            "-",
            "+",
            "1.2.3",
            "0x10",
            "1e+",
            "--1",
            "1_000",
            "١",
        ] {
            assert!(
                matches!(Number::parse(text), Err(NumberError::NotANumber(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn enforces_range_and_precision() {
        assert!(Number::parse("1e-130").is_ok());
        assert!(Number::parse("-1e-130").is_ok());
        assert_eq!(Number::parse("9.9e-131"), Err(NumberError::Underflow));
        assert_eq!(
            Number::parse("9.9999999999999999999999999999999999999E+125")
                .unwrap()
                .exponent(),
            126
        );
        assert_eq!(Number::parse("1e126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("-1e126"), Err(NumberError::Overflow));
        assert_eq!(
            Number::parse("1e999999999999999999999"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            Number::parse("1e-999999999999999999999"),
            Err(NumberError::Underflow)
        );
        assert_eq!(Number::parse("0e999999999999999999999"), Ok(Number::zero()));
        let thirty_eight = "12345678901234567890123456789012345678";
        assert!(Number::parse(thirty_eight).is_ok());
        assert_eq!(
            Number::parse(&format!("{thirty_eight}9")),
            Err(NumberError::TooManyDigits)
        );
        // Trailing zeros are not significant.
        assert!(Number::parse(&format!("{thirty_eight}000")).is_ok());
        assert!(Number::parse(&format!("0.000{thirty_eight}")).is_ok());
    }

    #[test]
    fn orders_numerically() {
        let ascending = [
            "-9.9999999999999999999999999999999999999E+125",
            "-100",
            "-99.5",
            "-1",
            "-0.5",
            "-1e-130",
            "0",
            "1e-130",
            "0.5",
            "1",
            "1.0000001",
            "1.1",
            "2",
            "10",
            "99.5",
            "100",
            "9.9999999999999999999999999999999999999E+125",
        ];
        for pair in ascending.windows(2) {
            assert!(n(pair[0]) < n(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(n(pair[1]) > n(pair[0]));
        }
    }

    #[test]
    fn displays_canonically() {
        let cases = [
            ("123", "123"),
            ("-1.50", "-1.5"),
            ("0.00001", "0.00001"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1E-7"),
            ("100000", "100000"),
            ("1e37", "10000000000000000000000000000000000000"),
            ("1e38", "1E+38"),
            ("-1.2345e-7", "-1.2345E-7"),
            ("9.9E125", "9.9E+125"),
            ("1e-130", "1E-130"),
            ("123.456", "123.456"),
            ("0.5", "0.5"),
        ];
        for (input, shown) in cases {
            assert_eq!(n(input).to_string(), shown, "{input}");
            assert_eq!(n(shown), n(input));
        }
    }

    #[test]
    fn from_i64_matches_parse() {
        for value in [0_i64, 1, -1, 10, -1200, i64::MAX, i64::MIN] {
            assert_eq!(Number::from(value), n(&value.to_string()), "{value}");
        }
    }
}
