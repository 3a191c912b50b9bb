//! PHP and database numeric behaviour that Moodle's results depend on.
//!
//! * [`php_round`] is PHP 8.2's `round()` (`_php_math_round`, with its "pre-rounding" step); the
//!   formula function `round()` and scale grades use it.
//! * [`db_decimal5`] is what a Moodle `DECIMAL(10,5)` column holds after PHP writes a float into it:
//!   PHP turns the float into a string with `precision=14` significant digits, the database then
//!   rounds that decimal string half away from zero to 5 decimals.  Every final grade, raw range and
//!   recomputed natural weight/maximum goes through the database between regrade steps, so the core
//!   applies this at the same places.
//! * [`php_string14`] is the value of `(string)$float` read back as a number (used by the mode).

/// `10^power` as PHP's `php_intpow10` computes it.
fn intpow10(power: i32) -> f64 {
    const POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    if !(0..=22).contains(&power) {
        return 10f64.powf(f64::from(power));
    }
    POWERS[power as usize]
}

/// PHP_ROUND_HALF_UP helper.
fn round_helper(value: f64) -> f64 {
    if value >= 0.0 {
        (value + 0.5).floor()
    } else {
        (value - 0.5).ceil()
    }
}

fn round_get_basic(value: f64, places: i32) -> f64 {
    let f1 = intpow10(places.abs());
    if places >= 0 {
        value * f1
    } else {
        value / f1
    }
}

/// PHP 8.2 `round($value, $places)` (mode PHP_ROUND_HALF_UP).
pub fn php_round(value: f64, places: i64) -> f64 {
    if !value.is_finite() || value == 0.0 {
        return value;
    }
    let places = places.clamp(i64::from(i32::MIN) + 1, i64::from(i32::MAX)) as i32;
    let precision_places = 14 - value.abs().log10().floor() as i32;
    let f1 = intpow10(places.abs());
    let mut tmp;
    if precision_places > places && precision_places - 15 < places {
        let use_precision = precision_places.max(-(4 * 15));
        // Pre-round to the precision the double can hold, then move the decimal point.
        tmp = round_helper(round_get_basic(value, use_precision));
        let shift = (places - use_precision).max(-(4 * 15));
        tmp /= intpow10(shift.abs());
    } else {
        tmp = if places >= 0 { value * f1 } else { value / f1 };
        if tmp.abs() >= 1e15 {
            return value;
        }
    }
    tmp = round_helper(tmp);
    if places.abs() < 23 {
        if places > 0 {
            tmp /= f1;
        } else {
            tmp *= f1;
        }
    } else {
        let s = format!("{tmp:.15}e{}", -places);
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => tmp = v,
            _ => return value,
        }
    }
    tmp
}

/// Digits of `(string)$value` under PHP's default `precision=14`: (negative, 14 digits, exponent).
fn sig14(value: f64) -> (bool, u64, i32) {
    let s = format!("{:.13e}", value.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: u64 = mant.replace('.', "").parse().unwrap_or(0);
    (value < 0.0, digits, exp.parse().unwrap_or(0))
}

/// `(float)(string)$value` with PHP's default `precision=14`.
pub fn php_string14(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    format!("{:.13e}", value).parse().unwrap_or(value)
}

/// The value a `DECIMAL(10,5)` column returns after PHP stored `value` into it.
pub fn db_decimal5(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return if value.is_finite() { 0.0 } else { value };
    }
    let (neg, digits, exp) = sig14(value);
    // value = digits * 10^(exp-13); we want round_half_up(value * 10^5) = digits * 10^(exp-8).
    let shift = exp - 8;
    let scaled: u128 = if shift >= 0 {
        u128::from(digits) * 10u128.pow(shift.min(20) as u32)
    } else {
        let k = (-shift) as u32;
        if k > 30 {
            0
        } else {
            let p = 10u128.pow(k);
            (u128::from(digits) + p / 2) / p
        }
    };
    let v = scaled as f64 / 100_000.0;
    if neg {
        -v
    } else {
        v
    }
}

/// PHP's `(int)$float` on a 64-bit build (modular for out-of-range, 0 for NaN/Inf).
pub fn php_int(value: f64) -> i64 {
    if !value.is_finite() {
        return 0;
    }
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO63..TWO63).contains(&value) {
        return value.trunc() as i64;
    }
    // zend_dval_to_lval_slow: modular arithmetic.
    let two64 = 2.0 * TWO63;
    let mut dmod = value.trunc() % two64;
    if dmod < 0.0 {
        // we are going to make this number positive; call ourselves recursively
        // if the result is -zend_long_min, which can't be represented as positive
        dmod += two64;
    }
    if dmod >= TWO63 {
        dmod -= two64;
    }
    dmod as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal5_rounds_the_14_digit_string_half_up() {
        assert_eq!(db_decimal5(83.333_333_333_333_33), 83.33333);
        assert_eq!(db_decimal5(0.123_455), 0.12346);
        assert_eq!(db_decimal5(-0.123_455), -0.12346);
        // 14 significant digits round first: 0.1234549999999999 -> "0.12345500000000" -> 0.12346
        assert_eq!(db_decimal5(0.123_454_999_999_999_9), 0.12346);
        assert_eq!(db_decimal5(0.000_004_9), 0.0);
        assert_eq!(db_decimal5(0.000_005), 0.00001);
        assert_eq!(db_decimal5(12_345.678_9), 12_345.678_9);
    }

    #[test]
    fn php_round_matches_known_php82_results() {
        assert_eq!(php_round(0.285, 2), 0.29);
        assert_eq!(php_round(1.955, 2), 1.96);
        assert_eq!(php_round(5.045, 2), 5.05);
        assert_eq!(php_round(5.055, 2), 5.06);
        assert_eq!(php_round(0.499_999_999_999_999_94, 0), 1.0);
        assert_eq!(php_round(-2.5, 0), -3.0);
        assert_eq!(php_round(1234.5678, -2), 1200.0);
    }

    #[test]
    fn php_int_truncates_and_wraps() {
        assert_eq!(php_int(7.9), 7);
        assert_eq!(php_int(-7.9), -7);
        assert_eq!(php_int(f64::NAN), 0);
        assert_eq!(php_int(1e19), 1e19 as u64 as i64);
    }
}
