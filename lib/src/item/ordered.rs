//! Order-preserving, self-delimiting byte encodings of numbers and byte strings.
//!
//! Both encodings are prefix-free (no encoding is a proper prefix of another), so they can be
//! concatenated into composite keys, and their bytewise order equals the order of the values.
//! The canonical item encoding reuses [`encode_number`] for its numbers, so there is one number
//! format on disk.

use super::number::{MAX_SIGNIFICANT_DIGITS, MIN_EXPONENT, Number};

/// First byte of a negative number.
pub(crate) const NUMBER_NEGATIVE: u8 = 0x01;
/// The single byte of zero.
pub(crate) const NUMBER_ZERO: u8 = 0x02;
/// First byte of a positive number.
pub(crate) const NUMBER_POSITIVE: u8 = 0x03;

/// Why bytes are not an ordered number or an escaped byte string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderedDecodeError {
    /// The input ended inside an encoding.
    #[error("input ended inside an encoded {0}")]
    Truncated(&'static str),
    /// The first byte of a number is not 0x01, 0x02 or 0x03.
    #[error("invalid number sign byte 0x{0:02x}")]
    BadNumberSign(u8),
    /// A base-100 digit byte above 199.
    #[error("invalid number digit byte 0x{0:02x}")]
    BadDigitByte(u8),
    /// More than 38 digits, a leading zero digit or a trailing zero digit.
    #[error("non-canonical number digits")]
    NonCanonicalDigits,
    /// `0x00` followed by something other than `0x01` or `0xFF` in an escaped byte string.
    #[error("invalid escape 0x00 0x{0:02x} in a byte string")]
    BadEscape(u8),
}

/// Appends the ordered encoding of `number` to `out`.
///
/// - zero: the single byte `0x02`;
/// - positive: `0x03`, then the exponent byte `e + 129` (`e` in `-129..=126` as in
///   `0.DIGITS × 10^e`, so the byte covers `0x00..=0xFF`), then the digits in base 100: the digit
///   string is padded with a `0` to even length and each pair `X` (0..=99) becomes `2X + 1`,
///   except the last pair, which becomes `2X`. The last byte is thus the only even one;
/// - negative: `0x01`, then the positive encoding's exponent and digit bytes, each replaced by
///   `255 - byte`, so larger magnitudes sort first.
pub(crate) fn encode_number(number: &Number, out: &mut Vec<u8>) {
    if number.is_zero() {
        out.push(NUMBER_ZERO);
        return;
    }
    let invert = number.is_negative();
    out.push(if invert {
        NUMBER_NEGATIVE
    } else {
        NUMBER_POSITIVE
    });
    let flip = |byte: u8| if invert { 255 - byte } else { byte };
    // Invariant of Number: exponent is in MIN_EXPONENT..=MAX_EXPONENT, i.e. 0..=255 after bias.
    let biased = (number.exponent() - MIN_EXPONENT).clamp(0, 255) as u8;
    out.push(flip(biased));
    let digits = number.digits().as_bytes();
    let pairs = digits.len().div_ceil(2);
    for (index, pair) in digits.chunks(2).enumerate() {
        let high = pair[0] - b'0';
        let low = pair.get(1).map_or(0, |d| d - b'0');
        let centimal = high * 10 + low;
        let last = index + 1 == pairs;
        out.push(flip(if last { 2 * centimal } else { 2 * centimal + 1 }));
    }
}

/// Decodes an ordered number at the start of `input`; returns it and the bytes consumed.
/// Rejects every byte string [`encode_number`] cannot produce.
pub(crate) fn decode_number(input: &[u8]) -> Result<(Number, usize), OrderedDecodeError> {
    let truncated = OrderedDecodeError::Truncated("number");
    let sign = *input.first().ok_or(truncated.clone())?;
    let invert = match sign {
        NUMBER_ZERO => return Ok((Number::zero(), 1)),
        NUMBER_NEGATIVE => true,
        NUMBER_POSITIVE => false,
        other => return Err(OrderedDecodeError::BadNumberSign(other)),
    };
    let flip = |byte: u8| if invert { 255 - byte } else { byte };
    let biased = flip(*input.get(1).ok_or(truncated.clone())?);
    let exponent = i16::from(biased) + MIN_EXPONENT;
    let mut digits = String::new();
    let mut at = 2;
    loop {
        let byte = flip(*input.get(at).ok_or(truncated.clone())?);
        at += 1;
        if byte > 199 {
            return Err(OrderedDecodeError::BadDigitByte(byte));
        }
        let centimal = byte / 2;
        let last = byte % 2 == 0;
        digits.push(char::from(b'0' + centimal / 10));
        if !(last && centimal % 10 == 0) {
            digits.push(char::from(b'0' + centimal % 10));
        }
        if digits.len() > MAX_SIGNIFICANT_DIGITS {
            return Err(OrderedDecodeError::NonCanonicalDigits);
        }
        if last {
            break;
        }
    }
    let number = Number::from_parts(invert, digits, exponent)
        .map_err(|_| OrderedDecodeError::NonCanonicalDigits)?;
    Ok((number, at))
}

