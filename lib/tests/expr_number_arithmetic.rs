//! `SET a = b + c`, `b - c` and `ADD` do exact decimal arithmetic within DynamoDB's 38 digits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ddb::expr::{add_numbers, subtract_numbers};
use ddb::item::{Number, NumberError};
use proptest::prelude::*;

fn n(text: &str) -> Number {
    Number::parse(text).unwrap()
}

/// `mantissa × 10^exponent` as a `Number`, through DynamoDB's text form.
fn scaled(mantissa: i64, exponent: i32) -> Number {
    n(&format!("{mantissa}E{exponent}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Compared with i128 arithmetic at a common scale, an independent exact computation.
    #[test]
    fn sums_match_integer_arithmetic(
        a in -2_000_000_000i64..2_000_000_000, ea in -10i32..10,
        b in -2_000_000_000i64..2_000_000_000, eb in -10i32..10,
    ) {
        let scale = ea.min(eb);
        let widen = |m: i64, e: i32| i128::from(m) * 10i128.pow((e - scale) as u32);
        let sum = widen(a, ea) + widen(b, eb);
        let difference = widen(a, ea) - widen(b, eb);
        let (x, y) = (scaled(a, ea), scaled(b, eb));
        prop_assert_eq!(add_numbers(&x, &y).unwrap(), n(&format!("{sum}E{scale}")));
        prop_assert_eq!(subtract_numbers(&x, &y).unwrap(), n(&format!("{difference}E{scale}")));
        prop_assert_eq!(add_numbers(&y, &x).unwrap(), add_numbers(&x, &y).unwrap());
    }
}

#[test]
fn edge_cases_at_the_limits_of_the_number_type() {
    let nines = "9".repeat(38);
    // Carry into a new digit stays exact when trailing zeros absorb it.
    assert_eq!(add_numbers(&n(&nines), &n("1")).unwrap(), n("1E38"));
    // 39 significant digits cannot be stored.
    assert_eq!(
        add_numbers(&n(&nines), &n("0.1")),
        Err(NumberError::TooManyDigits)
    );
    assert_eq!(
        add_numbers(&n("1E+20"), &n("1E-20")),
        Err(NumberError::TooManyDigits)
    );
    // Magnitude 1E+126 and up overflows; below 1E-130 underflows.
    assert_eq!(
        add_numbers(&n(&format!("{nines}E+88")), &n("1E+88")),
        Err(NumberError::Overflow)
    );
    assert_eq!(
        subtract_numbers(&n("-9.9E+125"), &n("1E+125")),
        Err(NumberError::Overflow)
    );
    assert_eq!(
        subtract_numbers(&n("2E-130"), &n("1.5E-130")),
        Err(NumberError::Underflow)
    );
    // Results that cancel are zero, never negative zero.
    assert_eq!(
        subtract_numbers(&n("-0.5"), &n("-0.50")).unwrap(),
        Number::zero()
    );
    assert!(!subtract_numbers(&n("3"), &n("3")).unwrap().is_negative());
    // Smallest and largest magnitudes are reachable.
    assert_eq!(
        subtract_numbers(&n("2E-130"), &n("1E-130")).unwrap(),
        n("1E-130")
    );
    assert_eq!(
        add_numbers(&n(&format!("{nines}E+87")), &n("0")).unwrap(),
        n(&format!("{nines}E+87"))
    );
    assert_eq!(
        add_numbers(&n("0.1"), &n("0.2")).unwrap().to_string(),
        "0.3"
    );
}
