//! Exact decimal addition and subtraction of DynamoDB numbers, for `SET a = b + c` and `ADD`.
//!
//! Results must fit DynamoDB's number type exactly: 38 significant digits and magnitudes in
//! [1E-130, 1E+126). A result that does not fit is an error, never rounded.

use std::cmp::Ordering;

use crate::item::{Number, NumberError};

/// A number as an exact integer coefficient with a power-of-ten scale.
struct Scaled {
    negative: bool,
    /// Big-endian decimal digits (values 0–9) of the coefficient, no leading zeros.
    coefficient: Vec<u8>,
}

/// `number` as a coefficient of `10^scale`; `scale` must be at most the number's lowest digit
/// position (`exponent - digit count`).
fn scaled(number: &Number, scale: i32) -> Scaled {
    let digits = number.digits();
    let lowest = i32::from(number.exponent()) - digits.len() as i32;
    let padding = usize::try_from(lowest - scale).unwrap_or(0);
    let coefficient = digits
        .bytes()
        .map(|digit| digit - b'0')
        .chain(std::iter::repeat_n(0, padding))
        .collect();
    Scaled {
        negative: number.is_negative(),
        coefficient,
    }
}

fn compare_magnitudes(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut sum = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0;
    let mut a_digits = a.iter().rev();
    let mut b_digits = b.iter().rev();
    loop {
        let (x, y) = (a_digits.next(), b_digits.next());
        if x.is_none() && y.is_none() {
            break;
        }
        let total = x.copied().unwrap_or(0) + y.copied().unwrap_or(0) + carry;
        sum.push(total % 10);
        carry = total / 10;
    }
    if carry > 0 {
        sum.push(carry);
    }
    sum.reverse();
    sum
}

/// `a - b` for magnitudes with `a >= b`.
fn subtract_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut difference = Vec::with_capacity(a.len());
    let mut borrow = 0;
    let mut b_digits = b.iter().rev();
    for &x in a.iter().rev() {
        let y = b_digits.next().copied().unwrap_or(0) + borrow;
        if x >= y {
            difference.push(x - y);
            borrow = 0;
        } else {
            difference.push(x + 10 - y);
            borrow = 1;
        }
    }
    difference.reverse();
    difference
}

/// Builds the normalised number `±coefficient × 10^scale`.
fn normalise(negative: bool, coefficient: &[u8], scale: i32) -> Result<Number, NumberError> {
    let Some(first) = coefficient.iter().position(|&digit| digit != 0) else {
        return Ok(Number::zero());
    };
    let significant = &coefficient[first..];
    let last = significant
        .iter()
        .rposition(|&digit| digit != 0)
        .unwrap_or(0);
    let digits: String = significant[..=last]
        .iter()
        .map(|&digit| char::from(b'0' + digit))
        .collect();
    let exponent = scale + significant.len() as i32;
    let exponent = i16::try_from(exponent).map_err(|_| {
        if exponent > 0 {
            NumberError::Overflow
        } else {
            NumberError::Underflow
        }
    })?;
    Number::from_parts(negative, digits, exponent)
}

/// `a + b`, exactly. Errors if the result needs more than 38 significant digits or leaves
/// DynamoDB's range.
pub fn add_numbers(a: &Number, b: &Number) -> Result<Number, NumberError> {
    if a.is_zero() {
        return Ok(b.clone());
    }
    if b.is_zero() {
        return Ok(a.clone());
    }
    let lowest = |n: &Number| i32::from(n.exponent()) - n.digits().len() as i32;
    let scale = lowest(a).min(lowest(b));
    let (x, y) = (scaled(a, scale), scaled(b, scale));
    if x.negative == y.negative {
        return normalise(
            x.negative,
            &add_magnitudes(&x.coefficient, &y.coefficient),
            scale,
        );
    }
    match compare_magnitudes(&x.coefficient, &y.coefficient) {
        Ordering::Equal => Ok(Number::zero()),
        Ordering::Greater => normalise(
            x.negative,
            &subtract_magnitudes(&x.coefficient, &y.coefficient),
            scale,
        ),
        Ordering::Less => normalise(
            y.negative,
            &subtract_magnitudes(&y.coefficient, &x.coefficient),
            scale,
        ),
    }
}

/// `-n`.
pub fn negate_number(n: &Number) -> Number {
    if n.is_zero() {
        return Number::zero();
    }
    // Same digits and exponent as a valid number, so the parts are valid; fall back to the
    // input only if that invariant were ever broken.
    Number::from_parts(!n.is_negative(), n.digits().to_owned(), n.exponent())
        .unwrap_or_else(|_| n.clone())
}

/// `a - b`, exactly, with [`add_numbers`]'s limits.
pub fn subtract_numbers(a: &Number, b: &Number) -> Result<Number, NumberError> {
    add_numbers(a, &negate_number(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn adds_and_subtracts_exactly() {
        let cases = [
            ("1", "2", "3"),
            ("0.1", "0.2", "0.3"),
            ("-5", "3", "-2"),
            ("5", "-5", "0"),
            ("999", "1", "1000"),
            ("1E+10", "1E-10", "10000000000.0000000001"),
            ("-0.5", "-0.25", "-0.75"),
            ("123.456", "0", "123.456"),
            ("0", "-7", "-7"),
        ];
        for (a, b, sum) in cases {
            assert_eq!(add_numbers(&n(a), &n(b)).unwrap(), n(sum), "{a} + {b}");
            assert_eq!(add_numbers(&n(b), &n(a)).unwrap(), n(sum), "{b} + {a}");
            assert_eq!(
                subtract_numbers(&n(sum), &n(b)).unwrap(),
                n(a),
                "{sum} - {b}"
            );
        }
    }

    #[test]
    fn results_beyond_38_digits_or_the_range_are_errors() {
        let max = "9".repeat(38);
        assert_eq!(
            add_numbers(&n(&max), &n("1")),
            Ok(n(&format!("1{}", "0".repeat(38))))
        );
        assert_eq!(
            add_numbers(&n("1E+30"), &n("1E-30")),
            Err(NumberError::TooManyDigits)
        );
        let largest = format!("{max}E+88");
        assert_eq!(
            add_numbers(&n(&largest), &n("1E+88")),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            subtract_numbers(&n("2E-130"), &n("1.5E-130")),
            Err(NumberError::Underflow)
        );
    }
}