/// Appends `bytes` escaped and terminated: each `0x00` becomes `0x00 0xFF`, and the string ends
/// with `0x00 0x01`. A proper prefix therefore sorts before its extensions, and the order of
/// encodings is the bytewise order of the strings.
pub(crate) fn encode_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        out.push(byte);
        if byte == 0x00 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Decodes an escaped byte string at the start of `input`; returns it and the bytes consumed.
pub(crate) fn decode_escaped(input: &[u8]) -> Result<(Vec<u8>, usize), OrderedDecodeError> {
    let mut decoded = Vec::new();
    let mut at = 0;
    loop {
        let byte = *input
            .get(at)
            .ok_or(OrderedDecodeError::Truncated("byte string"))?;
        at += 1;
        if byte != 0x00 {
            decoded.push(byte);
            continue;
        }
        let escape = *input
            .get(at)
            .ok_or(OrderedDecodeError::Truncated("byte string"))?;
        at += 1;
        match escape {
            0xFF => decoded.push(0x00),
            0x01 => return Ok((decoded, at)),
            other => return Err(OrderedDecodeError::BadEscape(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_number(&Number::parse(text).unwrap(), &mut out);
        out
    }

    #[test]
    fn number_bytes_match_the_documented_layout() {
        assert_eq!(encoded("0"), [0x02]);
        // 1 = 0.1 × 10^1: exponent byte 130, digits "1" padded to pair 10, last → 20.
        assert_eq!(encoded("1"), [0x03, 130, 20]);
        assert_eq!(encoded("-1"), [0x01, 255 - 130, 255 - 20]);
        // 123.45 = 0.12345 × 10^3: pairs 12, 34, 50 → 25, 69, 100.
        assert_eq!(encoded("123.45"), [0x03, 132, 25, 69, 100]);
        assert_eq!(encoded("1e-130"), [0x03, 0x00, 20]);
        assert_eq!(encoded("9.9e125")[..2], [0x03, 0xFF]);
    }

    #[test]
    fn numbers_round_trip_and_reject_non_canonical_bytes() {
        for text in [
            "1", "-1", "123.45", "-1e-130", "9.99e125", "0.0001", "99", "100.01",
        ] {
            let bytes = encoded(text);
            assert_eq!(
                decode_number(&bytes).unwrap(),
                (Number::parse(text).unwrap(), bytes.len())
            );
        }
        assert!(
            decode_number(&[0x03, 130, 0]).is_err(),
            "trailing zero pair"
        );
        assert!(
            decode_number(&[0x03, 130, 3, 20]).is_err(),
            "leading zero digit"
        );
        assert!(decode_number(&[0x03, 130, 21]).is_err(), "unterminated");
        assert!(
            decode_number(&[0x03, 130, 200]).is_err(),
            "digit byte > 199"
        );
        assert!(decode_number(&[0x04]).is_err());
        let too_long: Vec<u8> = [0x03, 130]
            .into_iter()
            .chain([23; 20])
            .chain([22])
            .collect();
        assert!(decode_number(&too_long).is_err());
    }

    #[test]
    fn escaped_strings_round_trip_and_order_prefixes_first() {
        let mut a = Vec::new();
        encode_escaped(b"a", &mut a);
        let mut a_nul = Vec::new();
        encode_escaped(b"a\0", &mut a_nul);
        let mut ab = Vec::new();
        encode_escaped(b"ab", &mut ab);
        assert_eq!(a, b"a\x00\x01");
        assert_eq!(a_nul, b"a\x00\xff\x00\x01");
        assert!(a < a_nul && a_nul < ab);
        assert_eq!(decode_escaped(&a_nul).unwrap(), (b"a\0".to_vec(), 5));
        assert!(decode_escaped(b"a\x00\x02").is_err());
        assert!(decode_escaped(b"a\x00").is_err());
    }
}
